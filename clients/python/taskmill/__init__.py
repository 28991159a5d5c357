"""taskmill: a client and a worker SDK for the taskmill task queue.

    import taskmill
    client = taskmill.Client("tcp://127.0.0.1:5555")
    task = client.submit("echo.echo", {"hello": "world"})
    print(task.get(timeout=10))

Workers: see taskmill.worker.
"""

from ._wire import CurveKeys, read_endpoints
from .aio import AsyncClient, AsyncTask
from .client import Client, Task
from .errors import (Cancelled, Conflict, Corrupt, Internal, InvalidArgument, NotFound, TaskFailed, TaskmillError,
                     TooLarge, Unavailable, UnknownHandler, Unsupported, WaitTimeout)
from .types import Attempt, Change, Event, Job, TaskInfo, TaskPage, TaskSpec

__version__ = "0.1.0"

__all__ = [
    "AsyncClient", "AsyncTask", "Attempt", "Cancelled", "Change", "Client", "Conflict", "Corrupt", "CurveKeys",
    "Event", "Internal", "InvalidArgument", "Job", "NotFound", "Task", "TaskFailed", "TaskInfo", "TaskPage",
    "TaskSpec", "TaskmillError", "TooLarge", "Unavailable", "UnknownHandler", "Unsupported", "WaitTimeout",
    "read_endpoints",
]
