"""The blocking client: `Client` and the `Task` handle it returns."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Union

import zmq

from . import _flows as flows
from . import _verbs as verbs
from ._base import ClientSettings, TaskHandle
from ._flows import Flow, Pause, T
from ._verbs import Call
from ._wire import CurveKeys, Endpoints, Seconds, decode, encode, new_socket, to_ms, unpack
from .errors import TaskFailed, Unavailable, from_reply
from .types import Change, Event, Job, TaskInfo, TaskPage, TaskSpec

__all__ = ["Client", "Task"]


class Task(TaskHandle):
    """A submitted task. Cheap to keep: it is the id and its client."""

    client: "Client"

    def status(self) -> TaskInfo:
        return self.client.status(self.id)

    def wait(self, timeout: Optional[Seconds] = None) -> TaskInfo:
        """The task once final (any final state); WaitTimeout if it is not
        final within `timeout` seconds (None: wait as long as it takes)."""
        return self.client.wait(self.id, timeout)

    def get(self, timeout: Optional[Seconds] = None) -> Any:
        """The task's result (decoded), once it SUCCEEDED. Raises
        TaskFailed (carrying the task and its error) if it ended FAILED,
        CANCELLED or EXPIRED, WaitTimeout if not final within `timeout`."""
        info = self.wait(timeout)
        if not info.succeeded:
            raise TaskFailed(info)
        return info.result

    def cancel(self) -> Change:
        return self.client.cancel(self.id)

    def retry(self) -> Change:
        return self.client.retry(self.id)

    def then(self, on_success: Callable[[Any], None],
             on_failure: Optional[Callable[[BaseException], None]] = None) -> threading.Thread:
        """Calls on_success(result) or on_failure(exception) from a thread
        of its own once the task is final. Returns that thread."""

        def run() -> None:
            try:
                value = self.get()
            except BaseException as e:  # noqa: BLE001 - handed to the caller's callback
                if on_failure is not None:
                    on_failure(e)
                return
            on_success(value)

        t = threading.Thread(target=run, name=f"taskmill-then-{self.id[:8]}", daemon=True)
        t.start()
        return t


class Client(ClientSettings):
    """A blocking client of a taskmill broker's frontend.

    `endpoints`: one endpoint or a list tried in order (a broker that does
    not answer within `timeout` seconds is left for the next; requests that
    cannot be repeated safely, such as a SUBMIT without keys, are not sent
    again but fail with Unavailable). Default: $TASKMILL_BROKER (as the CLI), else
    tcp://127.0.0.1:5555. `events`: the broker's events endpoint, for
    events(). `curve`: CURVE keys. Thread-safe: each thread talks over a
    socket of its own."""

    def __init__(self, endpoints: Optional[Endpoints] = None, *, curve: Optional[CurveKeys] = None,
                 timeout: Seconds = 5.0, events: Optional[str] = None, strict: bool = False) -> None:
        super().__init__(endpoints, curve=curve, timeout=timeout, events=events, strict=strict)
        self._ctx = zmq.Context()
        self._local = threading.local()
        self._req = itertools.count(1)
        self._lock = threading.Lock()
        self._sockets: List[zmq.Socket] = []
        self._closed = False

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for s in self._sockets:
                s.close(0)
            self._sockets.clear()
        self._ctx.term()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- transport ----

    def _socket(self) -> zmq.Socket:
        sock: Optional[zmq.Socket] = getattr(self._local, "sock", None)
        if sock is not None and self._local.endpoint == self._current:
            return sock
        if sock is not None:
            self._drop_socket(sock)
        with self._lock:
            if self._closed:
                raise Unavailable("the client is closed")
            index = self._current
            sock = new_socket(self._ctx, zmq.DEALER, self.curve)
            sock.connect(self.endpoints[index])
            self._sockets.append(sock)
        self._local.sock, self._local.endpoint = sock, index
        return sock

    def _drop_socket(self, sock: zmq.Socket) -> None:
        with self._lock:
            if sock in self._sockets:
                self._sockets.remove(sock)
            sock.close(0)
        self._local.sock = None

    def _exchange(self, call: Call, timeout_ms: int) -> Dict[str, Any]:
        sock = self._socket()
        req = next(self._req)
        sock.send_multipart(encode(call.command, dict(call.body, req=req)))
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            left = int((deadline - time.monotonic()) * 1000)
            if left <= 0 or not sock.poll(left):
                raise Unavailable(f"no answer to {call.command} from {self.endpoints[self._local.endpoint]} "
                                  f"within {timeout_ms} ms")
            msg = decode(sock.recv_multipart())
            if msg is None:
                continue
            command, body = msg
            # DONE pushes and the late replies of requests given up on.
            if body.get("req") == req and command in (call.command, "ERROR"):
                return body

    def _call(self, call: Call, extra_ms: int = 0) -> Any:
        """Sends `call` and returns its parsed reply; moves on to the next
        endpoint when one does not answer."""
        last: Optional[Unavailable] = None
        tries = len(self.endpoints)
        give_up: Optional[float] = None  # for following not_leader: a timeout from the first one
        while tries > 0:
            try:
                reply = self._exchange(call, self.timeout_ms + extra_ms)
            except Unavailable as e:
                last = e
                tries -= 1
                self._next_endpoint()
                if not call.repeatable:
                    raise
                continue
            if reply.get("error_code") == "not_leader":
                give_up = give_up or time.monotonic() + self.timeout_ms / 1000
            if give_up is not None and reply.get("error_code") == "not_leader" and time.monotonic() < give_up:
                # A cluster member that does not lead did nothing: ask the
                # leader it names, or the next member while none is known.
                self._follow(reply.get("leader"))
                if not reply.get("leader"):
                    time.sleep(0.05)  # an election is under way
                continue
            if not reply.get("ok", True):
                raise from_reply(reply)
            return call.parse(reply)
        assert last is not None
        raise last

    def _run(self, flow: Flow[T]) -> T:
        """Drives a flow of _flows with blocking calls."""
        try:
            step = next(flow)
            while True:
                if isinstance(step, Pause):
                    time.sleep(step.seconds)
                    step = flow.send(None)
                else:
                    step = flow.send(self._call(step.call, step.extra_ms))
        except StopIteration as done:
            return done.value

    def _follow(self, leader: Optional[str]) -> None:
        sock = getattr(self._local, "sock", None)
        if sock is not None:
            self._drop_socket(sock)
        with self._lock:
            self._current = self._leader_index(leader)

    def _next_endpoint(self) -> None:
        sock = getattr(self._local, "sock", None)
        if sock is not None:
            self._drop_socket(sock)
        with self._lock:
            if self._local.endpoint == self._current:
                self._current = (self._current + 1) % len(self.endpoints)

    # ---- tasks ----

    def submit(self, handler: str, payload: Any = None, **options: Any) -> Task:
        """Submits one task; `options` are the fields of TaskSpec (queue,
        priority, delay, eta, retries, timeout, ttl, tags, key, keep,
        backoff_base, backoff_factor, backoff_cap, notify)."""
        return self.submit_many([TaskSpec(handler, payload, **options)])[0]

    def submit_many(self, specs: Iterable[TaskSpec]) -> List[Task]:
        """Submits many tasks, up to 1000 per request (each request is all
        or nothing)."""
        submitted = self._run(flows.submit_batches(list(specs), self.strict))
        return [Task(self, t, warnings) for t, warnings in submitted]

    def task(self, task_id: str) -> Task:
        return Task(self, task_id)

    def status(self, task_id: str) -> TaskInfo:
        return self._call(verbs.status(task_id))

    def wait(self, task_id: str, timeout: Optional[Seconds] = None) -> TaskInfo:
        """Long-polls until the task is final (see Task.wait)."""
        return self._run(flows.wait_task(task_id, timeout))

    def result(self, task_id: str, timeout: Optional[Seconds] = None) -> Any:
        return Task(self, task_id).get(timeout)

    def cancel(self, task_id: Optional[str] = None, *, tag: Optional[str] = None, all: bool = False,
               **flt: Any) -> Change:
        """Cancels one task (id), the unfinished tasks with a tag, or, with
        filters (state, queue, handler, tag, since, until) or all=True, by
        a job (Change.job) for any number of tasks."""
        return self._call(verbs.cancel(task_id, tag, verbs.filters(**flt), all))

    def retry(self, task_id: Optional[str] = None, *, all: bool = False, **flt: Any) -> Change:
        """Retries one FAILED, CANCELLED or EXPIRED task, or by filters."""
        return self._call(verbs.retry(task_id, verbs.filters(**flt), all))

    def delete(self, ids: Union[str, Sequence[str]] = (), *, all: bool = False, **flt: Any) -> Change:
        """Deletes finished tasks: an id, a list of ids, or by filters."""
        return self._call(verbs.delete([ids] if isinstance(ids, str) else list(ids), verbs.filters(**flt), all))

    def run_now(self, task_id: str) -> Change:
        return self._call(verbs.run_now(task_id))

    def tasks_page(self, *, limit: int = 100, before: Optional[str] = None, **flt: Any) -> TaskPage:
        return self._call(verbs.tasks_page(verbs.filters(**flt), limit, before))

    def tasks(self, *, limit: Optional[int] = None, page_size: int = 100, **flt: Any) -> Iterator[TaskInfo]:
        """Every task matching the filters (state, queue, handler, tag,
        since, until), newest first, page after page; at most `limit`."""
        before: Optional[str] = None
        count = 0
        while True:
            tasks, before = flows.page_after(self.tasks_page(limit=page_size, before=before, **flt), limit, count)
            count += len(tasks)
            yield from tasks
            if before is None:
                return

    # ---- broker ----

    def ping(self) -> float:
        """Round trip to the broker, in seconds."""
        start = time.monotonic()
        self._call(verbs.ping())
        return time.monotonic() - start

    def stats(self) -> Dict[str, Any]:
        return self._call(verbs.simple("STATS", "stats"))

    def workers(self) -> List[Dict[str, Any]]:
        return self._call(verbs.simple("WORKERS", "workers"))

    def queues(self) -> List[Dict[str, Any]]:
        return self._call(verbs.simple("QUEUES", "queues"))

    def pause(self, queue: str) -> Dict[str, Any]:
        return self._call(verbs.pause(queue))

    def resume(self, queue: str) -> Dict[str, Any]:
        return self._call(verbs.pause(queue, resume=True))

    def limit(self, *, queue: Optional[str] = None, handler: Optional[str] = None, rate: Optional[float] = None,
              burst: Optional[int] = None, max_running: Optional[int] = None) -> Dict[str, Any]:
        """Sets flow limits of a queue or a handler (0 removes a limit)."""
        return self._call(verbs.limit(queue, handler, rate, burst, max_running))

    def purge(self, queue: str) -> Job:
        return self._call(verbs.purge(queue))

    def job(self, job_id: int) -> Job:
        return self._call(verbs.job(job_id))

    def wait_job(self, job_id: int, timeout: Optional[Seconds] = None) -> Job:
        return self._run(flows.wait_job(job_id, timeout))

    # ---- workflows and schedules ----

    def submit_workflow(self, definition: Dict[str, Any]) -> str:
        """Submits a workflow (docs/WORKFLOWS.md); returns its id."""
        return self._call(verbs.wf_submit(definition))

    def workflow_status(self, wf_id: str) -> Dict[str, Any]:
        return self._call(verbs.wf_status(wf_id))

    def cancel_workflow(self, wf_id: str) -> Change:
        return self._call(verbs.wf_cancel(wf_id))

    def wait_workflow(self, wf_id: str, timeout: Optional[Seconds] = None) -> Dict[str, Any]:
        return self._run(flows.wait_workflow(wf_id, timeout))

    def schedules(self) -> List[Dict[str, Any]]:
        return self._call(verbs.schedules())

    # ---- events ----

    def events(self, topics: Sequence[str] = ("",), *, timeout: Optional[Seconds] = None,
               endpoint: Optional[str] = None) -> Iterator[Event]:
        """The broker's events as they come (PROTOCOL.md section 6),
        filtered by topic prefixes. Ends when no event came for `timeout`
        seconds (None: never). Events are not durable: only those published
        after the subscription reached the broker arrive."""
        ep = self._events_endpoint(endpoint)
        sock = new_socket(self._ctx, zmq.SUB, None)
        try:
            for t in topics:
                sock.setsockopt(zmq.SUBSCRIBE, t.encode())
            sock.connect(ep)
            poll_ms = None if timeout is None else to_ms(timeout)
            while sock.poll(poll_ms):
                frames = sock.recv_multipart()
                if len(frames) == 2:
                    yield Event(frames[0].decode("utf-8", "replace"), unpack(frames[1]))
        finally:
            sock.close(0)
