"""A node for the plugin to work on: cniDir, host-local's data dir, node policy, a VPP stand-in.

Tests run the installed `vhostuser` executable exactly as a runtime does: CNI_*
variables in the environment, the network config on stdin, the result or
error read back from stdout. IPAM is the distribution's real host-local.

Two ways of running the plugin, one per pytest run (`make test` makes both):
- directly: the venv's `vhostuser` entry point serves each request in its own process;
- `VHOSTUSER_TEST_VIA_AGENT=1`: the shim `vhostuser-vpp install` writes, handing every
  request to one node agent started for the session (its own policy names the socket;
  each request still carries its test node's policy, as a runtime's environment would).
Tests about the plugin process itself (killed mid-ADD, seen waiting in flock(2)) run
`DIRECT_PLUGIN` in both. The emulator-against-VPP tests (test_differential.py, sim/) speak
VPP's API and never run the plugin, so the agent's run leaves them out.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import vpp_targets
from tests.integration import testpmd
from tests.integration.vpp_probe import VppProbe
from tests.samples import readme_sample
from tests.vpp_instance import VppInstance
from vhostuser_vpp.defaults import DEFAULT_STATS_SOCKET
from vhostuser_vpp.sim import Emulator

CNI_BIN_DIR = os.environ.get("CNI_BIN_DIR", "/usr/lib/cni")
STATE_TOOL = str(Path(__file__).resolve().parents[1] / "tools" / "state_vhost_tool.py")
DIRECT_PLUGIN = str(Path(sys.executable).parent / "vhostuser")
VIA_AGENT = os.environ.get("VHOSTUSER_TEST_VIA_AGENT") == "1"
# The session agent's files: short, as its sockets' paths must be.
AGENT_ROOT = Path(f"/tmp/vhu-agent-{os.getpid()}")
PLUGIN = str(AGENT_ROOT / "bin" / "vhostuser") if VIA_AGENT else DIRECT_PLUGIN
VHOSTUSER_VPP = str(Path(sys.executable).parent / "vhostuser-vpp")
NETWORK = "vhostuser-network"
V4_RANGE = {"subnet": "10.56.217.0/24", "rangeStart": "10.56.217.131", "rangeEnd": "10.56.217.190"}
V6_RANGE = {"subnet": "fd00:56:217::/64", "rangeStart": "fd00:56:217::83", "rangeEnd": "fd00:56:217::be"}
# The bridge domains tests put L2 ports in, allowed by every test node's policy.
TEST_BRIDGE_DOMAINS = [3, 7, 9, 10, 12, 4242]


def host_local_reservations(data_dir: Path, network: str) -> dict[str, list[str]]:
    """host-local's reservations of a network in its dataDir: ip -> [containerID, ifname]."""
    net_dir = data_dir / network
    if not net_dir.is_dir():
        return {}
    return {
        p.name: p.read_text().split()
        for p in net_dir.iterdir()
        if p.name[0].isdigit() and not p.name.startswith("last_reserved")
    }


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
    def __init__(self, root: Path, api_socket: str = "", stats_socket: str = "") -> None:
        """Without `api_socket` the node has no VPP: its policy allows a socket in `root`
        that nothing listens on, never the host's /run/vpp/api.sock."""
        self.root = root
        self.api_socket = api_socket or str(root / "no-vpp.sock")
        self.stats_socket = stats_socket or str(root / "no-stats.sock")
        self.cni_dir = root / "cni"
        self.ipam_dir = root / "ipam"
        self.state_file = root / "vpp-state.json"
        self.node_config = root / "node.json"
        self.device_info_dir = root / "devinfo"
        self.log_dir = root / "log"
        # ADDs not yet deleted: (container ID, ifname) -> (stdin, extra env, netns_exec).
        self._attached: dict[tuple[str, str], tuple[bytes, Mapping[str, str] | None, str]] = {}
        self.write_policy([STATE_TOOL])

    def write_policy(
        self, tools: list[str], host_route_devices: tuple[str, ...] = (), agent_listen: str | None = None
    ) -> None:
        extra = {"agent_listen": agent_listen} if agent_listen else {}
        self.node_config.write_text(
            json.dumps(
                {
                    **extra,
                    "allowed_cni_dirs": [str(self.cni_dir)],
                    "allowed_api_sockets": [self.api_socket],
                    "allowed_vhost_tools": tools,
                    "allowed_host_route_devices": list(host_route_devices),
                    "allowed_log_dirs": [str(self.log_dir)],
                    "allowed_device_info_dirs": [str(self.device_info_dir)],
                    "allowed_unnumbered_interfaces": ["loop0", "loop77"],
                    "allowed_bridge_domains": TEST_BRIDGE_DOMAINS,
                }
            )
        )

    def ranges_ipam(self, *families: int) -> dict[str, Any]:
        """host-local with one range per family (`ranges`), as a dual-stack cluster has it:
        the sample's IPv4 range, and fd00:56:217::/64 (::83-::be) for IPv6."""
        ranges = {4: V4_RANGE, 6: V6_RANGE}
        return {
            "type": "host-local",
            "dataDir": str(self.ipam_dir),
            "ranges": [[ranges[f]] for f in families],
            "routes": [{4: {"dst": "0.0.0.0/0"}, 6: {"dst": "::/0"}}[f] for f in families],
        }

    def vpp_config(self, version: str = "1.0.0", **vhost: Any) -> dict[str, Any]:
        """The sample network on the binary-API backend; L3 with loop0 made on demand."""
        settings = {"backend": "vpp", "api_socket": self.api_socket, "create_loopback": True, **vhost}
        return self.config(version, vhost=settings)

    def config(self, version: str | None = "1.0.0", **top: Any) -> dict[str, Any]:
        """The original README's sample network, pointed at this node's directories."""
        vhost = {"vhost_tool": STATE_TOOL, "api_socket": self.api_socket}
        config = readme_sample(if0name="net1", cniDir=str(self.cni_dir), vhost=vhost)
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
        plugin: str = PLUGIN,
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
        argv = ["ip", "netns", "exec", netns_exec, plugin] if netns_exec else [plugin]
        proc = subprocess.run(argv, input=data, env=env, capture_output=True, timeout=120, check=False)
        run = CniRun(proc.returncode, proc.stdout.decode(), proc.stderr.decode())
        key = (container_id, ifname)
        if command == "ADD" and run.code == 0:
            self._attached[key] = (data, extra_env, netns_exec)
        elif command == "DEL":
            self._attached.pop(key, None)
        return run

    def delete_attached(self) -> list[str]:
        """The runtime's DEL for every attachment a test added and did not delete, as when
        its pods go away; returns the DELs that failed. Whatever they leave in VPP, the
        isolation check then reports."""
        failures = []
        for (container_id, ifname), (data, extra_env, netns_exec) in list(self._attached.items()):
            run = self.run(
                "DEL", None, container_id, ifname, extra_env=extra_env, stdin=data, netns_exec=netns_exec
            )
            if run.code != 0:
                failures.append(f"DEL {container_id[:12]}/{ifname}: {run.stdout.strip()}")
        return failures

    def ports(self) -> dict[str, Any]:
        """The VPP stand-in's interfaces."""
        if not self.state_file.exists():
            return {}
        ports: dict[str, Any] = json.loads(self.state_file.read_text())["ports"]
        return ports

    def reservations(self) -> dict[str, str]:
        """host-local's reserved addresses: ip -> 'containerID\\nifname'."""
        return {ip: "\n".join(owner) for ip, owner in host_local_reservations(self.ipam_dir, NETWORK).items()}

    def files(self) -> set[str]:
        """Everything under cniDir but the node-wide files (locks, get-prefix.sh, the state
        directory itself; the records in it count)."""
        if not self.cni_dir.exists():
            return set()
        return {
            str(p.relative_to(self.cni_dir))
            for p in self.cni_dir.rglob("*")
            if not str(p.relative_to(self.cni_dir)).startswith(".locks")
            and p.name != "get-prefix.sh"
            and p != self.cni_dir / ".state"
        }

    def record(self, container_id: str, ifname: str = "net1") -> Path:
        """The attachment's trusted record, in the state directory pods never see."""
        return self.cni_dir / ".state" / container_id / f"{ifname}.json"

    def forget(self, container_id: str, ifname: str = "net1") -> None:
        """The attachment's records vanish (both the trusted one and the pod's copy)."""
        self.record(container_id, ifname).unlink()
        (self.cni_dir / container_id / f"{container_id[:12]}-{ifname}.json").unlink()

    def attachment_files(self, container_id: str, ifname: str = "net1") -> set[str]:
        """What `files` lists for one attachment in server mode."""
        prefix = f"{container_id}/{container_id[:12]}-{ifname}"
        state = f".state/{container_id}"
        return {container_id, prefix, f"{prefix}-ip4.conf", f"{prefix}.json", state, f"{state}/{ifname}.json"}

    def snapshot(self) -> tuple[set[str], dict[str, Any], dict[str, str]]:
        return self.files(), self.ports(), self.reservations()


