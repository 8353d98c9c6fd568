"""The node agent (`vhostuser-vpp agent`) as it runs on a node: its own process, one API
connection, metrics and health on the unix socket the node policy names. Against the
emulator and the real VPP; the dataplane case moves packets through a real VPP."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.integration.conftest import STATE_TOOL, VppNode, new_container_id
from tests.integration.conftest import wait_for as until
from tests.integration.testpmd import Pod, Testpmd, ping
from vhostuser_vpp.agent.metrics import UnixHTTPConnection

CLI = str(Path(sys.executable).parent / "vhostuser-vpp")
WAIT_S = 20.0
RESTARTS = "vhostuser_vpp_agent_vpp_restarts_total"


class AgentProcess:
    def __init__(self, vpp: VppNode, grace_s: float) -> None:
        node = vpp.node
        self.listen = str(node.root / "agent.sock")
        node.write_policy([STATE_TOOL], agent_listen=f"unix:{self.listen}")
        argv = [
            CLI,
            "agent",
            "--api-socket",
            node.api_socket,
            "--cni-dir",
            str(node.cni_dir),
            "--interval",
            "0.5",
            "--grace",
            str(grace_s),
            "--poll",
            "0.1",
            "--stats-socket",
            node.stats_socket,
        ]
        env = {**os.environ, "VHOSTUSER_VPP_NODE_CONFIG": str(node.node_config)}
        self.stderr_path = node.root / "agent.log"
        self._stderr = self.stderr_path.open("wb")
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=self._stderr)
        wait_for(lambda: os.path.exists(self.listen), "the agent listens", self)

    def get(self, path: str) -> tuple[int, str]:
        conn = UnixHTTPConnection(self.listen)
        try:
            conn.request("GET", path)
            reply = conn.getresponse()
            return reply.status, reply.read().decode()
        finally:
            conn.close()

    def healthy(self) -> bool:
        return self.get("/healthz")[0] == 200

    def metric(self, name: str) -> float:
        """One sample's value from /metrics, 0 when absent."""
        match = re.search(rf"^{re.escape(name)} (\S+)$", self.get("/metrics")[1], re.MULTILINE)
        return float(match.group(1)) if match else 0.0

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self._stderr.close()
        return code


@contextmanager
def agent(vpp: VppNode, grace_s: float = 60.0) -> Iterator[AgentProcess]:
    process = AgentProcess(vpp, grace_s)
    try:
        yield process
    finally:
        if process.proc.poll() is None:
            assert process.stop() == 0, process.log()[-3000:]
    assert not os.path.exists(process.listen), "its socket goes with it"


def wiring(vpp: VppNode) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """The pods' /32s and neighbours by the socket of the port they lead to: a restored port
    may get another index (VPP's choice, in the order they are made again)."""
    probe = vpp.probe
    socket_of = {port.sw_if_index: path for path, port in probe.ports(str(vpp.node.cni_dir)).items()}
    routes = {ip: socket_of.get(index, f"index {index}") for ip, index in probe.pod_routes().items()}
    neighbours = {ip: (socket_of.get(i, f"index {i}"), mac) for ip, (i, mac) in probe.pod_neighbors().items()}
    return routes, neighbours


def wait_for(condition: Callable[[], bool], what: str, process: AgentProcess | None = None) -> None:
    """The suite's `wait_for` with the agent's bound, failing with the agent's log."""
    until(condition, what, WAIT_S, detail=(lambda: process.log()[-3000:]) if process else None)


def test_a_restart_of_a_vpp_that_stays_pid_1_is_counted(vpp: VppNode) -> None:
    """In a container VPP is pid 1 before and after a restart (test_vpp_container.py shows
    it on the real VPP): the agent tells the new VPP by its start time."""
    emulator = vpp.need_emulator()
    emulator.pid_one = True
    vpp.restart()
    emulator.up_for(3600)
    with agent(vpp) as running:
        wait_for(running.healthy, "the agent is healthy", running)
        assert running.metric(RESTARTS) == 0
        vpp.restart()
        wait_for(lambda: running.metric(RESTARTS) == 1, "the restart counted", running)
        wait_for(running.healthy, "the agent is healthy again", running)
        assert '"event": "vpp_restarted"' in running.log()


