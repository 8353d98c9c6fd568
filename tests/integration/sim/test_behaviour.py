"""Each observed VPP 26.06 behaviour (reference README), driven through plain vpp_papi."""

from __future__ import annotations

import os
import queue
import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.integration.sim.conftest import ClientFactory
from vhostuser_vpp.sim import Emulator

ANY = 0xFFFFFFFF


def create(papi: Any, path: Path | str, **kwargs: Any) -> Any:
    args: dict[str, Any] = {"is_server": True, "sock_filename": str(path)}
    args.update(kwargs)
    return papi.api.create_vhost_user_if_v2(**args)


def is_socket(path: Path) -> bool:
    return path.exists() and stat.S_ISSOCK(path.stat().st_mode)


def test_connect_version_and_ping(papi: Any) -> None:
    version = papi.api.show_version()
    assert (version.retval, version.program, version.version) == (0, "vpe", "26.06-release")
    ping = papi.api.control_ping()
    assert ping.retval == 0 and ping.vpe_pid >> 8 == os.getpid() & 0xFFFFFF


def test_fresh_vpp_has_only_local0(papi: Any) -> None:
    details = papi.api.sw_interface_dump()
    assert [(d.sw_if_index, d.interface_name, d.interface_dev_type) for d in details] == [
        (0, "local0", "local")
    ]


def test_create_server_port(papi: Any, short_dir: Path) -> None:
    path = short_dir / "p1"
    reply = create(papi, path, tag="cni:abc:net1")
    assert (reply.retval, reply.sw_if_index) == (0, 1)
    assert is_socket(path)
    [d] = papi.api.sw_interface_dump(sw_if_index=1)
    assert d.interface_name == "VirtualEthernet0/0/0"
    assert d.interface_dev_type == "vhost-user"
    assert (d.link_mtu, list(d.mtu), int(d.flags), d.tag) == (9000, [9000, 0, 0, 0], 0, "cni:abc:net1")
    assert str(d.l2_address).startswith("02:fe:")
    [v] = papi.api.sw_interface_vhost_user_dump(sw_if_index=1)
    assert (v.is_server, v.sock_filename, v.num_regions, v.sock_errno) == (True, str(path), 0, 0)


def test_custom_mac(papi: Any, short_dir: Path) -> None:
    reply = create(papi, short_dir / "p", use_custom_mac=True, mac_address="aa:bb:cc:dd:ee:ff")
    [d] = papi.api.sw_interface_dump(sw_if_index=reply.sw_if_index)
    assert str(d.l2_address) == "aa:bb:cc:dd:ee:ff"


def test_server_replaces_what_is_at_the_path(papi: Any, short_dir: Path) -> None:
    path = short_dir / "p"
    path.write_text("stale")
    assert create(papi, path).retval == 0
    assert is_socket(path)


def test_duplicate_path_returns_existing_index(papi: Any, short_dir: Path) -> None:
    first = create(papi, short_dir / "p")
    again = create(papi, short_dir / "p")
    assert (again.retval, again.sw_if_index) == (-79, first.sw_if_index)


def test_missing_directory(papi: Any, short_dir: Path) -> None:
    reply = create(papi, short_dir / "missing" / "x")
    assert (reply.retval, reply.sw_if_index) == (-12, ANY)


def test_empty_path(papi: Any) -> None:
    reply = create(papi, "")
    assert (reply.retval, reply.sw_if_index) == (-73, ANY)


def test_long_path_is_cut_at_107_bytes(papi: Any, short_dir: Path) -> None:
    deep = short_dir / ("d" * 60)
    deep.mkdir()
    path = deep / ("s" * 60)
    assert create(papi, path).retval == 0
    cut = Path(os.fsencode(path)[:107].decode())
    assert is_socket(cut) and not path.exists()
    [v] = papi.api.sw_interface_vhost_user_dump()
    assert v.sock_filename == str(path)