@pytest.fixture(scope="session", autouse=True)
def _host_local_present() -> None:
    if not os.access(os.path.join(CNI_BIN_DIR, "host-local"), os.X_OK):
        pytest.fail(
            f"host-local not found in {CNI_BIN_DIR}: run `make cni-plugins` (containernetworking-plugins)"
        )
    if not os.access(DIRECT_PLUGIN, os.X_OK):
        pytest.fail(f"{DIRECT_PLUGIN} is not installed: run `make install`")


# Relative to this directory: what never runs the CNI executable.
_NO_PLUGIN_RUNS = ("test_differential.py", "sim")


def pytest_ignore_collect(collection_path: Path) -> bool | None:
    here = Path(__file__).parent
    if VIA_AGENT and collection_path.is_relative_to(here):
        parts = collection_path.relative_to(here).parts
        if parts and parts[0] in _NO_PLUGIN_RUNS:
            return True
    return None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    how = "through the shim and a node agent" if VIA_AGENT else "directly (one process per request)"
    terminalreporter.write_line(f"plugin runs: {how}")


class ShimAgent:
    """The shim, installed in `root/bin` by `vhostuser-vpp install`, and a node agent that
    serves it: its own policy names the CNI socket; it has no VPP and no records of its
    own to reconcile. `stop` fails the test if the agent exited badly or logged a request
    it could not serve."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.plugin = str(root / "bin" / "vhostuser")
        self.socket = root / "cni.sock"
        self.policy = root / "node.json"
        self.log = root / "agent.log"
        self.proc: subprocess.Popen[bytes] | None = None
        (root / "bin").mkdir(parents=True)
        self.policy.write_text(
            json.dumps({"agent_socket": str(self.socket), "agent_listen": f"unix:{root / 'agent.sock'}"})
        )
        install = [VHOSTUSER_VPP, "install", "--cni-bin-dir", str(root / "bin")]
        install += ["--cni-dir", str(root / "cni"), "--node-config", str(self.policy)]
        subprocess.run(install, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        serve = [VHOSTUSER_VPP, "agent", "--api-socket", str(self.root / "no-vpp.sock")]
        serve += ["--cni-dir", str(self.root / "cni"), "--interval", "3600"]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                serve,
                env={**os.environ, "VHOSTUSER_VPP_NODE_CONFIG": str(self.policy)},
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        wait_for(self.socket.exists, "the node agent's CNI socket", detail=self.log.read_text)

    def metrics(self) -> str:
        from vhostuser_vpp.agent.metrics import UnixHTTPConnection

        conn = UnixHTTPConnection(str(self.root / "agent.sock"))
        try:
            conn.request("GET", "/metrics")
            return conn.getresponse().read().decode()
        finally:
            conn.close()

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        code = proc.wait(timeout=60)
        failures = [line for line in self.log.read_text().splitlines() if '"request_failed"' in line]
        assert code == 0, f"the node agent exited {code}"
        assert not failures, f"the node agent could not serve: {failures[:3]}"


@pytest.fixture(scope="session", autouse=True)
def _session_agent() -> Iterator[None]:
    """With VHOSTUSER_TEST_VIA_AGENT=1: PLUGIN is the shim, served by one agent."""
    if not VIA_AGENT:
        yield
        return
    shutil.rmtree(AGENT_ROOT, ignore_errors=True)
    agent = ShimAgent(AGENT_ROOT)
    try:
        agent.start()
        yield
        agent.stop()
    finally:
        if agent.proc is not None:
            agent.proc.kill()
        shutil.rmtree(AGENT_ROOT, ignore_errors=True)


@pytest.fixture
def node() -> Iterator[Node]:
    # Socket paths are limited to 107 bytes and a container directory name is 64
    # characters, so the node lives in a short directory rather than tmp_path.
    root = Path(tempfile.mkdtemp(prefix="vhu", dir="/tmp"))
    try:
        yield Node(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class VppNode:
    """A node with a VPP: the emulator (fresh per test) or a real VPP (one per session,
    left by each test as it found it)."""

    node: Node
    probe: VppProbe
    emulator: Emulator | None
    instance: VppInstance | None = None

    @property
    def target(self) -> str:
        return "emulator" if self.emulator is not None else "real VPP"

    def need_emulator(self) -> Emulator:
        if self.emulator is None:
            pytest.skip("needs the emulator (fault injection, other VPP profiles), not a real VPP")
        return self.emulator

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`vhostuser-vpp ARGS` on this node's VPP and cniDir, JSON out."""
        node = self.node
        argv = [VHOSTUSER_VPP, *args, "--api-socket", node.api_socket, "--cni-dir", str(node.cni_dir)]
        env = {**os.environ, "VHOSTUSER_VPP_NODE_CONFIG": str(node.node_config)}
        return subprocess.run(
            [*argv, "-o", "json"], env=env, capture_output=True, text=True, timeout=120, check=False
        )

    def run_restore(self) -> subprocess.CompletedProcess[str]:
        """`vhostuser-vpp restore` of this node's pods."""
        return self.cli("restore")

    def vppctl(self, *args: str) -> str:
        if self.instance is None:
            pytest.skip("needs VPP's CLI: a VPP this suite starts, not VPP_API_SOCKET's")
        return self.instance.vppctl(*args)

    def restart(self) -> None:
        """VPP crashes and comes back: every port, route and index is gone, the socket files
        are left behind (the emulator's restart is a crash too)."""
        self.crash()
        self.recover()

    def crash(self) -> None:
        """VPP dies at once (an OOM kill): connections cut, socket files left refusing."""
        if self.emulator is not None:
            self.emulator.crash()
        elif self.instance is not None:
            self.probe.close()
            self.instance.stop(crash=True)
        else:
            pytest.skip("cannot crash a VPP this suite did not start (VPP_API_SOCKET)")

    def recover(self) -> None:
        """A new VPP after `crash` or `stop`, knowing nothing of the old one's state."""
        if self.emulator is not None:
            self.emulator.restart()
        elif self.instance is not None:
            self.instance.start()
        self.probe.reconnect()

    def stop(self) -> None:
        """VPP stops as on SIGTERM; the fixture brings a real one back for the next test."""
        if self.emulator is not None:
            self.emulator.stop()
        elif self.instance is not None:
            self.probe.close()
            self.instance.stop()
        else:
            pytest.skip("cannot stop a VPP this suite did not start (VPP_API_SOCKET)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that takes `vpp` runs against the emulator and the real VPP (those marked
    `dataplane` move packets, which the emulator cannot: real VPP only); those marked
    `lifecycle` against the older real release too. With VHOSTUSER_TEST_VPP_CONTAINER=1
    against the containerised VPP only: the run is about the container, and the emulator
    and the older release ran in make test's first run. Tests marked `container` are about
    the containerised VPP itself and run against nothing else."""
    if "vpp" not in metafunc.fixturenames:
        return
    targets = [vpp_targets.primary_label()]
    if vpp_targets.CONTAINER or metafunc.definition.get_closest_marker("container"):
        metafunc.parametrize("vpp", targets, indirect=True)
        return
    if not metafunc.definition.get_closest_marker("dataplane"):
        targets.insert(0, "emulator")
    if metafunc.definition.get_closest_marker("lifecycle"):
        targets.append(vpp_targets.old_label())
    metafunc.parametrize("vpp", targets, indirect=True)


@pytest.fixture(scope="session")
def real_vpps() -> Iterator[vpp_targets.RealVpps]:
    with vpp_targets.RealVpps() as pool:
        yield pool


@pytest.fixture
def vpp(request: pytest.FixtureRequest, real_vpps: vpp_targets.RealVpps) -> Iterator[VppNode]:
    root = Path(tempfile.mkdtemp(prefix="vhu", dir="/tmp"))
    try:
        if request.param == "emulator":
            api_socket, stats_socket = str(root / "api.sock"), str(root / "stats.sock")
            with (
                Emulator.start(api_socket, stats_socket=stats_socket) as emulator,
                VppProbe(api_socket) as probe,
            ):
                yield VppNode(Node(root, api_socket, stats_socket), probe, emulator)
        else:
            real = real_vpps.get(request.param)
            with real.isolated() as probe:
                stats_socket = real.instance.stats_socket if real.instance else DEFAULT_STATS_SOCKET
                node = Node(root, real.api_socket, stats_socket)
                yield VppNode(node, probe, None, real.instance)
                if real.instance is None or real.instance.running:
                    node.delete_attached()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def dpdk() -> Iterator[None]:
    """Hugepages for the DPDK pods (testpmd) of a module; skipped, or with
    VHOSTUSER_TEST_REQUIRE_VPP a failure, where testpmd cannot run."""
    why = testpmd.missing()
    if why:
        if vpp_targets.REQUIRED:
            pytest.fail(f"VHOSTUSER_TEST_REQUIRE_VPP=1 but {why}", pytrace=False)
        pytest.skip(why)
    with testpmd.hugepages():
        yield


def wait_for(
    condition: Callable[[], bool], what: str, timeout: float = 60.0, detail: Callable[[], str] | None = None
) -> None:
    """Polls `condition` (50 ms, growing to 0.5 s) until it holds; fails naming `what`, and
    what `detail` says then (a log's tail), after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:g}s\n{detail() if detail else ''}")
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
