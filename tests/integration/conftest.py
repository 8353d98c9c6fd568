"""A node for the plugin to work on: cniDir, host-local's data dir, node policy, a VPP stand-in.

Tests run the installed `vhostuser` executable exactly as a runtime does: CNI_*
variables in the environment, the network config on stdin, the result or
error read back from stdout. IPAM is the distribution's real host-local.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.vpp_probe import VppProbe
from tests.samples import readme_sample
from vhostuser_vpp.sim import Emulator

CNI_BIN_DIR = os.environ.get("CNI_BIN_DIR", "/usr/lib/cni")
STATE_TOOL = str(Path(__file__).resolve().parents[1] / "tools" / "state_vhost_tool.py")
PLUGIN = str(Path(sys.executable).parent / "vhostuser")
NETWORK = "vhostuser-network"


def new_container_id() -> str:
    return secrets.token_hex(32)


@dataclass
class CniRun:
    code: int
    stdout: str
    stderr: str

    @property
    def doc(self) -> Any:
        """stdout as one JSON document; fails the test if it is anything else."""
        return json.loads(self.stdout)

    def assert_error(self, code: int) -> dict[str, Any]:
        assert self.code == 1, f"expected failure, got rc={self.code} stdout={self.stdout!r}"
        doc: dict[str, Any] = self.doc
        assert doc["code"] == code, doc
        assert doc["msg"], doc
        return doc

    def assert_ok(self) -> Any:
        assert self.code == 0, f"rc={self.code} stdout={self.stdout} stderr={self.stderr}"
        return self.doc if self.stdout.strip() else None


class Node:
    def __init__(self, root: Path, api_socket: str = "/run/vpp/api.sock") -> None:
        self.root = root
        self.api_socket = api_socket
        self.cni_dir = root / "cni"
        self.ipam_dir = root / "ipam"
        self.state_file = root / "vpp-state.json"
        self.node_config = root / "node.json"
        self.device_info_dir = root / "devinfo"
        self.log_dir = root / "log"
        self.write_policy([STATE_TOOL])

    def write_policy(self, tools: list[str], host_route_devices: tuple[str, ...] = ()) -> None:
        self.node_config.write_text(
            json.dumps(
                {
                    "allowed_cni_dirs": [str(self.cni_dir)],
                    "allowed_api_sockets": [self.api_socket],
                    "allowed_vhost_tools": tools,
                    "allowed_host_route_devices": list(host_route_devices),
                    "allowed_log_dirs": [str(self.log_dir)],
                    "allowed_device_info_dirs": [str(self.device_info_dir)],
                }
            )
        )

    def vpp_config(self, version: str = "1.0.0", **vhost: Any) -> dict[str, Any]:
        """The sample network on the binary-API backend; L3 with loop0 made on demand."""
        settings = {"backend": "vpp", "api_socket": self.api_socket, "create_loopback": True, **vhost}
        return self.config(version, vhost=settings)

    def config(self, version: str | None = "1.0.0", **top: Any) -> dict[str, Any]:
        """The original README's sample network, pointed at this node's directories."""
        config = readme_sample(if0name="net1", cniDir=str(self.cni_dir), vhost={"vhost_tool": STATE_TOOL})
        config["ipam"]["dataDir"] = str(self.ipam_dir)
        if version is not None:
            config["cniVersion"] = version
        config.update(top)
        return config

    def env(self, command: str, container_id: str, ifname: str, netns: str) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "CNI_COMMAND": command,
            "CNI_PATH": CNI_BIN_DIR,
            "VHOSTUSER_VPP_NODE_CONFIG": str(self.node_config),
            "VHOST_TOOL_STATE": str(self.state_file),
        }
        if container_id:
            env["CNI_CONTAINERID"] = container_id
        if ifname:
            env["CNI_IFNAME"] = ifname
        if netns:
            env["CNI_NETNS"] = netns
        return env

    def run(
        self,
        command: str,
        config: dict[str, Any] | None = None,
        container_id: str = "",
        ifname: str = "net1",
        netns: str = "/var/run/netns/pod",
        extra_env: Mapping[str, str] | None = None,
        drop_env: tuple[str, ...] = (),
        stdin: bytes | None = None,
        netns_exec: str = "",
    ) -> CniRun:
        """Runs the plugin like a runtime; `netns_exec` runs it inside that network namespace
        (`ip netns exec`), the way a test stands in for the host's namespace."""
        env = self.env(command, container_id, ifname, netns)
        env.update(extra_env or {})
        for name in drop_env:
            env.pop(name, None)
        data = (
            stdin
            if stdin is not None
            else json.dumps(config if config is not None else self.config()).encode()
        )
        argv = ["ip", "netns", "exec", netns_exec, PLUGIN] if netns_exec else [PLUGIN]
        proc = subprocess.run(argv, input=data, env=env, capture_output=True, timeout=120, check=False)
        return CniRun(proc.returncode, proc.stdout.decode(), proc.stderr.decode())

    def ports(self) -> dict[str, Any]:
        """The VPP stand-in's interfaces."""
        if not self.state_file.exists():
            return {}
        ports: dict[str, Any] = json.loads(self.state_file.read_text())["ports"]
        return ports

    def reservations(self) -> dict[str, str]:
        """host-local's reserved addresses: ip -> 'containerID\\nifname'."""
        net_dir = self.ipam_dir / NETWORK
        if not net_dir.is_dir():
            return {}
        return {
            p.name: p.read_text()
            for p in net_dir.iterdir()
            if p.name[0].isdigit() and not p.name.startswith("last_reserved")
        }

    def files(self) -> set[str]:
        """Everything under cniDir but the node-wide files (locks, get-prefix.sh)."""
        if not self.cni_dir.exists():
            return set()
        return {
            str(p.relative_to(self.cni_dir))
            for p in self.cni_dir.rglob("*")
            if not str(p.relative_to(self.cni_dir)).startswith(".locks") and p.name != "get-prefix.sh"
        }

    def snapshot(self) -> tuple[set[str], dict[str, Any], dict[str, str]]:
        return self.files(), self.ports(), self.reservations()


