"""What the benchmark (`plugin_bench.py`) and the profiler (`profile_add.py`) share: a node
for the plugin to run on (directories, node policy, configs), timed whole-process runs, and
the in-process emulator with a request counter and its thread's CPU clock.
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vhostuser_vpp.sim import Emulator, Faults
from vhostuser_vpp.sim.faults import Decision

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
PYTHON = str(VENV_BIN / "python")
PLUGIN = str(VENV_BIN / "vhostuser")
STATE_TOOL = str(REPO / "tests" / "tools" / "state_vhost_tool.py")
PAPI_TOOL_SOURCE = REPO / "tests" / "tools" / "papi_vhost_tool.py"
CLI_TOOL = str(REPO / "examples" / "vpp-config.py")
FAKE_VPPCTL = str(REPO / "bench" / "fake_vppctl.sh")
CNI_BIN_DIR = os.environ.get("CNI_BIN_DIR", "/usr/lib/cni")
HOST_LOCAL = os.path.join(CNI_BIN_DIR, "host-local")
NETWORK = "bench-network"
IFNAME = "net1"
NETNS = "/var/run/netns/bench"
RUN_TIMEOUT_S = 120.0
PORT_BATCH = 1000
IMPORT_FLOOR = "import vpp_papi, pydantic"


# -- statistics ---------------------------------------------------------------------------------
def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def p95(values: Sequence[float]) -> float:
    """Nearest-rank 95th percentile."""
    ordered = sorted(values)
    rank = max(1, -(-95 * len(ordered) // 100))
    return ordered[rank - 1]


# -- one node: directories, policy, configs ----------------------------------------------------
@dataclass
class BenchNode:
    root: Path
    api_socket: str = ""

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.cni_dir = self.root / "cni"
        self.ipam_dir = self.root / "ipam"
        self.state_file = self.root / "tool-state.json"
        self.node_config = self.root / "node.json"
        # The papi tool is installed as an executable for the venv's interpreter, as tests do.
        self.papi_tool = str(self.root / "papi-vhost-tool")
        Path(self.papi_tool).write_text(f"#!{PYTHON}\n{PAPI_TOOL_SOURCE.read_text()}")
        Path(self.papi_tool).chmod(0o755)
        policy = {
            "allowed_cni_dirs": [str(self.cni_dir)],
            "allowed_api_sockets": [self.api_socket] if self.api_socket else [],
            "allowed_vhost_tools": [STATE_TOOL, self.papi_tool, CLI_TOOL],
            "allowed_log_dirs": [],
            "allowed_device_info_dirs": [],
        }
        self.node_config.write_text(json.dumps(policy))

    def ipam(self) -> dict[str, Any]:
        # A /16 so that the parallel part never runs out of addresses.
        return {
            "type": "host-local",
            "subnet": "10.56.0.0/16",
            "rangeStart": "10.56.1.1",
            "rangeEnd": "10.56.250.254",
            "routes": [{"dst": "0.0.0.0/0"}],
            "gateway": "10.56.0.1",
            "dataDir": str(self.ipam_dir),
        }

    def vpp_config(self, prev_result: dict[str, Any] | None = None) -> bytes:
        vhost = {"backend": "vpp", "api_socket": self.api_socket, "create_loopback": True}
        return self._config(vhost, prev_result)

    def tool_config(self) -> bytes:
        return self._config({"backend": "tool", "vhost_tool": self.papi_tool})

    def mock_tool_config(self) -> bytes:
        return self._config({"backend": "tool", "vhost_tool": STATE_TOOL})

    def cli_tool_config(self) -> bytes:
        return self._config({"backend": "tool", "vhost_tool": CLI_TOOL})

    def _config(self, vhost: dict[str, Any], prev_result: dict[str, Any] | None = None) -> bytes:
        config = {
            "cniVersion": "1.0.0",
            "type": "vhostuser",
            "name": NETWORK,
            "cniDir": str(self.cni_dir),
            "vhost": vhost,
            "ipam": self.ipam(),
        }
        if prev_result is not None:
            config["prevResult"] = prev_result
        return json.dumps(config).encode()

    def host_local_config(self) -> bytes:
        return json.dumps({"cniVersion": "1.0.0", "name": NETWORK, "ipam": self.ipam()}).encode()

    def env(self, command: str, container_id: str) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": container_id,
            "CNI_IFNAME": IFNAME,
            "CNI_NETNS": NETNS,
            "CNI_PATH": CNI_BIN_DIR,
            "VHOSTUSER_VPP_NODE_CONFIG": str(self.node_config),
            "VHOST_TOOL_STATE": str(self.state_file),
            "VHOST_TOOL_API_SOCKET": self.api_socket,
            "VPPCTL": FAKE_VPPCTL,
        }


@dataclass
class Run:
    seconds: float
    code: int
    stdout: bytes
    stderr: bytes

    def check(self, what: str) -> Run:
        if self.code != 0:
            raise RuntimeError(
                f"{what} failed (rc={self.code}): {self.stdout.decode(errors='replace')[:500]} "
                f"{self.stderr.decode(errors='replace')[-1500:]}"
            )
        return self


def run_timed(argv: list[str], stdin: bytes, env: Mapping[str, str]) -> Run:
    began = time.perf_counter()
    proc = subprocess.run(
        argv, input=stdin, env=dict(env), capture_output=True, timeout=RUN_TIMEOUT_S, check=False
    )
    return Run(time.perf_counter() - began, proc.returncode, proc.stdout, proc.stderr)


def children_cpu_seconds() -> float:
    """User + system CPU of the waited-for children (and theirs: the plugin waits for host-local)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def new_container_id() -> str:
    return secrets.token_hex(32)


