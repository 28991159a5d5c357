"""The Python clients against a real three-member broker cluster
(docs/CLUSTER.md): given one member or all of them, they follow
`not_leader` to the leader, and keep working after the leader dies."""

from __future__ import annotations

import asyncio
import signal
import socket
from typing import List

import taskmill
from conftest import Broker, Cluster, wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def three_members(cluster: Cluster) -> List[Broker]:
    peers = ",".join(f"{i}=127.0.0.1:{free_port()}" for i in (1, 2, 3))
    return [cluster.broker("--node-id", str(i), "--peers", peers, "--durability", "none") for i in (1, 2, 3)]


def leader_of(members: List[Broker]) -> int:
    """The index of the member that serves, once one does."""
    found: List[int] = []

    def serving() -> bool:
        for i, m in enumerate(members):
            if not m.proc.running():
                continue
            with taskmill.Client(m.frontend, timeout=0.5) as c:
                try:
                    c.stats()
                except taskmill.TaskmillError:
                    continue
                if c.endpoints[c._current] != m.frontend:
                    continue  # it followed not_leader to another member
            found.append(i)
            return True
        return False

    wait_until(serving, 20, "a member that serves")
    return found[0]


def test_a_client_given_a_follower_follows_it_to_the_leader(cluster: Cluster) -> None:
    members = three_members(cluster)
    lead = leader_of(members)
    follower = members[(lead + 1) % 3]
    with taskmill.Client(follower.frontend) as c:
        task = c.submit("nobody.runs", key="k1")  # the follower names the leader; the client asks it
        assert c.status(task.id).state == "QUEUED"
        assert c.endpoints[c._current] == members[lead].frontend


def test_clients_given_every_member_go_on_after_the_leader_dies(cluster: Cluster) -> None:
    members = three_members(cluster)
    lead = leader_of(members)
    everyone = [m.frontend for m in members]
    with taskmill.Client(everyone, timeout=10) as c:
        before = c.submit("nobody.runs", key="before")
        members[lead].proc.signal(signal.SIGKILL)
        members[lead].proc.wait()
        after = c.submit("nobody.runs", key="after")  # keyed: safe to send again
        assert c.status(before.id).state == "QUEUED"
        assert c.status(after.id).state == "QUEUED"
        assert c.submit("nobody.runs", key="before").id == before.id

    async def run() -> None:
        async with taskmill.AsyncClient(everyone, timeout=10) as a:
            t = await a.submit("nobody.runs", key="async")
            assert (await a.status(t.id)).state == "QUEUED"

    asyncio.run(run())
