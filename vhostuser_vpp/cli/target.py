"""TARGET, the argument naming one pod's port (`show`, `trace`), and its resolution.

What a TARGET may be is `vppview.find`'s; here it must name exactly one row: none or
several are refused, the candidates listed, since acting on the wrong pod's port is worse
than asking again.
"""

from __future__ import annotations

import argparse

from vhostuser_vpp.cli import output, vppview
from vhostuser_vpp.tags import CONTAINER_ID_PREFIX_LEN
from vhostuser_vpp.vpp.ops import Vpp

METAVAR = "NAMESPACE/POD|POD|CONTAINER-ID-PREFIX|IFNAME|VirtualEthernetX/Y/Z"
CANDIDATE_COLUMNS = (
    ("pod", "POD"),
    ("container_id", "CONTAINER"),
    ("ifname", "IFNAME"),
    ("interface", "INTERFACE"),
    ("status", "STATUS"),
)


def add_argument(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "target",
        metavar=METAVAR,
        help=f"{what}: the pod, a container ID prefix, the pod's interface name or VPP's",
    )


def one(command: str, args: argparse.Namespace, vpp: Vpp) -> vppview.PortRow | None:
    """The row `args.target` names; None, the refusal and any candidates printed, unless
    exactly one does."""
    matches = vppview.find(vppview.build_view(vpp, args.cni_dir), args.target)
    if len(matches) == 1:
        return matches[0]
    if not matches:
        output.error(command, f"no port matches {args.target!r} (see `vhostuser-vpp ports --all`)")
        return None
    output.error(command, f"{args.target!r} matches {len(matches)} ports; give more of the container ID")
    candidates = [row.summary() for row in matches]
    if output.wants_json(args):
        output.print_json({"candidates": candidates})
    else:
        for candidate in candidates:
            candidate["container_id"] = candidate["container_id"][:CONTAINER_ID_PREFIX_LEN]
        output.print_table(candidates, CANDIDATE_COLUMNS)
    return None
