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

Where one ADD's time goes is `bench/profile_add.py`'s job; both share `benchnode.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchnode import (
    HOST_LOCAL,
    IMPORT_FLOOR,
    PLUGIN,
    PORT_BATCH,
    PYTHON,
    BenchEmulator,
    BenchNode,
    Run,
    children_cpu_seconds,
    control_ping_seconds,
    create_ports,
    median,
    new_container_id,
    p95,
    plugin,
    preflight,
    run_timed,
    started_emulator,
)

# Targets of the performance issue: (JSON key, comparison, bound, description).
TARGETS: tuple[tuple[str, str, float, str], ...] = (
    ("add_over_import_floor", "<=", 1.3, "ADD median <= 1.3x the `import vpp_papi, pydantic` floor"),
    ("add_1000_over_0", "<=", 1.1, "ADD with 1,000 ports <= 1.1x ADD with none"),
    ("tool_over_vpp_add", ">=", 2.0, "vpp backend ADD >= 2x faster than the tool backend (papi tool)"),
    ("emulator_share_of_add", "<", 0.10, "emulator share of one ADD < 10%"),
)


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


# -- entry point ----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=40, help="runs per sequential series (default 40)")
    parser.add_argument("--parallel", type=int, default=64, help="ADDs started at once (default 64)")
    parser.add_argument("--ports", type=int, default=PORT_BATCH, help="ports preloaded (default 1000)")
    parser.add_argument("--out", default=os.environ.get("BENCH_OUT", "bench-results.json"))
    args = parser.parse_args(argv)
    preflight()

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
