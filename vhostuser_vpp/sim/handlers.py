"""One function per API message: decode what matters, ask the state, shape VPP's answer.

A handler returns the messages to send back, in order, as (name, fields) pairs; the
dispatcher adds ids and the request's context. Dumps return their details only: the
`control_ping` a client sends after a dump is an ordinary request and ends the stream.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vhostuser_vpp.sim import retvals as rv
from vhostuser_vpp.sim.fib import (
    ANY_INDEX,
    LABEL_STACK_SIZE,
    FibEntry,
    FibPath,
    IPAddress,
)
from vhostuser_vpp.sim.msgtable import MessageTable
from vhostuser_vpp.sim.state import Interface, VhostSpec, VppState

Fields = dict[str, Any]
Reply = tuple[str, Fields]
ADDRESS_FAMILY_IP6 = 1


@dataclass
class Context:
    """What a handler may know besides the message: who asked, and about the emulator."""

    state: VppState
    table: MessageTable
    client_index: int
    vpe_pid: int
    version: str
    build_date: str


Handler = Callable[[Context, Any], list[Reply]]
HANDLERS: dict[str, Handler] = {}


def handles(name: str) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        HANDLERS[name] = func
        return func

    return register


def retval_only(reply: str, retval: int) -> list[Reply]:
    return [(reply, {"retval": retval})]


# -- memclnt / vpe -------------------------------------------------------------------------
@handles("sockclnt_create")
def sockclnt_create(ctx: Context, msg: Any) -> list[Reply]:
    table = [{"index": msg_id, "name": name} for msg_id, name in ctx.table.entries()]
    return [
        (
            "sockclnt_create_reply",
            {"response": 0, "index": ctx.client_index, "count": len(table), "message_table": table},
        )
    ]


@handles("sockclnt_delete")
def sockclnt_delete(ctx: Context, msg: Any) -> list[Reply]:
    # A real VPP 26.06 answers 1 here (transcript); clients ignore it.
    return [("sockclnt_delete_reply", {"response": 1})]


@handles("control_ping")
def control_ping(ctx: Context, msg: Any) -> list[Reply]:
    return [("control_ping_reply", {"retval": rv.OK, "vpe_pid": ctx.vpe_pid})]


@handles("show_version")
def show_version(ctx: Context, msg: Any) -> list[Reply]:
    return [
        (
            "show_version_reply",
            {
                "retval": rv.OK,
                "program": "vpe",
                "version": ctx.version,
                "build_date": ctx.build_date,
                "build_directory": "",
            },
        )
    ]


# VPP's answer to `show trace` with nothing captured, on a VPP without workers.
TRACE_HEADER = "------------------- Start of thread 0 vpp_main -------------------\n"
NO_TRACE = "No packets in trace buffer\n"
# Input nodes a trace may start at, of those this emulator's VPP would have.
TRACEABLE_NODES = frozenset({"vhost-user-input"})


@handles("cli_inband")
def cli_inband(ctx: Context, msg: Any) -> list[Reply]:
    """The packet tracer's commands (what `vhostuser-vpp trace` sends) and `show clock` (how
    the agent tells a restarted VPP whose pid stays 1); anything else is refused with
    retval -1 and VPP's words for it."""
    words = str(msg.cmd).split()
    trace = ctx.state.trace
    if words == ["clear", "trace"]:
        trace.packets.clear()
        trace.left = 0
        return [("cli_inband_reply", {"retval": rv.OK, "reply": ""})]
    if words[:2] == ["trace", "add"]:
        if len(words) != 4 or not words[3].isdigit() or words[2] not in TRACEABLE_NODES:
            refused = f"trace add: expected NODE COUNT, got `{' '.join(words[2:])}'\n"
            return [("cli_inband_reply", {"retval": rv.UNSPECIFIED, "reply": refused})]
        trace.node, trace.left = words[2], int(words[3])
        return [("cli_inband_reply", {"retval": rv.OK, "reply": ""})]
    if words[:2] == ["show", "trace"]:
        limit = int(words[3]) if words[2:3] == ["max"] and words[3:4] and words[3].isdigit() else None
        packets = trace.packets[:limit]
        body = (
            "".join(f"\nPacket {n}\n\n{text}" for n, text in enumerate(packets, 1)) if packets else NO_TRACE
        )
        return [("cli_inband_reply", {"retval": rv.OK, "reply": TRACE_HEADER + body})]
    if words == ["show", "clock"]:
        return [("cli_inband_reply", {"retval": rv.OK, "reply": show_clock(ctx.state.booted)})]
    unknown = f"unknown input `{' '.join(words)}'\n"
    return [("cli_inband_reply", {"retval": rv.UNSPECIFIED, "reply": unknown})]


