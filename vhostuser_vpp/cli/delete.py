"""`vhostuser-vpp delete`: remove a port made with `create`, by VPP name or socket path.

Only ports tagged `cni-manual:` go without `--force`: a pod's port deleted by hand
leaves the pod without a network and its record, route and neighbour behind (which
`vhostuser-vpp gc` then collects).
"""

from __future__ import annotations

import argparse

from vhostuser_vpp import tags
from vhostuser_vpp.cli import output, session
from vhostuser_vpp.vpp.ops import Vpp, VppPort


def add_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("interface", nargs="?", metavar="VirtualEthernetX/Y/Z", help="VPP's interface name")
    which.add_argument("--socket", metavar="PATH", help="the port's socket path")
    parser.add_argument(
        "--force", action="store_true", help="delete even a port without a cni-manual: tag (a pod's)"
    )
    session.add_vpp_arguments(parser)
    output.add_output_argument(parser)


def run(args: argparse.Namespace) -> int:
    def body(vpp: Vpp) -> int:
        port = _find(vpp, args.interface, args.socket)
        wanted = args.interface or args.socket
        if port is None:
            output.error("delete", f"VPP has no vhost-user port {wanted}")
            return output.EXIT_PROBLEMS
        if not port.tag.startswith(tags.MANUAL_TAG_PREFIX) and not args.force:
            owner = f"tagged {port.tag!r}" if port.tag else "untagged"
            output.error("delete", f"{port.name} is {owner}, not made by `create`; use --force to delete it")
            return output.EXIT_PROBLEMS
        vpp.set_admin_up(port.sw_if_index, False)
        vpp.delete_vhost_port(port.sw_if_index)
        if port.tag.startswith(tags.OWNER_TAG_PREFIX):
            output.error("delete", "a pod's port: run `vhostuser-vpp gc` to collect its record and route")
        result = {"deleted": port.name, "sw_if_index": port.sw_if_index, "socket": port.socket_path}
        if output.wants_json(args):
            output.print_json(result)
        else:
            print(f"deleted {port.name} (sw_if_index {port.sw_if_index}, socket {port.socket_path})")
        return output.EXIT_OK

    return session.run_with_vpp("delete", args, body)


def _find(vpp: Vpp, name: str | None, socket_path: str | None) -> VppPort | None:
    if name is not None:
        details = vpp.interface_named(name)
        return vpp.vhost_port(details.sw_if_index) if details is not None else None
    return vpp.vhost_port_at(socket_path or "")
