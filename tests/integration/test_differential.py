"""The emulator held to the real VPP: the same scripted API calls against both, compared.

Each scenario is a short script of the calls the backends and the CLI send, error cases
included. It runs once against a fresh emulator and once against a freshly started real
VPP; every reply (dumps as lists of details) and then the whole resulting state are
compared field by field. A difference fails with both answers side by side. Where they
differ VPP is right: fix the emulator.

Normalised before comparing, because they differ between two real VPPs as well: the
scenario's own directory (each run has one), the random part of VPP-made MACs
(02:fe:xx:xx:xx:xx), show_version's build fields, VPP's pid, a neighbour's age, and the order of
routes of equal prefix length (VPP walks a hash there).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import vpp_targets
from tests.integration.papi_values import plain
from tests.integration.vpp_probe import VppProbe
from tests.vpp_targets import RealVpps
from vhostuser_vpp.sim import Emulator
from vhostuser_vpp.vpp.ops import pod_route

ANY = 0xFFFFFFFF
RANDOM_MAC = re.compile(r"^02:fe(:[0-9a-f]{2}){4}$")
VOLATILE = {
    "show_version": ("build_date", "build_directory"),
    "control_ping": ("vpe_pid",),
    "ip_neighbor_dump": ("age",),
}


class Script:
    """What a scenario talks to: calls VPP, keeps every normalised reply."""

    def __init__(self, probe: VppProbe, base: Path) -> None:
        self.api = probe.papi.api
        self.base = base
        self.replies: list[tuple[str, Any]] = []

    def __call__(self, message: str, **fields: Any) -> Any:
        reply = getattr(self.api, message)(**fields)
        self.replies.append((message, self._normal(message, plain(reply))))
        return reply

    def path(self, name: str) -> str:
        return str(self.base / name)

    def port(self, name: str, **fields: Any) -> int:
        """A vhost-user server port at `name` in the scenario's directory; its index."""
        reply = self("create_vhost_user_if_v2", is_server=True, sock_filename=self.path(name), **fields)
        assert reply.retval == 0, reply
        return int(reply.sw_if_index)

    def _normal(self, message: str, value: Any) -> Any:
        if isinstance(value, dict):
            for key in ("context", *VOLATILE.get(message, ())):
                value.pop(key, None)
            return {k: self._normal(message, v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            items = [self._normal(message, v) for v in value]
            if message == "ip_route_dump" and items and "route" in items[0]:
                items.sort(key=lambda d: (int(d["route"]["prefix"].split("/")[1]), d["route"]["prefix"]))
            return items
        if isinstance(value, str):
            value = value.replace(str(self.base), "$DIR")
            return "02:fe:<random>" if RANDOM_MAC.match(value) else value
        return value


def route(ip: str, index: int) -> dict[str, Any]:
    return pod_route(ip, index)


def whole_entry(prefix: str) -> dict[str, Any]:
    return {"table_id": 0, "stats_index": 0, "prefix": prefix, "n_paths": 0, "paths": []}


def neighbor(index: int, ip: str, mac: str = "e2:52:b5:7b:58:ad") -> dict[str, Any]:
    return {"sw_if_index": index, "flags": 1, "mac_address": mac, "ip_address": ip}


def loopback(v: Script, cidr: str = "10.56.217.1/24") -> int:
    index = int(v("create_loopback", mac_address="00:00:00:00:00:00").sw_if_index)
    v("sw_interface_add_del_address", sw_if_index=index, is_add=True, del_all=False, prefix=cidr)
    v("sw_interface_set_flags", sw_if_index=index, flags=1)
    return index


def dump_all(v: Script) -> None:
    v("sw_interface_dump", sw_if_index=ANY, name_filter_valid=False, name_filter="")
    v("sw_interface_vhost_user_dump", sw_if_index=ANY)
    for is_ip6 in (False, True):
        v("ip_route_dump", table={"table_id": 0, "is_ip6": is_ip6, "name": ""})
    for af in (0, 1):
        v("ip_neighbor_dump", sw_if_index=ANY, af=af)
    v("ip_unnumbered_dump", sw_if_index=ANY)
    v("bridge_domain_dump", bd_id=ANY, sw_if_index=ANY)


Scenario = Callable[[Script], None]
SCENARIOS: dict[str, Scenario] = {}


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS[fn.__name__] = fn
    return fn


# -- connection and a fresh VPP ------------------------------------------------------------------


@scenario
def version_and_ping(v: Script) -> None:
    v("show_version")
    v("control_ping")


@scenario
def fresh_vpp(v: Script) -> None:
    dump_all(v)


# -- vhost-user ports ------------------------------------------------------------------------------


@scenario
def create_server_port(v: Script) -> None:
    index = v.port("a.sock", tag="cni:abc:net1")
    v("sw_interface_dump", sw_if_index=index, name_filter_valid=False, name_filter="")
    v("sw_interface_vhost_user_dump", sw_if_index=index)
    v("sw_interface_set_flags", sw_if_index=index, flags=1)
    v("sw_interface_dump", sw_if_index=index, name_filter_valid=False, name_filter="")


@scenario
def create_with_the_v1_message(v: Script) -> None:
    v("create_vhost_user_if", is_server=True, sock_filename=v.path("a.sock"), tag="v1")
    v("sw_interface_vhost_user_dump", sw_if_index=ANY)


@scenario
def create_with_options(v: Script) -> None:
    v.port(
        "a.sock",
        enable_gso=True,
        enable_packed=True,
        enable_event_idx=True,
        disable_mrg_rxbuf=True,
        disable_indirect_desc=True,
        use_custom_mac=True,
        mac_address="aa:bb:cc:dd:ee:ff",
    )
    dump_all(v)


@scenario
def duplicate_socket(v: Script) -> None:
    v.port("a.sock", tag="first")
    v("create_vhost_user_if_v2", is_server=True, sock_filename=v.path("a.sock"), tag="second")
    v("sw_interface_dump", sw_if_index=ANY, name_filter_valid=False, name_filter="")


@scenario
def missing_directory(v: Script) -> None:
    v("create_vhost_user_if_v2", is_server=True, sock_filename=v.path("nowhere/a.sock"))
    v("sw_interface_vhost_user_dump", sw_if_index=ANY)


@scenario
def empty_socket_path(v: Script) -> None:
    v("create_vhost_user_if_v2", is_server=True, sock_filename="")
    v("sw_interface_dump", sw_if_index=ANY, name_filter_valid=False, name_filter="")


@scenario
def socket_path_longer_than_unix_allows(v: Script) -> None:
    name = "d" * 40 + "/" + "s" * (120 - len(v.path("")) - 41)
    Path(v.path("d" * 40)).mkdir()
    v("create_vhost_user_if_v2", is_server=True, sock_filename=v.path(name))
    v("sw_interface_vhost_user_dump", sw_if_index=ANY)


@scenario
def client_mode_without_listener(v: Script) -> None:
    v("create_vhost_user_if_v2", is_server=False, sock_filename=v.path("pod.sock"), tag="client")
    v("sw_interface_dump", sw_if_index=ANY, name_filter_valid=True, name_filter="Virtual")


@scenario
def delete_twice(v: Script) -> None:
    index = v.port("a.sock")
    v("delete_vhost_user_if", sw_if_index=index)
    v("delete_vhost_user_if", sw_if_index=index)
    dump_all(v)


@scenario
def delete_what_is_not_vhost_user(v: Script) -> None:
    v("delete_vhost_user_if", sw_if_index=0)
    loop = int(v("create_loopback", mac_address="00:00:00:00:00:00").sw_if_index)
    v("delete_vhost_user_if", sw_if_index=loop)


@scenario
def calls_on_a_deleted_index(v: Script) -> None:
    index = v.port("a.sock")
    v("delete_vhost_user_if", sw_if_index=index)
    v("sw_interface_set_flags", sw_if_index=index, flags=1)
    v("sw_interface_dump", sw_if_index=index, name_filter_valid=False, name_filter="")
    v("sw_interface_vhost_user_dump", sw_if_index=index)
    v("ip_neighbor_add_del", is_add=True, neighbor=neighbor(index, "10.56.217.131"))


@scenario
def indexes_are_reused_last_freed_first(v: Script) -> None:
    indexes = [v.port(f"p{n}.sock") for n in range(5)]
    for index in indexes[1:4]:
        v("delete_vhost_user_if", sw_if_index=index)
    for n in range(3):
        v.port(f"again{n}.sock")
    v("sw_interface_dump", sw_if_index=ANY, name_filter_valid=True, name_filter="VirtualEthernet")


@scenario
def name_filter_is_a_substring_match(v: Script) -> None:
    for n in range(3):
        v.port(f"p{n}.sock")
    v("sw_interface_dump", sw_if_index=ANY, name_filter_valid=True, name_filter="VirtualEthernet0/0/1")
    v("sw_interface_dump", sw_if_index=ANY, name_filter_valid=True, name_filter="loop")
    v("sw_interface_dump", sw_if_index=ANY, name_filter_valid=True, name_filter="Ethernet0/0")


@scenario
def tags_added_and_removed(v: Script) -> None:
    index = v.port("a.sock")
    v("sw_interface_tag_add_del", is_add=True, sw_if_index=index, tag="cni-gw:loop0")
    v("sw_interface_dump", sw_if_index=index, name_filter_valid=False, name_filter="")
    v("sw_interface_tag_add_del", is_add=False, sw_if_index=index, tag="")
    v("sw_interface_dump", sw_if_index=index, name_filter_valid=False, name_filter="")


# -- loopbacks and addresses -----------------------------------------------------------------------


@scenario
def gateway_loopback(v: Script) -> None:
    loop = loopback(v)
    v("sw_interface_tag_add_del", is_add=True, sw_if_index=loop, tag="cni-gw:loop0")
    dump_all(v)


@scenario
def address_already_on_another_interface(v: Script) -> None:
    loopback(v)
    other = int(v("create_loopback", mac_address="00:00:00:00:00:00").sw_if_index)
    v("sw_interface_add_del_address", sw_if_index=other, is_add=True, del_all=False, prefix="10.56.217.1/24")
    v("sw_interface_add_del_address", sw_if_index=other, is_add=False, del_all=False, prefix="10.9.9.9/24")
    dump_all(v)


@scenario
def address_routes_follow_the_admin_state(v: Script) -> None:
    """An interface's address routes exist only while it is admin up."""
    loop = int(v("create_loopback", mac_address="00:00:00:00:00:00").sw_if_index)
    for prefix in ("10.56.217.1/24", "fd00:56:217::1/64"):
        v("sw_interface_add_del_address", sw_if_index=loop, is_add=True, del_all=False, prefix=prefix)
    dump_all(v)
    v("sw_interface_set_flags", sw_if_index=loop, flags=1)
    dump_all(v)
    v("sw_interface_set_flags", sw_if_index=loop, flags=0)
    dump_all(v)


@scenario
def addresses_dumped_and_a_loopback_deleted(v: Script) -> None:
    loop = loopback(v)
    v("sw_interface_add_del_address", sw_if_index=loop, is_add=True, del_all=False, prefix="10.57.0.1/16")
    v("sw_interface_add_del_address", sw_if_index=loop, is_add=True, del_all=False, prefix="fd00::1/64")
    for is_ipv6 in (False, True):
        v("ip_address_dump", sw_if_index=loop, is_ipv6=is_ipv6)
    v("ip_address_dump", sw_if_index=77, is_ipv6=False)
    port = v.port("sock")
    v("ip_address_dump", sw_if_index=port, is_ipv6=False)
    v("delete_loopback", sw_if_index=port)
    v("delete_loopback", sw_if_index=77)
    v("delete_loopback", sw_if_index=loop)
    v("delete_loopback", sw_if_index=loop)
    v("create_loopback", mac_address="00:00:00:00:00:00")
    dump_all(v)


# -- L3 wiring -------------------------------------------------------------------------------------


@scenario
def l3_wiring_as_add_makes_it(v: Script) -> None:
    loop = loopback(v)
    port = v.port("a.sock", tag="cni:abc:net1")
    v("sw_interface_set_flags", sw_if_index=port, flags=1)
    v("sw_interface_set_unnumbered", sw_if_index=loop, unnumbered_sw_if_index=port, is_add=True)
    v("ip_route_add_del", is_add=True, is_multipath=False, route=route("10.56.217.131", port))
    v("ip_neighbor_add_del", is_add=True, neighbor=neighbor(port, "10.56.217.131"))
    dump_all(v)
    v("ip_unnumbered_dump", sw_if_index=port)
    v("ip_neighbor_dump", sw_if_index=port, af=0)


@scenario
def l3_teardown_as_del_does_it(v: Script) -> None:
    l3_wiring_as_add_makes_it(v)
    port = 2
    v("sw_interface_set_flags", sw_if_index=port, flags=0)
    v("ip_neighbor_add_del", is_add=False, neighbor=neighbor(port, "10.56.217.131"))
    v("ip_route_lookup", table_id=0, exact=1, prefix="10.56.217.131/32")
    v("ip_route_add_del", is_add=False, is_multipath=False, route=whole_entry("10.56.217.131/32"))
    v("sw_interface_set_unnumbered", sw_if_index=1, unnumbered_sw_if_index=port, is_add=False)
    v("delete_vhost_user_if", sw_if_index=port)
    dump_all(v)


@scenario
def unnumbered_with_bad_indexes(v: Script) -> None:
    loop = loopback(v)
    v("sw_interface_set_unnumbered", sw_if_index=loop, unnumbered_sw_if_index=77, is_add=True)
    v("sw_interface_set_unnumbered", sw_if_index=77, unnumbered_sw_if_index=loop, is_add=True)
    port = v.port("a.sock")
    v("sw_interface_set_unnumbered", sw_if_index=loop, unnumbered_sw_if_index=port, is_add=False)
    v("ip_unnumbered_dump", sw_if_index=ANY)


@scenario
def duplicate_route_and_missing_route(v: Script) -> None:
    port = v.port("a.sock")
    v("ip_route_add_del", is_add=True, is_multipath=False, route=route("10.56.217.131", port))
    v("ip_route_add_del", is_add=True, is_multipath=False, route=route("10.56.217.131", port))
    v("ip_route_add_del", is_add=False, is_multipath=False, route=route("10.56.217.150", port))
    v("ip_route_dump", table={"table_id": 0, "is_ip6": False, "name": ""})


@scenario
def route_through_a_deleted_interface(v: Script) -> None:
    port = v.port("a.sock")
    v("ip_route_add_del", is_add=True, is_multipath=False, route=route("10.56.217.131", port))
    v("delete_vhost_user_if", sw_if_index=port)
    v("ip_route_lookup", table_id=0, exact=1, prefix="10.56.217.131/32")
    v("ip_route_add_del", is_add=False, is_multipath=False, route=route("10.56.217.131", port))
    v("ip_route_add_del", is_add=True, is_multipath=False, route=route("10.56.217.132", port))
    v("ip_route_add_del", is_add=True, is_multipath=True, route=route("10.56.217.131", port))
    v("ip_route_dump", table={"table_id": 0, "is_ip6": False, "name": ""})
    v("ip_route_add_del", is_add=False, is_multipath=False, route=whole_entry("10.56.217.131/32"))
    v("ip_route_add_del", is_add=False, is_multipath=False, route=whole_entry("10.56.217.131/32"))
    v("ip_route_dump", table={"table_id": 0, "is_ip6": False, "name": ""})


@scenario
def route_of_a_restarted_vpp(v: Script) -> None:
    """After a restart the recorded index never existed in this VPP."""
    v("ip_route_add_del", is_add=False, is_multipath=False, route=route("10.56.217.131", 5))
    v("ip_route_lookup", table_id=0, exact=1, prefix="10.56.217.131/32")
    v("ip_route_add_del", is_add=False, is_multipath=False, route=whole_entry("10.56.217.131/32"))


@scenario
def second_route_replaces_the_first(v: Script) -> None:
    first, second = v.port("a.sock"), v.port("b.sock")
    v("ip_route_add_del", is_add=True, is_multipath=False, route=route("10.56.217.131", first))
    v("ip_route_add_del", is_add=True, is_multipath=False, route=route("10.56.217.131", second))
    v("ip_route_lookup", table_id=0, exact=1, prefix="10.56.217.131/32")
    v("ip_route_add_del", is_add=False, is_multipath=False, route=route("10.56.217.131", first))
    v("ip_route_lookup", table_id=0, exact=1, prefix="10.56.217.131/32")


@scenario
def route_lookup(v: Script) -> None:
    loop = loopback(v)
    port = v.port("a.sock")
    v("ip_route_add_del", is_add=True, is_multipath=False, route=route("10.56.217.131", port))
    v("ip_route_lookup", table_id=0, exact=1, prefix="10.56.217.131/32")
    v("ip_route_lookup", table_id=0, exact=1, prefix="10.56.217.132/32")
    v("ip_route_lookup", table_id=0, exact=0, prefix="10.56.217.132/32")
    v("ip_route_lookup", table_id=0, exact=1, prefix="10.56.217.1/32")
    v("ip_route_lookup", table_id=7, exact=1, prefix="10.56.217.131/32")
    v("sw_interface_dump", sw_if_index=loop, name_filter_valid=False, name_filter="")


@scenario
def neighbours(v: Script) -> None:
    port = v.port("a.sock")
    v("sw_interface_set_flags", sw_if_index=port, flags=1)
    v("ip_neighbor_add_del", is_add=True, neighbor=neighbor(port, "10.56.217.131"))
    v("ip_neighbor_add_del", is_add=True, neighbor=neighbor(port, "10.56.217.131", "e2:52:b5:7b:58:ae"))
    v("ip_neighbor_dump", sw_if_index=port, af=0)
    v("ip_route_lookup", table_id=0, exact=1, prefix="10.56.217.131/32")
    v("ip_route_dump", table={"table_id": 0, "is_ip6": False, "name": ""})
    v("ip_neighbor_add_del", is_add=False, neighbor=neighbor(port, "10.56.217.131"))
    v("ip_neighbor_add_del", is_add=False, neighbor=neighbor(port, "10.56.217.131"))
    v("ip_neighbor_add_del", is_add=True, neighbor=neighbor(77, "10.56.217.131"))
    v("ip_neighbor_dump", sw_if_index=ANY, af=0)


@scenario
def a_route_over_a_neighbours_entry(v: Script) -> None:
    """A neighbour's /32 alone has no counters (stats_index ~0); a route on it takes one."""
    port = v.port("a.sock")
    v("sw_interface_set_flags", sw_if_index=port, flags=1)
    v("ip_neighbor_add_del", is_add=True, neighbor=neighbor(port, "10.56.217.131"))
    v("ip_route_add_del", is_add=True, is_multipath=False, route=route("10.56.217.131", port))
    v("ip_route_lookup", table_id=0, exact=1, prefix="10.56.217.131/32")
    v("ip_route_add_del", is_add=False, is_multipath=False, route=route("10.56.217.131", port))
    v("ip_route_add_del", is_add=True, is_multipath=False, route=route("10.56.217.132", port))
    v("ip_route_dump", table={"table_id": 0, "is_ip6": False, "name": ""})


@scenario
def neighbours_go_with_their_interface_routes_stay(v: Script) -> None:
    port = v.port("a.sock")
    v("ip_route_add_del", is_add=True, is_multipath=False, route=route("10.56.217.131", port))
    v("ip_neighbor_add_del", is_add=True, neighbor=neighbor(port, "10.56.217.131"))
    v("delete_vhost_user_if", sw_if_index=port)
    dump_all(v)


# -- IPv6 ------------------------------------------------------------------------------------------


@scenario
def dual_stack_wiring_as_add_makes_it(v: Script) -> None:
    loop = loopback(v)
    v(
        "sw_interface_add_del_address",
        sw_if_index=loop,
        is_add=True,
        del_all=False,
        prefix="fd00:56:217::1/64",
    )
    port = v.port("a.sock", tag="cni:abc:net1")
    v("sw_interface_set_flags", sw_if_index=port, flags=1)
    v("sw_interface_set_unnumbered", sw_if_index=loop, unnumbered_sw_if_index=port, is_add=True)
    v("sw_interface_ip6_enable_disable", sw_if_index=port, enable=True)
    for ip in ("10.56.217.131", "fd00:56:217::83"):
        v("ip_route_add_del", is_add=True, is_multipath=False, route=route(ip, port))
        v("ip_neighbor_add_del", is_add=True, neighbor=neighbor(port, ip))
    v("ip_route_lookup", table_id=0, exact=1, prefix="fd00:56:217::83/128")
    v("ip_neighbor_dump", sw_if_index=port, af=1)
    for is_ipv6 in (False, True):
        v("ip_address_dump", sw_if_index=port, is_ipv6=is_ipv6)
    dump_all(v)


@scenario
def dual_stack_teardown_as_del_does_it(v: Script) -> None:
    dual_stack_wiring_as_add_makes_it(v)
    port = 2
    for ip in ("10.56.217.131", "fd00:56:217::83"):
        v("ip_neighbor_add_del", is_add=False, neighbor=neighbor(port, ip))
        v(
            "ip_route_add_del",
            is_add=False,
            is_multipath=False,
            route=whole_entry(f"{ip}/{32 if '.' in ip else 128}"),
        )
    v("delete_vhost_user_if", sw_if_index=port)
    dump_all(v)


@scenario
def ipv6_enabled_twice_disabled_twice(v: Script) -> None:
    """VPP counts enables: the second is refused with -81 but counted; disabling one that
    is off is -62; and an IPv6 address enables it too."""
    port = v.port("a.sock")
    for enable in (True, True, False, False, False):
        v("sw_interface_ip6_enable_disable", sw_if_index=port, enable=enable)
    v("sw_interface_ip6_enable_disable", sw_if_index=77, enable=True)
    loop = int(v("create_loopback", mac_address="00:00:00:00:00:00").sw_if_index)
    v(
        "sw_interface_add_del_address",
        sw_if_index=loop,
        is_add=True,
        del_all=False,
        prefix="fd00:56:217::1/64",
    )
    v("sw_interface_ip6_enable_disable", sw_if_index=loop, enable=True)


@scenario
def ipv6_gateway_already_on_another_interface(v: Script) -> None:
    first = int(v("create_loopback", mac_address="00:00:00:00:00:00").sw_if_index)
    v(
        "sw_interface_add_del_address",
        sw_if_index=first,
        is_add=True,
        del_all=False,
        prefix="fd00:56:217::1/64",
    )
    other = int(v("create_loopback", mac_address="00:00:00:00:00:00").sw_if_index)
    for prefix in ("fd00:56:217::1/64", "fd00:56:217::2/64", "fd00:56:217:0:1::1/80"):
        v("sw_interface_add_del_address", sw_if_index=other, is_add=True, del_all=False, prefix=prefix)
    v(
        "sw_interface_add_del_address",
        sw_if_index=first,
        is_add=True,
        del_all=False,
        prefix="fd00:56:217::9/64",
    )
    dump_all(v)


@scenario
def ipv6_route_through_a_deleted_interface(v: Script) -> None:
    port = v.port("a.sock")
    v("ip_route_add_del", is_add=True, is_multipath=False, route=route("fd00:56:217::83", port))
    v("ip_neighbor_add_del", is_add=True, neighbor=neighbor(port, "fd00:56:217::83"))
    v("delete_vhost_user_if", sw_if_index=port)
    v("ip_route_lookup", table_id=0, exact=1, prefix="fd00:56:217::83/128")
    v("ip_route_add_del", is_add=False, is_multipath=False, route=route("fd00:56:217::83", port))
    v("ip_route_add_del", is_add=False, is_multipath=False, route=whole_entry("fd00:56:217::83/128"))
    v("ip_route_lookup", table_id=0, exact=1, prefix="fd00:56:217::83/128")
    dump_all(v)


# -- L2 --------------------------------------------------------------------------------------------


@scenario
def bridge_domain_made_joined_and_left(v: Script) -> None:
    v(
        "bridge_domain_add_del_v2",
        bd_id=4242,
        flood=True,
        uu_flood=True,
        forward=True,
        learn=True,
        arp_term=False,
        arp_ufwd=False,
        mac_age=0,
        bd_tag="cni-vhostuser",
        is_add=True,
    )
    port = v.port("a.sock")
    v("sw_interface_set_l2_bridge", rx_sw_if_index=port, bd_id=4242, port_type=0, shg=0, enable=True)
    v("bridge_domain_dump", bd_id=4242, sw_if_index=ANY)
    v("bridge_domain_add_del_v2", bd_id=4242, is_add=False)
    v("sw_interface_set_l2_bridge", rx_sw_if_index=port, bd_id=4242, port_type=0, shg=0, enable=False)
    v("bridge_domain_dump", bd_id=4242, sw_if_index=ANY)
    v("bridge_domain_add_del_v2", bd_id=4242, is_add=False)
    v("bridge_domain_dump", bd_id=ANY, sw_if_index=ANY)


@scenario
def bridge_domain_twice_and_missing(v: Script) -> None:
    v("bridge_domain_add_del_v2", bd_id=7, flood=True, is_add=True)
    v("bridge_domain_add_del_v2", bd_id=7, flood=True, is_add=True)
    v("bridge_domain_add_del_v2", bd_id=8, is_add=False)
    v("bridge_domain_add_del_v2", bd_id=0, is_add=True)
    v("bridge_domain_add_del_v2", bd_id=0, is_add=False)
    v("bridge_domain_dump", bd_id=ANY, sw_if_index=ANY)


@scenario
def bridge_domain_with_the_v1_message(v: Script) -> None:
    v("bridge_domain_add_del", bd_id=9, flood=True, learn=True, bd_tag="old", is_add=True)
    v("bridge_domain_dump", bd_id=9, sw_if_index=ANY)
    v("bridge_domain_add_del", bd_id=9, is_add=False)
    v("bridge_domain_dump", bd_id=9, sw_if_index=ANY)


@scenario
def joining_a_bridge_domain_nobody_made(v: Script) -> None:
    port = v.port("a.sock")
    v("sw_interface_set_l2_bridge", rx_sw_if_index=port, bd_id=55, port_type=0, shg=0, enable=True)
    v("bridge_domain_dump", bd_id=ANY, sw_if_index=ANY)
    v("sw_interface_set_l2_bridge", rx_sw_if_index=77, bd_id=55, port_type=0, shg=0, enable=True)


@scenario
def a_deleted_member_leaves_its_bridge_domain(v: Script) -> None:
    v("bridge_domain_add_del_v2", bd_id=3, flood=True, is_add=True)
    port = v.port("a.sock")
    v("sw_interface_set_l2_bridge", rx_sw_if_index=port, bd_id=3, port_type=0, shg=0, enable=True)
    v("delete_vhost_user_if", sw_if_index=port)
    v("bridge_domain_dump", bd_id=3, sw_if_index=ANY)
    v("bridge_domain_add_del_v2", bd_id=3, is_add=False)


# -- the packet tracer (cli_inband) -------------------------------------------------------------


@scenario
def packet_tracer_without_packets(v: Script) -> None:
    for command in (
        "clear trace",
        "show trace",
        "trace add vhost-user-input 20",
        "show trace max 20",
        "trace add no-such-node 5",
        "no such command",
        "clear trace",
        "show trace",
    ):
        v("cli_inband", cmd=command)


# -- the runs --------------------------------------------------------------------------------------


def run_on(api_socket: str, base: Path, script: Scenario) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    with VppProbe(api_socket) as probe:
        recorder = Script(probe, base)
        script(recorder)
        state = recorder._normal("", probe.snapshot(addresses=False))
    return recorder.replies, state


@pytest.fixture
def two_dirs() -> Iterator[tuple[Path, Path]]:
    dirs = (Path(tempfile.mkdtemp(prefix="de", dir="/tmp")), Path(tempfile.mkdtemp(prefix="dr", dir="/tmp")))
    yield dirs
    for path in dirs:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("against", [vpp_targets.primary_label(), vpp_targets.old_label()])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_emulator_answers_as_vpp(
    name: str, against: str, two_dirs: tuple[Path, Path], real_vpps: RealVpps
) -> None:
    """Against each real release, the emulator in that release's profile."""
    real = real_vpps.fresh(against)
    emu_dir, real_dir = two_dirs
    profile = against.removeprefix("vpp-") if against.startswith("vpp-2") else "26.06"
    with Emulator.start(str(emu_dir / "api.sock"), profile=profile) as emulator:
        emulated = run_on(emulator.socket_path, emu_dir, SCENARIOS[name])
    actual = run_on(real.api_socket, real_dir, SCENARIOS[name])
    real.restart()  # what the scenario made is not cleaned up: the next test gets a new VPP
    for n, ((message, emu_reply), (_, vpp_reply)) in enumerate(zip(emulated[0], actual[0], strict=True)):
        assert emu_reply == vpp_reply, f"call {n} {message}:\n emulator {emu_reply}\n VPP      {vpp_reply}"
    for key, vpp_value in actual[1].items():
        assert emulated[1][key] == vpp_value, (
            f"state {key}:\n emulator {emulated[1][key]}\n VPP      {vpp_value}"
        )
