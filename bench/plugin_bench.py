"""Cold-process cost of the `vhostuser` plugin against the in-process VPP emulator (`make bench`).

The plugin runs as a runtime runs it: a fresh process per verb, CNI_* variables in the
environment, the network config on stdin, the distribution's host-local for IPAM. The
emulator (`vhostuser_vpp.sim.Emulator`) runs in this process, in its own thread. Measured,
in one run so that the ratios compare like with like:

- ADD and DEL wall time (median, p95) on the `vpp` backend and on the `tool` backend (and
  the `vpp` backend's CHECK, which CRI-O runs right after every ADD), and
  three floors: `python -c pass`, `python -c "import vpp_papi, pydantic"` with the venv's
  interpreter, and `python -S -c pass` (what a stdlib-only shim would start from). The
  tool backend runs the test suite's tool, tests/tools/papi_vhost_tool.py: one process per
  verb doing the same VPP work over the binary API, as the original's vpp-config.py did
  through vppctl. A second tool series runs tests/tools/state_vhost_tool.py, a mock that
  keeps its ports in a JSON file and talks to no VPP: the bare cost of the tool protocol.
  A third runs examples/vpp-config.py, the reference tool for users, with bench/fake_vppctl.sh
  in vppctl's place (VPP's CLI socket is not emulated);
- ADD against an emulator that already holds 1,000 vhost-user ports;
- 64 ADDs started at once (then 64 DELs): wall time, pods per second, errors;
- Debian's host-local (a Go CNI plugin) ADD and DEL;
- the emulator's share of one ADD: CPU time of the emulator's thread during the ADD
  (read through the thread's CPU clock), cross-checked with control_ping round trips times
  the number of requests one ADD sends (counted through the emulator's `faults` hook).

The sequential series are interleaved round by round (one sample of each per round), so a
slow spell of the shared machine hits every series alike. Prints one table and writes JSON
to $BENCH_OUT (default bench-results.json).

`--profile DIR` instead profiles one ADD's cold start: `-X importtime`, a timed breakdown of
the ADD steps (config parse, IPAM exec, VPP connect, each VPP call), a step-by-step import
attribution and a cProfile dump, all written to DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
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

# Targets of the performance issue: (JSON key, comparison, bound, description).
TARGETS: tuple[tuple[str, str, float, str], ...] = (
    ("add_over_import_floor", "<=", 1.3, "ADD median <= 1.3x the `import vpp_papi, pydantic` floor"),
    ("add_1000_over_0", "<=", 1.1, "ADD with 1,000 ports <= 1.1x ADD with none"),
    ("tool_over_vpp_add", ">=", 2.0, "vpp backend ADD >= 2x faster than the tool backend (papi tool)"),
    ("emulator_share_of_add", "<", 0.10, "emulator share of one ADD < 10%"),
)


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
    """`count` server-mode vhost-user ports with tags and real sockets, straight through the API."""
    socket_dir.mkdir(parents=True, exist_ok=True)
    client = papi_client(socket_path)
    began = time.perf_counter()
    try:
        for i in range(count):
            reply = client.api.create_vhost_user_if_v2(
                is_server=True,
                sock_filename=str(socket_dir / f"p{i:04d}"),
                renumber=False,
                custom_dev_instance=0,
                disable_mrg_rxbuf=False,
                disable_indirect_desc=False,
                enable_gso=False,
                enable_packed=False,
                enable_event_idx=False,
                use_custom_mac=False,
                mac_address="00:00:00:00:00:00",
                tag=f"bench:{i:04d}",
            )
            if reply.retval != 0:
                raise RuntimeError(f"create_vhost_user_if_v2 #{i}: retval {reply.retval}")
    finally:
        client.disconnect()
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


# -- the benchmark --------------------------------------------------------------------------------
@dataclass
class Series:
    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.samples.setdefault(name, []).append(value)

    def median(self, name: str) -> float:
        return median(self.samples[name])

    def p95(self, name: str) -> float:
        return p95(self.samples[name])


def plugin(node: BenchNode, command: str, cid: str, config: bytes) -> Run:
    return run_timed([PLUGIN], config, node.env(command, cid)).check(f"vhostuser {command}")


def add_then_del(series: Series, keys: tuple[str, str], node: BenchNode, config: bytes) -> None:
    """One pod's ADD and DEL, timed into the series named by `keys`."""
    cid = new_container_id()
    series.add(keys[0], plugin(node, "ADD", cid, config).seconds)
    series.add(keys[1], plugin(node, "DEL", cid, config).seconds)


