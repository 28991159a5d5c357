"""What Client and AsyncClient, and their task handles, hold alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence, Type, TypeVar, Union

from ._wire import DEFAULT_ENDPOINT, CurveKeys, Endpoints, Seconds, endpoint_list, read_endpoints, to_ms

C = TypeVar("C", bound="ClientSettings")


class TaskHandle:
    """A submitted task: its id and the client it came from. Cheap to keep."""

    def __init__(self, client: Any, task_id: str, warnings: Sequence[str] = ()) -> None:
        self.client = client
        self.id = task_id
        self.warnings = list(warnings)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id!r})"


class ClientSettings:
    """The arguments both clients take (see Client)."""

    def __init__(self, endpoints: Optional[Endpoints] = None, *, curve: Optional[CurveKeys] = None,
                 timeout: Seconds = 5.0, events: Optional[str] = None, strict: bool = False) -> None:
        self.endpoints = endpoint_list(endpoints, "TASKMILL_BROKER", DEFAULT_ENDPOINT)
        self.events_endpoint = events
        self.curve = curve
        self.timeout_ms = to_ms(timeout) or 5000
        self.strict = strict
        self._current = 0  # index in endpoints of the broker that answered last

    @classmethod
    def from_data_dir(cls: Type[C], data_dir: Union[str, Path], **kwargs: Any) -> C:
        """A client of the broker whose DATA_DIR/endpoints.json names its
        frontend and events sockets (a broker started with port 0)."""
        ep = read_endpoints(data_dir)
        return cls(ep["frontend"], events=ep.get("events"), **kwargs)

    def _leader_index(self, leader: Optional[str]) -> int:
        """Where a `not_leader` answer points (docs/CLUSTER.md): the leader
        it names, added to the endpoints if new, else the next endpoint."""
        if leader and leader != self.endpoints[self._current]:
            if leader not in self.endpoints:
                self.endpoints.append(leader)
            return self.endpoints.index(leader)
        return (self._current + 1) % len(self.endpoints)

    def _events_endpoint(self, endpoint: Optional[str]) -> str:
        ep = endpoint or self.events_endpoint
        if not ep:
            raise ValueError(f"no events endpoint: pass events= to {type(self).__name__} or endpoint= here")
        return ep
