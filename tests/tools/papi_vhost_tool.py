"""A `vhost_tool` that drives VPP (or the emulator) over the binary API, for tests.

It lets the integration suite run the whole ADD/CHECK/DEL path through the tool
backend against the VPP emulator. Tests install it as an executable with the
venv's interpreter on its first line (`install(path)`), since the plugin runs
tools as plain executables. The API socket comes from VHOST_TOOL_API_SOCKET,
which the plugin passes through; the gateway interface is `loop0`.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path
from typing import Any

from vhostuser_vpp.vpp.client import VppClient
from vhostuser_vpp.vpp.errors import VppError
from vhostuser_vpp.vpp.ops import ANY_INDEX, pod_neighbor, pod_route

UNNUMBERED_TO = "loop0"
TAG = "cni-tool"


def install(path: Path) -> None:
    """Writes this tool to `path` as an executable for the current interpreter."""
    source = Path(__file__).read_text()
    path.write_text(f"#!{sys.executable}\n{source}")
    path.chmod(0o755)


def _by_name(client: VppClient, name: str) -> Any:
    found = client.dump("sw_interface_dump", sw_if_index=ANY_INDEX, name_filter_valid=True, name_filter=name)
    return next((d for d in found if d.interface_name == name), None)


def _create(client: VppClient, socket_path: str) -> str:
    reply = client.call(
        "create_vhost_user_if_v2",
        is_server=True,
        sock_filename=socket_path,
        tag=TAG,
        mac_address="00:00:00:00:00:00",
    )
    client.call("sw_interface_set_flags", sw_if_index=reply.sw_if_index, flags=1)
    [details] = client.dump("sw_interface_dump", sw_if_index=reply.sw_if_index, name_filter_valid=False)
    return str(details.interface_name)


def _config(client: VppClient, port: Any, pod_ip: str, pod_mac: str) -> None:
    loop = _by_name(client, UNNUMBERED_TO)
    if loop is None:
        raise VppError(f"no {UNNUMBERED_TO} in VPP")
    ip = str(ipaddress.ip_interface(pod_ip).ip)
    index = int(port.sw_if_index)
    client.call(
        "sw_interface_set_unnumbered", sw_if_index=loop.sw_if_index, unnumbered_sw_if_index=index, is_add=True
    )
    client.call("ip_route_add_del", is_add=True, is_multipath=False, route=pod_route(ip, index))
    client.call("ip_neighbor_add_del", is_add=True, neighbor=pod_neighbor(index, ip, pod_mac))


def _delete(client: VppClient, port: Any) -> None:
    index = int(port.sw_if_index)
    for entry in client.dump("ip_neighbor_dump", sw_if_index=index, af=0):
        ip, mac = str(entry.neighbor.ip_address), str(entry.neighbor.mac_address)
        client.call("ip_neighbor_add_del", is_add=False, neighbor=pod_neighbor(index, ip, mac))
        client.call("ip_route_add_del", is_add=False, is_multipath=False, route=pod_route(ip, index))
    client.call("sw_interface_set_flags", sw_if_index=index, flags=0)
    client.call("delete_vhost_user_if", sw_if_index=index)


def main(argv: list[str]) -> int:
    verb, args = (argv[1], argv[2:]) if len(argv) > 1 else ("", [])
    client = VppClient(os.environ["VHOST_TOOL_API_SOCKET"], connect_timeout=5, call_timeout=5)
    try:
        client.connect()
        if verb == "create" and len(args) == 1:
            print(_create(client, args[0]))
            return 0
        port = _by_name(client, args[0]) if args else None
        if verb == "delete" and len(args) == 1:
            if port is not None:
                _delete(client, port)
            return 0
        if port is None:
            print(f"{verb}: unknown interface {args[0] if args else ''!r}", file=sys.stderr)
            return 1
        if verb == "getmac" and len(args) == 1:
            print(port.l2_address)
            return 0
        if verb == "config" and len(args) == 3:
            _config(client, port, args[1], args[2])
            return 0
        print(f"usage: {argv[0]} create|getmac|config|delete ARGS", file=sys.stderr)
        return 2
    except VppError as err:
        print(f"{verb}: {err}", file=sys.stderr)
        return 1
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