@pytest.fixture(scope="session", autouse=True)
def _host_local_present() -> None:
    if not os.access(os.path.join(CNI_BIN_DIR, "host-local"), os.X_OK):
        pytest.fail(
            f"host-local not found in {CNI_BIN_DIR}: run `make cni-plugins` (containernetworking-plugins)"
        )
    if not os.access(PLUGIN, os.X_OK):
        pytest.fail(f"{PLUGIN} is not installed: run `make install`")


@pytest.fixture
def node() -> Iterator[Node]:
    # Socket paths are limited to 107 bytes and a container directory name is 64
    # characters, so the node lives in a short directory rather than tmp_path.
    root = Path(tempfile.mkdtemp(prefix="vhu", dir="/tmp"))
    try:
        yield Node(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


# A real VPP when VPP_API_SOCKET names its API socket, else the emulator, fresh per test.
REAL_VPP_SOCKET = os.environ.get("VPP_API_SOCKET", "")


@dataclass
class VppNode:
    node: Node
    probe: VppProbe
    emulator: Emulator | None

    def need_emulator(self) -> Emulator:
        if self.emulator is None:
            pytest.skip("needs the emulator (fault injection or restarts), not a real VPP")
        return self.emulator


@pytest.fixture
def vpp() -> Iterator[VppNode]:
    root = Path(tempfile.mkdtemp(prefix="vhu", dir="/tmp"))
    try:
        if REAL_VPP_SOCKET:
            node = Node(root, REAL_VPP_SOCKET)
            with VppProbe(REAL_VPP_SOCKET) as probe:
                yield VppNode(node, probe, None)
        else:
            api_socket = str(root / "api.sock")
            with Emulator.start(api_socket) as emulator, VppProbe(api_socket) as probe:
                yield VppNode(Node(root, api_socket), probe, emulator)
    finally:
        shutil.rmtree(root, ignore_errors=True)