def test_client_mode_without_listener(papi: Any, short_dir: Path) -> None:
    reply = create(papi, short_dir / "nobody", is_server=False)
    assert reply.retval == 0
    [v] = papi.api.sw_interface_vhost_user_dump(sw_if_index=reply.sw_if_index)
    assert (v.is_server, v.sock_errno) == (False, 2)


def test_client_mode_with_listener_sees_a_frontend(papi: Any, emulator: Emulator, short_dir: Path) -> None:
    path = short_dir / "guest"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    try:
        reply = create(papi, path, is_server=False)
        peer, _ = listener.accept()
        [v] = papi.api.sw_interface_vhost_user_dump(sw_if_index=reply.sw_if_index)
        assert (v.sock_errno, v.num_regions) == (0, 1)
        peer.close()
    finally:
        listener.close()


def test_delete_removes_socket_and_reuses_indexes(papi: Any, short_dir: Path) -> None:
    for n in range(1, 6):
        assert create(papi, short_dir / f"p{n}").sw_if_index == n
    for n in (2, 3, 4):
        assert papi.api.delete_vhost_user_if(sw_if_index=n).retval == 0
        assert not (short_dir / f"p{n}").exists()
    again = [create(papi, short_dir / f"q{n}").sw_if_index for n in range(3)]
    assert again == [4, 3, 2]
    names = {d.sw_if_index: d.interface_name for d in papi.api.sw_interface_dump()}
    assert [names[i] for i in again] == [
        "VirtualEthernet0/0/3",
        "VirtualEthernet0/0/2",
        "VirtualEthernet0/0/1",
    ]


def test_delete_twice_or_non_vhost(papi: Any, short_dir: Path) -> None:
    index = create(papi, short_dir / "p").sw_if_index
    assert papi.api.delete_vhost_user_if(sw_if_index=index).retval == 0
    assert papi.api.delete_vhost_user_if(sw_if_index=index).retval == -2
    assert papi.api.delete_vhost_user_if(sw_if_index=0).retval == -2
    assert papi.api.delete_vhost_user_if(sw_if_index=99).retval == -2


def test_v1_create_and_modify(papi: Any, short_dir: Path) -> None:
    reply = papi.api.create_vhost_user_if(is_server=True, sock_filename=str(short_dir / "a"), tag="t")
    assert reply.retval == 0
    moved = papi.api.modify_vhost_user_if_v2(
        sw_if_index=reply.sw_if_index, is_server=True, sock_filename=str(short_dir / "b")
    )
    assert moved.retval == 0
    assert not (short_dir / "a").exists() and is_socket(short_dir / "b")
    [v] = papi.api.sw_interface_vhost_user_dump(sw_if_index=reply.sw_if_index)
    assert v.sock_filename == str(short_dir / "b")
    assert papi.api.modify_vhost_user_if(sw_if_index=0, is_server=True, sock_filename="x").retval == -2


def test_frontend_connection_brings_link_up(papi: Any, short_dir: Path) -> None:
    path = short_dir / "p"
    index = create(papi, path).sw_if_index
    frontend = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    frontend.connect(str(path))
    try:
        papi.api.control_ping()
        [v] = papi.api.sw_interface_vhost_user_dump(sw_if_index=index)
        assert v.num_regions == 1 and int(v.features_last_32) == 1
        [d] = papi.api.sw_interface_dump(sw_if_index=index)
        assert int(d.flags) & 2
    finally:
        frontend.close()


def test_interface_settings(papi: Any, short_dir: Path) -> None:
    index = create(papi, short_dir / "p").sw_if_index
    assert papi.api.sw_interface_set_flags(sw_if_index=index, flags=1).retval == 0
    assert papi.api.sw_interface_set_mtu(sw_if_index=index, mtu=[1500, 0, 0, 0]).retval == 0
    assert (
        papi.api.sw_interface_set_mac_address(sw_if_index=index, mac_address="02:00:00:00:00:09").retval == 0
    )
    assert papi.api.sw_interface_tag_add_del(is_add=False, sw_if_index=index, tag="").retval == 0
    assert papi.api.sw_interface_tag_add_del(is_add=True, sw_if_index=index, tag="new").retval == 0
    [d] = papi.api.sw_interface_dump(sw_if_index=index)
    assert (int(d.flags), list(d.mtu), str(d.l2_address), d.tag) == (
        1,
        [1500, 0, 0, 0],
        "02:00:00:00:00:09",
        "new",
    )
    assert papi.api.sw_interface_set_flags(sw_if_index=77, flags=1).retval == -2


