"""Many clients at once, and big dumps: what a node with many pods starting together does."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.integration.sim.conftest import ClientFactory
from vhostuser_vpp.sim import Emulator

CLIENTS = 64
PORTS_PER_CLIENT = 3


def test_parallel_clients_create_and_delete(
    emulator: Emulator, connect: ClientFactory, short_dir: Path
) -> None:
    clients = [connect(f"c{n}") for n in range(CLIENTS)]
    start = threading.Barrier(CLIENTS)

    def work(n: int) -> list[str]:
        papi = clients[n]
        start.wait()
        problems = []
        for k in range(PORTS_PER_CLIENT):
            path = str(short_dir / f"c{n}-{k}")
            tag = f"client{n}-port{k}"
            reply = papi.api.create_vhost_user_if_v2(is_server=True, sock_filename=path, tag=tag)
            if reply.retval != 0:
                problems.append(f"{tag}: create {reply.retval}")
                continue
            [v] = papi.api.sw_interface_vhost_user_dump(sw_if_index=reply.sw_if_index)
            [d] = papi.api.sw_interface_dump(sw_if_index=reply.sw_if_index)
            if v.sock_filename != path or d.tag != tag:
                problems.append(f"{tag}: crossed reply {v.sock_filename} {d.tag}")
            if papi.api.delete_vhost_user_if(sw_if_index=reply.sw_if_index).retval != 0:
                problems.append(f"{tag}: delete failed")
        return problems

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        results = list(pool.map(work, range(CLIENTS)))
    assert [p for problems in results for p in problems] == []
    assert emulator.ports() == []


def test_dump_of_1000_interfaces(emulator: Emulator, connect: ClientFactory) -> None:
    papi: Any = connect()
    created = [papi.api.create_loopback().sw_if_index for _ in range(1000)]
    assert created == list(range(1, 1001))
    details = papi.api.sw_interface_dump()
    assert [d.sw_if_index for d in details] == list(range(1001))
    assert [d.interface_name for d in details[1:]] == [f"loop{n}" for n in range(1000)]
    assert papi.api.control_ping().retval == 0
