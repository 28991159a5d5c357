"""Worker.run(processes=N): fork N worker processes and report their deaths.

The broker charges a crash to a task (and fails a task that crashes its
worker `max-crashes` times as poison) only when a supervisor reports the
death with DEAD (docs/PROTOCOL.md 5.1), naming the tasks the worker was
running. Each worker writes those ids to a file of its own in a run
folder; the supervisor reads it when the worker dies."""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List

import zmq

from ._wire import encode, new_socket

if TYPE_CHECKING:
    from .worker import Worker

log = logging.getLogger("taskmill.worker")
# A worker that dies sooner than this after its start is restarted after a
# growing pause, so a handler that kills every process cannot spin the CPU.
QUICK_DEATH_S = 1.0
PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> None:
    """SIGTERM (a drain) for this process when its supervisor dies, as
    taskmill-host's workers have: no worker outlives its supervisor."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: an orphan drains at its next look at its parent
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)  # the supervisor died before prctl


def _child(w: "Worker", supervisor_id: str, run_dir: Path, parent: int) -> None:
    from .worker import _Loop

    code = 1
    try:
        for s in (signal.SIGTERM, signal.SIGINT):
            signal.signal(s, signal.SIG_DFL)
        _die_with(parent)
        w.supervisor_id = supervisor_id
        w.running_file = run_dir / f"worker-{os.getpid()}.running"
        code = _Loop(w).run()
    except BaseException:  # noqa: BLE001 - the process ends here either way
        traceback.print_exc()
    finally:
        os._exit(code)


def _how(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return f"killed by signal {sig} ({signal.Signals(sig).name})"
    return f"exited with code {os.WEXITSTATUS(status)}"


def _running(run_dir: Path, pid: int) -> List[str]:
    path = run_dir / f"worker-{pid}.running"
    try:
        ids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        path.unlink()
        return ids
    except OSError:
        return []


def supervise(w: "Worker", processes: int) -> int:
    host = socket.gethostname()
    supervisor_pid = os.getpid()
    supervisor_id = f"{host}:{supervisor_pid}:supervisor"
    run_dir = Path(tempfile.mkdtemp(prefix="taskmill-worker-"))
    children: Dict[int, float] = {}
    stopping = False
    pause = 0.1

    def start_one() -> None:
        pid = os.fork()
        if pid == 0:
            _child(w, supervisor_id, run_dir, supervisor_pid)
        children[pid] = time.monotonic()

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            os.kill(pid, signal.SIGTERM)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    for _ in range(processes):
        start_one()
    ctx = zmq.Context()
    socks = []
    for ep in w.endpoints:
        s = new_socket(ctx, zmq.DEALER, w.curve)
        s.setsockopt(zmq.ROUTING_ID, supervisor_id.encode())
        s.setsockopt(zmq.LINGER, 2000)
        s.connect(ep)
        socks.append(s)
    code = 0
    try:
        while children:
            pid, status = os.waitpid(-1, 0)
            born = children.pop(pid, None)
            if born is None:
                continue
            how = _how(status)
            running = _running(run_dir, pid)
            if os.WIFSIGNALED(status) or os.WEXITSTATUS(status) not in (0,):
                log.warning("worker pid=%d %s; running=%s", pid, how, running)
                for s in socks:
                    s.send_multipart(encode("DEAD", {"ids": [f"{host}:{pid}"], "note": how, "running": running}))
                code = 1 if stopping else code
            if stopping:
                continue
            pause = pause * 2 if time.monotonic() - born < QUICK_DEATH_S else 0.1
            time.sleep(min(pause, 5.0) if pause > 0.1 else 0)  # restart pacing, not synchronisation
            start_one()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        for s in socks:
            s.close()
        ctx.term()
        shutil.rmtree(run_dir, ignore_errors=True)
    return code
