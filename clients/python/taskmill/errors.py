"""Exceptions. Every one carries `error_code`: the broker's name for the
kind of error (docs/PROTOCOL.md section 3), or one of the client's own
(`timeout`, and the final state of a task that did not succeed)."""

from __future__ import annotations

from typing import Any, Dict, Optional, Type


class TaskmillError(Exception):
    """A request the broker refused, or that it did not answer."""

    error_code = "internal"

    def __init__(self, message: str, error_code: Optional[str] = None) -> None:
        super().__init__(message)
        if error_code is not None:
            self.error_code = error_code
        self.message = message

    def __str__(self) -> str:
        return f"{self.error_code}: {self.message}"


class InvalidArgument(TaskmillError):
    error_code = "invalid_argument"


class NotFound(TaskmillError):
    error_code = "not_found"


class Conflict(TaskmillError):
    error_code = "conflict"


class TooLarge(TaskmillError):
    error_code = "too_large"


class Unavailable(TaskmillError, ConnectionError):
    """The broker refused new work for now, or no broker answered in time."""

    error_code = "unavailable"


class Unsupported(TaskmillError):
    error_code = "unsupported"


class Corrupt(TaskmillError):
    error_code = "corrupt"


class Cancelled(TaskmillError):
    error_code = "cancelled"


class Internal(TaskmillError):
    error_code = "internal"


class UnknownHandler(TaskmillError):
    error_code = "unknown_handler"


class WaitTimeout(TaskmillError, TimeoutError):
    """The task (or job, or workflow) was not final when the wait ended."""

    error_code = "timeout"


class TaskFailed(TaskmillError):
    """Task.get() of a task that ended FAILED, CANCELLED or EXPIRED.
    `error_code` is that state in lower case; `task` the final TaskInfo;
    `handler_code` the code the handler set with its error, if any."""

    def __init__(self, task: Any) -> None:
        super().__init__(f"task {task.id} {task.state}: {task.error or 'no error given'}", task.state.lower())
        self.task = task
        self.handler_code: Optional[int] = task.error_code


_BY_CODE: Dict[str, Type[TaskmillError]] = {
    c.error_code: c
    for c in (InvalidArgument, NotFound, Conflict, TooLarge, Unavailable, Unsupported, Corrupt, Cancelled,
              Internal, UnknownHandler)
}


def from_reply(reply: Dict[str, Any]) -> TaskmillError:
    """The exception for a reply with `ok: false`."""
    code = str(reply.get("error_code") or "internal")
    cls = _BY_CODE.get(code, TaskmillError)
    return cls(str(reply.get("error") or "the broker gave no reason"), code)
