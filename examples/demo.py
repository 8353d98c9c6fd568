#!/usr/bin/env python3
"""`make demo`: one pod attachment, as a container runtime would make it, and its removal.

Runs the installed `vhostuser` plugin with the original plugin's sample network
config and the distribution's host-local IPAM, in a scratch directory, then
shows the CNI result and the files a pod gets, and deletes it all again.

VPP itself is not needed: the binary-API backend is not in this build yet, so
the demo drives the `vhost_tool` backend with tests/tools/state_vhost_tool.py,
a stand-in that keeps a pretend VPP's ports in a JSON file. No packet moves.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAND_IN_TOOL = REPO / "tests" / "tools" / "state_vhost_tool.py"
PLUGIN = Path(sys.executable).parent / "vhostuser"

# The original README's sample, verbatim but for the paths a scratch node needs.
SAMPLE = {
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


def run_plugin(command: str, config: dict[str, object], env: dict[str, str]) -> str:
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


def show_tree(cni_dir: Path) -> None:
    for path in sorted(cni_dir.rglob("*")):
        rel = path.relative_to(cni_dir)
        if rel.parts[0] == ".locks":
            continue
        kind = "socket" if path.is_socket() else "dir" if path.is_dir() else "file"
        print(f"  {'    ' * (len(rel.parts) - 1)}{rel.name}  ({kind})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cni-bin-dir", default="/usr/lib/cni")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="vhu", dir="/tmp"))
    try:
        cni_dir = root / "cni"
        node_config = root / "node.json"
        node_config.write_text(
            json.dumps({"allowed_cni_dirs": [str(cni_dir)], "allowed_vhost_tools": [str(STAND_IN_TOOL)]})
        )
        config = json.loads(json.dumps(SAMPLE))
        config["cniDir"] = str(cni_dir)
        config["vhost"]["vhost_tool"] = str(STAND_IN_TOOL)
        config["ipam"]["dataDir"] = str(root / "ipam")
        container_id = secrets.token_hex(32)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "CNI_CONTAINERID": container_id,
            "CNI_IFNAME": "net0",
            "CNI_NETNS": "/var/run/netns/demo",
            "CNI_PATH": args.cni_bin_dir,
            "VHOSTUSER_VPP_NODE_CONFIG": str(node_config),
            "VHOST_TOOL_STATE": str(root / "vpp-state.json"),
        }

        print("== VPP: a stand-in (tests/tools/state_vhost_tool.py via the vhost_tool backend)")
        print("   The VPP binary-API backend and emulator are not in this build yet; no packets move.\n")
        print("== network config (the original README's sample; no cniVersion, so answered as 0.3.0):")
        print(json.dumps(config, indent=2), "\n")
        print(f"== ADD  container {container_id[:12]}…  ifname net0")
        print(run_plugin("ADD", config, env))
        print(f"== files under cniDir ({cni_dir}):")
        show_tree(cni_dir)
        pod_dir = cni_dir / container_id
        for name in (f"{container_id[:12]}-net0-ip4.conf", f"{container_id[:12]}-net0.json"):
            print(f"\n== {name}")
            print((pod_dir / name).read_text(), end="")
        print("\n== the pod's DPDK app would start with:")
        ip4 = json.loads((pod_dir / f"{container_id[:12]}-net0-ip4.conf").read_text())
        print(f"   --vdev=virtio_user0,path={pod_dir / (container_id[:12] + '-net0')},mac={ip4['macAddr']}")
        print("\n== DEL")
        run_plugin("DEL", config, env)
        left = [p for p in cni_dir.rglob("*") if ".locks" not in p.parts and p.name != "get-prefix.sh"]
        print(f"   left under cniDir: {left or 'nothing'}")
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