def one_round(
    series: Series, a: BenchNode, b: BenchNode, t: BenchNode, hl: BenchNode, emu_a: BenchEmulator
) -> None:
    floor_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    series.add("floor_pass", run_timed([PYTHON, "-c", "pass"], b"", floor_env).check("floor").seconds)
    series.add("floor_import", run_timed([PYTHON, "-c", IMPORT_FLOOR], b"", floor_env).check("floor").seconds)
    series.add("floor_shim", run_timed([PYTHON, "-S", "-c", "pass"], b"", floor_env).check("floor").seconds)

    cid = new_container_id()
    cpu0, requests0, own0 = emu_a.cpu_seconds(), emu_a.faults.total(), children_cpu_seconds()
    add = plugin(a, "ADD", cid, a.vpp_config())
    cpu1, requests1, own1 = emu_a.cpu_seconds(), emu_a.faults.total(), children_cpu_seconds()
    # CRI-O runs CHECK right after every ADD, so it is on a pod's start-up path too.
    check = plugin(a, "CHECK", cid, a.vpp_config(prev_result=json.loads(add.stdout)))
    cpu_checked, requests_checked = emu_a.cpu_seconds(), emu_a.faults.total()
    delete = plugin(a, "DEL", cid, a.vpp_config())
    cpu2, requests2 = emu_a.cpu_seconds(), emu_a.faults.total()
    series.add("add", add.seconds)
    series.add("check", check.seconds)
    series.add("del", delete.seconds)
    series.add("add_cpu", own1 - own0)
    series.add("emu_cpu_add", cpu1 - cpu0)
    series.add("emu_share_add", (cpu1 - cpu0) / add.seconds)
    series.add("emu_share_del", (cpu2 - cpu_checked) / delete.seconds)
    series.add("requests_add", requests1 - requests0)
    series.add("requests_del", requests2 - requests_checked)

    add_then_del(series, ("add_1000", "del_1000"), b, b.vpp_config())
    add_then_del(series, ("tool_add", "tool_del"), a, a.tool_config())
    add_then_del(series, ("mock_tool_add", "mock_tool_del"), t, t.mock_tool_config())
    add_then_del(series, ("cli_tool_add", "cli_tool_del"), t, t.cli_tool_config())

    cid = new_container_id()
    hl_add = run_timed([HOST_LOCAL], hl.host_local_config(), hl.env("ADD", cid)).check("host-local ADD")
    hl_del = run_timed([HOST_LOCAL], hl.host_local_config(), hl.env("DEL", cid)).check("host-local DEL")
    series.add("host_local_add", hl_add.seconds)
    series.add("host_local_del", hl_del.seconds)
    series.add("host_local_add_del", hl_add.seconds + hl_del.seconds)


def parallel(node: BenchNode, command: str, cids: list[str]) -> tuple[float, int, list[str]]:
    """All of `cids` at once; wall time until the last exits, error count, first error texts."""
    config = node.vpp_config()

    def one(cid: str) -> Run:
        return run_timed([PLUGIN], config, node.env(command, cid))

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(cids)) as pool:
        runs = list(pool.map(one, cids))
    wall = time.perf_counter() - began
    failed = [r for r in runs if r.code != 0]
    return wall, len(failed), [r.stdout.decode(errors="replace")[:300] for r in failed[:3]]


