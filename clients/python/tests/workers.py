"""The Python handlers the tests run, in a worker process of their own:

    workers.py --broker BACKEND [--processes N] [--mode asyncio]
               [--concurrency N] [--server-key F --key-file F] [--grace S]

Handlers signal where they are through marker files in the folder their
payload names (`marks`), so a test can wait for a state, never guess."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any, Dict

import taskmill
from taskmill.worker import PermanentError, RetryableError, Worker

parser = argparse.ArgumentParser()
parser.add_argument("--broker", required=True)
parser.add_argument("--processes", type=int, default=0)
parser.add_argument("--concurrency", type=int, default=2)
parser.add_argument("--mode", default="threads")
parser.add_argument("--server-key")
parser.add_argument("--key-file")
parser.add_argument("--grace", type=float, default=30.0)
args = parser.parse_args()
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")

curve = taskmill.CurveKeys.from_files(args.server_key, args.key_file) if args.server_key else None
w = Worker(args.broker.split(","), concurrency=args.concurrency, mode=args.mode, curve=curve, grace=args.grace)


def mark(payload: Dict[str, Any], name: str, text: str = "") -> None:
    if payload and payload.get("marks"):
        path = Path(payload["marks"]) / name
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)


def released(payload: Dict[str, Any], ctx: Any) -> None:
    """Waits until the test writes marks/go, or the task is cancelled."""
    go = Path(payload["marks"]) / "go"
    while not go.exists() and not ctx.wait_cancelled(0.01):
        pass


@w.handler("py.add", version="1.2.0")
def add(payload: Dict[str, Any], ctx: Any) -> Any:
    ctx.log.info("adding %s", payload)
    return {"sum": payload["a"] + payload["b"], "attempt": ctx.attempt, "pid": os.getpid()}


@w.handler("py.add", version="2.0.0")
def add2(payload: Dict[str, Any]) -> Any:
    return {"sum": payload["a"] + payload["b"], "version": 2}


@w.handler("py.progress")
def progress(payload: Dict[str, Any], ctx: Any) -> Any:
    ctx.progress(0.5, "half way")
    mark(payload, "progressed")
    released(payload, ctx)
    return "done"


@w.handler("py.steps", timeout=60)
def steps(payload: Dict[str, Any], ctx: Any) -> Any:
    """Counts to payload.steps, one checkpoint per step; waits for marks/go
    after payload.hold_at steps (where the test kills the worker)."""
    start = ctx.load_checkpoint(0)
    mark(payload, f"attempt-{ctx.attempt}", str(start))
    n = start
    while n < payload["steps"]:
        n += 1
        ctx.save_checkpoint(n)
        if n == payload.get("hold_at"):
            mark(payload, "holding", str(os.getpid()))
            released(payload, ctx)
    return {"resumed_from": start, "steps": n, "attempt": ctx.attempt}


@w.handler("py.until_cancelled")
def until_cancelled(payload: Dict[str, Any], ctx: Any) -> Any:
    mark(payload, "started")
    while not ctx.wait_cancelled(1.0):
        pass
    mark(payload, "saw-cancel", ctx.cancel_reason)
    ctx.check_cancelled()


@w.handler("py.flaky")
def flaky(payload: Dict[str, Any], ctx: Any) -> Any:
    if ctx.attempt < payload.get("succeed_on", 2):
        raise RetryableError(f"attempt {ctx.attempt} failed", delay=0.01, code=11)
    return ctx.attempt


@w.handler("py.fail")
def fail(payload: Any) -> Any:
    raise PermanentError("bad input", code=42)


@w.handler("py.big")
def big(payload: Dict[str, Any]) -> Any:
    return b"x" * payload["n"]


@w.handler("py.loud")
def loud(payload: Dict[str, Any]) -> Any:
    raise PermanentError("e" * payload["n"])


@w.handler("py.boom")
def boom(payload: Any) -> Any:
    raise ValueError("unexpected")


@w.handler("py.crash", retries=10)
def crash(payload: Any) -> Any:
    os.kill(os.getpid(), signal.SIGKILL)


@w.handler("py.spawn")
def spawn(payload: Dict[str, Any], ctx: Any) -> Any:
    return [ctx.spawn("echo.echo", {"child": i}, key=f"child-{i}") for i in range(payload["n"])]


@w.handler("py.hold")
def hold(payload: Dict[str, Any], ctx: Any) -> Any:
    """Waits for marks/go: a task that is running while the test acts."""
    mark(payload, f"running-{payload.get('name', '')}-{ctx.attempt}", str(os.getpid()))
    released(payload, ctx)
    ctx.check_cancelled()
    mark(payload, f"finished-{payload.get('name', '')}")
    return {"name": payload.get("name", ""), "attempt": ctx.attempt}


@w.handler("py.overrun")
def overrun(payload: Dict[str, Any], ctx: Any) -> Any:
    while not ctx.wait_cancelled(1.0):
        pass
    return "too late"


@w.handler("py.async_add")
async def async_add(payload: Dict[str, Any], ctx: Any) -> Any:
    await asyncio.sleep(0.01)
    await ctx.save_checkpoint_async(payload["a"])
    child = await ctx.spawn_async("echo.echo", {"from": "async"}, key="one")
    return {"sum": payload["a"] + payload["b"], "child": child, "checkpoint": ctx.load_checkpoint()}


sys.exit(w.run(processes=args.processes))
