"""The fast path's figures (`make bench`): ADD, CHECK and DEL through the `vhostuser` shim and
the node agent against the plugin run cold, and against Go's host-local.

One VPP for every series: a real one when found (VPP_BIN, else ../shared/vpp), else the
in-process emulator. The shim is what `vhostuser-vpp install` writes; the agent is
`vhostuser-vpp agent`, started with the node's policy naming its CNI socket. Each round
takes one sample of every series (cold ADD/CHECK/DEL, then shim ADD/CHECK/DEL and
host-local ADD/DEL, these two taking turns at coming first), so a slow spell hits all
alike. Then 64 ADDs through the shim at once, and 64 DELs. Then the agent is stopped and
the shim's ADD, which now serves itself, is paired with the cold ADD round by round. The
keys below are merged into $BENCH_OUT (default bench-results.json, which plugin_bench.py
writes first).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from agent_bench import CLI, Target, wait
from benchnode import (
    HOST_LOCAL,
    PLUGIN,
    BenchNode,
    Run,
    median,
    new_container_id,
    p95,
    preflight,
    run_timed,
)

GOALS = (
    ("agent_add_over_cold_add", 0.25),
    ("agent_check_over_cold_check", 0.25),
    ("agent_del_over_cold_del", 0.25),
    ("agent_add_over_host_local_add", 6.0),
    ("agent_check_over_host_local_check", 6.0),
    ("agent_del_over_host_local_del", 6.0),
    ("shim_alone_add_over_cold_add", 1.1),
)
GOALS_AT_LEAST = (("agent_parallel64_pods_per_s", 60.0),)


class FastPathNode(BenchNode):
    """A bench node whose policy names an agent socket, with the shim installed for it."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.agent_socket = self.root / "cni.sock"
        self.agent_listen = self.root / "agent.sock"
        policy = json.loads(self.node_config.read_text())
        policy.update(agent_socket=str(self.agent_socket), agent_listen=f"unix:{self.agent_listen}")
        self.node_config.write_text(json.dumps(policy))
        bin_dir = self.root / "bin"
        bin_dir.mkdir()
        install = [CLI, "install", "--cni-bin-dir", str(bin_dir), "--cni-dir", str(self.cni_dir)]
        subprocess.run(
            [*install, "--node-config", str(self.node_config)], check=True, capture_output=True, timeout=120
        )
        self.shim = str(bin_dir / "vhostuser")
        self.agent: subprocess.Popen[bytes] | None = None

    def start_agent(self) -> None:
        argv = [CLI, "agent", "--api-socket", self.api_socket, "--cni-dir", str(self.cni_dir)]
        env = {**os.environ, "VHOSTUSER_VPP_NODE_CONFIG": str(self.node_config)}
        self.agent = subprocess.Popen(
            [*argv, "--interval", "3600", "--grace", "3600"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait(self.agent_socket.exists, "the agent's CNI socket")

    def stop_agent(self) -> None:
        if self.agent is not None:
            self.agent.send_signal(signal.SIGTERM)
            self.agent.wait(timeout=60)
            self.agent = None

    def served(self) -> float:
        """Requests the agent has answered (its `cni_requests_total`, every command and result)."""
        from vhostuser_vpp.agent.metrics import UnixHTTPConnection

        conn = UnixHTTPConnection(str(self.agent_listen))
        try:
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        prefix = "vhostuser_vpp_agent_cni_requests_total{"
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))

    def run(self, executable: str, command: str, cid: str, config: bytes) -> Run:
        return run_timed([executable], config, self.env(command, cid)).check(f"{executable} {command}")


class Series(dict[str, list[float]]):
    def add(self, name: str, seconds: float) -> None:
        self.setdefault(name, []).append(seconds)