def benchmark(runs: int, n_parallel: int, n_ports: int, workdir: Path) -> dict[str, Any]:
    a = BenchNode(workdir / "a", str(workdir / "a.sock"))
    b = BenchNode(workdir / "b", str(workdir / "b.sock"))
    t = BenchNode(workdir / "t")
    hl = BenchNode(workdir / "h")
    series = Series()
    with started_emulator(a.api_socket) as emu_a, started_emulator(b.api_socket) as emu_b:
        ports_s = create_ports(b.api_socket, workdir / "p", n_ports)
        print(f"created {n_ports} ports on the second emulator in {ports_s:.2f} s", flush=True)
        warm = Series()
        one_round(warm, a, b, t, hl, emu_a)  # pyc files, page cache, loop0 on both emulators
        began = time.perf_counter()
        for i in range(runs):
            one_round(series, a, b, t, hl, emu_a)
            if (i + 1) % 10 == 0:
                print(f"  round {i + 1}/{runs} ({time.perf_counter() - began:.0f} s)", flush=True)
        ping_s = control_ping_seconds(a.api_socket)

        cids = [new_container_id() for _ in range(n_parallel)]
        p_add_wall, p_add_errors, p_add_samples = parallel(a, "ADD", cids)
        ports_after_add = len(emu_a.emulator.ports())
        p_del_wall, p_del_errors, p_del_samples = parallel(a, "DEL", cids)
        ports_after_del = len(emu_a.emulator.ports())
        ports_b = len(emu_b.emulator.ports())

    add_median = series.median("add")
    import_floor = series.median("floor_import")
    requests_add = series.median("requests_add")
    result: dict[str, Any] = {
        "benchmark": "vhostuser plugin, cold process per verb, against the in-process VPP emulator",
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "runs": runs,
        "add_median_s": add_median,
        "add_p95_s": series.p95("add"),
        "add_cpu_median_s": series.median("add_cpu"),
        "del_median_s": series.median("del"),
        "del_p95_s": series.p95("del"),
        "check_median_s": series.median("check"),
        "check_p95_s": series.p95("check"),
        "floor_pass_median_s": series.median("floor_pass"),
        "floor_pass_p95_s": series.p95("floor_pass"),
        "floor_import_median_s": import_floor,
        "floor_import_p95_s": series.p95("floor_import"),
        "floor_shim_median_s": series.median("floor_shim"),
        "floor_shim_p95_s": series.p95("floor_shim"),
        "add_over_import_floor": add_median / import_floor,
        "add_over_pass_floor": add_median / series.median("floor_pass"),
        "ports_preloaded": n_ports,
        "ports_on_preloaded_emulator_at_end": ports_b,
        "ports_create_s": ports_s,
        "add_1000_median_s": series.median("add_1000"),
        "add_1000_p95_s": series.p95("add_1000"),
        "del_1000_median_s": series.median("del_1000"),
        "add_1000_over_0": series.median("add_1000") / add_median,
        "tool_add_median_s": series.median("tool_add"),
        "tool_add_p95_s": series.p95("tool_add"),
        "tool_del_median_s": series.median("tool_del"),
        "tool_del_p95_s": series.p95("tool_del"),
        "tool_over_vpp_add": series.median("tool_add") / add_median,
        "tool_over_vpp_del": series.median("tool_del") / series.median("del"),
        "mock_tool_add_median_s": series.median("mock_tool_add"),
        "mock_tool_add_p95_s": series.p95("mock_tool_add"),
        "mock_tool_del_median_s": series.median("mock_tool_del"),
        "mock_tool_over_vpp_add": series.median("mock_tool_add") / add_median,
        "cli_tool_add_median_s": series.median("cli_tool_add"),
        "cli_tool_add_p95_s": series.p95("cli_tool_add"),
        "cli_tool_del_median_s": series.median("cli_tool_del"),
        "cli_tool_over_vpp_add": series.median("cli_tool_add") / add_median,
        "parallel": n_parallel,
        "parallel64_wall_s": p_add_wall,
        "parallel64_pods_per_s": n_parallel / p_add_wall,
        "parallel64_cpu_bound_wall_s": n_parallel * series.median("add_cpu") / (os.cpu_count() or 1),
        "parallel64_errors": p_add_errors,
        "parallel64_error_samples": p_add_samples,
        "parallel64_ports_after_add": ports_after_add,
        "parallel64_del_wall_s": p_del_wall,
        "parallel64_del_per_s": n_parallel / p_del_wall,
        "parallel64_del_errors": p_del_errors,
        "parallel64_del_error_samples": p_del_samples,
        "parallel64_ports_after_del": ports_after_del,
        "host_local_median_s": series.median("host_local_add"),
        "host_local_p95_s": series.p95("host_local_add"),
        "host_local_del_median_s": series.median("host_local_del"),
        "host_local_add_del_median_s": series.median("host_local_add_del"),
        "add_over_host_local": add_median / series.median("host_local_add"),
        "emulator_share_method": (
            "CPU time of the emulator's thread (time.pthread_getcpuclockid) during each ADD, "
            "divided by that ADD's wall time; median over the runs"
        ),
        "emulator_share_of_add": series.median("emu_share_add"),
        "emulator_share_of_del": series.median("emu_share_del"),
        "emulator_cpu_per_add_median_s": series.median("emu_cpu_add"),
        "emulator_requests_per_add": requests_add,
        "emulator_requests_per_del": series.median("requests_del"),
        "control_ping_round_trip_s": ping_s,
        "emulator_share_of_add_by_ping": ping_s * requests_add / add_median,
    }
    result["targets"] = {
        key: {"target": text, "value": result[key], "pass": _meets(result[key], op, bound)}
        for key, op, bound, text in TARGETS
    }
    return result