def show_clock(booted: float) -> str:
    """VPP 26.06's `show clock` with one thread: the time since it started, as "%.6f" prints
    it without the leading zero under a second (".144265"), and the date."""
    uptime = f"{time.monotonic() - booted:.6f}".removeprefix("0")
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())
    return (
        f"Time now {uptime}, {date}\nTime last barrier release 0.000000000\n"
        f"0: Time now {uptime}\nThread 0 offset 0.000000000 error 0.000000000\n"
    )


# -- interfaces ----------------------------------------------------------------------------
def interface_details(iface: Interface) -> Fields:
    return {
        "sw_if_index": iface.sw_if_index,
        "sup_sw_if_index": iface.sw_if_index,
        "l2_address": iface.mac,
        "flags": iface.flags,
        "type": 0,
        "link_duplex": 0,
        "link_speed": 0,
        "link_mtu": iface.link_mtu,
        "mtu": list(iface.mtu),
        "interface_name": iface.name,
        "interface_dev_type": iface.dev_type,
        "tag": iface.tag,
    }


@handles("sw_interface_dump")
def sw_interface_dump(ctx: Context, msg: Any) -> list[Reply]:
    wanted = msg.sw_if_index
    name_filter = msg.name_filter.lower() if msg.name_filter_valid else None
    details = []
    for index in sorted(ctx.state.interfaces):
        iface = ctx.state.interfaces[index]
        if wanted not in (ANY_INDEX, index):
            continue
        if name_filter is not None and name_filter not in iface.name.lower():
            continue
        details.append(("sw_interface_details", interface_details(iface)))
    return details


@handles("sw_interface_set_flags")
def sw_interface_set_flags(ctx: Context, msg: Any) -> list[Reply]:
    return retval_only("sw_interface_set_flags_reply", ctx.state.set_flags(msg.sw_if_index, int(msg.flags)))


@handles("sw_interface_tag_add_del")
def sw_interface_tag_add_del(ctx: Context, msg: Any) -> list[Reply]:
    retval = ctx.state.set_tag(msg.sw_if_index, msg.tag, bool(msg.is_add))
    return retval_only("sw_interface_tag_add_del_reply", retval)


@handles("sw_interface_set_mac_address")
def sw_interface_set_mac_address(ctx: Context, msg: Any) -> list[Reply]:
    retval = ctx.state.set_mac(msg.sw_if_index, str(msg.mac_address))
    return retval_only("sw_interface_set_mac_address_reply", retval)


@handles("sw_interface_set_mtu")
def sw_interface_set_mtu(ctx: Context, msg: Any) -> list[Reply]:
    retval = ctx.state.set_mtu(msg.sw_if_index, [int(v) for v in msg.mtu])
    return retval_only("sw_interface_set_mtu_reply", retval)


@handles("sw_interface_add_del_address")
def sw_interface_add_del_address(ctx: Context, msg: Any) -> list[Reply]:
    address = ipaddress.ip_interface(msg.prefix)
    retval = ctx.state.add_del_address(msg.sw_if_index, address, bool(msg.is_add), bool(msg.del_all))
    return retval_only("sw_interface_add_del_address_reply", retval)


@handles("ip_unnumbered_dump")
def ip_unnumbered_dump(ctx: Context, msg: Any) -> list[Reply]:
    """As VPP: the interfaces that borrow an address (one, or all for ~0), none for an
    unknown index."""
    if msg.sw_if_index == ANY_INDEX:
        borrowers = sorted(ctx.state.interfaces.items())
    else:
        found = ctx.state.interfaces.get(msg.sw_if_index)
        borrowers = [(msg.sw_if_index, found)] if found is not None else []
    return [
        ("ip_unnumbered_details", {"sw_if_index": index, "ip_sw_if_index": iface.unnumbered_via})
        for index, iface in borrowers
        if iface.unnumbered_via is not None
    ]


