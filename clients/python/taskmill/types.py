"""What the client sends and receives, as typed Python objects."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Union

from ._wire import FINAL_STATES, Seconds, pack, to_ms, to_unix_ms, unpack


@dataclass
class TaskSpec:
    """One task to submit. Durations are seconds (or timedelta); `eta` is
    a unix time in seconds or a datetime. Unset fields take the handler's
    or the broker's defaults (docs/PROTOCOL.md 4.2)."""

    handler: str
    payload: Any = None
    queue: Optional[str] = None
    priority: Optional[int] = None
    delay: Optional[Seconds] = None
    eta: Union[None, int, float, _dt.datetime] = None
    retries: Optional[int] = None
    timeout: Optional[Seconds] = None
    ttl: Optional[Seconds] = None
    tags: Sequence[str] = ()
    key: Optional[str] = None
    keep: Optional[Seconds] = None
    backoff_base: Optional[Seconds] = None
    backoff_factor: Optional[float] = None
    backoff_cap: Optional[Seconds] = None
    notify: bool = False

    def to_wire(self) -> Dict[str, Any]:
        spec: Dict[str, Any] = {"handler": self.handler}
        if self.payload is not None:
            spec["payload"] = pack(self.payload)
        optional = {
            "queue": self.queue,
            "priority": self.priority,
            "retries": self.retries,
            "timeout_ms": to_ms(self.timeout),
            "ttl_ms": to_ms(self.ttl),
            "delay_ms": to_ms(self.delay),
            "eta_ms": to_unix_ms(self.eta),
            "keep_ms": to_ms(self.keep),
            "backoff_base_ms": to_ms(self.backoff_base),
            "backoff_cap_ms": to_ms(self.backoff_cap),
            "key": self.key,
        }
        spec.update({k: v for k, v in optional.items() if v is not None})
        if self.backoff_factor is not None:
            spec["backoff_factor"] = float(self.backoff_factor)
        if self.tags:
            spec["tags"] = list(self.tags)
        if self.notify:
            spec["notify"] = True
        return spec


@dataclass
class Attempt:
    attempt: int
    worker: str = ""
    started_ms: int = 0
    finished_ms: int = 0
    outcome: str = ""
    error: str = ""
    error_code: Optional[int] = None
    version: str = ""


@dataclass
class TaskInfo:
    """A task as STATUS, TASKS or DONE show it. `result` and `payload`
    are decoded from msgpack; `result_bytes` keeps the raw result."""

    id: str
    handler: str = ""
    queue: str = ""
    priority: int = 0
    state: str = ""
    attempts: int = 0
    max_retries: int = 0
    error: str = ""
    error_code: Optional[int] = None
    progress: Optional[Dict[str, Any]] = None
    result_bytes: Optional[bytes] = None
    created_ms: int = 0
    started_ms: int = 0
    finished_ms: int = 0
    eta_ms: int = 0
    delete_at_ms: int = 0
    parent: str = ""
    tags: List[str] = field(default_factory=list)
    children: List[str] = field(default_factory=list)
    worker: str = ""
    payload_bytes: Optional[bytes] = None
    payload_size: int = 0
    history: List[Attempt] = field(default_factory=list)

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def succeeded(self) -> bool:
        return self.state == "SUCCEEDED"

    @property
    def result(self) -> Any:
        return None if self.result_bytes is None else unpack(self.result_bytes)

    @property
    def payload(self) -> Any:
        return None if self.payload_bytes is None else unpack(self.payload_bytes)

    @classmethod
    def from_wire(cls, m: Dict[str, Any]) -> "TaskInfo":
        plain = {k: m[k] for k in _TASK_FIELDS if k in m}
        return cls(
            result_bytes=m.get("result"),
            payload_bytes=m.get("payload"),
            history=[Attempt(**{k: a[k] for k in _ATTEMPT_FIELDS if k in a}) for a in m.get("history", [])],
            **plain,
        )


_TASK_FIELDS = ("id", "handler", "queue", "priority", "state", "attempts", "max_retries", "error", "error_code",
                "progress", "created_ms", "started_ms", "finished_ms", "eta_ms", "delete_at_ms", "parent", "tags",
                "children", "worker", "payload_size")
_ATTEMPT_FIELDS = ("attempt", "worker", "started_ms", "finished_ms", "outcome", "error", "error_code", "version")


@dataclass
class Change:
    """What CANCEL, RETRY, DELETE (one id) and RUN_NOW touched."""

    ids: List[str]
    note: str = ""
    job: Optional["Job"] = None


@dataclass
class Job:
    """A bulk verb carried out by the broker in slices (PROTOCOL.md 4.7)."""

    id: int
    kind: str = ""
    filter: str = ""
    state: str = ""
    matched: int = 0
    changed: int = 0
    started_ms: int = 0
    finished_ms: int = 0

    @property
    def done(self) -> bool:
        return self.state == "done"

    @property
    def skipped(self) -> int:
        return self.matched - self.changed

    @classmethod
    def from_wire(cls, m: Dict[str, Any]) -> "Job":
        return cls(**{k: m[k] for k in ("id", "kind", "filter", "state", "matched", "changed", "started_ms",
                                        "finished_ms") if k in m})


@dataclass
class TaskPage:
    tasks: List[TaskInfo]
    next: str = ""


@dataclass
class Event:
    """One event of the broker's stream: `topic` (e.g. `task.succeeded`)
    and its fields."""

    topic: str
    data: Dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)