def _meets(value: float, op: str, bound: float) -> bool:
    if op == "<=":
        return value <= bound
    if op == ">=":
        return value >= bound
    return value < bound


def print_table(r: dict[str, Any]) -> None:
    ms = 1000.0
    rows: list[tuple[str, str, str]] = [
        ("vpp backend ADD", f"{r['add_median_s'] * ms:8.1f}", f"{r['add_p95_s'] * ms:8.1f}"),
        (
            "vpp backend CHECK (after ADD)",
            f"{r['check_median_s'] * ms:8.1f}",
            f"{r['check_p95_s'] * ms:8.1f}",
        ),
        ("vpp backend DEL", f"{r['del_median_s'] * ms:8.1f}", f"{r['del_p95_s'] * ms:8.1f}"),
        (
            "tool backend ADD (papi tool)",
            f"{r['tool_add_median_s'] * ms:8.1f}",
            f"{r['tool_add_p95_s'] * ms:8.1f}",
        ),
        (
            "tool backend DEL (papi tool)",
            f"{r['tool_del_median_s'] * ms:8.1f}",
            f"{r['tool_del_p95_s'] * ms:8.1f}",
        ),
        (
            "tool backend ADD (mock tool, no VPP)",
            f"{r['mock_tool_add_median_s'] * ms:8.1f}",
            f"{r['mock_tool_add_p95_s'] * ms:8.1f}",
        ),
        ("tool backend DEL (mock tool, no VPP)", f"{r['mock_tool_del_median_s'] * ms:8.1f}", ""),
        (
            "tool backend ADD (vpp-config.py, fake vppctl)",
            f"{r['cli_tool_add_median_s'] * ms:8.1f}",
            f"{r['cli_tool_add_p95_s'] * ms:8.1f}",
        ),
        ("tool backend DEL (vpp-config.py, fake vppctl)", f"{r['cli_tool_del_median_s'] * ms:8.1f}", ""),
        (
            f"vpp ADD, {r['ports_preloaded']} ports in VPP",
            f"{r['add_1000_median_s'] * ms:8.1f}",
            f"{r['add_1000_p95_s'] * ms:8.1f}",
        ),
        (
            "floor: python -c pass",
            f"{r['floor_pass_median_s'] * ms:8.1f}",
            f"{r['floor_pass_p95_s'] * ms:8.1f}",
        ),
        (
            f"floor: python -c '{IMPORT_FLOOR}'",
            f"{r['floor_import_median_s'] * ms:8.1f}",
            f"{r['floor_import_p95_s'] * ms:8.1f}",
        ),
        (
            "floor: python -S -c pass (a shim's)",
            f"{r['floor_shim_median_s'] * ms:8.1f}",
            f"{r['floor_shim_p95_s'] * ms:8.1f}",
        ),
        (
            "host-local ADD (Go)",
            f"{r['host_local_median_s'] * ms:8.1f}",
            f"{r['host_local_p95_s'] * ms:8.1f}",
        ),
        ("host-local DEL (Go)", f"{r['host_local_del_median_s'] * ms:8.1f}", ""),
        ("host-local ADD+DEL (Go)", f"{r['host_local_add_del_median_s'] * ms:8.1f}", ""),
    ]
    width = max(len(name) for name, _, _ in rows) + 2
    print()
    print(f"vhostuser plugin, cold process per run: {r['runs']} runs each, {r['cpu_count']} cores")
    print(f"{'':{width}}{'median ms':>10}{'p95 ms':>10}")
    for name, med, high in rows:
        print(f"{name:{width}}{med:>10}{high:>10}")
    n = r["parallel"]
    print(
        f"{n} parallel ADDs: {r['parallel64_wall_s']:.2f} s wall, {r['parallel64_pods_per_s']:.1f} pods/s, "
        f"{r['parallel64_errors']} errors (CPU-bound estimate {r['parallel64_cpu_bound_wall_s']:.2f} s: "
        f"{r['add_cpu_median_s'] * ms:.0f} ms CPU per ADD); "
        f"{n} parallel DELs: {r['parallel64_del_wall_s']:.2f} s, {r['parallel64_del_errors']} errors"
    )
    print(
        f"emulator per ADD: {r['emulator_requests_per_add']:.0f} requests, "
        f"{r['emulator_cpu_per_add_median_s'] * ms:.1f} ms CPU of its thread "
        f"({r['emulator_share_of_add']:.1%} of the ADD); by control_ping round trips "
        f"({r['control_ping_round_trip_s'] * ms:.3f} ms each): {r['emulator_share_of_add_by_ping']:.1%}"
    )
    print(
        f"ADD / import floor {r['add_over_import_floor']:.2f}, "
        f"ADD / pass floor {r['add_over_pass_floor']:.2f}, "
        f"ADD / host-local ADD {r['add_over_host_local']:.1f}, "
        f"tool DEL / vpp DEL {r['tool_over_vpp_del']:.2f}, "
        f"mock tool ADD / vpp ADD {r['mock_tool_over_vpp_add']:.2f}, "
        f"vpp-config.py ADD / vpp ADD {r['cli_tool_over_vpp_add']:.2f}"
    )
    print("targets:")
    for key, target in r["targets"].items():
        value = target["value"]
        shown = f"{value:.1%}" if key == "emulator_share_of_add" else f"{value:.2f}"
        print(f"  {'PASS' if target['pass'] else 'FAIL'}  {target['target']}: {key} = {shown}")
    print(
        "Absolute times vary with the machine and its load (this one has "
        f"{r['cpu_count']} cores, load average {r['load_average_1m_before']:.1f} before and "
        f"{r['load_average_1m_after']:.1f} after the run); the ratios are the figures to track."
    )