@pytest.mark.lifecycle
def test_the_agent_restores_every_port_after_vpp_restarts(vpp: VppNode) -> None:
    node, probe = vpp.node, vpp.probe
    dual_stack = {**node.vpp_config(), "ipam": node.ranges_ipam(4, 6)}
    configs = [
        node.vpp_config(),
        node.vpp_config(mode="l2", bridge_domain=9),
        node.vpp_config(socket_mode="client"),
        dual_stack,
    ]
    pods = [(config, new_container_id()) for config in configs]
    for config, cid in pods:
        node.run("ADD", config, cid).assert_ok()
    before = wiring(vpp)
    sockets = set(probe.ports(str(node.cni_dir)))
    assert len(sockets) == 4 and len(before[0]) == 4 and len(before[1]) == 4
    assert {ip for ip in before[0] if ":" in ip} == {"fd00:56:217::83/128"}
    with agent(vpp) as running:
        wait_for(running.healthy, "the agent is healthy", running)
        vpp.restart()
        wait_for(
            lambda: set(probe.ports(str(node.cni_dir))) == sockets and wiring(vpp) == before,
            "every port, route and neighbour back",
            running,
        )
        assert probe.bridge_domain(9) is not None
        wait_for(lambda: running.metric(RESTARTS) == 1, "the restart counted")
        assert running.metric('vhostuser_vpp_agent_restores_total{outcome="restored"}') == 4
        assert running.metric("vhostuser_vpp_agent_vpp_reconnects_total") >= 1
        wait_for(running.healthy, "the agent is healthy again", running)
        assert '"event": "vpp_restarted"' in running.log()
    for config, cid in pods:
        node.run("DEL", config, cid).assert_ok()
    assert probe.state(str(node.cni_dir)) == (set(), {}, {})


