"""`vhostuser-vpp restore`: after VPP restarted, make its lost vhost-user ports again.

Run it from VPP's service (ExecStartPost) or the DaemonSet once VPP answers;
it is safe to run any time, since ports VPP still has are left alone.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from vhostuser_vpp.defaults import DEFAULT_API_SOCKET, DEFAULT_CNI_DIR


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-socket", default=DEFAULT_API_SOCKET, help="VPP's API socket")
    parser.add_argument("--cni-dir", default=DEFAULT_CNI_DIR, help="the plugin's cniDir")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds for each VPP call")
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")


def run(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from vhostuser_vpp.plugin.restore import VppAccess, restore_all

    outcomes = restore_all(args.cni_dir, VppAccess(args.api_socket, args.timeout, args.timeout))
    if args.output == "json":
        print(json.dumps([asdict(o) for o in outcomes], indent=2))
    else:
        rows = [(o.container_id[:12], o.ifname, o.vhostname, o.status, o.detail) for o in outcomes]
        print(tabulate(rows, headers=("CONTAINER", "IFNAME", "VPP INTERFACE", "STATUS", "DETAIL")))
    return 1 if any(o.status == "failed" for o in outcomes) else 0
