"""`vhostuser-vpp show TARGET`: everything about one port, for when `ports` says it is not ok.

TARGET is the pod (`namespace/name`, or its name alone when no other pod has it), a
container ID prefix, an interface name inside the pod (net1) or VPP's interface name
(VirtualEthernet0/0/3). It shows what the plugin wrote, which files
exist, what VPP has (interface, vhost-user state, the virtio features the pod's app
negotiated), the pod's /32 route and neighbour, and every counter VPP keeps for the port
(its stats segment) with the reasons VPP dropped packets for (VPP-wide: the segment does
not say for which interface; `vhostuser-vpp trace` does). Several matches are refused
with the candidates listed, since acting on the wrong pod's port is worse than asking again.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from vhostuser_vpp.addressing import host_prefix
from vhostuser_vpp.cli import output, ports, session, target, vppview
from vhostuser_vpp.vpp.ops import ANY_INDEX, Vpp, VppPort


def add_arguments(parser: argparse.ArgumentParser) -> None:
    target.add_argument(parser, "which port")
    session.add_vpp_arguments(parser)
    session.add_stats_argument(parser)
    session.add_cni_dir_argument(parser)
    output.add_output_argument(parser)


def run(args: argparse.Namespace) -> int:
    def body(vpp: Vpp) -> int:
        row = target.one("show", args, vpp)
        if row is None:
            return output.EXIT_PROBLEMS
        details = {**describe(vpp, row), **_counters(args, row)}
        if output.wants_json(args):
            output.print_json(details)
        else:
            _print_details(details)
        return output.EXIT_PROBLEMS if row.problem else output.EXIT_OK

    return session.run_with_vpp("show", args, body)


def describe(vpp: Vpp, row: vppview.PortRow) -> dict[str, Any]:
    local, port = row.local, row.port
    names = vpp.interface_names()
    pod_ips = set(local.record.pod_ips) if local else set()
    index = port.sw_if_index if port else None
    routes = [
        {"prefix": host_prefix(r.ip), "sw_if_index": r.sw_if_index, "interface": names.get(r.sw_if_index)}
        for r in vpp.host_routes()
        if r.ip in pod_ips or r.sw_if_index == index
    ]
    neighbours = [
        {"ip": n.ip, "mac": n.mac, "sw_if_index": n.sw_if_index, "static": n.static}
        for n in vpp.neighbours(index if index is not None else ANY_INDEX)
        if index is not None or n.ip in pod_ips
    ]
    return {
        "port": row.summary(),
        "record": json.loads(local.record.render()) if local else None,
        "files": _files(row),
        "interface": _interface(port) if port else None,
        "vhost_user": _vhost_user(port) if port else None,
        "routes": routes,
        "neighbours": neighbours,
    }


def _counters(args: argparse.Namespace, row: vppview.PortRow) -> dict[str, Any]:
    """`counters` of the port and VPP's `drop_reasons`; None each when VPP cannot say."""
    from vhostuser_vpp.vpp.errors import VppUnavailable
    from vhostuser_vpp.vpp.stats import Stats

    try:
        with Stats(args.stats_socket) as stats:
            sample = stats.sample()
            reasons = stats.drop_reasons()
    except VppUnavailable as err:
        output.error("show", f"no counters: {err}")
        return {"counters": None, "drop_reasons": None}
    return {
        "counters": sample.of(row.port.sw_if_index).summary() if row.port else None,
        "drop_reasons": reasons,
    }


def _files(row: vppview.PortRow) -> list[dict[str, Any]]:
    if row.local is None:
        paths = [row.port.socket_path] if row.port else []
    else:
        local = row.local
        paths = [
            os.path.dirname(local.socket_path),
            local.socket_path,
            *local.ip_conf_paths,
            local.record_path,
        ]
    return [{"path": path, "present": os.path.lexists(path)} for path in paths]


def _interface(port: VppPort) -> dict[str, Any]:
    return {
        "name": port.name,
        "sw_if_index": port.sw_if_index,
        "tag": port.tag,
        "mac": port.mac,
        "admin_up": port.admin_up,
        "link_up": port.link_up,
        "link_mtu": port.link_mtu,
    }


def _vhost_user(port: VppPort) -> dict[str, Any]:
    return {
        "socket": port.socket_path,
        "is_server": port.is_server,
        "frontend": ports.frontend_text(port),
        "num_regions": port.num_regions,
        "sock_errno": port.sock_errno,
        "virtio_net_hdr_sz": port.virtio_net_hdr_sz,
        "features_first_32": f"0x{port.features_first_32:08x}",
        "features_last_32": f"0x{port.features_last_32:08x}",
        "features": vppview.decode_features(port.features_first_32, port.features_last_32),
    }


def _print_details(details: dict[str, Any]) -> None:
    for title in ("port", "record", "interface", "vhost_user", "counters"):
        section = details[title]
        if section is None:
            print(f"{title}: none")
        else:
            output.print_fields(title, [(k, _compact(v)) for k, v in section.items()])
    output.print_fields(
        "files", [(f["path"], "present" if f["present"] else "MISSING") for f in details["files"]]
    )
    output.print_fields(
        "routes",
        [
            (r["prefix"], f"via {r['interface'] or 'a deleted interface'} ({r['sw_if_index']})")
            for r in details["routes"]
        ]
        or [("none", "")],
    )
    output.print_fields(
        "neighbours",
        [
            (n["ip"], f"{n['mac']} on sw_if_index {n['sw_if_index']}{' static' if n['static'] else ''}")
            for n in details["neighbours"]
        ]
        or [("none", "")],
    )
    reasons = details["drop_reasons"]
    output.print_fields(
        "drops, VPP-wide, by node and reason",
        [(reason, count) for reason, count in reasons.items()] or [("none", "")]
        if reasons is not None
        else [("unknown", "no stats segment")],
    )


def _compact(value: Any) -> Any:
    """Nested record parts (the saved result, the port handle) as one line of JSON."""
    return json.dumps(value, separators=(",", ":")) if isinstance(value, dict) else value