def test_a_hundred_ports_come_back_with_routes_neighbours_and_socket_access(vpp: VppNode) -> None:
    node, probe = vpp.node, vpp.probe
    config = node.vpp_config(socket_file_mode="0660", socket_owner=65534, socket_group=65534)
    config["ipam"]["rangeEnd"] = "10.56.217.250"
    cids = [new_container_id() for _ in range(100)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        for run in pool.map(lambda cid: node.run("ADD", config, cid), cids):
            run.assert_ok()
    before = wiring(vpp)
    sockets = set(probe.ports(str(node.cni_dir)))
    with agent(vpp) as running:
        wait_for(running.healthy, "the agent is healthy", running)
        vpp.restart()
        wait_for(
            lambda: set(probe.ports(str(node.cni_dir))) == sockets and wiring(vpp) == before,
            "100 ports back",
            running,
        )
        wait_for(running.healthy, "the agent is healthy again", running)
    for path in sockets:
        st = os.lstat(path)
        assert stat.S_ISSOCK(st.st_mode) and (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (
            65534,
            65534,
            0o660,
        )
    with ThreadPoolExecutor(max_workers=2) as pool:
        for run in pool.map(lambda cid: node.run("DEL", config, cid), cids):
            run.assert_ok()


def test_the_agent_waits_for_vpp_and_collects_an_orphan_after_its_grace(vpp: VppNode) -> None:
    node, probe = vpp.node, vpp.probe
    vpp.crash()
    with agent(vpp, grace_s=0.5) as running:
        status, body = running.get("/healthz")
        assert status == 503 and "VPP" in body
        assert running.metric("vhostuser_vpp_agent_vpp_up") == 0
        vpp.recover()
        wait_for(running.healthy, "the agent connects once VPP answers", running)
        cid = new_container_id()
        node.run("ADD", node.vpp_config(), cid).assert_ok()
        node.forget(cid)  # the records gone: its port is an orphan now
        wait_for(lambda: probe.ports(str(node.cni_dir)) == {}, "the orphan collected", running)
        assert running.metric('vhostuser_vpp_agent_collected_total{kind="delete orphan port"}') == 1
        assert probe.pod_routes() == {} and probe.pod_neighbors() == {}
    node.run("DEL", node.vpp_config(), cid).assert_ok()


@pytest.mark.dataplane
def test_a_client_mode_pod_answers_again_after_vpp_is_killed(vpp: VppNode, dpdk: None) -> None:
    """VPP is killed (-9) and started again; the agent makes the port again, VPP connects to
    the pod's socket and the pod's DPDK port sees its link come back. Then the pod restarts
    its port (what an app must do on that link event, README "Node agent"): the frontend
    sends the rings again, which no backend can ask for, and traffic flows."""
    config = vpp.node.vpp_config(socket_mode="client")
    pod = Pod(vpp, config, new_container_id())
    with agent(vpp) as running, Testpmd(pod.socket, pod.mac, "--forward-mode=icmpecho", server=True) as app:
        app.command("start")
        wait_for(lambda: vpp.probe.link_up(pod.index), "VPP connects to the pod's socket")
        assert ping(vpp, pod.ip) >= 1
        reconnects_before = app.output.count("reconnection succeeds")
        vpp.crash()
        killed = time.monotonic()
        vpp.recover()

        def link_event() -> bool:
            app.command("show port summary")  # reads what testpmd printed meanwhile
            return app.output.count("reconnection succeeds") > reconnects_before

        wait_for(link_event, "the pod's port sees its link come back", running)
        for line in ("stop", "port stop 0", "port start 0", "start"):
            app.command(line)
        wait_for(lambda: ping(vpp, pod.ip, count=2) >= 1, "VPP's ping answered again", running)
        assert time.monotonic() - killed < 10
    vpp.node.run("DEL", config, pod.cid).assert_ok()


def test_a_failing_reconcile_is_reported_and_the_agent_keeps_going(vpp: VppNode) -> None:
    node = vpp.node
    node.cni_dir.write_text("not a directory")
    with agent(vpp) as running:

        def reported() -> bool:
            status, body = running.get("/healthz")
            return status == 503 and "reconcile failed" in body

        wait_for(reported, "the failing pass reported", running)
        assert running.proc.poll() is None, "still running"
        assert running.metric("vhostuser_vpp_agent_last_error_timestamp_seconds") > 0
        node.cni_dir.unlink()
        node.cni_dir.mkdir()
        wait_for(running.healthy, "healthy once the next pass succeeds", running)


def test_the_agent_exports_each_pods_counters_labelled_with_the_pod(vpp: VppNode) -> None:
    node = vpp.node
    cid = new_container_id()
    pod_args = "IgnoreUnknown=1;K8S_POD_NAMESPACE=team-a;K8S_POD_NAME=dpdk-0;K8S_POD_UID=5c1a0e3e"
    node.run("ADD", node.vpp_config(), cid, extra_env={"CNI_ARGS": pod_args}).assert_ok()
    [port] = vpp.probe.ports(str(node.cni_dir)).values()
    if vpp.emulator is not None:
        vpp.emulator.count(port.sw_if_index, if_rx_packets=700, if_tx_packets=650, if_drops=3)
    agent = AgentProcess(vpp, grace_s=3600)
    try:
        labels = (  # as the exposition sorts them
            f'ifname="net1",interface="{port.interface_name}",namespace="team-a",'
            'network="vhostuser-network",pod="dpdk-0"'
        )
        expected = (700.0, 650.0, 3.0) if vpp.emulator is not None else (0.0, 0.0, 0.0)
        text = agent.get("/metrics")[1]
        assert f"vhostuser_vpp_agent_port_rx_packets_total{{{labels}}}" in text, text[-2000:]
        found = tuple(
            agent.metric(f"vhostuser_vpp_agent_port_{name}_total{{{labels}}}")
            for name in ("rx_packets", "tx_packets", "drops")
        )
        assert found == expected
    finally:
        assert agent.stop() == 0
