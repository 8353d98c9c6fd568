"""`vhostuser-vpp create`: a vhost-user port outside any pod, for trying a DPDK app by hand.

The port is tagged `cni-manual:<name>`, not `cni:`, so `gc` never takes it for a dead
pod's, and `delete` removes it without `--force`. It is admin up and, in server mode,
VPP makes the socket, as for a pod.
"""

from __future__ import annotations

import argparse
import os

from vhostuser_vpp import tags
from vhostuser_vpp.cli import output, session
from vhostuser_vpp.store.attachment import SOCKET_PATH_MAX
from vhostuser_vpp.vpp.errors import SocketInUse, VppError
from vhostuser_vpp.vpp.ops import VhostOptions, Vpp

NAME_MAX = tags.TAG_MAX - len(tags.MANUAL_TAG_PREFIX)
FIELDS = ("name", "sw_if_index", "mac", "socket", "mode", "tag")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--socket", required=True, type=_socket_path, metavar="PATH", help="the socket's path"
    )
    parser.add_argument(
        "--tag",
        type=_name,
        metavar="NAME",
        help=f"the port is tagged cni-manual:NAME (default: the socket's file name, up to {NAME_MAX} chars)",
    )
    parser.add_argument(
        "--mode",
        choices=("server", "client"),
        default="server",
        help="server: VPP makes the socket (default, as for pods); client: VPP dials the app's",
    )
    session.add_vpp_arguments(parser)
    output.add_output_argument(parser)


def _socket_path(text: str) -> str:
    if not os.path.isabs(text):
        raise argparse.ArgumentTypeError("must be an absolute path")
    if len(text.encode()) > SOCKET_PATH_MAX:
        raise argparse.ArgumentTypeError(f"longer than {SOCKET_PATH_MAX} bytes; VPP would cut it")
    return text


def _name(text: str) -> str:
    if not text or len(text.encode()) > NAME_MAX or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"1 to {NAME_MAX} characters without spaces")
    return text


def run(args: argparse.Namespace) -> int:
    name = args.tag or os.path.basename(args.socket)[:NAME_MAX]
    tag = tags.manual_tag(name)

    def body(vpp: Vpp) -> int:
        try:
            index = vpp.create_vhost_port(args.socket, args.mode == "server", tag, VhostOptions())
        except SocketInUse as err:
            output.error("create", str(err))
            return output.EXIT_PROBLEMS
        try:
            vpp.set_admin_up(index, True)
            details = vpp.interface(index)
            if details is None:
                raise VppError(f"VPP lost the interface it just created (sw_if_index {index})")
        except VppError:
            vpp.delete_vhost_port(index)
            raise
        port = {
            "name": details.name,
            "sw_if_index": index,
            "mac": details.mac,
            "socket": args.socket,
            "mode": args.mode,
            "tag": tag,
        }
        if output.wants_json(args):
            output.print_json(port)
        else:
            output.print_fields("created", [(key, port[key]) for key in FIELDS])
        return output.EXIT_OK

    return session.run_with_vpp("create", args, body)