# -- --profile: where one ADD's cold start goes --------------------------------------------------
# Runs in the plugin's place (`python -c`): wraps the ADD steps with timers, then calls the
# plugin's main(). Only stdlib is imported before the plugin, so the import figures are its own.
TIMED_CHILD = r"""
import sys, time
T0 = time.perf_counter()
import json, os
spans = []

def timed(owner, attr, label):
    original = getattr(owner, attr)
    def wrapper(*args, **kwargs):
        began = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            name = label(args) if callable(label) else label
            spans.append((name, time.perf_counter() - began))
    setattr(owner, attr, wrapper)

began = time.perf_counter()
import vhostuser_vpp.plugin.main as plugin_main
spans.append(("imports at start-up (vhostuser_vpp.plugin.main)", time.perf_counter() - began))
began = time.perf_counter()
import vpp_papi
spans.append(("import vpp_papi (lazy, in VppClient.connect)", time.perf_counter() - began))

from vhostuser_vpp import logs
from vhostuser_vpp.backends.vpp import VppBackend
from vhostuser_vpp.cni.dispatch import Dispatcher
from vhostuser_vpp.cni.invoke import DelegatedPlugin
from vhostuser_vpp.plugin import add, backend_choice, context
from vhostuser_vpp.store import node_files
from vhostuser_vpp.store.attachment import Attachment
from vhostuser_vpp.store.lock import ContainerLock
from vhostuser_vpp.vpp.client import VppClient

timed(Dispatcher, "_read_config", "read stdin config (json)")
timed(context, "parse_netconf", "config parse (pydantic-core)")
timed(context, "load_policy", "node policy load")
timed(node_files, "ensure_cni_dir", "ensure cniDir")
timed(node_files, "ensure_get_prefix", "ensure get-prefix.sh")
timed(ContainerLock, "acquire", "container lock")
timed(Attachment, "read_record", "read existing record")
timed(Attachment, "write_record", "write record (x2)")
timed(Attachment, "write_ip4_conf", "write -ip4.conf")
timed(DelegatedPlugin, "add", "IPAM: exec host-local ADD")
timed(backend_choice, "open_for_add", "open backend (total)")
timed(VppClient, "connect", "  VppClient.connect (total)")
timed(vpp_papi.VPPApiClient, "__init__", "    VPPApiClient(): load the mode's api_json modules")
timed(vpp_papi.VPPApiClient, "connect", "    VPPApiClient.connect: socket + sockclnt_create")
timed(VppBackend, "create_port", "create_port (total)")
timed(VppBackend, "wire", "wire l3 (total)")
timed(VppClient, "_send", lambda args: "  VPP " + args[1])
timed(VppBackend, "close", "VPP disconnect")
timed(Dispatcher, "_print", "print result")
began = time.perf_counter()
real_exit = os._exit


def exit_after_writing_spans(code):
    # main() ends in os._exit(), past any finally: the spans are written on the way out.
    spans.append(("main() total", time.perf_counter() - began))
    spans.append(("in-process total", time.perf_counter() - T0))
    with open(os.environ["PLUGIN_BENCH_SPANS"], "w") as out:
        json.dump(spans, out)
    real_exit(code)


os._exit = exit_after_writing_spans
plugin_main.main()
"""