# -- the emulator, with a request counter and its thread's CPU clock ----------------------------
class CountingFaults(Faults):
    """No faults; counts the requests the emulator handles (it asks `decide` once per request)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()

    def decide(self, message: str) -> Decision:
        self.counts[message] += 1
        return super().decide(message)

    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class BenchEmulator:
    emulator: Emulator
    faults: CountingFaults
    cpu_clock: int

    def cpu_seconds(self) -> float:
        """CPU time the emulator's thread (its asyncio loop: all request handling) has used."""
        return time.clock_gettime(self.cpu_clock)


@contextmanager
def started_emulator(socket_path: str) -> Iterator[BenchEmulator]:
    faults = CountingFaults()
    before = {t.ident for t in threading.enumerate()}
    with Emulator.start(socket_path, faults=faults) as emulator:
        threads = [t for t in threading.enumerate() if t.ident not in before and t.name == "vpp-emulator"]
        if len(threads) != 1 or threads[0].ident is None:
            raise RuntimeError(f"cannot find the emulator's thread among {threads}")
        yield BenchEmulator(emulator, faults, time.pthread_getcpuclockid(threads[0].ident))


def papi_client(socket_path: str) -> Any:
    from vpp_papi import VPPApiClient

    from vhostuser_vpp.vpp.api_files import api_json_paths

    client = VPPApiClient(apifiles=api_json_paths(), server_address=socket_path)
    client.connect("plugin-bench")
    return client


def create_ports(socket_path: str, socket_dir: Path, count: int) -> float:
    """`count` server-mode vhost-user ports with tags and real sockets, through `vpp.ops`."""
    from vhostuser_vpp.vpp.client import VppClient
    from vhostuser_vpp.vpp.ops import VhostOptions, Vpp

    socket_dir.mkdir(parents=True, exist_ok=True)
    client = VppClient(socket_path, RUN_TIMEOUT_S, RUN_TIMEOUT_S)
    client.connect()
    began = time.perf_counter()
    try:
        vpp = Vpp(client)
        for i in range(count):
            vpp.create_vhost_port(str(socket_dir / f"p{i:04d}"), True, f"bench:{i:04d}", VhostOptions())
    finally:
        client.close()
    return time.perf_counter() - began


def control_ping_seconds(socket_path: str, pings: int = 2000) -> float:
    """Median control_ping round trip from a vpp_papi client in this process."""
    client = papi_client(socket_path)
    try:
        for _ in range(200):
            client.api.control_ping()
        samples = []
        for _ in range(5):
            began = time.perf_counter()
            for _ in range(pings // 5):
                client.api.control_ping()
            samples.append((time.perf_counter() - began) / (pings // 5))
    finally:
        client.disconnect()
    return median(samples)


def plugin(node: BenchNode, command: str, cid: str, config: bytes) -> Run:
    return run_timed([PLUGIN], config, node.env(command, cid)).check(f"vhostuser {command}")


def preflight() -> None:
    for path in (PLUGIN, HOST_LOCAL, STATE_TOOL, CLI_TOOL, FAKE_VPPCTL):
        if not os.access(path, os.X_OK):
            raise SystemExit(f"{path} is missing or not executable: run `make install cni-plugins`")
