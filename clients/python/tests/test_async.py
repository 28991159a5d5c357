"""AsyncClient against a real broker, a C++ host and a Python worker in
asyncio mode."""

from __future__ import annotations

import asyncio

import pytest

import taskmill
from conftest import Cluster, wait_for_handler


@pytest.fixture(scope="module")
def setup(module_cluster: Cluster):
    broker = module_cluster.broker()
    module_cluster.host(broker.backend)
    module_cluster.py_worker(broker.backend, "--mode", "asyncio", "--concurrency", "8")
    client = module_cluster.client(broker)
    wait_for_handler(client, "echo.echo")
    wait_for_handler(client, "py.async_add")
    return broker


def run(coro):
    return asyncio.run(coro)


def test_async_submit_get_and_concurrent_long_polls(setup) -> None:
    async def main() -> None:
        async with taskmill.AsyncClient(setup.frontend) as c:
            tasks = [await c.submit("echo.echo", i) for i in range(20)]
            results = await asyncio.gather(*(t.get(timeout=20) for t in tasks))
            assert results == list(range(20))
            many = await c.submit_many([taskmill.TaskSpec("echo.echo", "m", tags=["async"])] * 3)
            assert [await t.get(timeout=20) for t in many] == ["m"] * 3
            info = await many[0].status()
            assert info.state == "SUCCEEDED" and info.tags == ["async"]
            assert (await c.wait(many[1].id)).succeeded
            assert await c.result(many[2].id) == "m"

    run(main())


def test_async_handlers_run_in_the_asyncio_worker(setup) -> None:
    async def main() -> None:
        async with taskmill.AsyncClient(setup.frontend) as c:
            tasks = [await c.submit("py.async_add", {"a": i, "b": 1}) for i in range(10)]
            results = await asyncio.gather(*(t.get(timeout=20) for t in tasks))
            assert [r["sum"] for r in results] == [i + 1 for i in range(10)]
            assert all(r["checkpoint"] == i for i, r in enumerate(results))
            child = await c.status(results[0]["child"])
            assert child.parent == tasks[0].id
            assert await c.result(child.id, timeout=20) == {"from": "async"}

    run(main())


def test_async_verbs_errors_and_events(setup) -> None:
    async def main() -> None:
        async with taskmill.AsyncClient(setup.frontend, events=setup.events) as c:
            assert await c.ping() < 5
            assert (await c.stats())["workers"] >= 2
            assert len(await c.workers()) >= 2
            assert (await c.pause("aq"))["paused"] and not (await c.resume("aq"))["paused"]
            assert (await c.limit(queue="aq", rate=1.5))["limits"]["rate"] == 1.5
            assert any(q["name"] == "aq" for q in await c.queues())
            await c.limit(queue="aq", rate=0)
            pending = await c.submit("echo.echo", 1, delay=3600, queue="aq", tags=["at"])
            assert (await c.run_now(pending.id)).ids == [pending.id]
            assert await pending.get(timeout=20) == 1
            for _ in range(3):
                await c.submit("echo.echo", 1, delay=3600, queue="aq")
            assert [t.queue async for t in c.tasks(queue="aq", state="PENDING", page_size=2)] == ["aq"] * 3
            job = await c.purge("aq")
            assert (await c.wait_job(job.id, timeout=20)).changed == 3
            assert (await c.job(job.id)).kind == "purge"
            retried = (await c.retry(queue="aq", state="CANCELLED")).job
            assert retried is not None and (await c.wait_job(retried.id, timeout=20)).changed == 3
            one = await c.submit("echo.echo", 2, delay=3600)
            assert (await one.cancel()).ids == [one.id]
            assert (await one.retry()).ids == [one.id]
            assert await one.get(timeout=20) == 2
            assert (await c.delete(one.id)).ids == [one.id]
            tagged = await c.submit("echo.echo", 3, delay=3600, tags=["gone"])
            assert (await c.cancel(tag="gone")).ids == [tagged.id]
            wf = await c.submit_workflow({"steps": [{"name": "a", "handler": "echo.echo", "payload": 1}]})
            assert (await c.wait_workflow(wf, timeout=20))["state"] == "SUCCEEDED"
            assert (await c.cancel_workflow(wf)) is not None
            assert await c.schedules() == []
            with pytest.raises(taskmill.NotFound) as e:
                await c.status("f" * 32)
            assert e.value.error_code == "not_found"

            got = []
            done = asyncio.Event()

            async def listen() -> None:
                async for ev in c.events(["task.succeeded"], timeout=10):
                    got.append(ev)
                    done.set()
                    return

            reader = asyncio.ensure_future(listen())
            while not done.is_set():  # until the subscription is in place
                await (await c.submit("echo.echo", "ev")).get(timeout=20)
                await asyncio.wait([reader], timeout=0.05)
            await reader
            assert got[0].topic == "task.succeeded"

            fired = asyncio.Event()
            (await c.submit("echo.echo", 9)).then(lambda v: fired.set())
            await asyncio.wait_for(fired.wait(), 20)

    run(main())


def test_async_failover_and_unavailable(setup) -> None:
    import zmq

    async def main(dead: str) -> None:
        async with taskmill.AsyncClient(dead, timeout=0.2) as lone:
            with pytest.raises(taskmill.Unavailable):
                await lone.ping()
        async with taskmill.AsyncClient([dead, setup.frontend], timeout=0.5) as pair:
            assert await pair.ping() < 5
            t = await pair.submit("echo.echo", 4, key="async-failover")
            assert await t.get(timeout=20) == 4
        async with taskmill.AsyncClient([dead, setup.frontend], timeout=0.5) as crowd:
            # Ten requests time out together on the silent broker: the client
            # moves on once, not once per request (ten moves would end on the
            # silent one again), and every request is answered by the other.
            assert all(rtt < 5 for rtt in await asyncio.gather(*(crowd.ping() for _ in range(10))))
            assert crowd.endpoints[crowd._current] == setup.frontend
            assert await crowd.ping() < 0.5, "the next request goes straight to the live broker"

    ctx = zmq.Context()
    silent = ctx.socket(zmq.ROUTER)
    port = silent.bind_to_random_port("tcp://127.0.0.1")
    try:
        run(main(f"tcp://127.0.0.1:{port}"))
    finally:
        silent.close(0)
        ctx.term()