# Imports the ADD path's heavy parts one after the other; each step pays only what is new.
IMPORT_STEPS_CHILD = r"""
import json, os, sys, time
steps = [
    ("import pydantic_core (core_schema)", "import pydantic_core.core_schema"),
    ("import vpp_papi", "import vpp_papi"),
    ("import vhostuser_vpp.config (schemas, validator)", "import vhostuser_vpp.config"),
    ("import vhostuser_vpp.plugin.main (the rest)", "import vhostuser_vpp.plugin.main"),
    ("import vhostuser_vpp.backends.vpp (lazy, on connect)", "import vhostuser_vpp.backends.vpp"),
    ("VPPApiClient(): the l3 mode's API modules", "from vhostuser_vpp.vpp import ops as vpp; "
        "from vhostuser_vpp.vpp.api_files import api_json_paths; "
        "l3 = vpp.COMMON_API_MODULES + vpp.API_MODULES_BY_MODE['l3']; "
        "vpp_papi.VPPApiClient(apifiles=api_json_paths(l3), server_address='/nonexistent')"),
]
out = []
for label, statement in steps:
    began = time.perf_counter()
    exec(statement)
    out.append((label, time.perf_counter() - began))
with open(os.environ["PLUGIN_BENCH_SPANS"], "w") as f:
    json.dump(out, f)
"""


def _spans(argv: list[str], stdin: bytes, env: dict[str, str], out: Path) -> tuple[Run, list[Any]]:
    env = {**env, "PLUGIN_BENCH_SPANS": str(out)}
    run = run_timed(argv, stdin, env).check(" ".join(argv[:2]))
    spans: list[Any] = json.loads(out.read_text())
    return run, spans


