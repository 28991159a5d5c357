#!/usr/bin/python3
"""Python client benchmark: taskmill beside Celery and RQ, in one run.

Run by `scripts/bench.sh --python` (which builds the Release binaries):

    bench_python.py --bin DIR --plugins DIR --work DIR [--count N] [--rtt K] [--json FILE]

Figures, for each system's own Python client on this machine:
  submit/s         N tasks submitted one request each, one thread, to a
                   queue no worker serves (the client and the broker only)
  batch submit/s   the same N in batches (taskmill: 1000 per SUBMIT;
                   Celery and RQ have no batch submit: not measured)
  round trip       K tasks one after another: submit, then wait for the
                   result of a handler that returns its input; p50 and p99
taskmill: a broker (--durability sync and none) with a taskmill-host
running the C++ echo plugin, and the Python worker (taskmill.worker)
running a Python echo. Celery 5 and RQ use a redis-server started here
on a free loopback port (no persistence); their workers are Celery's
solo pool and RQ's SimpleWorker (no fork per task), each their fastest
for one-at-a-time round trips. Celery and RQ are measured when Debian's
python3-celery, python3-rq and redis-server are installed; otherwise
they are reported as skipped. Every process started here is ended by
PID at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "clients" / "python"))

import taskmill  # noqa: E402

procs: List[subprocess.Popen] = []


def start(argv: List[str], log: Path, env: Optional[Dict[str, str]] = None, cwd: Optional[Path] = None) -> subprocess.Popen:
    out = open(log, "ab")
    p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd,
                         env=dict(os.environ, **(env or {})))
    procs.append(p)
    return p


def stop_all() -> None:
    for p in reversed(procs):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def wait_until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.02)  # polling a condition with a deadline


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rate(n: int, fn: Callable[[int], Any]) -> float:
    start_t = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - start_t)


def round_trips(k: int, fn: Callable[[int], Any]) -> Dict[str, float]:
    for i in range(min(20, k)):  # warm-up
        fn(i)
    times = []
    for i in range(k):
        t0 = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"p50_ms": round(times[len(times) // 2], 3), "p99_ms": round(times[int(len(times) * 0.99) - 1], 3),
            "mean_ms": round(statistics.mean(times), 3)}


# ---- taskmill ----

PY_WORKER = """
import sys
from taskmill.worker import Worker
w = Worker(sys.argv[1], concurrency=1)

@w.handler("py.echo")
def echo(payload):
    return payload

sys.exit(w.run())
"""


def bench_taskmill(a: argparse.Namespace, durability: str) -> Dict[str, Any]:
    data = a.work / f"taskmill-{durability}"
    data.mkdir()
    start([str(a.bin / "taskmill-broker"), "--data-dir", str(data), "--frontend", "tcp://127.0.0.1:0",
           "--backend", "tcp://127.0.0.1:0", "--events", "", "--durability", durability], a.work / "broker.log")
    wait_until(lambda: (data / "endpoints.json").exists(), 20, "the broker")
    ep = taskmill.read_endpoints(data)
    run_dir = a.work / f"host-{durability}"
    run_dir.mkdir()
    start([str(a.bin / "taskmill-host"), "--broker", ep["backend"], "--plugins", str(a.plugins), "--processes",
           "1", "--concurrency", "1", "--run-dir", str(run_dir), "--queues", "default"], a.work / "host.log")
    (a.work / "py_worker.py").write_text(PY_WORKER)
    start([sys.executable, str(a.work / "py_worker.py"), ep["backend"]], a.work / "py-worker.log",
          {"PYTHONPATH": str(ROOT / "clients" / "python")})
    out: Dict[str, Any] = {}
    with taskmill.Client(ep["frontend"], timeout=30) as c:
        wait_until(lambda: len(c.workers()) >= 2, 30, "the workers")
        out["submit_per_s"] = round(rate(a.count, lambda i: c.submit("echo.echo", i, queue="idle")))
        start_t = time.perf_counter()
        c.submit_many(taskmill.TaskSpec("echo.echo", i, queue="idle") for i in range(a.count))
        out["batch_submit_per_s"] = round(a.count / (time.perf_counter() - start_t))
        out["round_trip_cpp_handler"] = round_trips(a.rtt, lambda i: c.submit("echo.echo", i).get(timeout=30))
        out["round_trip_python_handler"] = round_trips(a.rtt, lambda i: c.submit("py.echo", i).get(timeout=30))
    stop_all()
    procs.clear()
    return out


# ---- Celery and RQ ----

CELERY_APP = """
import os
from celery import Celery
url = os.environ["BENCH_REDIS"]
app = Celery("bench_celery", broker=url + "/0", backend=url + "/1")
app.conf.broker_connection_retry_on_startup = True

@app.task
def echo(x):
    return x
"""

RQ_TASKS = """
def echo(x):
    return x