@handles("sw_interface_ip6_enable_disable")
def sw_interface_ip6_enable_disable(ctx: Context, msg: Any) -> list[Reply]:
    retval = ctx.state.ip6_enable_disable(msg.sw_if_index, bool(msg.enable))
    return retval_only("sw_interface_ip6_enable_disable_reply", retval)


@handles("sw_interface_set_unnumbered")
def sw_interface_set_unnumbered(ctx: Context, msg: Any) -> list[Reply]:
    retval = ctx.state.set_unnumbered(msg.sw_if_index, msg.unnumbered_sw_if_index, bool(msg.is_add))
    return retval_only("sw_interface_set_unnumbered_reply", retval)


@handles("create_loopback")
def create_loopback(ctx: Context, msg: Any) -> list[Reply]:
    retval, sw_if_index = ctx.state.create_loopback(str(msg.mac_address))
    return [("create_loopback_reply", {"retval": retval, "sw_if_index": sw_if_index})]


@handles("delete_loopback")
def delete_loopback(ctx: Context, msg: Any) -> list[Reply]:
    return retval_only("delete_loopback_reply", ctx.state.delete_loopback(msg.sw_if_index))


@handles("ip_address_dump")
def ip_address_dump(ctx: Context, msg: Any) -> list[Reply]:
    """One interface's addresses of one family, in the order they were added; none for an
    unknown index."""
    found = ctx.state.interfaces.get(msg.sw_if_index)
    version = 6 if msg.is_ipv6 else 4
    addresses = [a for a in found.addresses if a.version == version] if found is not None else []
    return [("ip_address_details", {"sw_if_index": msg.sw_if_index, "prefix": str(a)}) for a in addresses]


@handles("want_interface_events")
def want_interface_events(ctx: Context, msg: Any) -> list[Reply]:
    retval = ctx.state.want_interface_events(ctx.client_index, bool(msg.enable_disable), msg.pid)
    return retval_only("want_interface_events_reply", retval)


# -- vhost-user ----------------------------------------------------------------------------
def vhost_spec(msg: Any) -> VhostSpec:
    return VhostSpec(
        sock_filename=msg.sock_filename,
        is_server=bool(msg.is_server),
        renumber=bool(msg.renumber),
        custom_dev_instance=msg.custom_dev_instance,
        use_custom_mac=bool(getattr(msg, "use_custom_mac", False)),
        mac=str(getattr(msg, "mac_address", "00:00:00:00:00:00")),
        tag=getattr(msg, "tag", ""),
        enable_gso=bool(msg.enable_gso),
        enable_packed=bool(msg.enable_packed),
        enable_event_idx=bool(getattr(msg, "enable_event_idx", False)),
    )


@handles("create_vhost_user_if")
def create_vhost_user_if(ctx: Context, msg: Any) -> list[Reply]:
    retval, sw_if_index = ctx.state.create_vhost(vhost_spec(msg))
    return [("create_vhost_user_if_reply", {"retval": retval, "sw_if_index": sw_if_index})]


@handles("create_vhost_user_if_v2")
def create_vhost_user_if_v2(ctx: Context, msg: Any) -> list[Reply]:
    retval, sw_if_index = ctx.state.create_vhost(vhost_spec(msg))
    return [("create_vhost_user_if_v2_reply", {"retval": retval, "sw_if_index": sw_if_index})]


@handles("modify_vhost_user_if")
def modify_vhost_user_if(ctx: Context, msg: Any) -> list[Reply]:
    return retval_only("modify_vhost_user_if_reply", ctx.state.modify_vhost(msg.sw_if_index, vhost_spec(msg)))


@handles("modify_vhost_user_if_v2")
def modify_vhost_user_if_v2(ctx: Context, msg: Any) -> list[Reply]:
    return retval_only(
        "modify_vhost_user_if_v2_reply", ctx.state.modify_vhost(msg.sw_if_index, vhost_spec(msg))
    )


@handles("delete_vhost_user_if")
def delete_vhost_user_if(ctx: Context, msg: Any) -> list[Reply]:
    return retval_only("delete_vhost_user_if_reply", ctx.state.delete_vhost(msg.sw_if_index))