def one_round(node: FastPathNode, series: Series, keep: bool, agent_first: bool) -> None:
    """The cold plugin's ADD, CHECK and DEL, then the agent's and host-local's. Whichever
    runs right after the cold plugin's process is slower for it (measured here: the agent's
    ADD 22 ms there against 17 ms back to back, host-local's ADD likewise; see
    docs/benchmarks.md), so the agent and host-local take turns at that place, round by
    round: their medians, and so their ratio, compare like with like."""
    config = node.vpp_config()
    plugin_samples(node, series, keep, "cold", PLUGIN, config)
    agent = functools.partial(plugin_samples, node, series, keep, "agent", node.shim, config)
    host_local = functools.partial(host_local_samples, node, series, keep)
    for samples in (agent, host_local) if agent_first else (host_local, agent):
        samples()


def plugin_samples(
    node: FastPathNode, series: Series, keep: bool, label: str, executable: str, config: bytes
) -> None:
    cid = new_container_id()
    add = node.run(executable, "ADD", cid, config)
    check_config = json.loads(config) | {"prevResult": json.loads(add.stdout)}
    check = node.run(executable, "CHECK", cid, json.dumps(check_config).encode())
    delete = node.run(executable, "DEL", cid, config)
    if keep:
        series.add(f"{label}_add", add.seconds)
        series.add(f"{label}_check", check.seconds)
        series.add(f"{label}_del", delete.seconds)


def host_local_samples(node: FastPathNode, series: Series, keep: bool) -> None:
    cid = new_container_id()
    hl_config = node.host_local_config()
    hl_add = run_timed([HOST_LOCAL], hl_config, node.env("ADD", cid)).check("host-local ADD")
    check_config = json.loads(hl_config) | {"prevResult": json.loads(hl_add.stdout)}
    hl_check = run_timed([HOST_LOCAL], json.dumps(check_config).encode(), node.env("CHECK", cid))
    hl_check.check("host-local CHECK")
    hl_del = run_timed([HOST_LOCAL], hl_config, node.env("DEL", cid)).check("host-local DEL")
    if keep:
        series.add("host_local_add", hl_add.seconds)
        series.add("host_local_check", hl_check.seconds)
        series.add("host_local_del", hl_del.seconds)


def parallel(node: FastPathNode, command: str, cids: list[str]) -> tuple[float, list[str]]:
    """All at once through the shim: wall time until the last exits, and the errors."""
    config = node.vpp_config()
    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(cids)) as pool:
        runs = list(pool.map(lambda cid: run_timed([node.shim], config, node.env(command, cid)), cids))
    wall = time.perf_counter() - began
    return wall, [r.stdout.decode(errors="replace")[:300] for r in runs if r.code != 0]


def benchmark(runs: int, n_parallel: int, workdir: Path) -> dict[str, Any]:
    # VPP as its README runs it, without the test suite's main-loop nap: every series makes
    # the same API calls, so that nap (up to 1 ms a call) would only blur the comparison.
    target = Target(workdir, poll_sleep_usec=None)
    target.start()
    node = FastPathNode(workdir / "n", target.api_socket)
    series = Series()
    result: dict[str, Any] = {"fastpath_target": target.label}
    try:
        node.start_agent()
        for i in range(runs + 1):  # the first round warms up both paths (and makes loop0)
            one_round(node, series, keep=i > 0, agent_first=i % 2 == 1)
        cids = [new_container_id() for _ in range(n_parallel)]
        before = node.served()
        add_wall, add_errors = parallel(node, "ADD", cids)
        served_adds = node.served() - before
        del_wall, del_errors = parallel(node, "DEL", cids)
        node.stop_agent()
        config = node.vpp_config()
        for i in range(runs + 1):
            for label, executable in (("cold_paired", PLUGIN), ("shim_alone", node.shim)):
                cid = new_container_id()
                add = node.run(executable, "ADD", cid, config)
                node.run(PLUGIN, "DEL", cid, config)
                if i:
                    series.add(f"{label}_add", add.seconds)
    finally:
        node.stop_agent()
        target.close()
    for name, values in sorted(series.items()):
        result[f"{name}_median_s"] = median(values)
        result[f"{name}_p95_s"] = p95(values)
    for verb in ("add", "check", "del"):
        for other in ("cold", "host_local"):
            result[f"agent_{verb}_over_{other}_{verb}"] = (
                result[f"agent_{verb}_median_s"] / result[f"{other}_{verb}_median_s"]
            )
    result["shim_alone_add_over_cold_add"] = median(
        [s / c for s, c in zip(series["shim_alone_add"], series["cold_paired_add"], strict=True)]
    )
    result.update(
        agent_parallel64_wall_s=add_wall,
        agent_parallel64_pods_per_s=n_parallel / add_wall,
        agent_parallel64_errors=len(add_errors),
        agent_parallel64_served_by_agent=served_adds,
        agent_parallel64_error_samples=add_errors[:3],
        agent_parallel64_del_wall_s=del_wall,
        agent_parallel64_del_errors=len(del_errors),
        fastpath_runs=runs,
        agent_parallel=n_parallel,
    )
    return result


