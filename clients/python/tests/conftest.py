"""Fixtures: real taskmill processes on loopback.

As tests/integration/harness.hpp does for the C++ tests: a broker started
with port 0 writes DATA_DIR/endpoints.json; hosts and Python workers run
as child processes with their logs in the test's temporary folder; every
wait is a condition polled until a deadline; only processes started here
are ended, by PID. The build's binaries come from the environment
(TASKMILL_BROKER_BIN, TASKMILL_HOST_BIN, TASKMILL_CLI_BIN,
TASKMILL_PLUGINS_DIR), which the ctest registration sets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the package from the source tree

import taskmill  # noqa: E402


def need(var: str) -> str:
    value = os.environ.get(var)
    if not value:
        pytest.skip(f"{var} is not set (run through ctest)")
    return value


def wait_until(pred: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    pause = 0.005
    while not pred():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(pause)  # polling interval of a condition with a deadline
        pause = min(pause * 2, 0.1)


class Proc:
    """A child process with its output in `log`; stop() ends it by PID."""

    def __init__(self, argv: List[str], log: Path, env: Optional[Dict[str, str]] = None) -> None:
        self.log = log
        self.argv = argv
        with open(log, "ab") as out:
            self.popen = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          env=dict(os.environ, **(env or {})))
        self.pid = self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.running():
            os.kill(self.pid, sig)

    def wait(self, timeout: float = 20.0) -> int:
        return self.popen.wait(timeout)

    def stop(self) -> None:
        if self.running():
            os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(10)

    def text(self) -> str:
        return self.log.read_text(errors="replace")


class Broker:
    def __init__(self, root: Path, extra: List[str], name: str = "broker",
                 at: Optional[Dict[str, str]] = None) -> None:
        self.name = name
        self.data = root / f"{name}-data"
        self.data.mkdir(parents=True, exist_ok=True)
        ep_file = self.data / "endpoints.json"
        if ep_file.exists():
            ep_file.unlink()
        at = at or {}
        self.proc = Proc([need("TASKMILL_BROKER_BIN"), "--data-dir", str(self.data),
                          "--frontend", at.get("frontend", "tcp://127.0.0.1:0"),
                          "--backend", at.get("backend", "tcp://127.0.0.1:0"),
                          "--events", at.get("events", "tcp://127.0.0.1:0")] + extra, root / f"{name}.log")
        wait_until(lambda: ep_file.exists() or not self.proc.running(), 20, "endpoints.json")
        if not ep_file.exists():
            raise RuntimeError("broker did not start: " + self.proc.text())
        self.ep: Dict[str, str] = json.loads(ep_file.read_text())

    @property
    def frontend(self) -> str:
        return self.ep["frontend"]

    @property
    def backend(self) -> str:
        return self.ep["backend"]

    @property
    def events(self) -> str:
        return self.ep["events"]

    def client(self, **kwargs: object) -> taskmill.Client:
        return taskmill.Client(self.frontend, events=self.events, **kwargs)  # type: ignore[arg-type]


class Cluster:
    """What one test started; everything is stopped at its end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: List[Proc] = []
        self.clients: List[taskmill.Client] = []
        self.count = 0

    def broker(self, *extra: str, at: Optional[Dict[str, str]] = None, name: str = "") -> Broker:
        """A broker; with `at` and the `name` of an earlier one, a restart
        on its ports and data folder."""
        self.count += 1
        b = Broker(self.root, list(extra), name or f"broker{self.count}", at)
        self.procs.append(b.proc)
        return b

    def host(self, backend: str, *extra: str, concurrency: int = 2) -> Proc:
        self.count += 1
        run_dir = self.root / f"host{self.count}.run"
        run_dir.mkdir()
        p = Proc([need("TASKMILL_HOST_BIN"), "--broker", backend, "--plugins", need("TASKMILL_PLUGINS_DIR"),
                  "--processes", "1", "--concurrency", str(concurrency), "--run-dir", str(run_dir)] + list(extra),
                 self.root / f"host{self.count}.log")
        self.procs.append(p)
        return p

    def py_worker(self, backend: str, *extra: str) -> Proc:
        """tests/workers.py: the Python handlers of these tests."""
        self.count += 1
        env = {"PYTHONPATH": str(HERE.parent), "PYTHONUNBUFFERED": "1"}
        p = Proc([sys.executable, str(HERE / "workers.py"), "--broker", backend] + list(extra),
                 self.root / f"pyworker{self.count}.log", env)
        self.procs.append(p)
        return p

    def client(self, broker: Broker, **kwargs: object) -> taskmill.Client:
        c = broker.client(**kwargs)
        self.clients.append(c)
        return c

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([need("TASKMILL_CLI_BIN")] + list(args), capture_output=True, text=True, timeout=30)

    def close(self) -> None:
        for c in self.clients:
            c.close()
        for p in reversed(self.procs):
            p.stop()


def wait_for_handler(client: taskmill.Client, handler: str, count: int = 1, timeout: float = 20.0) -> None:
    """Until `count` connected workers offer `handler`."""

    def offered() -> bool:
        return sum(1 for w in client.workers() if any(h["name"] == handler for h in w.get("handlers", []))) >= count

    wait_until(offered, timeout, f"a worker offering {handler}")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def module_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One set of processes shared by the tests of a module."""
    c = Cluster(tmp_path_factory.mktemp("shared"))
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def marks(tmp_path: Path) -> Path:
    """A folder the test handlers write marker files to."""
    d = tmp_path / "marks"
    d.mkdir()
    return d
