"""The pure parts of the package, without a broker."""

from __future__ import annotations

from typing import Any, Dict, List

from taskmill import _flows as flows
from taskmill.types import TaskInfo, TaskPage
from taskmill.worker import MAX_ERROR, _by_size, _cut_error


def test_outcomes_are_cut_into_bodies_the_broker_accepts() -> None:
    big = {"id": "a", "status": "ok", "result": b"x" * (7 << 20)}
    batches = _by_size([dict(big, id=str(i)) for i in range(5)])
    assert [len(b) for b in batches] == [2, 2, 1]
    assert [o["id"] for b in batches for o in b] == ["0", "1", "2", "3", "4"]
    assert _by_size([]) == [[]]
    small: List[Dict[str, Any]] = [{"id": str(i), "status": "ok"} for i in range(1000)]
    assert len(_by_size(small)) == 1


def test_error_text_is_cut_and_says_its_size() -> None:
    assert _cut_error("short") == "short"
    cut = _cut_error("e" * (MAX_ERROR + 1))
    assert cut.startswith("e" * MAX_ERROR) and cut.endswith(f"(truncated, {MAX_ERROR + 1} bytes)")


def _page(ids: List[str], nxt: str = "") -> TaskPage:
    return TaskPage([TaskInfo.from_wire({"id": i, "state": "QUEUED"}) for i in ids], nxt)


def test_paging_stops_at_the_limit_without_asking_for_another_page() -> None:
    tasks, nxt = flows.page_after(_page(["a", "b"], "c1"), limit=3, count=0)
    assert [t.id for t in tasks] == ["a", "b"] and nxt == "c1"
    tasks, nxt = flows.page_after(_page(["c", "d"], "c2"), limit=3, count=2)
    assert [t.id for t in tasks] == ["c"] and nxt is None
    tasks, nxt = flows.page_after(_page(["e"]), limit=None, count=9)
    assert [t.id for t in tasks] == ["e"] and nxt is None


def test_a_wait_flow_asks_until_final_and_keeps_its_deadline() -> None:
    flow = flows.wait_task("t1", timeout=None)
    step = next(flow)
    assert isinstance(step, flows.Ask) and step.call.command == "STATUS"
    assert step.extra_ms == flows.LONG_POLL_MS
    step = flow.send(TaskInfo.from_wire({"id": "t1", "state": "RUNNING"}))
    assert isinstance(step, flows.Ask)
    try:
        flow.send(TaskInfo.from_wire({"id": "t1", "state": "SUCCEEDED"}))
    except StopIteration as done:
        assert done.value.state == "SUCCEEDED"
    else:
        raise AssertionError("the flow did not end on a final state")
    short = flows.wait_task("t2", timeout=0)
    assert next(short).extra_ms == 0
    try:
        short.send(TaskInfo.from_wire({"id": "t2", "state": "QUEUED"}))
    except flows.WaitTimeout:
        pass
    else:
        raise AssertionError("a passed deadline must end the wait")


def test_key_files_may_name_the_home_folder(tmp_path: Any, monkeypatch: Any) -> None:
    from taskmill import CurveKeys

    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "broker.pub").write_text("S" * 40 + "\n")
    (tmp_path / "me.key").write_text("public-key = " + "P" * 40 + "\nsecret-key = " + "Q" * 40 + "\n")
    keys = CurveKeys.from_files("~/broker.pub", "~/me.key")
    assert (keys.server_key, keys.public_key, keys.secret_key) == ("S" * 40, "P" * 40, "Q" * 40)


def test_endpoints_come_from_the_same_variables_as_the_cli_and_the_host(monkeypatch: Any) -> None:
    from taskmill import Client
    from taskmill.worker import Worker

    monkeypatch.setenv("TASKMILL_BROKER", "tcp://10.0.0.1:1,tcp://10.0.0.2:1")
    monkeypatch.setenv("TASKMILL_BROKER_BACKEND", "tcp://10.0.0.1:2")
    c = Client()
    try:
        assert c.endpoints == ["tcp://10.0.0.1:1", "tcp://10.0.0.2:1"]
    finally:
        c.close()
    assert Worker().endpoints == ["tcp://10.0.0.1:2"]
