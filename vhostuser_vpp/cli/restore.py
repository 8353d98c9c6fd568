"""`vhostuser-vpp restore`: after VPP restarted, make its lost vhost-user ports again.

Run it from VPP's service (ExecStartPost) or the DaemonSet once VPP answers;
it is safe to run any time, since ports VPP still has are left alone. Exit codes as
every subcommand's: 1 when a port could not be restored, 3 when VPP does not answer.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict

from vhostuser_vpp.cli import output, session

COLUMNS = (
    ("container", "CONTAINER"),
    ("ifname", "IFNAME"),
    ("vhostname", "VPP INTERFACE"),
    ("status", "STATUS"),
    ("detail", "DETAIL"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    session.add_vpp_arguments(parser)
    session.add_cni_dir_argument(parser)
    output.add_output_argument(parser)


def run(args: argparse.Namespace) -> int:
    from vhostuser_vpp.backends.base import BackendUnavailable
    from vhostuser_vpp.plugin.restore import VppAccess, restore_all
    from vhostuser_vpp.vpp.client import VppClient
    from vhostuser_vpp.vpp.errors import VppUnavailable

    client = VppClient(args.api_socket, args.timeout, args.timeout)
    try:
        client.connect()
        outcomes = restore_all(args.cni_dir, VppAccess(args.api_socket, args.timeout, args.timeout), client)
    except (BackendUnavailable, VppUnavailable) as err:
        output.error("restore", str(err))
        return output.EXIT_VPP_UNREACHABLE
    finally:
        client.close()
    if output.wants_json(args):
        output.print_json([asdict(o) for o in outcomes])
    else:
        rows = [{**asdict(o), "container": o.container_id[:12]} for o in outcomes]
        output.print_table(rows, COLUMNS)
    return output.EXIT_PROBLEMS if any(o.status == "failed" for o in outcomes) else output.EXIT_OK
