"""The client's multi-request operations (waits, paging, batched submits)
written once, without I/O, for both clients.

A flow is a generator. It yields a step, either `Ask` (send a Call, get
its parsed reply back) or `Pause` (sleep, get None back), and returns its
answer. `Client` drives flows with blocking calls, `AsyncClient` with
awaits; only the driver differs, so the two cannot drift apart."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Generator, List, Optional, Sequence, Tuple, TypeVar, Union

from . import _verbs as verbs
from ._verbs import Call
from ._wire import Seconds, to_ms
from .errors import WaitTimeout
from .types import Job, TaskInfo, TaskPage, TaskSpec

# A long-poll STATUS asks for at most this long at a time, so a caller's
# own deadline is kept even when the broker holds the reply.
LONG_POLL_MS = 10_000


@dataclass
class Ask:
    call: Call
    extra_ms: int = 0  # added to the client's timeout (a long-poll's hold)


@dataclass
class Pause:
    seconds: float


Step = Union[Ask, Pause]
T = TypeVar("T")
Flow = Generator[Step, Any, T]


class Deadline:
    """When a wait of `timeout` seconds (None: no end) started now ends."""

    def __init__(self, timeout: Optional[Seconds]) -> None:
        self.at = None if timeout is None else time.monotonic() + (to_ms(timeout) or 0) / 1000

    def cap_ms(self, ms: int) -> int:
        """`ms`, or what is left if that is less."""
        if self.at is None:
            return ms
        return min(ms, max(0, int((self.at - time.monotonic()) * 1000)))

    def passed(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at


def wait_task(task_id: str, timeout: Optional[Seconds]) -> Flow[TaskInfo]:
    """Long-polls STATUS until the task is final."""
    deadline = Deadline(timeout)
    while True:
        wait_ms = deadline.cap_ms(LONG_POLL_MS)
        info: TaskInfo = yield Ask(verbs.status(task_id, wait_ms), wait_ms)
        if info.final:
            return info
        if deadline.passed():
            raise WaitTimeout(f"task {task_id} is still {info.state}")


def poll_until(call: Call, done: Callable[[Any], bool], describe: Callable[[Any], str],
               timeout: Optional[Seconds]) -> Flow[Any]:
    """Asks `call` until `done(reply)`, pausing 10 ms doubling to 0.5 s
    between asks: for JOB and WF_STATUS, which have no long-poll."""
    deadline = Deadline(timeout)
    pause = 0.01
    while True:
        reply = yield Ask(call)
        if done(reply):
            return reply
        if deadline.passed():
            raise WaitTimeout(describe(reply))
        yield Pause(pause)
        pause = min(pause * 2, 0.5)


def wait_job(job_id: int, timeout: Optional[Seconds]) -> Flow[Job]:
    return poll_until(verbs.job(job_id), lambda j: j.done, lambda j: f"job {job_id} is still {j.state}", timeout)


def wait_workflow(wf_id: str, timeout: Optional[Seconds]) -> Flow[Any]:
    return poll_until(verbs.wf_status(wf_id), lambda s: s.get("state") != "RUNNING",
                      lambda s: f"workflow {wf_id} is still RUNNING", timeout)


def submit_batches(specs: Sequence[TaskSpec], strict: bool) -> Flow[List[Tuple[str, List[str]]]]:
    """SUBMITs up to MAX_BATCH tasks a request (each request is all or
    nothing); returns (id, warnings) per task, in order."""
    out: List[Tuple[str, List[str]]] = []
    for i in range(0, len(specs), verbs.MAX_BATCH):
        ids, warnings = yield Ask(verbs.submit(specs[i:i + verbs.MAX_BATCH], strict))
        out.extend((t, warnings) for t in ids)
    return out


def page_after(page: TaskPage, limit: Optional[int], count: int) -> Tuple[List[TaskInfo], Optional[str]]:
    """Of one page of a paged listing that has yielded `count` tasks so
    far: the tasks still to yield under `limit`, and the cursor of the next
    page (None when the listing ends here)."""
    room = len(page.tasks) if limit is None else max(0, limit - count)
    tasks = page.tasks[:room]
    more = page.next and (limit is None or count + len(tasks) < limit)
    return tasks, page.next if more else None