@handles("sw_interface_vhost_user_dump")
def sw_interface_vhost_user_dump(ctx: Context, msg: Any) -> list[Reply]:
    details = []
    for iface in ctx.state.vhost_interfaces():
        port = iface.vhost
        if port is None or msg.sw_if_index not in (ANY_INDEX, iface.sw_if_index):
            continue
        details.append(
            (
                "sw_interface_vhost_user_details",
                {
                    "sw_if_index": iface.sw_if_index,
                    "interface_name": iface.name,
                    "virtio_net_hdr_sz": port.virtio_net_hdr_sz,
                    "features_first_32": port.features_first_32,
                    "features_last_32": port.features_last_32,
                    "is_server": port.is_server,
                    "sock_filename": port.sock_filename,
                    "num_regions": port.num_regions,
                    "sock_errno": port.sock_errno,
                },
            )
        )
    return details


# -- routes --------------------------------------------------------------------------------
def decode_path(raw: Any, is_ip6: bool) -> FibPath:
    nh: IPAddress = raw.nh.address.ip6 if is_ip6 else raw.nh.address.ip4
    labels = tuple(
        (int(label.is_uniform), int(label.label), int(label.ttl), int(label.exp))
        for label in raw.label_stack[: raw.n_labels]
    )
    return FibPath(
        sw_if_index=raw.sw_if_index,
        nh=nh,
        type=int(raw.type),
        weight=max(1, raw.weight),
        preference=raw.preference,
        flags=int(raw.flags),
        proto=int(raw.proto),
        table_id=raw.table_id,
        rpf_id=raw.rpf_id,
        via_label=raw.nh.via_label,
        obj_id=raw.nh.obj_id,
        classify_table_index=raw.nh.classify_table_index,
        labels=labels,
    )


def encode_path(path: FibPath) -> Fields:
    stack = [{"is_uniform": u, "label": label, "ttl": ttl, "exp": exp} for u, label, ttl, exp in path.labels]
    stack += [{"is_uniform": 0, "label": 0, "ttl": 0, "exp": 0}] * (LABEL_STACK_SIZE - len(stack))
    nh_key = "ip6" if path.nh.version == 6 else "ip4"
    return {
        "sw_if_index": path.sw_if_index,
        "table_id": path.table_id,
        "rpf_id": path.rpf_id,
        "weight": path.weight,
        "preference": path.preference,
        "type": path.type,
        "flags": path.flags,
        "proto": path.proto,
        "nh": {
            "address": {nh_key: path.nh},
            "via_label": path.via_label,
            "obj_id": path.obj_id,
            "classify_table_index": path.classify_table_index,
        },
        "n_labels": len(path.labels),
        "label_stack": stack,
    }


@handles("ip_route_add_del")
def ip_route_add_del(ctx: Context, msg: Any) -> list[Reply]:
    route = msg.route
    prefix = ipaddress.ip_network(route.prefix, strict=False)
    is_ip6 = prefix.version == 6
    paths = [decode_path(raw, is_ip6) for raw in route.paths[: route.n_paths]]
    retval, stats_index = ctx.state.route_add_del(
        prefix, paths, bool(msg.is_add), bool(msg.is_multipath), route.table_id
    )
    return [("ip_route_add_del_reply", {"retval": retval, "stats_index": stats_index})]


def route_details(entry: FibEntry, table_id: int) -> Fields:
    paths = entry.best_paths()
    return {
        "route": {
            "table_id": table_id,
            "stats_index": entry.stats_index,
            "prefix": {"address": entry.address, "len": entry.prefix.prefixlen},
            "n_paths": len(paths),
            "paths": [encode_path(path) for path in paths],
        }
    }


@handles("ip_route_dump")
def ip_route_dump(ctx: Context, msg: Any) -> list[Reply]:
    table = msg.table
    entries = ctx.state.fib.entries(bool(table.is_ip6), table.table_id)
    return [("ip_route_details", route_details(entry, table.table_id)) for entry in entries]


