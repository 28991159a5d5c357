"""The asyncio client: the surface of Client, with coroutines."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any, AsyncIterator, Dict, Iterable, List, Optional, Sequence, Union

import zmq
import zmq.asyncio

from . import _flows as flows
from . import _verbs as verbs
from ._base import ClientSettings, TaskHandle
from ._flows import Flow, Pause, T
from ._verbs import Call
from ._wire import CurveKeys, Endpoints, Seconds, decode, encode, new_socket, to_ms, unpack
from .errors import TaskFailed, Unavailable, from_reply
from .types import Change, Event, Job, TaskInfo, TaskPage, TaskSpec


class AsyncTask(TaskHandle):
    """A submitted task, for AsyncClient."""

    client: "AsyncClient"

    async def status(self) -> TaskInfo:
        return await self.client.status(self.id)

    async def wait(self, timeout: Optional[Seconds] = None) -> TaskInfo:
        return await self.client.wait(self.id, timeout)

    async def get(self, timeout: Optional[Seconds] = None) -> Any:
        info = await self.wait(timeout)
        if not info.succeeded:
            raise TaskFailed(info)
        return info.result

    async def cancel(self) -> Change:
        return await self.client.cancel(self.id)

    async def retry(self) -> Change:
        return await self.client.retry(self.id)

    def then(self, on_success: Any, on_failure: Any = None) -> "asyncio.Task[None]":
        """Calls on_success(result) or on_failure(exception) (plain
        functions or coroutine functions) once the task is final."""

        async def run() -> None:
            try:
                value = await self.get()
            except Exception as e:  # noqa: BLE001 - handed to the caller's callback
                if on_failure is not None:
                    r = on_failure(e)
                    if asyncio.iscoroutine(r):
                        await r
                return
            r = on_success(value)
            if asyncio.iscoroutine(r):
                await r

        return asyncio.ensure_future(run())


class AsyncClient(ClientSettings):
    """Client for asyncio. One socket per client; a reader task matches
    replies to requests by `req`, so any number of coroutines may wait at
    once (long-polls included). Same arguments as Client."""

    def __init__(self, endpoints: Optional[Endpoints] = None, *, curve: Optional[CurveKeys] = None,
                 timeout: Seconds = 5.0, events: Optional[str] = None, strict: bool = False) -> None:
        super().__init__(endpoints, curve=curve, timeout=timeout, events=events, strict=strict)
        self._ctx = zmq.asyncio.Context()
        self._sock: Optional[zmq.asyncio.Socket] = None
        self._reader: Optional["asyncio.Task[None]"] = None
        self._pending: Dict[int, "asyncio.Future[Dict[str, Any]]"] = {}
        self._req = itertools.count(1)

    async def close(self) -> None:
        await self._drop_socket()
        self._ctx.term()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    # ---- transport ----

    def _socket(self) -> zmq.asyncio.Socket:
        if self._sock is None:
            self._sock = new_socket(self._ctx, zmq.DEALER, self.curve)
            self._sock.connect(self.endpoints[self._current])
            self._reader = asyncio.ensure_future(self._read(self._sock))
        return self._sock

    async def _drop_socket(self) -> None:
        """Forgets the socket first, then stops its reader and closes it:
        a request made meanwhile gets a new socket, never the old one."""
        sock, reader = self._sock, self._reader
        self._sock, self._reader = None, None
        if reader is not None:
            reader.cancel()
            try:
                await reader
            except asyncio.CancelledError:
                pass
        if sock is not None:
            sock.close(0)

    async def _read(self, sock: zmq.asyncio.Socket) -> None:
        while True:
            msg = decode(await sock.recv_multipart())
            if msg is None:
                continue
            _, body = msg
            fut = self._pending.pop(body.get("req", 0), None)  # DONE (req 0) and late replies are dropped
            if fut is not None and not fut.done():
                fut.set_result(body)

    async def _exchange(self, sock: zmq.asyncio.Socket, call: Call, timeout_ms: int) -> Dict[str, Any]:
        endpoint = self.endpoints[self._current]
        req = next(self._req)
        fut: "asyncio.Future[Dict[str, Any]]" = asyncio.get_running_loop().create_future()
        self._pending[req] = fut
        try:
            await sock.send_multipart(encode(call.command, dict(call.body, req=req)))
            return await asyncio.wait_for(fut, timeout_ms / 1000)
        except asyncio.TimeoutError:
            raise Unavailable(f"no answer to {call.command} from {endpoint} within {timeout_ms} ms") from None
        finally:
            self._pending.pop(req, None)

    async def _leave(self, sock: zmq.asyncio.Socket, to: Optional[int] = None) -> None:
        """Moves to endpoint `to` (default: the next one) after `sock` went
        unanswered or named a leader, once: a request that gave up on a
        socket another one already left does nothing. The requests still
        waiting on the socket left fail at once (repeatable ones are sent
        again to the new endpoint)."""
        if sock is not self._sock or (to is None and len(self.endpoints) < 2) or to == self._current:
            return
        # Every change before the first await: the requests woken below run
        # while the old socket is being closed, and must see the next one.
        left = self.endpoints[self._current]
        self._current = (self._current + 1) % len(self.endpoints) if to is None else to
        waiting, self._pending = self._pending, {}
        for fut in waiting.values():
            if not fut.done():
                fut.set_exception(Unavailable(f"{left} stopped answering"))
        await self._drop_socket()

    async def _call(self, call: Call, extra_ms: int = 0) -> Any:
        last: Optional[Unavailable] = None
        tries = len(self.endpoints)
        give_up: Optional[float] = None  # for following not_leader: a timeout from the first one
        while tries > 0:
            sock = self._socket()
            try:
                reply = await self._exchange(sock, call, self.timeout_ms + extra_ms)
            except Unavailable as e:
                last = e
                tries -= 1
                await self._leave(sock)
                if not call.repeatable:
                    raise
                continue
            if reply.get("error_code") == "not_leader":
                give_up = give_up or time.monotonic() + self.timeout_ms / 1000
            if give_up is not None and reply.get("error_code") == "not_leader" and time.monotonic() < give_up:
                # A cluster member that does not lead did nothing: ask the
                # leader it names, or the next member while none is known.
                await self._leave(sock, self._leader_index(reply.get("leader")))
                if not reply.get("leader"):
                    await asyncio.sleep(0.05)  # an election is under way
                continue
            if not reply.get("ok", True):
                raise from_reply(reply)
            return call.parse(reply)
        assert last is not None
        raise last

    async def _run(self, flow: Flow[T]) -> T:
        """Drives a flow of _flows with awaits."""
        try:
            step = next(flow)
            while True:
                if isinstance(step, Pause):
                    await asyncio.sleep(step.seconds)
                    step = flow.send(None)
                else:
                    step = flow.send(await self._call(step.call, step.extra_ms))
        except StopIteration as done:
            return done.value

    # ---- tasks ----

    async def submit(self, handler: str, payload: Any = None, **options: Any) -> AsyncTask:
        return (await self.submit_many([TaskSpec(handler, payload, **options)]))[0]

    async def submit_many(self, specs: Iterable[TaskSpec]) -> List[AsyncTask]:
        submitted = await self._run(flows.submit_batches(list(specs), self.strict))
        return [AsyncTask(self, t, warnings) for t, warnings in submitted]

    def task(self, task_id: str) -> AsyncTask:
        return AsyncTask(self, task_id)

    async def status(self, task_id: str) -> TaskInfo:
        return await self._call(verbs.status(task_id))

    async def wait(self, task_id: str, timeout: Optional[Seconds] = None) -> TaskInfo:
        return await self._run(flows.wait_task(task_id, timeout))

    async def result(self, task_id: str, timeout: Optional[Seconds] = None) -> Any:
        return await AsyncTask(self, task_id).get(timeout)

    async def cancel(self, task_id: Optional[str] = None, *, tag: Optional[str] = None, all: bool = False,
                     **flt: Any) -> Change:
        return await self._call(verbs.cancel(task_id, tag, verbs.filters(**flt), all))

    async def retry(self, task_id: Optional[str] = None, *, all: bool = False, **flt: Any) -> Change:
        return await self._call(verbs.retry(task_id, verbs.filters(**flt), all))

    async def delete(self, ids: Union[str, Sequence[str]] = (), *, all: bool = False, **flt: Any) -> Change:
        return await self._call(verbs.delete([ids] if isinstance(ids, str) else list(ids), verbs.filters(**flt),
                                              all))

    async def run_now(self, task_id: str) -> Change:
        return await self._call(verbs.run_now(task_id))

    async def tasks_page(self, *, limit: int = 100, before: Optional[str] = None, **flt: Any) -> TaskPage:
        return await self._call(verbs.tasks_page(verbs.filters(**flt), limit, before))

    async def tasks(self, *, limit: Optional[int] = None, page_size: int = 100,
                    **flt: Any) -> AsyncIterator[TaskInfo]:
        before: Optional[str] = None
        count = 0
        while True:
            page = await self.tasks_page(limit=page_size, before=before, **flt)
            tasks, before = flows.page_after(page, limit, count)
            count += len(tasks)
            for t in tasks:
                yield t
            if before is None:
                return

    # ---- broker ----

    async def ping(self) -> float:
        start = time.monotonic()
        await self._call(verbs.ping())
        return time.monotonic() - start

    async def stats(self) -> Dict[str, Any]:
        return await self._call(verbs.simple("STATS", "stats"))

    async def workers(self) -> List[Dict[str, Any]]:
        return await self._call(verbs.simple("WORKERS", "workers"))

    async def queues(self) -> List[Dict[str, Any]]:
        return await self._call(verbs.simple("QUEUES", "queues"))

    async def pause(self, queue: str) -> Dict[str, Any]:
        return await self._call(verbs.pause(queue))

    async def resume(self, queue: str) -> Dict[str, Any]:
        return await self._call(verbs.pause(queue, resume=True))

    async def limit(self, *, queue: Optional[str] = None, handler: Optional[str] = None,
                    rate: Optional[float] = None, burst: Optional[int] = None,
                    max_running: Optional[int] = None) -> Dict[str, Any]:
        return await self._call(verbs.limit(queue, handler, rate, burst, max_running))

    async def purge(self, queue: str) -> Job:
        return await self._call(verbs.purge(queue))

    async def job(self, job_id: int) -> Job:
        return await self._call(verbs.job(job_id))

    async def wait_job(self, job_id: int, timeout: Optional[Seconds] = None) -> Job:
        return await self._run(flows.wait_job(job_id, timeout))

    # ---- workflows and schedules ----

    async def submit_workflow(self, definition: Dict[str, Any]) -> str:
        return await self._call(verbs.wf_submit(definition))

    async def workflow_status(self, wf_id: str) -> Dict[str, Any]:
        return await self._call(verbs.wf_status(wf_id))

    async def cancel_workflow(self, wf_id: str) -> Change:
        return await self._call(verbs.wf_cancel(wf_id))

    async def wait_workflow(self, wf_id: str, timeout: Optional[Seconds] = None) -> Dict[str, Any]:
        return await self._run(flows.wait_workflow(wf_id, timeout))

    async def schedules(self) -> List[Dict[str, Any]]:
        return await self._call(verbs.schedules())

    # ---- events ----

    async def events(self, topics: Sequence[str] = ("",), *, timeout: Optional[Seconds] = None,
                     endpoint: Optional[str] = None) -> AsyncIterator[Event]:
        """As Client.events(), as an async iterator."""
        ep = self._events_endpoint(endpoint)
        sock = new_socket(self._ctx, zmq.SUB, None)
        try:
            for t in topics:
                sock.setsockopt(zmq.SUBSCRIBE, t.encode())
            sock.connect(ep)
            poll_ms = None if timeout is None else to_ms(timeout)
            while await sock.poll(poll_ms):
                frames = await sock.recv_multipart()
                if len(frames) == 2:
                    yield Event(frames[0].decode("utf-8", "replace"), unpack(frames[1]))
        finally:
            sock.close(0)