def _summed(spans: list[Any]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for name, seconds in spans:
        totals[name] = totals.get(name, 0.0) + seconds
    return totals


def importtime_tree(stderr: str, min_ms: float, max_depth: int) -> list[str]:
    """`-X importtime` lines with cumulative >= min_ms, nesting kept (what imports what)."""
    lines = []
    pattern = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)")
    for line in stderr.splitlines():
        m = pattern.match(line)
        if not m:
            continue
        self_us, cumulative_us, indent, name = int(m[1]), int(m[2]), len(m[3]), m[4]
        depth = indent // 2
        if cumulative_us >= min_ms * 1000 and depth <= max_depth:
            lines.append(
                f"{cumulative_us / 1000:7.1f} ms cum {self_us / 1000:6.1f} ms self  {'  ' * depth}{name}"
            )
    # importtime prints children before their parent; reverse to read top-down.
    return lines[::-1]


def _profile_importtime(node: BenchNode, outdir: Path) -> None:
    config = node.vpp_config()
    cid = new_container_id()
    run = run_timed([PYTHON, "-X", "importtime", PLUGIN], config, node.env("ADD", cid))
    run.check("ADD under -X importtime")
    plugin(node, "DEL", cid, config)
    raw = run.stderr.decode(errors="replace")
    (outdir / "importtime-add.txt").write_text(raw)
    print("-X importtime of one ADD (cumulative >= 3 ms, depth <= 4), top-down:")
    for line in importtime_tree(raw, 3.0, 4):
        print("  " + line)


def _profile_steps(node: BenchNode, emu: BenchEmulator, repeats: int, scratch: Path) -> dict[str, Any]:
    config = node.vpp_config()
    walls: list[float] = []
    breakdown: dict[str, list[float]] = {}
    requests: list[float] = []
    emu_cpu: list[float] = []
    per_message: Counter[str] = Counter()
    for _ in range(repeats):
        cid = new_container_id()
        cpu0, before = emu.cpu_seconds(), Counter(emu.faults.counts)
        run, spans = _spans([PYTHON, "-c", TIMED_CHILD], config, node.env("ADD", cid), scratch)
        emu_cpu.append(emu.cpu_seconds() - cpu0)
        per_message = emu.faults.counts - before
        requests.append(per_message.total())
        plugin(node, "DEL", cid, config)
        walls.append(run.seconds)
        for name, seconds in _summed(spans).items():
            breakdown.setdefault(name, []).append(seconds)
    wall = median(walls)
    print(f"\none ADD, timed steps (median of {repeats}; wall {wall * 1000:.1f} ms):")
    for name, values in breakdown.items():
        print(f"  {median(values) * 1000:7.1f} ms {median(values) / wall:6.1%}  {name}")
    outside = wall - median(breakdown["in-process total"])
    print(
        f"  {outside * 1000:7.1f} ms {outside / wall:6.1%}  "
        "interpreter start-up + site + exit (wall - in-process)"
    )
    messages = ", ".join(f"{k} {v}" for k, v in sorted(per_message.items()))
    print(
        f"  emulator: {median(requests):.0f} requests per ADD ({messages}), "
        f"{median(emu_cpu) * 1000:.1f} ms CPU of its thread"
    )
    return {
        "add_wall_median_s": wall,
        "steps_median_s": {k: median(v) for k, v in breakdown.items()},
        "startup_and_exit_s": outside,
        "emulator_requests_per_add": median(requests),
        "emulator_requests_by_message": dict(per_message),
        "emulator_cpu_per_add_s": median(emu_cpu),
    }


def _profile_imports(repeats: int, scratch: Path) -> dict[str, float]:
    steps: dict[str, list[float]] = {}
    for _ in range(repeats):
        _, spans = _spans([PYTHON, "-c", IMPORT_STEPS_CHILD], b"", {"PATH": os.environ["PATH"]}, scratch)
        for name, seconds in spans:
            steps.setdefault(name, []).append(seconds)
    print(f"\nimport attribution, step by step in one process (median of {repeats}):")
    for name, values in steps.items():
        print(f"  {median(values) * 1000:7.1f} ms  {name}")
    return {k: median(v) for k, v in steps.items()}


