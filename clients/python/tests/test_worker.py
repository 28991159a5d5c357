"""The Python worker under a real broker: handlers, outcomes, progress,
checkpoints, cancellation, timeouts, leases and requeue on death, poison
counting, drain on SIGTERM and the resend of unacknowledged results."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

import taskmill
from conftest import Cluster, wait_for_handler, wait_until


@pytest.fixture(scope="module")
def py(module_cluster: Cluster):
    """A broker with one Python worker (threads, 4 slots)."""
    broker = module_cluster.broker()
    module_cluster.py_worker(broker.backend, "--concurrency", "4")
    client = module_cluster.client(broker)
    wait_for_handler(client, "py.add")
    return broker, client


def test_a_python_handler_runs_in_the_python_worker(py) -> None:
    _, c = py
    assert c.submit("py.add@1", {"a": 2, "b": 3}).get(timeout=20)["sum"] == 5
    newest = c.submit("py.add", {"a": 2, "b": 3})
    assert newest.get(timeout=20) == {"sum": 5, "version": 2}
    assert newest.status().history[0].version == "2.0.0"
    worker = next(w for w in c.workers() if any(h["name"] == "py.add" for h in w["handlers"]))
    assert {(h["name"], h["version"]) for h in worker["handlers"]} >= {("py.add", "1.2.0"), ("py.add", "2.0.0")}
    assert worker["slots"] == 4


def test_large_outcomes_of_one_turn_reach_the_broker_in_several_results(py) -> None:
    _, c = py
    # Three 7 MiB results finishing together pass the broker's 16 MiB body
    # limit as one RESULTS; each must still arrive.
    tasks = c.submit_many([taskmill.TaskSpec("py.big", {"n": 7 << 20}) for _ in range(3)])
    for t in tasks:
        assert len(t.get(timeout=60)) == 7 << 20
    err = c.submit("py.loud", {"n": 1 << 20}, retries=0).wait(timeout=20)
    assert err.state == "FAILED" and err.error.endswith("(truncated, 1048576 bytes)")
    assert len(err.error) < 70_000


def test_the_python_worker_reports_its_memory_in_heartbeats(py) -> None:
    _, c = py

    def rss() -> int:
        worker = next(w for w in c.workers() if any(h["name"] == "py.add" for h in w["handlers"]))
        return int(worker.get("rss_bytes", 0))

    wait_until(lambda: rss() > 0, 10, "a heartbeat with rss_bytes")
    assert 1 << 20 < rss() < 4 << 30


def test_progress_is_shown_while_the_handler_runs(py, marks: Path) -> None:
    _, c = py
    t = c.submit("py.progress", {"marks": str(marks)})
    wait_until(lambda: (t.status().progress or {}).get("note") == "half way", 20, "progress")
    assert t.status().progress == {"fraction": 0.5, "note": "half way"}
    (marks / "go").write_text("")
    assert t.get(timeout=20) == "done"


def test_retryable_permanent_and_unexpected_errors(py) -> None:
    _, c = py
    flaky = c.submit("py.flaky", {"succeed_on": 3}, retries=5)
    assert flaky.get(timeout=20) == 3
    history = flaky.status().history
    assert [a.outcome for a in history] == ["retry", "retry", "ok"]
    assert history[0].error_code == 11 and history[0].error == "attempt 1 failed"
    with pytest.raises(taskmill.TaskFailed) as failed:
        c.submit("py.fail", retries=5).get(timeout=20)
    assert failed.value.task.attempts == 1 and failed.value.handler_code == 42
    assert failed.value.task.error == "bad input"
    with pytest.raises(taskmill.TaskFailed) as boom:
        c.submit("py.boom", retries=1, backoff_base=0.01).get(timeout=20)
    assert boom.value.task.attempts == 2 and boom.value.task.error == "ValueError: unexpected"


def test_a_running_python_handler_sees_its_cancellation(py, marks: Path) -> None:
    _, c = py
    t = c.submit("py.until_cancelled", {"marks": str(marks)})
    wait_until(lambda: (marks / "started").exists(), 20, "the handler to start")
    assert t.cancel().note == "cancel requested"
    assert t.wait(timeout=20).state == "CANCELLED"
    assert (marks / "saw-cancel").read_text() == "cancelled"


def test_an_attempt_past_its_timeout_is_a_timeout(py) -> None:
    _, c = py
    t = c.submit("py.overrun", timeout=0.2, retries=0)
    info = t.wait(timeout=20)
    assert info.state == "FAILED" and info.history[0].outcome == "timeout"


def test_checkpoints_are_saved_and_given_back(py, marks: Path) -> None:
    _, c = py
    t = c.submit("py.steps", {"steps": 4, "marks": str(marks)})
    assert t.get(timeout=20) == {"resumed_from": 0, "steps": 4, "attempt": 1}


def test_a_sigkilled_worker_task_is_rerun_and_resumes_from_its_checkpoint(cluster: Cluster, marks: Path) -> None:
    broker = cluster.broker()
    c = cluster.client(broker)
    first = cluster.py_worker(broker.backend)
    wait_for_handler(c, "py.steps")
    t = c.submit("py.steps", {"steps": 5, "hold_at": 3, "marks": str(marks)})
    wait_until(lambda: (marks / "holding").exists(), 20, "the handler to reach step 3")
    first.signal(signal.SIGKILL)
    first.wait()
    cluster.py_worker(broker.backend)
    assert t.get(timeout=30) == {"resumed_from": 3, "steps": 5, "attempt": 2}
    assert (marks / "attempt-2").read_text() == "3"
    assert t.status().history[0].outcome == "lost"


def test_a_task_that_kills_its_worker_is_poison_after_max_crashes(cluster: Cluster) -> None:
    broker = cluster.broker("--max-crashes", "2")
    c = cluster.client(broker)
    supervisor = cluster.py_worker(broker.backend, "--processes", "1", "--concurrency", "1")
    wait_for_handler(c, "py.crash")
    t = c.submit("py.crash")
    info = t.wait(timeout=30)
    assert info.state == "FAILED" and info.error.startswith("poison: crashed its worker 2 times"), info.error
    assert c.stats()["counters"]["crashes"] == 2
    # The supervisor replaced the dead processes: the next task runs.
    assert c.submit("py.add@1", {"a": 1, "b": 1}).get(timeout=30)["sum"] == 2
    assert supervisor.running()


def test_sigterm_drains_running_tasks_then_the_worker_leaves(cluster: Cluster, marks: Path) -> None:
    broker = cluster.broker()
    c = cluster.client(broker)
    w = cluster.py_worker(broker.backend, "--concurrency", "1")
    wait_for_handler(c, "py.hold")
    running = c.submit("py.hold", {"name": "a", "marks": str(marks)})
    wait_until(lambda: (marks / "running-a-1").exists(), 20, "the task to start")
    w.signal(signal.SIGTERM)
    wait_until(lambda: "draining" in w.text(), 20, "the drain to begin")
    waiting = c.submit("py.add@1", {"a": 1, "b": 2})
    assert w.running()
    (marks / "go").write_text("")
    assert running.get(timeout=20) == {"name": "a", "attempt": 1}
    assert w.wait(20) == 0
    info = waiting.status()
    assert info.state == "QUEUED" and info.attempts == 0  # never sent to the draining worker
    assert not any(h["name"] == "py.hold" for wk in c.workers() for h in wk["handlers"])


def test_an_outcome_the_broker_lost_is_resent_after_the_new_welcome(cluster: Cluster, marks: Path) -> None:
    broker = cluster.broker()
    c = cluster.client(broker)
    w = cluster.py_worker(broker.backend, "--concurrency", "1")
    wait_for_handler(c, "py.hold")
    t = c.submit("py.hold", {"name": "r", "marks": str(marks)})
    wait_until(lambda: (marks / "running-r-1").exists(), 20, "the task to start")
    broker.proc.signal(signal.SIGKILL)
    broker.proc.wait()
    (marks / "go").write_text("")  # the outcome goes nowhere: no broker
    wait_until(lambda: (marks / "finished-r").exists(), 20, "the handler to finish")
    again = cluster.broker(at=broker.ep, name=broker.name)
    c2 = cluster.client(again)
    assert c2.wait(t.id, timeout=30).result == {"name": "r", "attempt": 1}
    assert not (marks / "running-r-2").exists()  # not run again
    assert c2.status(t.id).history[-1].outcome == "ok"
    assert "resending 1 outcome(s) the broker has not acknowledged" in w.text()


def test_a_supervised_worker_leaves_when_its_supervisor_is_killed(cluster: Cluster) -> None:
    broker = cluster.broker()
    c = cluster.client(broker)
    supervisor = cluster.py_worker(broker.backend, "--processes", "1")
    wait_for_handler(c, "py.add")
    child = c.workers()[0]["pid"]
    assert child != supervisor.pid
    supervisor.signal(signal.SIGKILL)
    supervisor.wait()
    wait_until(lambda: c.workers() == [], 20, "the orphaned worker to drain and leave")
    wait_until(lambda: not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2],
               20, "the worker process to end")
