"""`vhostuser-vpp top`: packets/s, bytes/s and drops/s of every pod port, refreshed.

Is traffic flowing, and to which pod? Each refresh lists the pods' ports (as `ports`
does) and VPP's counters for them (its stats segment), and prints the rates since the
refresh before, busiest first: RX is what VPP received from the pod, TX what it sent to
it. A table redrawn in place on a terminal, one JSON document per refresh with `-o json`
(JSON lines), until interrupted or `--count` refreshes.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from vhostuser_vpp.cli import output, session, vppview
from vhostuser_vpp.tags import CONTAINER_ID_PREFIX_LEN
from vhostuser_vpp.vpp.ops import Vpp
from vhostuser_vpp.vpp.stats import CounterSample, rates

COLUMNS = (
    ("pod", "NAMESPACE/POD"),
    ("container", "CONTAINER"),
    ("ifname", "IFNAME"),
    ("interface", "INTERFACE"),
    ("rx_pps", "RX PKT/S"),
    ("rx_bps", "RX BYTES/S"),
    ("tx_pps", "TX PKT/S"),
    ("tx_bps", "TX BYTES/S"),
    ("drops_ps", "DROPS/S"),
)
_CLEAR = "\x1b[H\x1b[2J"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    session.add_vpp_arguments(parser)
    session.add_stats_argument(parser)
    session.add_cni_dir_argument(parser)
    output.add_output_argument(parser)
    parser.add_argument(
        "--interval", type=float, default=1.0, metavar="SECONDS", help="time between refreshes (1)"
    )
    parser.add_argument(
        "--count", type=int, default=0, metavar="N", help="stop after N refreshes (0: until interrupted)"
    )


def run(args: argparse.Namespace) -> int:
    from vhostuser_vpp.vpp.errors import VppUnavailable
    from vhostuser_vpp.vpp.stats import Stats

    def body(vpp: Vpp) -> int:
        try:
            with Stats(args.stats_socket) as stats:
                before = stats.sample()
                refreshes = 0
                while not args.count or refreshes < args.count:
                    time.sleep(args.interval)
                    rows = vppview.owned_rows(vppview.build_view(vpp, args.cni_dir), False)
                    after = stats.sample()
                    show(rate_rows(rows, before, after), args, after.monotonic - before.monotonic)
                    before = after
                    refreshes += 1
        except VppUnavailable as err:
            output.error("top", str(err))
            return output.EXIT_VPP_UNREACHABLE
        except KeyboardInterrupt:
            pass
        return output.EXIT_OK

    return session.run_with_vpp("top", args, body)


def rate_rows(
    rows: list[vppview.PortRow], before: CounterSample, after: CounterSample
) -> list[dict[str, Any]]:
    """One dict per port VPP has, with its rates over the two samples, busiest first."""
    seconds = after.monotonic - before.monotonic
    found = []
    for row in rows:
        if row.port is None:
            continue
        index = row.port.sw_if_index
        found.append(
            {
                "pod": row.local.record.pod_name or None if row.local else None,
                "container_id": row.container_id,
                "ifname": row.ifname,
                "interface": row.port.name,
                "sw_if_index": index,
                **rates(before.of(index), after.of(index), seconds)._asdict(),
            }
        )
    return sorted(found, key=lambda r: -(r["rx_pps"] + r["tx_pps"]))


def show(rows: list[dict[str, Any]], args: argparse.Namespace, seconds: float) -> None:
    if output.wants_json(args):
        output.print_json_line({"seconds": round(seconds, 3), "ports": rows})
        return
    table = [
        {
            **row,
            "container": row["container_id"][:CONTAINER_ID_PREFIX_LEN],
            **{k: f"{row[k]:,.0f}" for k in ("rx_pps", "rx_bps", "tx_pps", "tx_bps", "drops_ps")},
        }
        for row in rows
    ]
    if sys.stdout.isatty():
        print(_CLEAR, end="")
    print(f"vhostuser-vpp top: {len(rows)} pod port(s), rates over the last {seconds:.1f} s")
    output.print_table(table, COLUMNS)
    sys.stdout.flush()
