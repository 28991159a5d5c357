"""Deployments: C++ plugins and Python handlers side by side, and CURVE
for the Python client and worker."""

from __future__ import annotations

from pathlib import Path

import pytest

import taskmill
from conftest import Cluster, wait_for_handler, wait_until


def test_cpp_plugins_and_python_handlers_side_by_side(cluster: Cluster) -> None:
    broker = cluster.broker()
    cluster.host(broker.backend)
    cluster.py_worker(broker.backend)
    c = cluster.client(broker)
    wait_for_handler(c, "echo.echo")
    wait_for_handler(c, "py.add")
    # A workflow whose steps run in both: echo.echo (C++) feeds py.add.
    wf = c.submit_workflow({"steps": [
        {"name": "first", "handler": "echo.echo", "payload": {"x": 1}},
        {"name": "second", "handler": "py.add@1", "payload": {"a": 1, "b": 2}, "depends_on": ["first"]}]})
    status = c.wait_workflow(wf, timeout=30)
    assert status["state"] == "SUCCEEDED", status
    assert status["result"]["second"]["sum"] == 3
    # A Python handler spawns subtasks that the C++ plugin runs.
    parent = c.submit("py.spawn", {"n": 3})
    children = parent.get(timeout=20)
    assert len(set(children)) == 3
    assert sorted(c.result(i, timeout=20)["child"] for i in children) == [0, 1, 2]
    assert sorted(parent.status().children) == sorted(children)
    assert all(c.status(i).parent == parent.id for i in children)
    ran = {c.status(i).worker for i in children} | {parent.status().worker}
    assert len(ran) == 2  # the host's worker and the Python worker


def keygen(cluster: Cluster, name: str) -> Path:
    base = cluster.root / name
    r = cluster.cli("keygen", str(base))
    assert r.returncode == 0, r.stderr
    return base


def test_curve_admits_the_python_client_and_worker_with_allowed_keys_only(cluster: Cluster) -> None:
    server, client_key, worker_key, stranger = (keygen(cluster, n) for n in ("broker", "client", "worker",
                                                                             "stranger"))
    pub = lambda base: str(base) + ".pub"  # noqa: E731
    key = lambda base: str(base) + ".key"  # noqa: E731
    broker = cluster.broker("--curve-key-file", key(server), "--allow-client", pub(client_key),
                            "--allow-host", pub(worker_key))
    cluster.py_worker(broker.backend, "--server-key", pub(server), "--key-file", key(worker_key))
    keys = taskmill.CurveKeys.from_files(pub(server), key(client_key))
    c = cluster.client(broker, curve=keys)
    wait_for_handler(c, "py.add")
    assert c.submit("py.add@1", {"a": 20, "b": 22}).get(timeout=20)["sum"] == 42

    async_ok = taskmill.AsyncClient(broker.frontend, curve=keys)

    async def via_async() -> int:
        try:
            return (await (await async_ok.submit("py.add@1", {"a": 1, "b": 1})).get(timeout=20))["sum"]
        finally:
            await async_ok.close()

    import asyncio
    assert asyncio.run(via_async()) == 2

    with taskmill.Client(broker.frontend, timeout=0.5) as plain:
        with pytest.raises(taskmill.Unavailable):
            plain.ping()
    strange = taskmill.CurveKeys.from_files(pub(server), key(stranger))
    with taskmill.Client(broker.frontend, curve=strange, timeout=0.5) as refused:
        with pytest.raises(taskmill.Unavailable):
            refused.submit("py.add@1", {"a": 1, "b": 1})
    assert c.stats()["counters"]["submitted"] == 2  # nothing of the refused ones reached the store
    wait_until(lambda: "curve refused socket=frontend" in broker.proc.text(), 20, "the refusal in the log")
    bad_worker = cluster.py_worker(broker.backend, "--server-key", pub(server), "--key-file", key(stranger))
    wait_until(lambda: "curve refused socket=backend" in broker.proc.text(), 20, "the worker's refusal")
    assert bad_worker.running() and len(c.workers()) == 1