def print_table(r: dict[str, Any]) -> None:
    print(f"fast path against {r['fastpath_target']} ({r['fastpath_runs']} rounds):")
    print(f"  {'':34s} {'median ms':>10s} {'p95 ms':>8s}")
    for name, label in (
        ("cold_add", "cold ADD (plugin process)"),
        ("agent_add", "ADD through shim + agent"),
        ("cold_check", "cold CHECK"),
        ("agent_check", "CHECK through shim + agent"),
        ("cold_del", "cold DEL"),
        ("agent_del", "DEL through shim + agent"),
        ("host_local_add", "host-local ADD (Go)"),
        ("host_local_check", "host-local CHECK (Go)"),
        ("host_local_del", "host-local DEL (Go)"),
        ("shim_alone_add", "ADD through the shim, agent stopped"),
        ("cold_paired_add", "cold ADD, paired with the line above"),
    ):
        print(f"  {label:34s} {r[name + '_median_s'] * 1000:10.1f} {r[name + '_p95_s'] * 1000:8.1f}")
    print(
        f"  64 parallel ADDs through the agent: {r['agent_parallel64_wall_s']:.2f} s, "
        f"{r['agent_parallel64_pods_per_s']:.1f} pods/s, {r['agent_parallel64_errors']} errors, "
        f"{r['agent_parallel64_served_by_agent']:.0f} served by the agent; "
        f"64 DELs {r['agent_parallel64_del_wall_s']:.2f} s, {r['agent_parallel64_del_errors']} errors"
    )
    for key, bound in GOALS:
        verdict = "PASS" if r[key] <= bound else "FAIL"
        print(f"  {verdict}  {key} = {r[key]:.3f} (goal <= {bound:g})")
    for key, bound in GOALS_AT_LEAST:
        whole = (
            not r["agent_parallel64_errors"] and r["agent_parallel64_served_by_agent"] == r["agent_parallel"]
        )
        verdict = "PASS" if r[key] >= bound and whole else "FAIL"
        print(f"  {verdict}  {key} = {r[key]:.1f} (goal >= {bound:g}, 0 errors, all by the agent)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=40, help="rounds per series (default 40)")
    parser.add_argument("--parallel", type=int, default=64, help="ADDs started at once (default 64)")
    parser.add_argument("--out", default=os.environ.get("BENCH_OUT", "bench-results.json"))
    args = parser.parse_args(argv)
    preflight()
    workdir = Path(tempfile.mkdtemp(prefix="fp", dir="/tmp"))  # short: unix socket paths
    load_before = os.getloadavg()[0]
    try:
        result = benchmark(args.runs, args.parallel, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result["fastpath_load_average_1m"] = [load_before, os.getloadavg()[0]]
    print_table(result)
    out = Path(args.out)
    merged = json.loads(out.read_text()) if out.exists() else {}
    merged.update(result)
    out.write_text(json.dumps(merged, indent=2) + "\n")
    print(f"merged into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
