"""`vhostuser-vpp ports`: every pod port on the node, the plugin's records joined with VPP's view.

The first questions when a DPDK pod has no traffic: does VPP have its port, is the pod's
app connected, are packets moving (RX/TX: what VPP received from and sent to the pod,
from VPP's stats segment), and is anything left over. Exit 1 when any row shows a
problem, so the command doubles as a node health probe; counters VPP cannot give are
shown as `-` with a warning, and do not change the exit code. DROPS is what VPP dropped
or punted of the port's packets (`discarded` in JSON; `drops` and `punt` apart).
"""

from __future__ import annotations

import argparse
from typing import Any

from vhostuser_vpp.cli import output, session, vppview
from vhostuser_vpp.tags import CONTAINER_ID_PREFIX_LEN
from vhostuser_vpp.vpp.ops import Vpp, VppPort
from vhostuser_vpp.vpp.stats import CounterSample

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
    ("rx_packets", "RX"),
    ("tx_packets", "TX"),
    ("discarded", "DROPS"),
    ("backend", "BACKEND"),
    ("status", "STATUS"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    session.add_vpp_arguments(parser)
    session.add_stats_argument(parser)
    session.add_cni_dir_argument(parser)
    output.add_output_argument(parser)
    parser.add_argument(
        "--all", action="store_true", help="also list vhost-user interfaces without a cni: ownership tag"
    )


def run(args: argparse.Namespace) -> int:
    def body(vpp: Vpp) -> int:
        rows = vppview.owned_rows(vppview.build_view(vpp, args.cni_dir), args.all)
        sample = session.counters("ports", args)
        summaries = [{**row.summary(), "counters": counters_of(row, sample)} for row in rows]
        if output.wants_json(args):
            output.print_json({"ports": summaries})
        else:
            output.print_table(
                [{**table_row(row), **(s["counters"] or {})} for row, s in zip(rows, summaries, strict=True)],
                COLUMNS,
            )
        return output.EXIT_PROBLEMS if any(row.problem for row in rows) else output.EXIT_OK

    return session.run_with_vpp("ports", args, body)


def table_row(row: vppview.PortRow) -> dict[str, Any]:
    summary = row.summary()
    port = row.port
    summary["container"] = row.container_id[:CONTAINER_ID_PREFIX_LEN]
    summary["state"] = f"{_updown(port.admin_up)}/{_updown(port.link_up)}" if port else None
    summary["frontend"] = frontend_text(port) if port else None
    summary["pod_ip"] = ",".join(summary["pod_ips"]) or None
    return summary


def counters_of(row: vppview.PortRow, sample: CounterSample | None) -> dict[str, int] | None:
    """The row's port's counters (None: no port, or no stats segment)."""
    if sample is None or row.port is None:
        return None
    return sample.of(row.port.sw_if_index).summary()


def frontend_text(port: VppPort) -> str:
    if port.frontend_connected:
        return f"connected, {port.num_regions} memory region(s)"
    if port.sock_errno:
        return f"no, errno {vppview.errno_text(port.sock_errno)}"
    return "no"


def _updown(up: bool) -> str:
    return "up" if up else "down"
