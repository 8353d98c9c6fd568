"""Typed operations on VPP: the one module that names VPP's messages and knows their fields.

The plugin's backend, the operator CLI and the node agent call these and never a message:
ports, interfaces, addresses, routes, neighbours, bridge domains, the lists of messages a
configuration needs, and the choice between a message and its newer variant (made once,
here). Every call goes through `VppClient` (timeouts, retvals as `VppApiError`).

VPP traps these are built around (see the VPP reference notes):
- `sw_interface_dump`'s name filter is a substring match: results are compared by name.
- A deleted interface's routes stay in the FIB; a route delete naming a path through a
  vanished index is refused with -54, so a pod's /32 is removed as a whole entry.
- Freed indexes and VirtualEthernet names are handed to the next port.
- Unnumbered forwards IPv6 on a port, but only a port with IPv6 enabled has a link-local
  address and answers neighbour discovery; enabling it twice is refused (-81).
- An IPv6 address already on another interface is refused with -127, not IPv4's -105.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

from vhostuser_vpp.addressing import family, host_prefix
from vhostuser_vpp.tags import BRIDGE_DOMAIN_TAG
from vhostuser_vpp.vpp.client import VppClient
from vhostuser_vpp.vpp.errors import SocketInUse, VppApiError, VppIncompatible

log = logging.getLogger(__name__)

ANY_INDEX = 0xFFFFFFFF
ADMIN_UP = 1
LINK_UP = 2
NEIGHBOR_STATIC = 1
PATH_NH_PROTO_IP4 = 0
PATH_NH_PROTO_IP6 = 1
ADDRESS_FAMILY_IP4 = 0
ADDRESS_FAMILY_IP6 = 1
PATH_TYPE_NORMAL = 0
ERR_INVALID_SW_IF_INDEX = -2
ERR_NO_SUCH_ENTRY = -6
ERR_IF_ALREADY_EXISTS = -79
ERR_VALUE_EXIST = -81
ERR_ADDRESS_IN_USE = -105
ERR_BD_ALREADY_EXISTS = -119
ERR_BD_IN_USE = -120
ERR_DUPLICATE_IF_ADDRESS = -127
VHOST_NAME_PREFIX = "VirtualEthernet"
LOOPBACK_NAME_PREFIX = "loop"
_EMPTY_LABEL = {"is_uniform": 0, "label": 0, "ttl": 0, "exp": 0}
# `show clock`'s first line: "Time now .144265, Thu, 03 Dec 2026 18:11:06 GMT" (seconds since start).
_TIME_NOW = re.compile(r"^Time now (\d*\.?\d+)", re.MULTILINE)

# Messages every run needs, and those each wiring mode adds; where VPP offers a newer
# variant it is preferred. `missing_for` checks a VPP against them (ADD and doctor).
COMMON_MESSAGES = (
    "sw_interface_dump",
    "sw_interface_set_flags",
    "sw_interface_vhost_user_dump",
    "delete_vhost_user_if",
)
MESSAGES_BY_MODE = {
    "l3": (
        "sw_interface_set_unnumbered",
        "ip_route_add_del",
        "ip_route_lookup",
        "ip_unnumbered_dump",
        "ip_address_dump",
        "ip_neighbor_add_del",
        "ip_neighbor_dump",
        "sw_interface_ip6_enable_disable",
    ),
    "l2": ("sw_interface_set_l2_bridge", "bridge_domain_dump"),
    "none": (),
}
CREATE_VARIANTS = ("create_vhost_user_if_v2", "create_vhost_user_if")
BRIDGE_DOMAIN_ADD_DEL_VARIANTS = ("bridge_domain_add_del_v2", "bridge_domain_add_del")
VARIANTS_BY_MODE = {"l2": (BRIDGE_DOMAIN_ADD_DEL_VARIANTS,)}
# What making the gateway loopback takes (l3 with vhost.create_loopback).
LOOPBACK_MESSAGES = (
    "create_loopback",
    "delete_loopback",
    "sw_interface_add_del_address",
    "sw_interface_tag_add_del",
)
# The api_json modules defining what a run of each mode may send: the plugin loads only these.
COMMON_API_MODULES = ("vpe", "interface", "vhost_user")
API_MODULES_BY_MODE = {"l3": ("ip", "ip_neighbor"), "l2": ("l2",), "none": ()}


class VhostOptions(NamedTuple):
    """A vhost-user port's own settings, as the create message takes them: built from the
    network config at ADD and from the record at restore (`recorded`, `from_recorded`)."""

    enable_gso: bool = False
    enable_packed: bool = False
    enable_event_idx: bool = False
    disable_mrg_rxbuf: bool = False
    disable_indirect_desc: bool = False
    # VPP's side of the port (the pod's gwMac); None: VPP picks 02:fe:...
    port_mac: str | None = None

    def recorded(self) -> dict[str, Any]:
        """The settings restore needs again (the MAC is kept in the record's vhostmac)."""
        return {k: v for k, v in self._asdict().items() if k != "port_mac"}

    @classmethod
    def from_recorded(cls, settings: Mapping[str, Any], port_mac: str | None) -> VhostOptions:
        """A setting missing from the record, or of another type than its default, reads
        as the default (records of older versions lack the newer options)."""
        defaults = cls._field_defaults
        fields = {
            k: settings[k] if isinstance(settings.get(k), type(defaults[k])) else defaults[k]
            for k in cls._fields
            if k != "port_mac"
        }
        return cls(**fields, port_mac=port_mac)


class Interface(NamedTuple):
    sw_if_index: int
    name: str
    tag: str
    mac: str
    admin_up: bool
    link_up: bool
    link_mtu: int


class VppPort(NamedTuple):
    """A vhost-user interface as VPP reports it (interface and vhost-user details)."""

    sw_if_index: int
    name: str
    tag: str
    mac: str
    admin_up: bool
    link_up: bool
    link_mtu: int
    socket_path: str
    is_server: bool
    num_regions: int
    sock_errno: int
    virtio_net_hdr_sz: int
    features_first_32: int
    features_last_32: int

    @property
    def frontend_connected(self) -> bool:
        # A frontend that finished negotiating has sent its memory table.
        return self.num_regions > 0


class HostRoute(NamedTuple):
    """A /32 or /128 in table 0 with one path through an interface: the shape of a pod's route."""

    ip: str
    sw_if_index: int


class Neighbour(NamedTuple):
    ip: str
    mac: str
    sw_if_index: int
    static: bool


class BridgeDomain(NamedTuple):
    bd_id: int
    tag: str
    members: frozenset[int]


class Vpp:
    """Operations on one connected VPP. `tolerate_gone` makes a call on a vanished index (or
    entry) a no-op: what DEL and rollbacks want, since "already gone" is their goal."""

    def __init__(self, client: VppClient) -> None:
        self.client = client
        self._variants: dict[tuple[str, str], str] = {}

    # -- what this VPP offers --------------------------------------------------------------------

    def version(self) -> str:
        """For messages: "unknown version" where VPP will not say."""
        try:
            return str(self.client.call("show_version").version)
        except (VppIncompatible, VppApiError):
            return "unknown version"

    def cli(self, command: str) -> str:
        """VPP's CLI through the API (`cli_inband`): for what has no message of its own, the
        packet tracer. A command VPP refuses raises VppApiError (retval -1)."""
        return str(self.client.call("cli_inband", cmd=command).reply)

    def ping(self) -> int:
        """VPP's pid: a restarted VPP answers with another, unless it is pid 1 in a container
        (see `started_at`)."""
        return int(self.client.call("control_ping").vpe_pid)

    def started_at(self) -> float | None:
        """When this VPP started, by the wall clock (to ~0.1 s): now minus `show clock`'s time
        since start. It tells a restart where the pid cannot; None where VPP will not say."""
        try:
            found = _TIME_NOW.search(self.cli("show clock"))
        except (VppApiError, VppIncompatible):
            return None
        return time.time() - float(found.group(1)) if found else None

    def missing_for(
        self, mode: str, create_loopback: bool = False, enable_event_idx: bool = False
    ) -> list[str]:
        """The messages a configuration needs that this VPP lacks, each explained."""
        needed = list(COMMON_MESSAGES) + list(MESSAGES_BY_MODE[mode])
        if enable_event_idx:
            needed.append(CREATE_VARIANTS[0])
        if mode == "l3" and create_loopback:
            needed += LOOPBACK_MESSAGES
        missing = [self.client.why_missing(m) for m in needed if not self.client.offers(m)]
        for choice in (CREATE_VARIANTS, *VARIANTS_BY_MODE.get(mode, ())):
            if not any(self.client.offers(m) for m in choice):
                missing.append(" or ".join(self.client.why_missing(m) for m in choice))
        return missing

    def _variant(self, newer: str, older: str) -> str:
        key = (newer, older)
        if key not in self._variants:
            self._variants[key] = newer if self.client.offers(newer) else older
        return self._variants[key]

    # -- interfaces --------------------------------------------------------------------------------

    def interface(self, index: int) -> Interface | None:
        found = self._interfaces(index, "")
        return next((i for i in found if i.sw_if_index == index), None)

    def interface_named(self, name: str) -> Interface | None:
        return next((i for i in self.interfaces_named_like(name) if i.name == name), None)

    def interfaces_named_like(self, name: str) -> list[Interface]:
        return self._interfaces(ANY_INDEX, name)

    def interface_names(self) -> dict[int, str]:
        """Every interface, index -> name: what tells a route's path points nowhere."""
        return {i.sw_if_index: i.name for i in self._interfaces(ANY_INDEX, "")}

    def _interfaces(self, index: int, name_filter: str) -> list[Interface]:
        found = self.client.dump(
            "sw_interface_dump",
            sw_if_index=index,
            name_filter_valid=bool(name_filter),
            name_filter=name_filter,
        )
        return [_interface(d) for d in found]

    def set_admin_up(self, index: int, up: bool, tolerate_gone: bool = False) -> None:
        self._call("sw_interface_set_flags", tolerate_gone, sw_if_index=index, flags=ADMIN_UP if up else 0)

    def set_tag(self, index: int, tag: str) -> None:
        self.client.call("sw_interface_tag_add_del", is_add=True, sw_if_index=index, tag=tag)

    # -- vhost-user ports --------------------------------------------------------------------------

    def vhost_ports(self) -> list[VppPort]:
        interfaces = self.interfaces_named_like(VHOST_NAME_PREFIX)
        vhosts = {int(v.sw_if_index): v for v in self._vhost_details(ANY_INDEX)}
        return [_port(i, vhosts[i.sw_if_index]) for i in interfaces if i.sw_if_index in vhosts]

    def vhost_port(self, index: int) -> VppPort | None:
        interface = self.interface(index)
        vhost = self._vhost_details(index) if interface is not None else []
        return _port(interface, vhost[0]) if interface is not None and vhost else None

    def vhost_socket(self, index: int) -> str | None:
        """The socket path of the vhost-user port at `index`; None if it is none."""
        found = self._vhost_details(index)
        return str(found[0].sock_filename) if found else None

    def vhost_port_at(self, socket_path: str) -> VppPort | None:
        match = next((v for v in self._vhost_details(ANY_INDEX) if v.sock_filename == socket_path), None)
        return self.vhost_port(int(match.sw_if_index)) if match is not None else None

    def _vhost_details(self, index: int) -> list[Any]:
        return self.client.dump("sw_interface_vhost_user_dump", sw_if_index=index)

    def create_vhost_port(self, socket_path: str, is_server: bool, tag: str, options: VhostOptions) -> int:
        """Its sw_if_index; `SocketInUse` when VPP has a port on that socket already."""
        message = self._variant(*CREATE_VARIANTS)
        fields: dict[str, Any] = {
            "is_server": is_server,
            "sock_filename": socket_path,
            "renumber": False,
            "custom_dev_instance": 0,
            "disable_mrg_rxbuf": options.disable_mrg_rxbuf,
            "disable_indirect_desc": options.disable_indirect_desc,
            "enable_gso": options.enable_gso,
            "enable_packed": options.enable_packed,
            "use_custom_mac": options.port_mac is not None,
            "mac_address": options.port_mac or "00:00:00:00:00:00",
            "tag": tag,
        }
        if message == CREATE_VARIANTS[0]:
            fields["enable_event_idx"] = options.enable_event_idx
        try:
            return int(self.client.call(message, **fields).sw_if_index)
        except VppApiError as err:
            if err.retval != ERR_IF_ALREADY_EXISTS:
                raise
            raise SocketInUse(socket_path, int(err.reply.sw_if_index)) from err

    def delete_vhost_port(self, index: int, tolerate_gone: bool = False) -> None:
        self._call("delete_vhost_user_if", tolerate_gone, sw_if_index=index)

    # -- loopbacks and addresses -------------------------------------------------------------------

    def create_loopback(self) -> int:
        return int(self.client.call("create_loopback", mac_address="00:00:00:00:00:00").sw_if_index)

    def delete_loopback(self, index: int) -> None:
        self.client.call("delete_loopback", sw_if_index=index)

    def add_address(self, index: int, cidr: str) -> None:
        self.client.call(
            "sw_interface_add_del_address", sw_if_index=index, is_add=True, del_all=False, prefix=cidr
        )

    def addresses(self, index: int, ip6: bool = False) -> list[str]:
        """The interface's addresses of one family with their prefix lengths."""
        found = self.client.dump("ip_address_dump", sw_if_index=index, is_ipv6=ip6)
        return [str(a.prefix) for a in found]

    def enable_ip6(self, index: int) -> None:
        """IPv6 on a port (its link-local address, and the IPv6 addresses it borrows when
        unnumbered); already enabled (a retried ADD) is fine."""
        self._call("sw_interface_ip6_enable_disable", True, ERR_VALUE_EXIST, sw_if_index=index, enable=True)

    def set_unnumbered(self, lender: int, borrower: int, is_add: bool, tolerate_gone: bool = False) -> None:
        self._call(
            "sw_interface_set_unnumbered",
            tolerate_gone,
            sw_if_index=lender,
            unnumbered_sw_if_index=borrower,
            is_add=is_add,
        )

    def lender_of(self, index: int) -> int | None:
        """The interface `index` borrows its address from, if it is unnumbered."""
        found = self.client.dump("ip_unnumbered_dump", sw_if_index=index)
        return next((int(d.ip_sw_if_index) for d in found if int(d.sw_if_index) == index), None)

    # -- routes ------------------------------------------------------------------------------------

    def route_paths(self, ip: str) -> list[int] | None:
        """The interfaces the exact entry of <ip>'s host prefix leads to, or None when there
        is none."""
        try:
            found = self.client.call("ip_route_lookup", table_id=0, exact=1, prefix=host_prefix(ip))
        except VppApiError as err:
            if err.retval != ERR_NO_SUCH_ENTRY:
                raise
            return None
        return [int(path.sw_if_index) for path in found.route.paths[: found.route.n_paths]]

    def add_pod_route(self, ip: str, index: int) -> None:
        """<ip>/32 or /128 via the port; non-multipath: it replaces the entry's paths."""
        self.client.call("ip_route_add_del", is_add=True, is_multipath=False, route=pod_route(ip, index))

    def remove_pod_route(self, ip: str, port_index: int | None, added_via: int | None) -> bool:
        """Removes <ip>'s host prefix unless it now leads to an interface some other pod or operator
        wired for that address. Returns whether a route was removed.

        The route is ours to remove when each of its paths leads to the port (`port_index`),
        to an index that no longer exists (the port was deleted, or VPP restarted), or to
        the index ADD routed it through (`added_via`) if the interface there now is not
        wired for the address (no neighbour for it: VPP reused the index for another pod).
        A route that leads to another interface holding the address is left, with a warning.

        The delete names no path (n_paths 0 removes the entry as a whole): VPP decodes every
        path first and refuses one through a vanished index with -54, keeping the route.
        """
        via = self.route_paths(ip)
        if via is None:
            return False
        foreign = [i for i in via if i != port_index and not self._stale_path(i, ip, added_via)]
        if foreign:
            log.warning(
                "left %s: it leads to sw_if_index %s, wired for it by someone else", host_prefix(ip), foreign
            )
            return False
        route = {"table_id": 0, "stats_index": 0, "prefix": host_prefix(ip), "n_paths": 0, "paths": []}
        self.client.call("ip_route_add_del", is_add=False, is_multipath=False, route=route)
        return True

    def _stale_path(self, index: int, ip: str, added_via: int | None) -> bool:
        if self.interface(index) is None:
            return True
        if index != added_via:
            return False
        return all(n.ip != ip for n in self.neighbours(index, ip6=family(ip) == 6))

    def host_routes(self) -> list[HostRoute]:
        """Every /32 and /128 in table 0 with one normal path through an interface."""
        found = []
        for details in self._host_route_details():
            route = details.route
            paths = list(route.paths)[: int(route.n_paths)]
            if route.prefix.prefixlen != route.prefix.max_prefixlen or len(paths) != 1:
                continue
            path = paths[0]
            if int(path.type) != PATH_TYPE_NORMAL or int(path.sw_if_index) == ANY_INDEX:
                continue
            found.append(HostRoute(str(route.prefix.network_address), int(path.sw_if_index)))
        return found

    def _host_route_details(self) -> list[Any]:
        return [
            details
            for ip6 in (False, True)
            for details in self.client.dump("ip_route_dump", table={"table_id": 0, "is_ip6": ip6, "name": ""})
        ]

    # -- neighbours --------------------------------------------------------------------------------

    def add_neighbour(self, index: int, ip: str, mac: str) -> None:
        self.client.call("ip_neighbor_add_del", is_add=True, neighbor=pod_neighbor(index, ip, mac))

    def delete_neighbour(self, index: int, ip: str, mac: str, static: bool = True) -> None:
        """Gone already is fine."""
        neighbor = {**pod_neighbor(index, ip, mac), "flags": NEIGHBOR_STATIC if static else 0}
        self._call("ip_neighbor_add_del", True, ERR_NO_SUCH_ENTRY, is_add=False, neighbor=neighbor)

    def neighbours(self, index: int = ANY_INDEX, ip6: bool | None = None) -> list[Neighbour]:
        """Of one family, or (None) of both: VPP dumps one family per request."""
        families = (False, True) if ip6 is None else (ip6,)
        found = [
            n
            for v6 in families
            for n in self.client.dump(
                "ip_neighbor_dump", sw_if_index=index, af=ADDRESS_FAMILY_IP6 if v6 else ADDRESS_FAMILY_IP4
            )
        ]
        return [
            Neighbour(
                ip=str(n.neighbor.ip_address),
                mac=str(n.neighbor.mac_address),
                sw_if_index=int(n.neighbor.sw_if_index),
                static=bool(int(n.neighbor.flags) & NEIGHBOR_STATIC),
            )
            for n in found
        ]

    # -- bridge domains ----------------------------------------------------------------------------

    def bridge_domain(self, bd_id: int) -> BridgeDomain | None:
        found = self._bridge_domains(bd_id)
        return found[0] if found else None

    def bridge_domains(self) -> list[BridgeDomain]:
        return self._bridge_domains(ANY_INDEX)

    def _bridge_domains(self, bd_id: int) -> list[BridgeDomain]:
        found = self.client.dump("bridge_domain_dump", bd_id=bd_id, sw_if_index=ANY_INDEX)
        return [
            BridgeDomain(int(d.bd_id), str(d.bd_tag), frozenset(int(m.sw_if_index) for m in d.sw_if_details))
            for d in found
        ]

    def add_bridge_domain(self, bd_id: int) -> None:
        """Tagged as ours; one another ADD made a moment ago is fine."""
        try:
            self.client.call(
                self._variant(*BRIDGE_DOMAIN_ADD_DEL_VARIANTS),
                bd_id=bd_id,
                flood=True,
                uu_flood=True,
                forward=True,
                learn=True,
                arp_term=False,
                arp_ufwd=False,
                mac_age=0,
                bd_tag=BRIDGE_DOMAIN_TAG,
                is_add=True,
            )
        except VppApiError as err:
            if err.retval != ERR_BD_ALREADY_EXISTS:
                raise

    def delete_bridge_domain(self, bd_id: int) -> bool:
        """False when it gained a member meanwhile (-120): then it stays."""
        try:
            self.client.call(self._variant(*BRIDGE_DOMAIN_ADD_DEL_VARIANTS), bd_id=bd_id, is_add=False)
        except VppApiError as err:
            if err.retval != ERR_BD_IN_USE:
                raise
            return False
        return True

    def set_bridge_domain(self, index: int, bd_id: int, member: bool, tolerate_gone: bool = False) -> None:
        self._call(
            "sw_interface_set_l2_bridge",
            tolerate_gone,
            rx_sw_if_index=index,
            bd_id=bd_id,
            port_type=0,
            shg=0,
            enable=member,
        )

    # -- one call ----------------------------------------------------------------------------------

    def _call(
        self, message: str, tolerate: bool, retval: int = ERR_INVALID_SW_IF_INDEX, **fields: Any
    ) -> None:
        """A call whose `retval` means "already as wanted" (gone, absent), when tolerated."""
        try:
            self.client.call(message, **fields)
        except VppApiError as err:
            if not tolerate or err.retval != retval:
                raise
            log.debug("%s: already done (%s)", message, err)


def _interface(details: Any) -> Interface:
    flags = int(details.flags)
    return Interface(
        sw_if_index=int(details.sw_if_index),
        name=str(details.interface_name),
        tag=str(details.tag),
        mac=str(details.l2_address),
        admin_up=bool(flags & ADMIN_UP),
        link_up=bool(flags & LINK_UP),
        link_mtu=int(details.link_mtu),
    )


def _port(interface: Interface, vhost: Any) -> VppPort:
    return VppPort(
        *interface,
        socket_path=str(vhost.sock_filename),
        is_server=bool(vhost.is_server),
        num_regions=int(vhost.num_regions),
        sock_errno=int(vhost.sock_errno),
        virtio_net_hdr_sz=int(vhost.virtio_net_hdr_sz),
        features_first_32=int(vhost.features_first_32),
        features_last_32=int(vhost.features_last_32),
    )


def pod_route(ip: str, index: int) -> dict[str, Any]:
    """`ip_route_add_del`'s route: <ip>/32 or /128 via the port (vpp_papi wants all 16
    labels)."""
    ip6 = family(ip) == 6
    path = {
        "sw_if_index": index,
        "table_id": 0,
        "rpf_id": 0,
        "weight": 0,
        "preference": 0,
        "type": 0,
        "flags": 0,
        "proto": PATH_NH_PROTO_IP6 if ip6 else PATH_NH_PROTO_IP4,
        "nh": {
            "address": {"ip6" if ip6 else "ip4": ip},
            "via_label": 0,
            "obj_id": 0,
            "classify_table_index": 0,
        },
        "n_labels": 0,
        "label_stack": [_EMPTY_LABEL] * 16,
    }
    return {"table_id": 0, "stats_index": 0, "prefix": host_prefix(ip), "n_paths": 1, "paths": [path]}


def pod_neighbor(index: int, ip: str, mac: str) -> dict[str, Any]:
    """`ip_neighbor_add_del`'s static entry ip -> mac on the port."""
    return {"sw_if_index": index, "flags": NEIGHBOR_STATIC, "mac_address": mac, "ip_address": ip}