def test_name_filter_and_loopback(papi: Any) -> None:
    loop = papi.api.create_loopback(mac_address="de:ad:00:00:00:01")
    assert (loop.retval, loop.sw_if_index) == (0, 1)
    [d] = papi.api.sw_interface_dump(name_filter_valid=True, name_filter="loop0")
    assert (d.interface_name, d.interface_dev_type, str(d.l2_address)) == (
        "loop0",
        "Loopback",
        "de:ad:00:00:00:01",
    )


def setup_l3(papi: Any, short_dir: Path) -> tuple[int, int]:
    loop = papi.api.create_loopback(mac_address="de:ad:00:00:00:01").sw_if_index
    assert (
        papi.api.sw_interface_add_del_address(sw_if_index=loop, is_add=True, prefix="10.56.217.1/24").retval
        == 0
    )
    assert papi.api.sw_interface_set_flags(sw_if_index=loop, flags=1).retval == 0, "its routes come with up"
    port = create(papi, short_dir / "p").sw_if_index
    assert (
        papi.api.sw_interface_set_unnumbered(
            sw_if_index=loop, unnumbered_sw_if_index=port, is_add=True
        ).retval
        == 0
    )
    return loop, port


def route_paths(sw_if_index: int, nh: str) -> list[dict[str, Any]]:
    labels = [{"is_uniform": 0, "label": 0, "ttl": 0, "exp": 0}] * 16
    return [{"sw_if_index": sw_if_index, "nh": {"address": {"ip4": nh}}, "label_stack": labels}]


def add_route(papi: Any, prefix: str, sw_if_index: int, nh: str, is_add: bool = True) -> Any:
    route = {"table_id": 0, "prefix": prefix, "n_paths": 1, "paths": route_paths(sw_if_index, nh)}
    return papi.api.ip_route_add_del(is_add=is_add, is_multipath=False, route=route)


def dumped_prefixes(papi: Any) -> dict[str, list[int]]:
    routes = papi.api.ip_route_dump(table={"table_id": 0, "is_ip6": False})
    return {str(r.route.prefix): [p.sw_if_index for p in r.route.paths] for r in routes}


def test_routes_survive_interface_deletion_neighbours_do_not(papi: Any, short_dir: Path) -> None:
    _, port = setup_l3(papi, short_dir)
    assert add_route(papi, "10.56.217.131/32", port, "10.56.217.131").retval == 0
    assert add_route(papi, "10.56.217.131/32", port, "10.56.217.131").retval == 0
    neighbor = {
        "sw_if_index": port,
        "flags": 1,
        "mac_address": "e2:52:b5:7b:58:ad",
        "ip_address": "10.56.217.131",
    }
    assert papi.api.ip_neighbor_add_del(is_add=True, neighbor=neighbor).retval == 0
    assert papi.api.ip_neighbor_add_del(is_add=True, neighbor=neighbor).retval == 0
    [n] = papi.api.ip_neighbor_dump(sw_if_index=ANY, af=0)
    assert str(n.neighbor.mac_address) == "e2:52:b5:7b:58:ad"
    assert papi.api.delete_vhost_user_if(sw_if_index=port).retval == 0
    assert papi.api.ip_neighbor_dump(sw_if_index=ANY, af=0) == []
    assert dumped_prefixes(papi)["10.56.217.131/32"] == [port]
    # Every path is decoded first: one through the vanished index is refused, for a delete
    # too, and the route stays; only a delete naming no path removes it.
    assert add_route(papi, "10.56.217.131/32", port, "10.56.217.131", is_add=False).retval == -54
    assert add_route(papi, "10.56.217.132/32", port, "10.56.217.132").retval == -54
    assert dumped_prefixes(papi)["10.56.217.131/32"] == [port]
    whole = {"table_id": 0, "prefix": "10.56.217.131/32", "n_paths": 0, "paths": []}
    assert papi.api.ip_route_add_del(is_add=False, is_multipath=False, route=whole).retval == 0
    assert "10.56.217.131/32" not in dumped_prefixes(papi)
    assert papi.api.ip_route_add_del(is_add=False, is_multipath=False, route=whole).retval == 0
    assert add_route(papi, "10.9.9.9/32", 0, "10.9.9.9", is_add=False).retval == 0


