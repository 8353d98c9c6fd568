#!/usr/bin/env python3
"""`make demo`: one pod attachment, as a container runtime would make it, and its removal.

Starts the VPP API emulator (`vhostuser-vpp sim`), runs the installed `vhostuser`
plugin with the original plugin's sample network config and the distribution's
host-local IPAM in a scratch directory, shows the CNI result, the files a pod
gets and the port as VPP's API reports it, then deletes it all again.

The emulator answers VPP 26.06's binary API and makes real vhost-user sockets,
but it is no dataplane: no packet moves.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
# The sample's rangeStart..rangeEnd.
POD_ADDRESSES = {ipaddress.ip_address(f"10.56.217.{n}") for n in range(131, 191)}
PLUGIN = BIN / "vhostuser"
CLI = BIN / "vhostuser-vpp"

# The original README's sample, verbatim but for the paths a scratch node needs.
SAMPLE: dict[str, Any] = {
    "type": "vhostuser",
    "name": "vhostuser-network",
    "if0name": "net0",
    "vhost": {"vhost_tool": "/path/to/vhost-user-net-plugin/tests/vpp-config.py"},
    "ipam": {
        "type": "host-local",
        "subnet": "10.56.217.0/24",
        "rangeStart": "10.56.217.131",
        "rangeEnd": "10.56.217.190",
        "routes": [{"dst": "0.0.0.0/0"}],
        "gateway": "10.56.217.1",
    },
}


def run_plugin(command: str, config: dict[str, Any], env: dict[str, str]) -> str:
    proc = subprocess.run(
        [str(PLUGIN)],
        input=json.dumps(config).encode(),
        env={**env, "CNI_COMMAND": command},
        capture_output=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr.decode())
        raise SystemExit(f"{command} failed:\n{proc.stdout.decode()}")
    return proc.stdout.decode()


def start_emulator(api_socket: Path) -> subprocess.Popen[str]:
    """Returns once the emulator printed its ready line, i.e. its socket listens."""
    sim = subprocess.Popen([str(CLI), "sim", "--socket", str(api_socket)], stderr=subprocess.PIPE, text=True)
    line = sim.stderr.readline() if sim.stderr else ""
    if "ready" not in line:
        sim.kill()
        raise SystemExit(f"the VPP emulator did not start: {line}")
    print(f"   {line.strip()}")
    return sim


def show_vpp_port(api_socket: Path, socket_path: Path) -> int:
    """Prints the port and the pod's /32 route as VPP reports them; returns how many lines."""
    from vpp_papi import VPPApiClient

    from vhostuser_vpp.vpp.api_files import api_json_paths

    papi = VPPApiClient(apifiles=api_json_paths(), server_address=str(api_socket))
    papi.connect("demo")
    shown = 0
    try:
        for port in papi.api.sw_interface_vhost_user_dump(sw_if_index=0xFFFFFFFF):
            if port.sock_filename != str(socket_path):
                continue
            [iface] = papi.api.sw_interface_dump(sw_if_index=port.sw_if_index, name_filter_valid=False)
            state = "up" if iface.flags & 1 else "down"
            print(f"   {iface.interface_name}  sw_if_index {port.sw_if_index}  admin {state}")
            print(f"   mac {iface.l2_address}  tag {iface.tag!r}")
            print(f"   server mode {port.is_server}  memory regions {port.num_regions}")
            shown += 3
        for route in papi.api.ip_route_dump(table={"table_id": 0, "is_ip6": False, "name": ""}):
            prefix = route.route.prefix
            if prefix.prefixlen == 32 and prefix.network_address in POD_ADDRESSES:
                print(f"   route {prefix} via sw_if_index {route.route.paths[0].sw_if_index}")
                shown += 1
    finally:
        papi.disconnect()
    return shown


def show_tree(cni_dir: Path) -> None:
    for path in sorted(cni_dir.rglob("*")):
        rel = path.relative_to(cni_dir)
        if rel.parts[0] == ".locks":
            continue
        kind = "socket" if path.is_socket() else "dir" if path.is_dir() else "file"
        print(f"   {'    ' * (len(rel.parts) - 1)}{rel.name}  ({kind})")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cni-bin-dir", default="/usr/lib/cni")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="vhu", dir="/tmp"))
    api_socket = root / "api.sock"
    try:
        cni_dir = root / "cni"
        node_config = root / "node.json"
        node_config.write_text(
            json.dumps({"allowed_cni_dirs": [str(cni_dir)], "allowed_api_sockets": [str(api_socket)]})
        )
        config = json.loads(json.dumps(SAMPLE))
        config["cniDir"] = str(cni_dir)
        # A node would have loop0 holding the gateway address; here the plugin makes it.
        config["vhost"].update(api_socket=str(api_socket), create_loopback=True)
        config["ipam"]["dataDir"] = str(root / "ipam")
        container_id = secrets.token_hex(32)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "CNI_CONTAINERID": container_id,
            "CNI_IFNAME": "net0",
            "CNI_NETNS": "/var/run/netns/demo",
            "CNI_PATH": args.cni_bin_dir,
            "VHOSTUSER_VPP_NODE_CONFIG": str(node_config),
        }

        print("== VPP: the emulator (no packets move)")
        sim = start_emulator(api_socket)
        try:
            print("\n== network config (the original README's sample; no cniVersion, so answered as 0.3.0):")
            print(json.dumps(config, indent=2))
            print(f"\n== ADD  container {container_id[:12]}…  ifname net0")
            print(run_plugin("ADD", config, env))
            pod_dir = cni_dir / container_id
            socket_path = pod_dir / f"{container_id[:12]}-net0"
            print("== the port, as VPP's API reports it:")
            show_vpp_port(api_socket, socket_path)
            print(f"\n== files under cniDir ({cni_dir}):")
            show_tree(cni_dir)
            for name in (f"{container_id[:12]}-net0-ip4.conf", f"{container_id[:12]}-net0.json"):
                print(f"\n== {name}")
                print((pod_dir / name).read_text(), end="")
            ip4 = json.loads((pod_dir / f"{container_id[:12]}-net0-ip4.conf").read_text())
            print("\n== the pod's DPDK app would start with:")
            print(f"   --vdev=virtio_user0,path={socket_path},mac={ip4['macAddr']}")
            print("\n== DEL")
            run_plugin("DEL", config, env)
            left = [p for p in cni_dir.rglob("*") if ".locks" not in p.parts and p.name != "get-prefix.sh"]
            print(f"   left under cniDir: {left or 'nothing'}")
            if not show_vpp_port(api_socket, socket_path):
                print("   left in VPP: no port, no pod route")
        finally:
            sim.terminate()
            sim.wait(timeout=10)
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
