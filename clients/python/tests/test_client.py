"""Every Client call against a real broker, with C++ plugins (echo, demo)
run by a real taskmill-host."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import taskmill
from conftest import Cluster, wait_for_handler, wait_until


@pytest.fixture(scope="module")
def served(module_cluster: Cluster):
    """One broker and one host for the module: the tests use queues, tags
    and keys of their own."""
    broker = module_cluster.broker()
    module_cluster.host(broker.backend, concurrency=4)
    client = module_cluster.client(broker)
    wait_for_handler(client, "echo.echo")
    return broker, client


def test_submit_runs_a_cpp_plugin_task_and_get_returns_its_result(served) -> None:
    _, c = served
    task = c.submit("echo.echo", {"hello": "world", "n": [1, 2, 3]})
    assert len(task.id) == 32 and task.warnings == []
    assert task.get(timeout=20) == {"hello": "world", "n": [1, 2, 3]}
    info = task.status()
    assert info.state == "SUCCEEDED" and info.succeeded and info.final
    assert info.payload == {"hello": "world", "n": [1, 2, 3]}
    assert info.history and info.history[0].outcome == "ok"
    assert c.result(task.id, timeout=5) == info.result
    assert c.wait(task.id).state == "SUCCEEDED"


def test_submit_options_reach_the_broker(served) -> None:
    _, c = served
    t = c.submit("echo.echo", 1, queue="other", priority=7, retries=5, timeout=30, ttl=3600, tags=["a", "b"],
                 keep=60, delay=3600, backoff_base=0.5, backoff_factor=3, backoff_cap=10)
    info = t.status()
    assert (info.queue, info.priority, info.max_retries, info.tags, info.state) == ("other", 7, 5, ["a", "b"],
                                                                                   "PENDING")
    assert info.eta_ms - info.created_ms >= 3_599_000
    assert c.run_now(t.id).ids == [t.id]
    # `other` is not served by the host (it serves every queue): it runs.
    assert t.get(timeout=20) == 1
    assert t.status().delete_at_ms > 0


def test_a_key_makes_one_task(served) -> None:
    _, c = served
    first = c.submit("echo.echo", "x", key="order-17")
    second = c.submit("echo.echo", "y", key="order-17")
    assert first.id == second.id


def test_submit_many_sends_batches_all_or_nothing(served) -> None:
    _, c = served
    tasks = c.submit_many(taskmill.TaskSpec("echo.echo", i, queue="batch") for i in range(2100))
    assert len({t.id for t in tasks}) == 2100
    assert tasks[-1].get(timeout=30) == 2099
    with pytest.raises(taskmill.InvalidArgument) as e:
        c.submit_many([taskmill.TaskSpec("echo.echo", 1), taskmill.TaskSpec("echo.echo", 2, priority=12)])
    assert e.value.error_code == "invalid_argument" and "priority" in str(e.value)


def test_errors_carry_the_broker_error_code(served) -> None:
    _, c = served
    with pytest.raises(taskmill.InvalidArgument) as e:
        c.status("not-an-id")
    assert e.value.error_code == "invalid_argument"
    with pytest.raises(taskmill.NotFound) as nf:
        c.status("0" * 32)
    assert nf.value.error_code == "not_found"
    done = c.submit("echo.echo", 1)
    done.get(timeout=20)
    with pytest.raises(taskmill.Conflict):
        c.retry(done.id)
    with pytest.raises(taskmill.UnknownHandler):
        taskmill.Client(c.endpoints, strict=True).submit("nobody.serves")


def test_a_failed_task_raises_task_failed_with_its_error(served) -> None:
    _, c = served
    t = c.submit("demo.fail", {"error": "kaput"}, retries=0)
    with pytest.raises(taskmill.TaskFailed) as e:
        t.get(timeout=20)
    assert e.value.error_code == "failed" and e.value.task.state == "FAILED"
    assert e.value.task.error


def test_wait_times_out_on_an_unfinished_task(served) -> None:
    _, c = served
    t = c.submit("echo.echo", 1, delay=3600)
    start = time.monotonic()
    with pytest.raises(taskmill.WaitTimeout) as e:
        t.get(timeout=0.3)
    assert 0.25 < time.monotonic() - start < 5 and e.value.error_code == "timeout"


def test_then_calls_back_on_success_and_failure(served) -> None:
    _, c = served
    got: dict = {}
    ok = c.submit("echo.echo", "fine").then(lambda v: got.setdefault("ok", v))
    bad = c.submit("demo.fail", {}, retries=0).then(lambda v: None, lambda e: got.setdefault("err", e))
    ok.join(20)
    bad.join(20)
    assert got["ok"] == "fine" and isinstance(got["err"], taskmill.TaskFailed)


def test_cancel_by_id_tag_and_filter_and_retry(served) -> None:
    _, c = served
    one = c.submit("echo.echo", 1, delay=3600)
    assert c.cancel(one.id).ids == [one.id]
    assert one.status().state == "CANCELLED"
    assert "already finished" in one.cancel().note
    tagged = [c.submit("echo.echo", i, delay=3600, tags=["batch-7"]) for i in range(3)]
    change = c.cancel(tag="batch-7")
    assert sorted(change.ids) == sorted(t.id for t in tagged)
    assert c.retry(one.id).ids == [one.id]
    assert one.get(timeout=20) == 1
    for i in range(3):
        c.submit("echo.echo", i, delay=3600, queue="bulk")
    job = c.cancel(queue="bulk", state="PENDING").job
    assert job is not None and job.kind == "cancel"
    job = c.wait_job(job.id, timeout=20)
    assert (job.done, job.changed) == (True, 3)
    retried = c.retry(queue="bulk", state="CANCELLED").job
    assert retried is not None and c.wait_job(retried.id, timeout=20).changed == 3
    assert c.job(retried.id).kind == "retry"
    with pytest.raises(taskmill.InvalidArgument):
        c.cancel()  # no filter and not all=True


def test_delete_purge_and_jobs(served) -> None:
    _, c = served
    done = c.submit("echo.echo", 1)
    done.get(timeout=20)
    assert c.delete(done.id).ids == [done.id]
    with pytest.raises(taskmill.NotFound):
        done.status()
    for i in range(4):
        c.submit("echo.echo", i, queue="doomed", delay=3600)
    job = c.purge("doomed")
    assert c.wait_job(job.id, timeout=20).changed == 4
    gone = c.delete(queue="doomed", state="CANCELLED").job
    assert gone is not None and c.wait_job(gone.id, timeout=20).changed == 4
    a, b = c.submit("echo.echo", 1), c.submit("echo.echo", 2)
    a.get(timeout=20), b.get(timeout=20)
    many = c.delete([a.id, b.id])
    assert many.job is not None and c.wait_job(many.job.id, timeout=20).changed == 2


def test_tasks_lists_with_filters_page_after_page(served) -> None:
    _, c = served
    ids = [t.id for t in c.submit_many(taskmill.TaskSpec("echo.echo", i, queue="listed", delay=3600,
                                                         tags=["listed"]) for i in range(25))]
    page = c.tasks_page(queue="listed", state="pending", limit=10)
    assert len(page.tasks) == 10 and page.next
    listed = [t.id for t in c.tasks(queue="listed", state="PENDING", page_size=7)]
    assert sorted(listed) == sorted(ids) and listed == sorted(listed, reverse=True)
    assert len(list(c.tasks(tag="listed", limit=5))) == 5
    assert {t.handler for t in c.tasks(handler="echo.echo", queue="listed", page_size=100)} == {"echo.echo"}
    since = c.status(ids[10]).created_ms / 1000
    assert all(t.created_ms >= since * 1000 for t in c.tasks(queue="listed", since=since))


def test_broker_views_and_queue_verbs(served) -> None:
    _, c = served
    assert 0 < c.ping() < 5
    workers = c.workers()
    assert workers and any(h["name"] == "echo.echo" for h in workers[0]["handlers"])
    c.submit("echo.echo", 1).get(timeout=20)
    stats = c.stats()
    assert stats["counters"]["submitted"] >= 1 and stats["workers"] >= 1
    paused = c.pause("slowlane")
    assert paused["paused"] is True
    t = c.submit("echo.echo", "held", queue="slowlane")
    assert any(q["name"] == "slowlane" and q["paused"] for q in c.queues())
    assert t.status().state == "QUEUED"
    assert c.resume("slowlane")["paused"] is False
    assert t.get(timeout=20) == "held"
    q = c.limit(queue="slowlane", rate=2.5, burst=3, max_running=4)
    assert q["limits"] == {"rate": 2.5, "burst": 3, "max_running": 4}
    h = c.limit(handler="echo.echo", max_running=2)
    assert h["name"] == "echo.echo" and h["limits"]["max_running"] == 2
    assert c.limit(handler="echo.echo", max_running=0)["limits"]["max_running"] == 0
    assert c.schedules() == []


def test_workflows_submit_status_wait_and_cancel(served) -> None:
    _, c = served
    wf = c.submit_workflow({"name": "diamond", "steps": [
        {"name": "a", "handler": "echo.echo", "payload": {"x": 1}},
        {"name": "b", "handler": "echo.echo", "depends_on": ["a"]},
        {"name": "c", "handler": "echo.echo", "depends_on": ["a"]},
        {"name": "d", "handler": "echo.echo", "depends_on": ["b", "c"]}]})
    status = c.wait_workflow(wf, timeout=30)
    assert status["state"] == "SUCCEEDED", status
    assert set(c.workflow_status(wf)["result"]) == {"d"}
    slow = c.submit_workflow({"steps": [{"name": "a", "handler": "demo.sleep", "payload": {"ms": 20000}},
                                        {"name": "b", "handler": "echo.echo", "depends_on": ["a"]}]})
    c.cancel_workflow(slow)
    assert c.wait_workflow(slow, timeout=30)["state"] == "CANCELLED"
    with pytest.raises(taskmill.InvalidArgument):
        c.submit_workflow({"steps": [{"name": "a", "handler": "echo.echo", "depends_on": ["a"]}]})


def test_events_iterate_as_they_come(served) -> None:
    _, c = served
    seen: list = []

    def listen() -> None:
        for ev in c.events(["task."], timeout=10):
            seen.append(ev)
            if ev.topic == "task.succeeded":
                return

    reader = threading.Thread(target=listen)
    reader.start()
    # A PUB drops what it sends before the subscription arrives: submit
    # until the first event shows the subscription is in place.
    def heard() -> bool:
        if not seen:
            c.submit("echo.echo", "ping").get(timeout=20)
        return bool(seen)

    wait_until(heard, 20, "a first event")
    reader.join(20)
    assert any(ev.topic == "task.succeeded" and ev["handler"] == "echo.echo" for ev in seen)


def test_a_broker_that_does_not_answer_is_unavailable_and_the_next_endpoint_is_tried(served, tmp_path: Path) -> None:
    broker, c = served
    import zmq
    ctx = zmq.Context()
    silent = ctx.socket(zmq.ROUTER)  # accepts connections, never answers
    port = silent.bind_to_random_port("tcp://127.0.0.1")
    try:
        dead = f"tcp://127.0.0.1:{port}"
        with taskmill.Client(dead, timeout=0.2) as lone:
            with pytest.raises(taskmill.Unavailable) as e:
                lone.ping()
            assert e.value.error_code == "unavailable"
        with taskmill.Client([dead, broker.frontend], timeout=0.5) as pair:
            assert pair.ping() < 5  # repeated on the next endpoint
            assert pair.submit("echo.echo", 5, key="failover-1").get(timeout=20) == 5
        with taskmill.Client([dead, broker.frontend], timeout=0.3) as pair:
            with pytest.raises(taskmill.Unavailable):
                pair.submit("echo.echo", 6)  # not repeated without a key
            assert pair.submit("echo.echo", 7).get(timeout=20) == 7  # now on the live broker
    finally:
        silent.close(0)
        ctx.term()


def test_from_data_dir_reads_endpoints_json(served) -> None:
    broker, _ = served
    with taskmill.Client.from_data_dir(broker.data) as c:
        assert c.events_endpoint == broker.events
        assert c.submit("echo.echo", 3).get(timeout=20) == 3