@handles("ip_route_lookup")
def ip_route_lookup(ctx: Context, msg: Any) -> list[Reply]:
    """As VPP: `exact` finds the very prefix, else the longest match; -6 when there is none
    (with the route zeroed), -3 for an unknown table."""
    prefix = ipaddress.ip_network(msg.prefix, strict=False)
    fib = ctx.state.fib
    if not fib.has_table(prefix.version == 6, msg.table_id):
        return [("ip_route_lookup_reply", {"retval": rv.NO_SUCH_FIB})]
    entry = fib.lookup(prefix, msg.table_id) if msg.exact else fib.longest_match(prefix, msg.table_id)
    if entry is None:
        return [("ip_route_lookup_reply", {"retval": rv.NO_SUCH_ENTRY})]
    return [("ip_route_lookup_reply", {"retval": 0, **route_details(entry, msg.table_id)})]


# -- neighbours ----------------------------------------------------------------------------
@handles("ip_neighbor_add_del")
def ip_neighbor_add_del(ctx: Context, msg: Any) -> list[Reply]:
    neighbor = msg.neighbor
    retval, stats_index = ctx.state.neighbor_add_del(
        neighbor.sw_if_index,
        ipaddress.ip_address(neighbor.ip_address),
        str(neighbor.mac_address),
        int(neighbor.flags),
        bool(msg.is_add),
    )
    return [("ip_neighbor_add_del_reply", {"retval": retval, "stats_index": stats_index})]


@handles("ip_neighbor_dump")
def ip_neighbor_dump(ctx: Context, msg: Any) -> list[Reply]:
    now = time.monotonic()
    found = ctx.state.neighbors_for(msg.sw_if_index, int(msg.af) == ADDRESS_FAMILY_IP6)
    return [
        (
            "ip_neighbor_details",
            {
                "age": now - n.updated,
                "neighbor": {
                    "sw_if_index": n.sw_if_index,
                    "flags": n.flags,
                    "mac_address": n.mac,
                    "ip_address": n.ip,
                },
            },
        )
        for n in found
    ]


# -- L2 ------------------------------------------------------------------------------------
BD_SETTINGS = ("flood", "uu_flood", "forward", "learn", "arp_term", "arp_ufwd", "mac_age", "bd_tag")


def bridge_domain_add_del_common(ctx: Context, msg: Any) -> tuple[int, int]:
    if msg.is_add:
        settings: dict[str, object] = {name: getattr(msg, name) for name in BD_SETTINGS}
        settings["mac_age"] = int(msg.mac_age)
        return ctx.state.bridge_domain_add(msg.bd_id, settings)
    return ctx.state.bridge_domain_del(msg.bd_id), msg.bd_id


@handles("bridge_domain_add_del")
def bridge_domain_add_del(ctx: Context, msg: Any) -> list[Reply]:
    retval, _ = bridge_domain_add_del_common(ctx, msg)
    return retval_only("bridge_domain_add_del_reply", retval)


@handles("bridge_domain_add_del_v2")
def bridge_domain_add_del_v2(ctx: Context, msg: Any) -> list[Reply]:
    retval, bd_id = bridge_domain_add_del_common(ctx, msg)
    return [("bridge_domain_add_del_v2_reply", {"retval": retval, "bd_id": bd_id})]


@handles("bridge_domain_dump")
def bridge_domain_dump(ctx: Context, msg: Any) -> list[Reply]:
    details = []
    for bd in ctx.state.bridge_domains_sorted():
        if msg.bd_id not in (ANY_INDEX, bd.bd_id):
            continue
        if msg.sw_if_index != ANY_INDEX and all(m.sw_if_index != msg.sw_if_index for m in bd.members):
            continue
        fields: Fields = {name: getattr(bd, name) for name in BD_SETTINGS}
        fields.update(
            {
                "bd_id": bd.bd_id,
                "bvi_sw_if_index": bd.bvi_sw_if_index,
                "uu_fwd_sw_if_index": ANY_INDEX,
                "n_sw_ifs": len(bd.members),
                "sw_if_details": [
                    {"context": 0, "sw_if_index": m.sw_if_index, "shg": m.shg} for m in bd.members
                ],
            }
        )
        details.append(("bridge_domain_details", fields))
    return details


@handles("sw_interface_set_l2_bridge")
def sw_interface_set_l2_bridge(ctx: Context, msg: Any) -> list[Reply]:
    retval = ctx.state.set_l2_bridge(
        msg.rx_sw_if_index, msg.bd_id, int(msg.port_type), msg.shg, bool(msg.enable)
    )
    return retval_only("sw_interface_set_l2_bridge_reply", retval)