"""


def start_redis(a: argparse.Namespace) -> Optional[str]:
    server = shutil.which("redis-server")
    if server is None:
        return None
    port = free_port()
    start([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
          a.work / "redis.log")
    url = f"redis://127.0.0.1:{port}"
    import redis

    r = redis.Redis.from_url(url)

    def up() -> bool:
        try:
            return bool(r.ping())
        except redis.exceptions.ConnectionError:
            return False

    wait_until(up, 20, "redis-server")
    return url


def bench_celery(a: argparse.Namespace, url: str) -> Dict[str, Any]:
    (a.work / "bench_celery.py").write_text(CELERY_APP)
    os.environ["BENCH_REDIS"] = url
    sys.path.insert(0, str(a.work))
    import bench_celery  # type: ignore[import-not-found]

    echo = bench_celery.echo
    out: Dict[str, Any] = {}
    out["submit_per_s"] = round(rate(a.count, lambda i: echo.apply_async((i,), queue="idle")))
    start([sys.executable, "-m", "celery", "-A", "bench_celery", "worker", "-P", "solo", "-l", "warning",
           "--without-gossip", "--without-mingle", "--without-heartbeat"], a.work / "celery.log",
          {"PYTHONPATH": str(a.work)}, cwd=a.work)
    wait_until(lambda: bool(bench_celery.app.control.ping(timeout=0.5)), 60, "the Celery worker")
    out["round_trip"] = round_trips(a.rtt, lambda i: echo.delay(i).get(timeout=30))
    import gc

    gc.collect()  # Celery's results unsubscribe when collected: before redis stops
    return out


def bench_rq(a: argparse.Namespace, url: str) -> Dict[str, Any]:
    import redis
    import rq

    (a.work / "bench_rq.py").write_text(RQ_TASKS)
    sys.path.insert(0, str(a.work))
    import bench_rq  # type: ignore[import-not-found]

    conn = redis.Redis.from_url(url + "/2")
    idle = rq.Queue("idle", connection=conn)
    out: Dict[str, Any] = {}
    out["submit_per_s"] = round(rate(a.count, lambda i: idle.enqueue(bench_rq.echo, i)))
    q = rq.Queue("rtt", connection=conn)
    start([sys.executable, "-m", "rq.cli", "worker", "-u", url + "/2", "-w", "rq.worker.SimpleWorker", "rtt"],
          a.work / "rq.log", {"PYTHONPATH": str(a.work)}, cwd=a.work)
    wait_until(lambda: len(rq.Worker.all(connection=conn)) >= 1, 60, "the RQ worker")

    def one(i: int) -> Any:
        job = q.enqueue(bench_rq.echo, i)
        # RQ's client has no blocking wait: poll as its documentation does.
        deadline = time.monotonic() + 30
        while job.get_status(refresh=True) not in ("finished", "failed"):
            if time.monotonic() > deadline:
                raise RuntimeError("RQ job not finished")
            time.sleep(0.001)
        return job.return_value()

    out["round_trip"] = round_trips(a.rtt, one)
    return out


def peers(a: argparse.Namespace) -> Dict[str, Any]:
    try:
        import celery  # noqa: F401
        import redis  # noqa: F401
        import rq  # noqa: F401
    except ImportError as e:
        return {"skipped": f"{e.name} is not installed (Debian: python3-celery python3-rq python3-redis)"}
    url = start_redis(a)
    if url is None:
        return {"skipped": "redis-server is not installed"}
    out: Dict[str, Any] = {"versions": {"celery": celery.__version__, "rq": rq.__version__}}
    out["celery"] = bench_celery(a, url)
    out["rq"] = bench_rq(a, url)
    stop_all()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", type=Path, required=True)
    p.add_argument("--plugins", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--count", type=int, default=5000)
    p.add_argument("--rtt", type=int, default=500)
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    result: Dict[str, Any] = {"count": a.count, "round_trips": a.rtt, "python": sys.version.split()[0]}
    try:
        result["taskmill_sync"] = bench_taskmill(a, "sync")
        result["taskmill_none"] = bench_taskmill(a, "none")
        result["peers"] = peers(a)
    finally:
        stop_all()
    text = json.dumps(result, indent=2)
    print(text)
    if a.json:
        a.json.write_text(text + "\n")
    print(summary(result), file=sys.stderr)
    return 0


def summary(r: Dict[str, Any]) -> str:
    rows = [("system", "submit/s", "batch/s", "round trip p50 / p99 ms")]
    for name, key in (("taskmill sync, C++ handler", "taskmill_sync"), ("taskmill none, C++ handler", "taskmill_none")):
        t = r[key]
        rt = t["round_trip_cpp_handler"]
        rows.append((name, str(t["submit_per_s"]), str(t["batch_submit_per_s"]), f"{rt['p50_ms']} / {rt['p99_ms']}"))
        rt = t["round_trip_python_handler"]
        rows.append((name.replace("C++", "Python"), "", "", f"{rt['p50_ms']} / {rt['p99_ms']}"))
    peer = r["peers"]
    if "skipped" in peer:
        rows.append(("Celery, RQ", "skipped: " + peer["skipped"], "", ""))
    else:
        for name in ("celery", "rq"):
            rt = peer[name]["round_trip"]
            rows.append((f"{name} {peer['versions'][name]}", str(peer[name]["submit_per_s"]), "-",
                         f"{rt['p50_ms']} / {rt['p99_ms']}"))
    width = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, width)) for row in rows)


if __name__ == "__main__":
    sys.exit(main())