def test_route_lookup_exact_and_longest_match(papi: Any, short_dir: Path) -> None:
    """As VPP's ip_route_lookup: exact finds the very prefix or answers -6 with a zeroed
    route; otherwise the longest covering entry; an unknown table is -3."""
    loop, port = setup_l3(papi, short_dir)

    missing = papi.api.ip_route_lookup(table_id=0, exact=1, prefix="10.56.217.131/32")
    assert (missing.retval, missing.route.n_paths) == (-6, 0)
    covering = papi.api.ip_route_lookup(table_id=0, exact=0, prefix="10.56.217.131/32")
    assert (covering.retval, str(covering.route.prefix)) == (0, "10.56.217.0/24")
    assert [p.sw_if_index for p in covering.route.paths] == [loop]

    assert add_route(papi, "10.56.217.131/32", port, "10.56.217.131").retval == 0
    found = papi.api.ip_route_lookup(table_id=0, exact=1, prefix="10.56.217.131/32")
    assert (found.retval, str(found.route.prefix), found.route.n_paths) == (0, "10.56.217.131/32", 1)
    assert found.route.paths[0].sw_if_index == port
    assert found.route.stats_index == dumped_stats_index(papi, "10.56.217.131/32")

    default = papi.api.ip_route_lookup(table_id=0, exact=0, prefix="192.0.2.1/32")
    assert (default.retval, str(default.route.prefix)) == (0, "0.0.0.0/0")
    assert papi.api.ip_route_lookup(table_id=7, exact=1, prefix="10.56.217.131/32").retval == -3


def test_unnumbered_dump(papi: Any, short_dir: Path) -> None:
    """As VPP: one entry per borrowing interface, for one index or all (~0); an interface
    that lends or borrows nothing, or an unknown index, gives none."""

    def dumped(index: int) -> list[tuple[int, int]]:
        return [(d.sw_if_index, d.ip_sw_if_index) for d in papi.api.ip_unnumbered_dump(sw_if_index=index)]

    loop, port = setup_l3(papi, short_dir)
    assert dumped(port) == [(port, loop)]
    assert dumped(ANY) == [(port, loop)]
    assert dumped(loop) == []
    assert dumped(999) == []
    assert (
        papi.api.sw_interface_set_unnumbered(
            sw_if_index=loop, unnumbered_sw_if_index=port, is_add=False
        ).retval
        == 0
    )
    assert dumped(ANY) == []


def dumped_stats_index(papi: Any, prefix: str) -> int:
    routes = papi.api.ip_route_dump(table={"table_id": 0, "is_ip6": False})
    return next(int(r.route.stats_index) for r in routes if str(r.route.prefix) == prefix)


def test_address_in_use(papi: Any) -> None:
    first = papi.api.create_loopback().sw_if_index
    second = papi.api.create_loopback().sw_if_index
    assert (
        papi.api.sw_interface_add_del_address(sw_if_index=first, is_add=True, prefix="10.1.0.1/24").retval
        == 0
    )
    assert (
        papi.api.sw_interface_add_del_address(sw_if_index=second, is_add=True, prefix="10.1.0.1/24").retval
        == -105
    )
    assert (
        papi.api.sw_interface_add_del_address(sw_if_index=second, is_add=True, prefix="10.1.0.2/24").retval
        == -105
    )


