"""`vhostuser-vpp ports`: every pod port on the node, the plugin's records joined with VPP's view.

The first question when a DPDK pod has no traffic: does VPP have its port, is the pod's
app connected, and is anything left over. Exit 1 when any row shows a problem, so the
command doubles as a node health probe.
"""

from __future__ import annotations

import argparse
from typing import Any

from vhostuser_vpp.cli import output, session, vppview
from vhostuser_vpp.tags import CONTAINER_ID_PREFIX_LEN
from vhostuser_vpp.vpp.ops import Vpp, VppPort

COLUMNS = (
    ("pod", "NAMESPACE/POD"),
    ("container", "CONTAINER"),
    ("ifname", "IFNAME"),
    ("interface", "INTERFACE"),
    ("sw_if_index", "INDEX"),
    ("socket", "SOCKET"),
    ("state", "ADMIN/LINK"),
    ("frontend", "FRONTEND"),
    ("pod_ip", "POD IP"),
    ("pod_mac", "POD MAC"),
    ("gateway_mac", "GW MAC"),
    ("backend", "BACKEND"),
    ("status", "STATUS"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    session.add_vpp_arguments(parser)
    session.add_cni_dir_argument(parser)
    output.add_output_argument(parser)
    parser.add_argument(
        "--all", action="store_true", help="also list vhost-user interfaces without a cni: ownership tag"
    )


def run(args: argparse.Namespace) -> int:
    def body(vpp: Vpp) -> int:
        rows = vppview.owned_rows(vppview.build_view(vpp, args.cni_dir), args.all)
        if output.wants_json(args):
            output.print_json({"ports": [row.summary() for row in rows]})
        else:
            output.print_table([table_row(row) for row in rows], COLUMNS)
        return output.EXIT_PROBLEMS if any(row.problem for row in rows) else output.EXIT_OK

    return session.run_with_vpp("ports", args, body)


def table_row(row: vppview.PortRow) -> dict[str, Any]:
    summary = row.summary()
    port = row.port
    summary["container"] = row.container_id[:CONTAINER_ID_PREFIX_LEN]
    summary["state"] = f"{_updown(port.admin_up)}/{_updown(port.link_up)}" if port else None
    summary["frontend"] = frontend_text(port) if port else None
    return summary


def frontend_text(port: VppPort) -> str:
    if port.frontend_connected:
        return f"connected, {port.num_regions} memory region(s)"
    if port.sock_errno:
        return f"no, errno {vppview.errno_text(port.sock_errno)}"
    return "no"


def _updown(up: bool) -> str:
    return "up" if up else "down"
