"""The blocking client: `Client` and the `Task` handle it returns."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Union

import zmq

from . import _verbs as verbs
from ._verbs import Call
from ._wire import (DEFAULT_ENDPOINT, CurveKeys, Endpoints, Seconds, decode, encode, endpoint_list, new_socket,
                    read_endpoints, to_ms, unpack)
from .errors import TaskFailed, Unavailable, WaitTimeout, from_reply
from .types import Change, Event, Job, TaskInfo, TaskPage, TaskSpec

# A long-poll STATUS asks for at most this long at a time, so a caller's
# own deadline is kept even when the broker holds the reply.
LONG_POLL_MS = 10_000


class Task:
    """A submitted task. Cheap to keep: it is the id and its client."""

    def __init__(self, client: "Client", task_id: str, warnings: Sequence[str] = ()) -> None:
        self.client = client
        self.id = task_id
        self.warnings = list(warnings)

    def __repr__(self) -> str:
        return f"Task({self.id!r})"

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


class Client:
    """A blocking client of a taskmill broker's frontend.

    `endpoints`: one endpoint or a list tried in order (a broker that does
    not answer within `timeout` seconds is left for the next; requests that
    cannot be repeated safely, such as a SUBMIT without keys, are not sent
    again but fail with Unavailable). Default: $TASKMILL_ENDPOINT, else
    tcp://127.0.0.1:5555. `events`: the broker's events endpoint, for
    events(). `curve`: CURVE keys. Thread-safe: each thread talks over a
    socket of its own."""

    def __init__(self, endpoints: Optional[Endpoints] = None, *, curve: Optional[CurveKeys] = None,
                 timeout: Seconds = 5.0, events: Optional[str] = None, strict: bool = False) -> None:
        self.endpoints = endpoint_list(endpoints, "TASKMILL_ENDPOINT", DEFAULT_ENDPOINT)
        self.events_endpoint = events
        self.curve = curve
        self.timeout_ms = to_ms(timeout) or 5000
        self.strict = strict
        self._ctx = zmq.Context()
        self._local = threading.local()
        self._current = 0  # index in endpoints of the broker that answered last
        self._req = itertools.count(1)
        self._lock = threading.Lock()
        self._sockets: List[zmq.Socket] = []
        self._closed = False

    @classmethod
    def from_data_dir(cls, data_dir: Union[str, Path], **kwargs: Any) -> "Client":
        """A client of the broker whose DATA_DIR/endpoints.json names its
        frontend and events sockets (a broker started with port 0)."""
        ep = read_endpoints(data_dir)
        return cls(ep["frontend"], events=ep.get("events"), **kwargs)

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
        for _ in range(len(self.endpoints)):
            try:
                reply = self._exchange(call, self.timeout_ms + extra_ms)
            except Unavailable as e:
                last = e
                self._next_endpoint()
                if not call.repeatable:
                    raise
                continue
            if not reply.get("ok", True):
                raise from_reply(reply)
            return call.parse(reply)
        assert last is not None
        raise last

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
        specs = list(specs)
        out: List[Task] = []
        for i in range(0, len(specs), verbs.MAX_BATCH):
            ids, warnings = self._call(verbs.submit(specs[i:i + verbs.MAX_BATCH], self.strict))
            out.extend(Task(self, t, warnings) for t in ids)
        return out

    def task(self, task_id: str) -> Task:
        return Task(self, task_id)

    def status(self, task_id: str) -> TaskInfo:
        return self._call(verbs.status(task_id))

    def wait(self, task_id: str, timeout: Optional[Seconds] = None) -> TaskInfo:
        """Long-polls until the task is final (see Task.wait)."""
        deadline = None if timeout is None else time.monotonic() + (to_ms(timeout) or 0) / 1000
        while True:
            wait_ms = LONG_POLL_MS
            if deadline is not None:
                wait_ms = min(wait_ms, max(0, int((deadline - time.monotonic()) * 1000)))
            info: TaskInfo = self._call(verbs.status(task_id, wait_ms), extra_ms=wait_ms)
            if info.final:
                return info
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(f"task {task_id} is still {info.state}")

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
            page = self.tasks_page(limit=page_size, before=before, **flt)
            for t in page.tasks:
                if limit is not None and count >= limit:
                    return
                count += 1
                yield t
            if not page.next:
                return
            before = page.next

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
        deadline = None if timeout is None else time.monotonic() + (to_ms(timeout) or 0) / 1000
        pause = 0.01
        while True:
            j = self.job(job_id)
            if j.done:
                return j
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(f"job {job_id} is still {j.state}")
            time.sleep(pause)  # polling interval: JOB has no long-poll
            pause = min(pause * 2, 0.5)

    # ---- workflows and schedules ----

    def submit_workflow(self, definition: Dict[str, Any]) -> str:
        """Submits a workflow (docs/WORKFLOWS.md); returns its id."""
        return self._call(verbs.wf_submit(definition))

    def workflow_status(self, wf_id: str) -> Dict[str, Any]:
        return self._call(verbs.wf_status(wf_id))

    def cancel_workflow(self, wf_id: str) -> Change:
        return self._call(verbs.wf_cancel(wf_id))

    def wait_workflow(self, wf_id: str, timeout: Optional[Seconds] = None) -> Dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + (to_ms(timeout) or 0) / 1000
        pause = 0.01
        while True:
            s = self.workflow_status(wf_id)
            if s.get("state") != "RUNNING":
                return s
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(f"workflow {wf_id} is still RUNNING")
            time.sleep(pause)  # polling interval: WF_STATUS has no long-poll
            pause = min(pause * 2, 0.5)

    def schedules(self) -> List[Dict[str, Any]]:
        return self._call(verbs.schedules())

    # ---- events ----

    def events(self, topics: Sequence[str] = ("",), *, timeout: Optional[Seconds] = None,
               endpoint: Optional[str] = None) -> Iterator[Event]:
        """The broker's events as they come (PROTOCOL.md section 6),
        filtered by topic prefixes. Ends when no event came for `timeout`
        seconds (None: never). Events are not durable: only those published
        after the subscription reached the broker arrive."""
        ep = endpoint or self.events_endpoint
        if not ep:
            raise ValueError("no events endpoint: pass events= to Client or endpoint= here")
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