# Whole-process variants (wall time of a fresh interpreter) that isolate start-up and exit costs.
PROCESS_VARIANTS: tuple[tuple[str, list[str], dict[str, str]], ...] = (
    ("python -S -c pass (no site)", ["-S", "-c", "pass"], {}),
    ("python -c pass", ["-c", "pass"], {}),
    (f"python -c '{IMPORT_FLOOR}'", ["-c", IMPORT_FLOOR], {}),
    (
        "python -c 'import vpp_papi; from pydantic import BaseModel'",
        ["-c", "import vpp_papi, pydantic.main"],
        {},
    ),
    ("import the ADD path (plugin.main, vpp_papi)", ["-c", "import vhostuser_vpp.plugin.main, vpp_papi"], {}),
    (
        "  the same, ending with os._exit(0)",
        ["-c", "import vhostuser_vpp.plugin.main, vpp_papi, os; os._exit(0)"],
        {},
    ),
)


def _profile_processes(repeats: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name, _, _ in PROCESS_VARIANTS}
    for _ in range(repeats):
        for name, args, extra in PROCESS_VARIANTS:
            env = {"PATH": os.environ["PATH"], **extra}
            samples[name].append(run_timed([PYTHON, *args], b"", env).check(name).seconds)
    print(f"\nwhole processes, wall time (median of {repeats}, interleaved):")
    for name, values in samples.items():
        print(f"  {median(values) * 1000:7.1f} ms  {name}")
    return {k: median(v) for k, v in samples.items()}


def profile(outdir: Path, repeats: int) -> int:
    outdir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="pb", dir="/tmp"))
    try:
        node = BenchNode(workdir / "a", str(workdir / "a.sock"))
        config = node.vpp_config()
        with started_emulator(node.api_socket) as emu:
            cid = new_container_id()
            plugin(node, "ADD", cid, config)  # warm-up: pyc files, loop0
            plugin(node, "DEL", cid, config)
            _profile_importtime(node, outdir)
            summary = _profile_steps(node, emu, repeats, workdir / "spans.json")
            summary["import_steps_median_s"] = _profile_imports(repeats, workdir / "steps.json")
            summary["processes_median_s"] = _profile_processes(3 * repeats)
            cid = new_container_id()
            prof = outdir / "add.prof"
            argv = [PYTHON, "-m", "cProfile", "-o", str(prof), PLUGIN]
            run_timed(argv, config, node.env("ADD", cid)).check("ADD under cProfile")
            plugin(node, "DEL", cid, config)
            print(f"\ncProfile of one ADD written to {prof} (python -m pstats {prof})")
        (outdir / "profile.json").write_text(json.dumps(summary, indent=2) + "\n")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


# -- entry point ----------------------------------------------------------------------------------
def preflight() -> None:
    for path in (PLUGIN, HOST_LOCAL, STATE_TOOL, CLI_TOOL, FAKE_VPPCTL):
        if not os.access(path, os.X_OK):
            raise SystemExit(f"{path} is missing or not executable: run `make install cni-plugins`")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=40, help="runs per sequential series (default 40)")
    parser.add_argument("--parallel", type=int, default=64, help="ADDs started at once (default 64)")
    parser.add_argument("--ports", type=int, default=PORT_BATCH, help="ports preloaded (default 1000)")
    parser.add_argument("--out", default=os.environ.get("BENCH_OUT", "bench-results.json"))
    parser.add_argument("--profile", metavar="DIR", help="profile one ADD instead, writing to DIR")
    parser.add_argument("--repeats", type=int, default=7, help="ADDs per --profile breakdown (default 7)")
    args = parser.parse_args(argv)
    preflight()
    if args.profile:
        return profile(Path(args.profile), args.repeats)

    load_before = os.getloadavg()
    print(
        f"{os.cpu_count()} cores; Python {sys.version.split()[0]}; plugin {PLUGIN}; "
        f"load average {load_before[0]:.2f}",
        flush=True,
    )
    began = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="pb", dir="/tmp"))  # short: unix socket paths <= 107 bytes
    try:
        result = benchmark(args.runs, args.parallel, args.ports, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result["bench_wall_s"] = time.perf_counter() - began
    # Other load on a shared machine hits a plugin process longer than a floor process.
    result["load_average_1m_before"] = load_before[0]
    result["load_average_1m_after"] = os.getloadavg()[0]
    print_table(result)
    out = Path(args.out)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out} ({result['bench_wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
