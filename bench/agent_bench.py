"""The node agent's figures (`make bench`): how fast it brings every pod's port back into a
restarted VPP, how long a reconcile of 500 records takes, and its memory.

Against a real VPP when one is found (as the test suite finds it: VPP_BIN, else
../shared/vpp), else the in-process emulator. For each of 1, 100 and 500 pods: the pods are
added through the plugin, the agent started (`vhostuser-vpp agent`), VPP killed (-9) and
started again, and the time measured from VPP answering again to VPP having every port
with its /32 (seen through the API from here). Then, with 500 ports in place, one
reconcile's duration (the agent's own histogram) and the agent's RSS. Writes JSON to
$BENCH_AGENT_OUT (default bench-agent.json); keys `restore_1_s`, `restore_100_s`,
`restore_500_s`, `reconcile_500_s`, `agent_rss_500_mb`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchnode import REPO, BenchNode, new_container_id, plugin, preflight

sys.path.insert(0, str(REPO))
from tests.vpp_instance import VppInstance, find_build
from vhostuser_vpp.agent.metrics import UnixHTTPConnection
from vhostuser_vpp.sim import Emulator
from vhostuser_vpp.vpp.client import VppClient
from vhostuser_vpp.vpp.ops import Vpp

CLI = str(Path(sys.executable).parent / "vhostuser-vpp")
COUNTS = (1, 100, 500)
GOALS = (("restore_100_s", 2.0), ("restore_500_s", 8.0), ("agent_rss_500_mb", 80.0))
WAIT_S = 120.0


class Target:
    """The VPP under test: `restart()` is a kill -9 and a start; returns when it answers."""

    def __init__(self, workdir: Path, poll_sleep_usec: int | None = 1000) -> None:
        build = find_build()
        self.label = f"real VPP {build.label}" if build else "emulator"
        self._instance = VppInstance(build, poll_sleep_usec=poll_sleep_usec) if build else None
        self._emulator: Emulator | None = None
        self.api_socket = self._instance.api_socket if self._instance else str(workdir / "emu.sock")

    def start(self) -> None:
        if self._instance is not None:
            self._instance.start()
        else:
            self._emulator = Emulator.start(self.api_socket)

    def restart(self) -> None:
        if self._instance is not None:
            self._instance.restart(crash=True)
        elif self._emulator is not None:
            self._emulator.crash()
            self._emulator.restart()

    def close(self) -> None:
        if self._instance is not None:
            self._instance.close()
        elif self._emulator is not None:
            self._emulator.stop()


@contextmanager
def running_agent(node: BenchNode, interval_s: float) -> Iterator[subprocess.Popen[bytes]]:
    listen = node.root / "agent.sock"
    policy = json.loads(node.node_config.read_text())
    node.node_config.write_text(json.dumps({**policy, "agent_listen": f"unix:{listen}"}))
    argv = [CLI, "agent", "--api-socket", node.api_socket, "--cni-dir", str(node.cni_dir)]
    argv += ["--interval", str(interval_s), "--grace", "3600", "--poll", "0.05"]
    env = {**os.environ, "VHOSTUSER_VPP_NODE_CONFIG": str(node.node_config)}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait(listen.exists, "the agent listens")
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def wait(condition: Callable[[], bool], what: str, poll_s: float = 0.005) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {WAIT_S:g}s")
        time.sleep(poll_s)


def all_back(api_socket: str, count: int) -> Callable[[], bool]:
    """Whether VPP has `count` vhost-user ports and a /32 through each."""
    client = VppClient(api_socket, 5.0, 5.0)

    def check() -> bool:
        try:
            if not client.connected:
                client.connect()
            vpp = Vpp(client)
            ports = {p.sw_if_index for p in vpp.vhost_ports()}
            routed = {r.sw_if_index for r in vpp.host_routes()} & ports
        except Exception:
            client.close()
            return False
        return len(ports) == count and len(routed) == count

    return check


def metric(node: BenchNode, name: str) -> float:
    conn = UnixHTTPConnection(str(node.root / "agent.sock"))
    try:
        conn.request("GET", "/metrics")
        out = conn.getresponse().read().decode()
    finally:
        conn.close()
    match = re.search(rf"^{re.escape(name)} (\S+)$", out, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else 0.0


def one_count(count: int, workdir: Path, results: dict[str, Any]) -> None:
    target = Target(workdir / f"n{count}")
    target.start()
    try:
        node = BenchNode(workdir / f"a{count}", target.api_socket)
        config = node.vpp_config()
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(
                pool.map(
                    lambda cid: plugin(node, "ADD", cid, config), [new_container_id() for _ in range(count)]
                )
            )
        interval = 2.0 if count == max(COUNTS) else 3600.0
        with running_agent(node, interval) as agent:
            wait(all_back(target.api_socket, count), "the ports before the restart")
            target.restart()
            answered = time.monotonic()
            wait(all_back(target.api_socket, count), f"{count} ports back")
            results[f"restore_{count}_s"] = time.monotonic() - answered
            if count == max(COUNTS):
                # The pass that restored them may still be finishing: measure the next one,
                # with every port in place (the steady reconcile the interval repeats).
                count_key = "vhostuser_vpp_agent_reconcile_duration_seconds_count"
                sum_key = "vhostuser_vpp_agent_reconcile_duration_seconds_sum"
                first = metric(node, count_key)
                wait(lambda: metric(node, count_key) > first, "the restoring reconcile ends", poll_s=0.1)
                before = (metric(node, sum_key), metric(node, count_key))
                wait(lambda: metric(node, count_key) > before[1], "a steady reconcile", poll_s=0.1)
                after = (metric(node, sum_key), metric(node, count_key))
                results[f"reconcile_{count}_s"] = (after[0] - before[0]) / (after[1] - before[1])
                results[f"agent_rss_{count}_mb"] = rss_mb(agent.pid)
    finally:
        target.close()


def main() -> int:
    preflight()
    workdir = Path(tempfile.mkdtemp(prefix="a", dir="/tmp"))  # short: unix socket paths
    results: dict[str, Any] = {}
    try:
        build = find_build()
        results["target"] = f"real VPP {build.label}" if build else "emulator"
        for count in COUNTS:
            one_count(count, workdir, results)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"node agent against {results['target']}:")
    for count in COUNTS:
        print(
            f"  {count:4d} ports back {results[f'restore_{count}_s'] * 1000:8.0f} ms after VPP answered again"
        )
    print(f"  reconcile of {max(COUNTS)} records {results[f'reconcile_{max(COUNTS)}_s'] * 1000:.0f} ms")
    print(f"  agent RSS with {max(COUNTS)} ports {results[f'agent_rss_{max(COUNTS)}_mb']:.1f} MB")
    for key, bound in GOALS:
        print(
            f"  {'PASS' if results[key] <= bound else 'FAIL'}  {key} = {results[key]:.2f} (goal <= {bound:g})"
        )
    out = Path(os.environ.get("BENCH_AGENT_OUT", "bench-agent.json"))
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
