"""`vhostuser-vpp create`: a vhost-user port outside any pod, for trying a DPDK app by hand.

The port is tagged `cni-manual:<name>`, not `cni:`, so `gc` never takes it for a dead
pod's, and `delete` removes it without `--force`. It is admin up and, in server mode,
VPP makes the socket, as for a pod.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from vhostuser_vpp.backends.vpp import ADMIN_UP, CREATE_VARIANTS, ERR_IF_ALREADY_EXISTS
from vhostuser_vpp.cli import output, vppview
from vhostuser_vpp.store.attachment import SOCKET_PATH_MAX
from vhostuser_vpp.vpp.client import VppClient
from vhostuser_vpp.vpp.errors import VppApiError, VppError

TAG_MAX = 63  # VPP keeps 64 bytes with the terminating NUL
NAME_MAX = TAG_MAX - len(vppview.MANUAL_TAG_PREFIX)
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
    vppview.add_vpp_arguments(parser)
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
    tag = f"{vppview.MANUAL_TAG_PREFIX}{name}"

    def body(client: VppClient) -> int:
        try:
            index = _create(client, args.socket, args.mode == "server", tag)
        except VppApiError as err:
            if err.retval != ERR_IF_ALREADY_EXISTS:
                raise
            output.error(
                "create", f"VPP already has a port on {args.socket} (sw_if_index {err.reply.sw_if_index})"
            )
            return output.EXIT_PROBLEMS
        try:
            client.call("sw_interface_set_flags", sw_if_index=index, flags=ADMIN_UP)
            port = _details(client, index)
        except VppError:
            client.call("delete_vhost_user_if", sw_if_index=index)
            raise
        port.update(socket=args.socket, mode=args.mode, tag=tag)
        if output.wants_json(args):
            output.print_json(port)
        else:
            output.print_fields("created", [(key, port[key]) for key in FIELDS])
        return output.EXIT_OK

    return vppview.run_with_vpp("create", args, body)


def _create(client: VppClient, socket_path: str, is_server: bool, tag: str) -> int:
    message = next((m for m in CREATE_VARIANTS if client.offers(m)), CREATE_VARIANTS[-1])
    fields: dict[str, Any] = {
        "is_server": is_server,
        "sock_filename": socket_path,
        "renumber": False,
        "custom_dev_instance": 0,
        "disable_mrg_rxbuf": False,
        "disable_indirect_desc": False,
        "enable_gso": False,
        "enable_packed": False,
        "use_custom_mac": False,
        "mac_address": "00:00:00:00:00:00",
        "tag": tag,
    }
    if message == "create_vhost_user_if_v2":
        fields["enable_event_idx"] = False
    return int(client.call(message, **fields).sw_if_index)


def _details(client: VppClient, index: int) -> dict[str, Any]:
    details = vppview.interface_at(client, index)
    if details is None:
        raise VppError(f"VPP lost the interface it just created (sw_if_index {index})")
    return {"name": str(details.interface_name), "sw_if_index": index, "mac": str(details.l2_address)}
