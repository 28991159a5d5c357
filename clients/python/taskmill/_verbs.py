"""Each client verb as (command, request body, reply parser): the sync and
the asyncio client share these and differ only in how they wait."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from ._wire import pack, to_unix_ms, unpack
from .types import Change, Job, TaskInfo, TaskPage, TaskSpec

Time = Union[None, int, float, _dt.datetime]
MAX_BATCH = 1000  # tasks per SUBMIT, as the C++ client sends them


@dataclass
class Call:
    command: str
    body: Dict[str, Any]
    parse: Callable[[Dict[str, Any]], Any]
    # Safe to send again to the next endpoint when one does not answer.
    repeatable: bool = True


def _ids(reply: Dict[str, Any]) -> List[str]:
    return list(reply.get("ids", []))


def _change(reply: Dict[str, Any]) -> Change:
    job = reply.get("job")
    return Change(_ids(reply), reply.get("note", ""), Job.from_wire(job) if job else None)


def _job(reply: Dict[str, Any]) -> Job:
    return Job.from_wire(reply["job"])


def _queue(reply: Dict[str, Any]) -> Dict[str, Any]:
    queues = reply.get("queues", [])
    return dict(queues[0], note=reply.get("note", "")) if queues else {"note": reply.get("note", "")}


def _data(reply: Dict[str, Any]) -> Any:
    return unpack(reply["data"]) if reply.get("data") else None


def filters(state: Optional[str] = None, queue: Optional[str] = None, handler: Optional[str] = None,
            tag: Optional[str] = None, since: Time = None, until: Time = None) -> Dict[str, Any]:
    """The filter fields of TASKS and of the bulk verbs."""
    return {"state": state.upper() if state else None, "queue": queue, "handler": handler, "tag": tag,
            "since_ms": to_unix_ms(since), "until_ms": to_unix_ms(until)}


def submit(specs: Sequence[TaskSpec], strict: bool) -> Call:
    body: Dict[str, Any] = {"tasks": [s.to_wire() for s in specs]}
    if strict:
        body["strict"] = True
    keyed = all(s.key for s in specs)
    return Call("SUBMIT", body, lambda r: (_ids(r), list(r.get("warnings", []))), repeatable=keyed)


def status(task_id: str, wait_ms: int = 0) -> Call:
    return Call("STATUS", {"id": task_id, "wait_ms": wait_ms or None}, lambda r: TaskInfo.from_wire(r["task"]))


def cancel(task_id: Optional[str], tag: Optional[str], flt: Dict[str, Any], all_tasks: bool) -> Call:
    body = dict(flt, id=task_id, all=all_tasks or None)
    if tag is not None:
        body["tag"] = tag
    return Call("CANCEL", body, _change)


def retry(task_id: Optional[str], flt: Dict[str, Any], all_tasks: bool) -> Call:
    return Call("RETRY", dict(flt, id=task_id, all=all_tasks or None), _change)


def delete(ids: Sequence[str], flt: Dict[str, Any], all_tasks: bool) -> Call:
    body = dict(flt, all=all_tasks or None)
    if len(ids) == 1:
        body["id"] = ids[0]
    elif ids:
        body["ids"] = list(ids)
    return Call("DELETE", body, _change)


def tasks_page(flt: Dict[str, Any], limit: int, before: Optional[str]) -> Call:
    return Call("TASKS", dict(flt, limit=limit or None, before=before),
                lambda r: TaskPage([TaskInfo.from_wire(t) for t in r.get("tasks", [])], r.get("next", "")))


def simple(command: str, key: str) -> Call:
    return Call(command, {}, lambda r: r.get(key, {} if key == "stats" else []))


def ping() -> Call:
    return Call("PING", {}, lambda r: None)


def pause(queue: str, resume: bool = False) -> Call:
    return Call("RESUME" if resume else "PAUSE", {"queue": queue}, _queue)


def limit(queue: Optional[str], handler: Optional[str], rate: Optional[float], burst: Optional[int],
          max_running: Optional[int]) -> Call:
    body = {"queue": queue, "handler": handler, "rate": None if rate is None else float(rate), "burst": burst,
            "max_running": max_running}
    # 0 is a value here (it removes a limit) and stays on the wire; None
    # (leave as it is) is left out.

    def parse(r: Dict[str, Any]) -> Dict[str, Any]:
        if queue is not None:
            return _queue(r)
        handlers = r.get("stats", {}).get("handlers", [])
        return dict(handlers[0], note=r.get("note", "")) if handlers else {"note": r.get("note", "")}

    return Call("LIMIT", body, parse)


def purge(queue: str) -> Call:
    return Call("PURGE", {"queue": queue}, _job)


def run_now(task_id: str) -> Call:
    return Call("RUN_NOW", {"id": task_id}, _change)


def job(job_id: int) -> Call:
    return Call("JOB", {"job": job_id}, _job)


def wf_submit(definition: Dict[str, Any]) -> Call:
    return Call("WF_SUBMIT", {"data": pack(definition)}, lambda r: _ids(r)[0], repeatable=False)


def wf_status(wf_id: str) -> Call:
    return Call("WF_STATUS", {"id": wf_id}, _data)


def wf_cancel(wf_id: str) -> Call:
    return Call("WF_CANCEL", {"id": wf_id}, _change)


def schedules() -> Call:
    return Call("SCHEDULES", {}, lambda r: (_data(r) or {}).get("schedules", []))
