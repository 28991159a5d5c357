"""The package installs with pip offline (Debian's pip and setuptools,
no index) and carries its type information."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_pip_installs_the_package_offline(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(HERE.parent, src, ignore=shutil.ignore_patterns("tests", "build", "*.egg-info", "__pycache__"))
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--no-cache-dir",
                        "--disable-pip-version-check", "--target", str(target), str(src)],
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (target / "taskmill" / "py.typed").exists()
    assert (target / "taskmill" / "worker.py").exists()
    probe = subprocess.run([sys.executable, "-c", "import taskmill, taskmill.worker; print(taskmill.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, env={"PYTHONPATH": str(target)},
                           timeout=60)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip().startswith(str(target))
