"""Run Python functions as taskmill handlers (the worker protocol of
docs/PROTOCOL.md section 5).

    from taskmill.worker import Worker, RetryableError

    w = Worker("tcp://127.0.0.1:5556", concurrency=4)

    @w.handler("py.resize", version="1.2.0")
    def resize(payload, ctx):
        done = ctx.load_checkpoint(0)
        ...
        return {"width": 100}

    w.run()   # until SIGTERM / SIGINT, then drains

A handler gets the payload decoded from msgpack and a Context; what it
returns is the task's result. RetryableError (optionally with a delay)
retries the task, PermanentError fails it, TaskCancelled (raised by
ctx.check_cancelled()) ends it CANCELLED; any other exception is a
retryable failure. concurrency="threads" (default) runs handlers on a pool
of threads; mode="asyncio" runs `async def` handlers on one event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import importlib
import inspect
import logging
import os
import queue
import re
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple

import zmq

from ._wire import (MAX_BODY, CurveKeys, Endpoints, Seconds, decode, encode, endpoint_list, new_socket, pack,
                    to_ms, unpack)
from .errors import Unavailable, from_reply
from .types import TaskSpec

log = logging.getLogger("taskmill.worker")

# How many outcomes a worker keeps until the broker acknowledges them (as
# taskmill-host), to send again after a new WELCOME.
MAX_UNACKED = 4096
# An outcome bigger than this is replaced by a failure that says so: the
# broker would refuse the RESULTS carrying it.
MAX_OUTCOME = MAX_BODY - 64 * 1024
# A start alone is reported this long after it at the latest; an outcome
# within that time carries it (as taskmill-host does), so a short task
# costs the broker one RESULTS, not two.
START_REPORT_DELAY = 0.01
# An error message is cut here (as taskmill-host cuts it), so outcomes of
# failures stay small.
MAX_ERROR = 64 * 1024
# Room kept in a RESULTS body for its envelope and the started ids.
RESULTS_ROOM = 64 * 1024
_VERSION = re.compile(r"^\d+\.\d+\.\d+$")


class RetryableError(Exception):
    """Fails this attempt; the broker retries the task after `delay`
    seconds (None: the task's backoff), FAILED once retries are used up.
    `code` is the handler's own error code (task_info `error_code`)."""

    def __init__(self, message: str = "", *, delay: Optional[Seconds] = None, code: Optional[int] = None) -> None:
        super().__init__(message)
        self.delay = delay
        self.code = code


class PermanentError(Exception):
    """Fails the task for good (FAILED), whatever retries remain."""

    def __init__(self, message: str = "", *, code: Optional[int] = None) -> None:
        super().__init__(message)
        self.code = code


class TaskCancelled(Exception):
    """Raised by Context.check_cancelled(): the task ends CANCELLED."""


@dataclass
class Handler:
    name: str
    version: str
    fn: Callable[..., Any]
    queue: Optional[str] = None
    timeout: Optional[Seconds] = None
    retries: Optional[int] = None
    wants_context: bool = True

    @property
    def version_key(self) -> Tuple[int, ...]:
        return tuple(int(p) for p in self.version.split("."))

    def announce(self, plugin: str) -> Dict[str, Any]:
        h: Dict[str, Any] = {"name": self.name, "version": self.version, "plugin": plugin}
        if self.queue:
            h["default_queue"] = self.queue
        if self.timeout is not None:
            h["default_timeout_ms"] = to_ms(self.timeout)
        if self.retries is not None:
            h["default_retries"] = self.retries
        return h


class Context:
    """What a handler knows and can do about the task it runs. The
    blocking calls (save_checkpoint, spawn) wait for the broker's answer;
    an asyncio handler uses their `_async` forms."""

    def __init__(self, worker: "Worker", item: Dict[str, Any]) -> None:
        self._worker = worker
        self.task_id: str = item["id"]
        self.handler: str = item.get("handler", "")
        self.attempt: int = item.get("attempt", 1)
        self.parent: str = item.get("parent", "")
        self.timeout: Optional[float] = item["timeout_ms"] / 1000 if item.get("timeout_ms") else None
        self._checkpoint: Optional[bytes] = item.get("checkpoint")
        self._cancelled = threading.Event()
        self.cancel_reason = ""
        self.log = logging.LoggerAdapter(logging.getLogger("taskmill.task"), {"task_id": self.task_id})

    # ---- cancellation ----

    @property
    def cancelled(self) -> bool:
        """True once the broker asked to stop this attempt (a CANCEL, its
        lease ran out), its timeout passed, or the worker stops."""
        return self._cancelled.is_set()

    def check_cancelled(self) -> None:
        """Raises TaskCancelled if the task should stop."""
        if self._cancelled.is_set():
            raise TaskCancelled(self.cancel_reason or "cancelled")

    def wait_cancelled(self, timeout: Optional[float] = None) -> bool:
        """Sleeps up to `timeout` seconds, waking early on a cancel;
        returns whether the task was cancelled."""
        return self._cancelled.wait(timeout)

    def _cancel(self, reason: str) -> None:
        if not self._cancelled.is_set():
            self.cancel_reason = reason
            self._cancelled.set()

    # ---- progress and checkpoints ----

    def progress(self, fraction: float, note: str = "") -> None:
        """Reports progress (0..1) shown in STATUS; renews the lease."""
        fraction = min(1.0, max(0.0, float(fraction)))
        self._worker._post(("send", "PROGRESS", {"id": self.task_id, "fraction": fraction, "note": note}))

    def load_checkpoint(self, default: Any = None) -> Any:
        """The last checkpoint saved for this task (by this attempt or an
        earlier one), decoded; `default` if none."""
        return default if self._checkpoint is None else unpack(self._checkpoint)

    def save_checkpoint(self, value: Any, timeout: Seconds = 10.0) -> None:
        """Stores `value` (msgpack) with the task, so a later attempt (after
        a crash or a retry) can resume from it. Returns once the broker
        committed it; raises TaskmillError if it refused."""
        data = pack(value)
        self._worker._request("CHECKPOINT", {"id": self.task_id, "data": data}).result(timeout=_secs(timeout))
        self._checkpoint = data

    async def save_checkpoint_async(self, value: Any) -> None:
        data = pack(value)
        await asyncio.wrap_future(self._worker._request("CHECKPOINT", {"id": self.task_id, "data": data}))
        self._checkpoint = data

    # ---- subtasks ----

    def spawn(self, handler: str, payload: Any = None, **options: Any) -> str:
        """Submits a subtask of this task; returns its id. With `key`, it
        is made once per parent, also across retries and crashes."""
        return self.spawn_many([TaskSpec(handler, payload, **options)])[0]

    def spawn_many(self, specs: Sequence[TaskSpec], timeout: Seconds = 10.0) -> List[str]:
        body = {"id": self.task_id, "tasks": [s.to_wire() for s in specs]}
        return self._worker._request("SPAWN", body).result(timeout=_secs(timeout))

    async def spawn_async(self, handler: str, payload: Any = None, **options: Any) -> str:
        body = {"id": self.task_id, "tasks": [TaskSpec(handler, payload, **options).to_wire()]}
        return (await asyncio.wrap_future(self._worker._request("SPAWN", body)))[0]


@dataclass
class _Run:
    item: Dict[str, Any]
    ctx: Context
    handler: Optional[Handler]
    deadline: Optional[float] = None  # monotonic; set when a slot starts it
    timed_out: bool = False
    finished: bool = False

    def payload(self) -> Any:
        data = self.item.get("payload")
        return None if not data else unpack(data)


@dataclass
class _Pending:
    seq: int
    items: List[Dict[str, Any]] = field(default_factory=list)


def _secs(value: Seconds) -> float:
    return (to_ms(value) or 0) / 1000


class Worker:
    """A taskmill worker in this process.

    `endpoints`: the broker's backend (one, or a list tried in turn when
    one does not answer; default $TASKMILL_BROKER_BACKEND, else
    tcp://127.0.0.1:5556). `concurrency`: tasks run at once. `mode`:
    "threads" or "asyncio". `queues`: queues served (empty: all).
    `grace`: seconds a drain waits for running tasks before it asks them
    to stop (cancellation) and hands the rest back. `curve`: CURVE keys."""

    def __init__(self, endpoints: Optional[Endpoints] = None, *, concurrency: int = 4, mode: str = "threads",
                 queues: Sequence[str] = (), prefetch: int = 0, curve: Optional[CurveKeys] = None,
                 grace: Seconds = 30.0, name: str = "python") -> None:
        if mode not in ("threads", "asyncio"):
            raise ValueError("mode must be 'threads' or 'asyncio'")
        if concurrency < 1 or prefetch < 0 or concurrency + prefetch > 100000:
            raise ValueError("concurrency must be 1..100000 and prefetch >= 0")
        self.endpoints = endpoint_list(endpoints, "TASKMILL_BROKER_BACKEND", "tcp://127.0.0.1:5556")
        self.concurrency = concurrency
        self.mode = mode
        self.queues = list(queues)
        self.prefetch = prefetch
        self.curve = curve
        self.grace = _secs(grace)
        self.plugin = name
        self.supervisor_id = ""  # set in a process forked by run(processes=N)
        self.running_file: Optional[Path] = None
        self._handlers: Dict[str, List[Handler]] = {}
        self._outbox: Deque[Tuple[Any, ...]] = collections.deque()
        self._stop = threading.Event()
        self._wake_fd = -1  # the write end of the I/O loop's wake-up pipe, while it runs

    # ---- handlers ----

    def handler(self, name: str, version: str = "1.0.0", *, queue: Optional[str] = None,
                timeout: Optional[Seconds] = None, retries: Optional[int] = None) -> Callable[[Callable[..., Any]],
                                                                                           Callable[..., Any]]:
        """Registers `fn(payload, ctx)` (or `fn(payload)`) as handler
        `name` ("ns.name") at `version` ("X.Y.Z"); queue, timeout and
        retries are its defaults for tasks that do not set them."""
        if not re.match(r"^[A-Za-z0-9_-]{1,64}\.[A-Za-z0-9_-]{1,64}$", name):
            raise ValueError(f"handler name {name!r} must be ns.name (1-64 of A-Za-z0-9_- each)")
        if not _VERSION.match(version):
            raise ValueError(f"handler version {version!r} must be X.Y.Z")

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            params = [p for p in inspect.signature(fn).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            h = Handler(name, version, fn, queue, timeout, retries, wants_context=len(params) >= 2)
            self._handlers.setdefault(name, []).append(h)
            self._handlers[name].sort(key=lambda x: x.version_key, reverse=True)
            return fn

        return register

    def resolve(self, handler: str) -> Optional[Handler]:
        """The newest registered version matching `ns.name[@X[.Y[.Z]]]`."""
        name, _, pin = handler.partition("@")
        want = tuple(int(p) for p in pin.split(".")) if pin else ()
        for h in self._handlers.get(name, []):
            if h.version_key[:len(want)] == want:
                return h
        return None

    # ---- running ----

    def stop(self) -> None:
        """Asks the worker to drain and leave (what SIGTERM does)."""
        self._stop.set()
        self._wake()

    def run(self, processes: int = 0) -> int:
        """Serves tasks until stop() or SIGTERM/SIGINT, then drains.
        With processes >= 1, forks that many worker processes and
        supervises them: when one dies, it reports the death to the broker
        (DEAD, so the task it ran is requeued at once and a task that kills
        its worker repeatedly is failed as poison) and starts another.
        Returns an exit code (0: drained)."""
        if not self._handlers:
            raise ValueError("no handlers registered")
        if processes >= 1:
            from ._supervisor import supervise
            return supervise(self, processes)
        return _Loop(self).run()

    # ---- called from handler threads ----

    def _post(self, item: Tuple[Any, ...]) -> None:
        self._outbox.append(item)
        self._wake()

    def _request(self, command: str, body: Dict[str, Any]) -> "concurrent.futures.Future[Any]":
        fut: "concurrent.futures.Future[Any]" = concurrent.futures.Future()
        self._post(("call", command, body, fut))
        return fut

    def _wake(self) -> None:
        # A pipe, not a socket: any thread may write to it, and nothing is
        # left to close when a handler thread ends.
        fd = self._wake_fd
        if fd < 0:
            return
        try:
            os.write(fd, b"\0")
        except (BlockingIOError, OSError):
            pass  # the pipe is full: a wake-up is already waiting (or the loop has ended)


class _Loop:
    """The I/O thread: owns the DEALER socket; handler threads talk to it
    through the worker's outbox and a wake-up pipe."""

    def __init__(self, w: Worker) -> None:
        self.w = w
        self.id = f"{socket.gethostname()}:{os.getpid()}"
        self.ctx = zmq.Context()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        w._wake_fd = self.wake_w
        self.poller = zmq.Poller()
        self.poller.register(self.wake_r, zmq.POLLIN)
        self.endpoint_index = 0
        self.sock: Optional[zmq.Socket] = None
        self.held: Dict[str, _Run] = {}
        self.started: List[str] = []
        self.started_at = 0.0  # when the oldest unreported start came
        self.outcomes: List[Dict[str, Any]] = []
        self.unacked: Deque[_Pending] = collections.deque()
        self.seq = 0
        self.resent: Dict[str, int] = {}
        self.resent_seq = 0
        self.calls: Dict[int, "concurrent.futures.Future[Any]"] = {}
        self.next_req = 1
        self.heartbeat = 1.0
        self.liveness = 5.0
        self.next_heartbeat = 0.0
        self.last_heard = time.monotonic()
        self.hello_sent = 0.0
        self.welcomed = False
        self.draining = False
        self.drain_acked = False
        self.drain_ack_deadline = 0.0
        self.grace_end: Optional[float] = None
        self.handback_at = float("inf")
        self.exit_code: Optional[int] = None
        self.runner = _Runner(w, self)

    # ---- socket ----

    def connect(self) -> None:
        if self.sock is not None:
            self.poller.unregister(self.sock)
            self.sock.close(0)
        self.sock = new_socket(self.ctx, zmq.DEALER, self.w.curve)
        self.sock.setsockopt(zmq.ROUTING_ID, self.id.encode())
        self.sock.setsockopt(zmq.SNDHWM, 100000)
        self.sock.connect(self.w.endpoints[self.endpoint_index])
        self.poller.register(self.sock, zmq.POLLIN)
        self.last_heard = time.monotonic()
        self.send_hello()

    def send(self, command: str, body: Dict[str, Any]) -> None:
        assert self.sock is not None
        try:
            self.sock.send_multipart(encode(command, body), zmq.NOBLOCK)
        except zmq.Again:
            log.warning("send %s failed (queue full?)", command)

    def send_hello(self) -> None:
        slots = 0 if self.draining else self.w.concurrency + self.w.prefetch
        handlers = [h.announce(self.w.plugin) for hs in self.w._handlers.values() for h in hs]
        self.send("HELLO", {"worker": self.id, "host": socket.gethostname(), "pid": os.getpid(), "slots": slots,
                            "prefetch": 0 if self.draining else self.w.prefetch, "generation": 1,
                            "queues": self.w.queues, "handlers": handlers, "supervisor": self.w.supervisor_id})
        self.hello_sent = time.monotonic()
        self.next_heartbeat = self.hello_sent + self.heartbeat

    def send_heartbeat(self) -> None:
        body: Dict[str, Any] = {"ids": list(self.held)}
        rss = _rss_bytes()
        if rss:
            body["rss_bytes"] = rss
        self.send("HEARTBEAT", body)
        self.next_heartbeat = time.monotonic() + self.heartbeat

    # ---- results ----

    def send_results(self, items: List[Dict[str, Any]], started: Sequence[str] = ()) -> None:
        self.seq += 1
        self.send("RESULTS", {"items": items, "started": list(started), "seq": self.seq})
        if items:
            self.unacked.append(_Pending(self.seq, items))
            while sum(len(p.items) for p in self.unacked) > MAX_UNACKED and len(self.unacked) > 1:
                self.acknowledged(self.unacked[0].seq)

    def acknowledged(self, seq: int) -> None:
        while self.unacked and self.unacked[0].seq <= seq:
            self.unacked.popleft()
        if seq >= self.resent_seq:
            self.resent.clear()

    def resend_unacknowledged(self) -> None:
        batches, self.unacked = list(self.unacked), collections.deque()
        if not batches:
            return
        self.resent = {o["id"]: o["attempt"] for b in batches for o in b.items}
        log.info("resending %d outcome(s) the broker has not acknowledged", len(self.resent))
        for b in batches:
            self.send_results(b.items)
        self.resent_seq = self.seq

    def flush(self) -> None:
        """Sends what handler threads posted: one RESULTS per turn."""
        while self.w._outbox:
            item = self.w._outbox.popleft()
            kind = item[0]
            if kind == "started":
                run = self.held.get(item[1])
                if run is not None and not run.finished:
                    if not self.started:
                        self.started_at = time.monotonic()
                    self.started.append(item[1])
            elif kind == "outcome":
                self.finish(item[1])
            elif kind == "send":
                self.send(item[1], item[2])
            elif kind == "call":
                req = self.next_req
                self.next_req += 1
                self.calls[req] = item[3]
                self.send(item[1], dict(item[2], req=req))
        starts_due = self.started and time.monotonic() - self.started_at >= START_REPORT_DELAY
        if self.outcomes or starts_due:
            done = {o["id"] for o in self.outcomes}
            started = [i for i in self.started if i not in done]
            items, self.outcomes, self.started = self.outcomes, [], []
            batches = _by_size(items)
            self.send_results(batches[0], started)
            for batch in batches[1:]:
                self.send_results(batch)

    def finish(self, outcome: Dict[str, Any]) -> None:
        run = self.held.pop(outcome["id"], None)
        if run is not None:
            run.finished = True
        self.outcomes.append(outcome)

    # ---- messages from the broker ----

    def on_message(self, command: str, body: Dict[str, Any]) -> None:
        self.last_heard = time.monotonic()
        on = getattr(self, "on_" + command.lower(), None)
        if on is None:
            log.warning("unexpected command %s from broker ignored", command)
            return
        on(body)

    def on_welcome(self, body: Dict[str, Any]) -> None:
        self.heartbeat = (body.get("heartbeat_ms") or 1000) / 1000
        self.liveness = (body.get("liveness_ms") or 5000) / 1000
        if not self.welcomed:
            log.info("welcomed by broker %s heartbeat_ms=%d", self.w.endpoints[self.endpoint_index],
                     int(self.heartbeat * 1000))
        self.welcomed = True
        self.hello_sent = 0.0
        self.resend_unacknowledged()

    def on_unknown(self, body: Dict[str, Any]) -> None:
        if self.hello_sent and time.monotonic() - self.hello_sent < max(2 * self.heartbeat, 1.0):
            return  # our HELLO is on its way
        log.warning("broker does not know this worker; sending HELLO again")
        self.send_hello()

    def on_heartbeat(self, body: Dict[str, Any]) -> None:
        self.acknowledged(body.get("req", 0))

    def on_dispatch(self, body: Dict[str, Any]) -> None:
        for item in body.get("tasks", []):
            task_id = item.get("id", "")
            if task_id in self.held:
                log.warning("task=%s dispatched twice; ignoring the second copy", task_id)
                continue
            if self.resent.get(task_id) == item.get("attempt", 1):
                log.info("task=%s attempt=%s already finished here; not run again", task_id, item.get("attempt"))
                continue
            run = _Run(item, Context(self.w, item), self.w.resolve(item.get("handler", "")))
            self.held[task_id] = run
            self.runner.submit(run)

    def on_cancel(self, body: Dict[str, Any]) -> None:
        attempt = body.get("attempt", 0)
        for task_id in body.get("ids", []):
            run = self.held.get(task_id)
            if run is not None and attempt in (0, run.item.get("attempt", 1)):
                log.info("task=%s cancel requested", task_id)
                run.ctx._cancel("cancelled")

    def on_credit(self, body: Dict[str, Any]) -> None:
        if self.draining and body.get("slots", 0) == 0:
            self.drain_acked = True

    def on_error(self, body: Dict[str, Any]) -> None:
        log.error("broker refused a message from this worker: %s", body.get("error", ""))

    def on_checkpoint(self, body: Dict[str, Any]) -> None:
        self.answer(body, lambda b: None)

    def on_spawn(self, body: Dict[str, Any]) -> None:
        self.answer(body, lambda b: list(b.get("ids", [])))

    def answer(self, body: Dict[str, Any], value: Callable[[Dict[str, Any]], Any]) -> None:
        fut = self.calls.pop(body.get("req", 0), None)
        if fut is None or fut.done():
            return
        if body.get("ok", True):
            fut.set_result(value(body))
        else:
            fut.set_exception(from_reply(body))

    # ---- timers ----

    def check_timers(self) -> None:
        now = time.monotonic()
        if now >= self.next_heartbeat:
            self.send_heartbeat()
        if now - self.last_heard > self.liveness:
            self.reconnect()
        for run in self.held.values():
            if run.deadline is not None and now >= run.deadline and not run.timed_out:
                run.timed_out = True
                run.ctx._cancel("timeout")
        self.check_drain(now)

    def reconnect(self) -> None:
        """Nothing heard for liveness: the broker may be gone; try the next
        endpoint (or the same again) and say HELLO."""
        self.endpoint_index = (self.endpoint_index + 1) % len(self.w.endpoints)
        log.warning("no word from the broker for %.1f s; connecting to %s", self.liveness,
                    self.w.endpoints[self.endpoint_index])
        self.welcomed = False
        for fut in self.calls.values():
            fut.set_exception(Unavailable("the broker connection was lost"))
        self.calls.clear()
        self.connect()

    def start_drain(self, why: str) -> None:
        if self.draining:
            return
        log.info("draining: %s running=%d", why, len(self.held))
        self.draining = True
        now = time.monotonic()
        self.drain_ack_deadline = now + max(2 * self.heartbeat, 1.0)
        self.grace_end = now + self.w.grace
        self.send("CREDIT", {"slots": 0})

    def check_drain(self, now: float) -> None:
        if not self.draining or self.exit_code is not None:
            return
        acked = self.drain_acked or now >= self.drain_ack_deadline
        if acked and not self.held:
            self.leave(0, "drained")
        elif self.grace_end is not None and now >= self.grace_end:
            for run in self.held.values():
                run.ctx._cancel("worker stopping")
            self.grace_end = None
            self.handback_at = now + 5.0
        elif self.grace_end is None and now >= self.handback_at:
            self.leave(3, f"{len(self.held)} task(s) still running after the grace; handed back")

    def leave(self, code: int, why: str) -> None:
        self.send("BYE", {})
        log.info("worker exiting id=%s: %s", self.id, why)
        self.exit_code = code

    # ---- the loop ----

    def next_timeout_ms(self) -> int:
        until = self.next_heartbeat - time.monotonic()
        if self.held or self.draining:
            until = min(until, 0.05)  # deadlines and the drain are checked this often
        if self.started:
            until = min(until, self.started_at + START_REPORT_DELAY - time.monotonic())
        return max(0, int(until * 1000))

    def run(self) -> int:
        restore = self.install_signals()
        self.runner.start()
        self.connect()
        try:
            while self.exit_code is None:
                events = dict(self.poller.poll(self.next_timeout_ms()))
                if self.wake_r in events:
                    self.drain_wake()
                if self.w._stop.is_set():
                    self.start_drain("asked to stop")
                if self.sock in events:
                    self.read_broker()
                self.flush()
                self.check_timers()
            self.flush()
        finally:
            self.runner.stop()
            restore()
            self.close()
        return self.exit_code or 0

    def drain_wake(self) -> None:
        try:
            while os.read(self.wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def read_broker(self) -> None:
        assert self.sock is not None
        sock = self.sock
        while sock.poll(0):
            msg = decode(sock.recv_multipart())
            if msg is None:
                log.error("malformed message from broker dropped")
                continue
            self.on_message(*msg)
            if self.sock is not sock:
                return

    def close(self) -> None:
        self.w._wake_fd = -1
        if self.sock is not None:
            self.sock.setsockopt(zmq.LINGER, 2000)  # let the BYE and last RESULTS go out
            self.sock.close()
        os.close(self.wake_r)
        os.close(self.wake_w)
        self.ctx.term()

    def install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
        for s in old:
            signal.signal(s, lambda signum, frame: self.w.stop())

        def restore() -> None:
            for s, h in old.items():
                signal.signal(s, h)

        return restore


class _Runner:
    """Runs handlers: a pool of threads, or coroutines on one event loop."""

    def __init__(self, w: Worker, loop: _Loop) -> None:
        self.w = w
        self.io = loop
        self.queue: "queue.Queue[Optional[_Run]]" = queue.Queue()
        self.threads: List[threading.Thread] = []
        self.aloop: Optional[asyncio.AbstractEventLoop] = None
        self.aqueue: Optional["asyncio.Queue[Optional[_Run]]"] = None
        self.running: Dict[str, None] = {}  # ids a slot runs now, in start order
        self.running_lock = threading.Lock()

    def start(self) -> None:
        if self.w.mode == "threads":
            for i in range(self.w.concurrency):
                t = threading.Thread(target=self.thread_main, name=f"taskmill-slot-{i}", daemon=True)
                t.start()
                self.threads.append(t)
        else:
            ready = threading.Event()
            t = threading.Thread(target=self.asyncio_main, args=(ready,), name="taskmill-asyncio", daemon=True)
            t.start()
            self.threads.append(t)
            ready.wait()

    def submit(self, run: _Run) -> None:
        if self.aloop is not None and self.aqueue is not None:
            self.aloop.call_soon_threadsafe(self.aqueue.put_nowait, run)
        else:
            self.queue.put(run)

    def stop(self) -> None:
        for run in list(self.io.held.values()):
            run.ctx._cancel("worker stopping")
        if self.aloop is not None and self.aqueue is not None:
            for _ in range(self.w.concurrency):
                self.aloop.call_soon_threadsafe(self.aqueue.put_nowait, None)
        else:
            for _ in self.threads:
                self.queue.put(None)
        for t in self.threads:
            t.join(timeout=1.0)  # a handler that ignores cancellation is left behind (daemon thread)

    # ---- threads ----

    def thread_main(self) -> None:
        while True:
            run = self.queue.get()
            if run is None:
                return
            self.begin(run)
            self.w._post(("outcome", self.outcome(run, *self.call(run))))

    def call(self, run: _Run) -> Tuple[str, Any]:
        try:
            assert run.handler is not None
            args = (run.payload(), run.ctx) if run.handler.wants_context else (run.payload(),)
            value = run.handler.fn(*args)
            if inspect.isawaitable(value):
                value = asyncio.run(_await(value))
            return "ok", value
        except BaseException as e:  # noqa: BLE001 - every failure becomes the task's outcome
            return "error", e

    # ---- asyncio ----

    def asyncio_main(self, ready: threading.Event) -> None:
        self.aloop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.aloop)
        self.aqueue = asyncio.Queue()
        ready.set()
        self.aloop.run_until_complete(asyncio.gather(*(self.slot() for _ in range(self.w.concurrency))))
        self.aloop.close()

    async def slot(self) -> None:
        assert self.aqueue is not None
        while True:
            run = await self.aqueue.get()
            if run is None:
                return
            self.begin(run)
            self.w._post(("outcome", self.outcome(run, *(await self.acall(run)))))

    async def acall(self, run: _Run) -> Tuple[str, Any]:
        try:
            assert run.handler is not None
            args = (run.payload(), run.ctx) if run.handler.wants_context else (run.payload(),)
            if inspect.iscoroutinefunction(run.handler.fn):
                return "ok", await run.handler.fn(*args)
            loop = asyncio.get_running_loop()
            return "ok", await loop.run_in_executor(None, lambda: run.handler.fn(*args))  # type: ignore[union-attr]
        except BaseException as e:  # noqa: BLE001 - every failure becomes the task's outcome
            return "error", e

    # ---- both ----

    def begin(self, run: _Run) -> None:
        timeout = run.item.get("timeout_ms", 0)
        run.deadline = time.monotonic() + timeout / 1000 if timeout else float("inf")
        self.note_running(run.item["id"], True)
        self.w._post(("started", run.item["id"]))

    def note_running(self, task_id: str, running: bool) -> None:
        """Keeps the running file (run(processes=N)) true before a handler
        starts: should the handler kill the process, the supervisor's DEAD
        names the task it was running."""
        path = self.w.running_file
        if path is None:
            return
        with self.running_lock:
            if running:
                self.running[task_id] = None
            else:
                self.running.pop(task_id, None)
            tmp = path.with_suffix(".tmp")
            tmp.write_text("".join(f"{i}\n" for i in self.running))
            tmp.replace(path)

    def outcome(self, run: _Run, how: str, value: Any) -> Dict[str, Any]:
        self.note_running(run.item["id"], False)
        o: Dict[str, Any] = {"id": run.item["id"], "attempt": run.item.get("attempt", 1),
                             "version": run.handler.version if run.handler else ""}
        if run.handler is None:
            o.update(status="fail", error=f"no handler {run.item.get('handler')} in this worker")
        elif run.timed_out:
            o.update(status="timeout", error=f"timeout: ran past {run.item.get('timeout_ms')} ms")
        elif how == "ok":
            if value is not None:
                data = pack(value)
                if len(data) > MAX_OUTCOME:
                    o.update(status="fail", error=f"outcome too large ({len(data)} bytes, limit {MAX_OUTCOME})")
                    return o
                o["result"] = data
            o["status"] = "ok"
        else:
            o.update(_failure(value))
        return o


def _by_size(items: List[Dict[str, Any]]) -> List[List[Dict[str, Any]]]:
    """`items` cut into RESULTS bodies the broker accepts (it drops a body
    over its limit, and the tasks would stay RUNNING until their lease
    ends); one empty batch for none."""
    batches: List[List[Dict[str, Any]]] = [[]]
    size = 0
    for o in items:
        n = len(o.get("result", b"")) + len(o.get("error", "")) + 256
        if batches[-1] and size + n > MAX_BODY - RESULTS_ROOM:
            batches.append([])
            size = 0
        batches[-1].append(o)
        size += n
    return batches


def _cut_error(text: str) -> str:
    if len(text) <= MAX_ERROR:
        return text
    return text[:MAX_ERROR] + f"...(truncated, {len(text)} bytes)"


def _rss_bytes() -> int:
    """This process's resident memory (0 where /proc is not there)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def _failure(e: BaseException) -> Dict[str, Any]:
    if isinstance(e, TaskCancelled):
        return {"status": "cancelled", "error": _cut_error(str(e) or "cancelled")}
    if isinstance(e, PermanentError):
        out: Dict[str, Any] = {"status": "fail", "error": str(e) or "failed"}
    elif isinstance(e, RetryableError):
        out = {"status": "retry", "error": str(e) or "retry"}
        if e.delay is not None:
            out["retry_after_ms"] = to_ms(e.delay)
    else:
        out = {"status": "retry", "error": f"{type(e).__name__}: {e}"}
    code = getattr(e, "code", None)
    if isinstance(code, int):
        out["error_code"] = code
    out["error"] = _cut_error(out["error"])
    return out


async def _await(value: Any) -> Any:
    return await value


def main(argv: Optional[Sequence[str]] = None) -> int:
    """python3 -m taskmill.worker MODULE:WORKER [--broker EP] ..."""
    p = argparse.ArgumentParser(prog="python3 -m taskmill.worker",
                                description="Runs the taskmill.worker.Worker named MODULE:ATTRIBUTE.")
    p.add_argument("worker", help="module:attribute of a Worker, e.g. myapp.tasks:worker")
    p.add_argument("--broker", help="backend endpoint(s), comma separated (default: the Worker's)")
    p.add_argument("--processes", type=int, default=0,
                   help="fork this many worker processes and supervise them (default 0: run here)")
    p.add_argument("--concurrency", type=int, help="tasks run at once per process")
    p.add_argument("--log-level", default="info")
    a = p.parse_args(argv)
    logging.basicConfig(level=a.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    module, _, attr = a.worker.partition(":")
    sys.path.insert(0, os.getcwd())
    w = getattr(importlib.import_module(module), attr or "worker")
    # Run as `-m`, this module is __main__: the class to check is the
    # package's, the one the user's module imported.
    from taskmill.worker import Worker as PackageWorker

    if not isinstance(w, PackageWorker):
        p.error(f"{a.worker} is not a taskmill.worker.Worker")
    if a.broker:
        w.endpoints = endpoint_list(a.broker, "", "")
    if a.concurrency:
        w.concurrency = a.concurrency
    return w.run(processes=a.processes)


if __name__ == "__main__":
    sys.exit(main())