def test_bridge_domain(papi: Any, short_dir: Path) -> None:
    port = create(papi, short_dir / "p").sw_if_index
    added = papi.api.bridge_domain_add_del_v2(
        bd_id=10, flood=True, uu_flood=True, forward=True, learn=True, is_add=True
    )
    assert (added.retval, added.bd_id) == (0, 10)
    assert papi.api.bridge_domain_add_del(bd_id=10, is_add=True).retval == -119
    assert papi.api.sw_interface_set_l2_bridge(rx_sw_if_index=port, bd_id=10, enable=True).retval == 0
    [bd] = papi.api.bridge_domain_dump(bd_id=10, sw_if_index=ANY)
    assert bd.n_sw_ifs == 1 and bd.sw_if_details[0].sw_if_index == port
    assert papi.api.bridge_domain_add_del_v2(bd_id=10, is_add=False).retval == -120
    assert papi.api.sw_interface_set_l2_bridge(rx_sw_if_index=port, bd_id=10, enable=False).retval == 0
    assert papi.api.bridge_domain_add_del_v2(bd_id=10, is_add=False).retval == 0
    assert papi.api.bridge_domain_dump(bd_id=ANY, sw_if_index=ANY) == []


def test_interface_events(papi: Any, emulator: Emulator, short_dir: Path) -> None:
    events: queue.Queue[tuple[int, int, bool]] = queue.Queue()
    papi.register_event_callback(
        lambda name, msg: (
            events.put((msg.sw_if_index, int(msg.flags), bool(msg.deleted)))
            if name == "sw_interface_event"
            else None
        )
    )
    assert papi.api.want_interface_events(enable_disable=1, pid=os.getpid()).retval == 0
    assert papi.api.want_interface_events(enable_disable=1, pid=os.getpid()).retval == -31
    index = create(papi, short_dir / "p").sw_if_index
    papi.api.sw_interface_set_flags(sw_if_index=index, flags=1)
    emulator.frontend_connect(index)
    emulator.frontend_disconnect(index)
    papi.api.delete_vhost_user_if(sw_if_index=index)
    seen = [events.get(timeout=5) for _ in range(5)]
    assert seen == [
        (index, 0, False),
        (index, 1, False),
        (index, 2, False),
        (index, 0, False),
        (index, 0, True),
    ]


def test_restart_starts_indexes_again(emulator: Emulator, connect: ClientFactory, short_dir: Path) -> None:
    papi = connect()
    assert create(papi, short_dir / "a").sw_if_index == 1
    assert create(papi, short_dir / "b").sw_if_index == 2
    first_pid = papi.api.control_ping().vpe_pid
    emulator.crash()
    with pytest.raises(ConnectionRefusedError):
        connect("after-crash")
    emulator.restart()
    fresh = connect("after-restart")
    assert create(fresh, short_dir / "c").sw_if_index == 1
    assert fresh.api.control_ping().vpe_pid != first_pid, "a restarted VPP is a new process"


def test_profile_and_omit(short_dir: Path) -> None:
    from vpp_papi import VPPApiClient

    from vhostuser_vpp.vpp.api_files import api_json_paths

    path = str(short_dir / "old.sock")
    with Emulator.start(path, profile="22.10", omit=["create_vhost_user_if_v2"], id_offset=100) as emu:
        assert emu.version == "22.10-release"
        client = VPPApiClient(apifiles=api_json_paths(), server_address=path)
        client.connect("old")
        try:
            assert not hasattr(client.api, "create_vhost_user_if_v2")
            assert not hasattr(client.api, "bridge_domain_add_del_v2")
            assert (
                client.api.create_vhost_user_if(is_server=True, sock_filename=str(short_dir / "p")).retval
                == 0
            )
            assert client.api.show_version().version == "22.10-release"
        finally:
            client.disconnect()
