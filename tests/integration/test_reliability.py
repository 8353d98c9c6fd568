"""Parallel pods, faults and restarts: every ADD is whole or leaves nothing, every DEL cleans up."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.conftest import DIRECT_PLUGIN, CniRun, VppNode, new_container_id
from tests.integration.vpp_probe import VppProbe
from vhostuser_vpp.sim import Emulator
from vhostuser_vpp.sim.faults import Decision, Faults


def test_64_parallel_adds_then_64_parallel_dels(vpp: VppNode) -> None:
    node, probe = vpp.node, vpp.probe
    config = node.vpp_config()
    config["ipam"]["rangeEnd"] = "10.56.217.250"
    pods = [new_container_id() for _ in range(64)]
    with ThreadPoolExecutor(max_workers=64) as pool:
        added = list(pool.map(lambda cid: node.run("ADD", config, cid), pods))
    results = [run.assert_ok() for run in added]
    assert len({r["ips"][0]["address"] for r in results}) == 64
    ports = probe.ports(str(node.cni_dir))
    assert len(ports) == 64
    assert len({p.sw_if_index for p in ports.values()}) == 64
    assert len(probe.pod_routes()) == 64
    with ThreadPoolExecutor(max_workers=64) as pool:
        for run in pool.map(lambda cid: node.run("DEL", config, cid), pods):
            run.assert_ok()
    assert probe.state(str(node.cni_dir)) == (set(), {}, {})
    assert node.files() == set()
    assert node.reservations() == {}


def test_add_and_del_of_one_container_racing_end_consistent(vpp: VppNode) -> None:
    node, probe = vpp.node, vpp.probe
    config = node.vpp_config()
    for _ in range(5):
        cid = new_container_id()
        with ThreadPoolExecutor(max_workers=2) as pool:
            add = pool.submit(node.run, "ADD", config, cid)
            delete = pool.submit(node.run, "DEL", config, cid)
            add_run, del_run = add.result(), delete.result()
        del_run.assert_ok()
        add_run.assert_ok()
        # Whichever ran second decided: either the attachment is whole, or it is gone.
        ports = probe.ports(str(node.cni_dir))
        if ports:
            assert len(ports) == 1
            assert len(node.reservations()) == 1
            assert (node.cni_dir / cid / f"{cid[:12]}-net1-ip4.conf").exists()
            node.run("DEL", config, cid).assert_ok()
        assert probe.state(str(node.cni_dir)) == (set(), {}, {})
        assert node.reservations() == {}
        assert node.files() == set()


def test_a_failed_disk_write_rolls_back_vpp_and_ipam(vpp: VppNode) -> None:
    node, probe = vpp.node, vpp.probe
    cid = new_container_id()
    # A directory where ip4.conf must go: the atomic rename onto it fails.
    (node.cni_dir / cid / f"{cid[:12]}-net1-ip4.conf").mkdir(parents=True)
    error = node.run("ADD", node.vpp_config(), cid).assert_error(5)
    assert "ip4.conf" in error["details"]
    assert probe.state(str(node.cni_dir)) == (set(), {}, {})
    assert node.reservations() == {}
    assert node.files() == {cid, f"{cid}/{cid[:12]}-net1-ip4.conf"}


def test_a_vpp_restart_during_a_burst_of_adds(vpp: VppNode) -> None:
    emulator = vpp.need_emulator()
    node = vpp.node
    config = node.vpp_config()
    pods = [new_container_id() for _ in range(16)]
    # VPP dies after serving part of the burst and comes back right away.
    emulator.faults.drop_connection_after(40)
    with ThreadPoolExecutor(max_workers=8) as pool:
        runs: list[CniRun] = list(pool.map(lambda cid: node.run("ADD", config, cid), pods))
    emulator.faults.clear()
    vpp.probe.reconnect()
    failed = [cid for cid, run in zip(pods, runs, strict=True) if run.code != 0]
    for cid, run in zip(pods, runs, strict=True):
        if run.code != 0:
            assert run.assert_error(11)
            assert not (node.cni_dir / cid).exists()
        else:
            assert (node.cni_dir / cid / f"{cid[:12]}-net1-ip4.conf").exists()
    assert failed, "the fault should have hit some ADDs"
    assert len(node.reservations()) == len(pods) - len(failed)
    for cid in pods:
        node.run("DEL", config, cid).assert_ok()
    assert node.reservations() == {}
    assert node.files() == set()


def test_del_with_vpp_down_keeps_the_record_and_a_retry_finishes(vpp: VppNode) -> None:
    node = vpp.node
    cid = new_container_id()
    config = node.vpp_config()
    node.run("ADD", config, cid).assert_ok()
    vpp.crash()
    node.run("DEL", config, cid).assert_error(11)
    assert node.reservations() == {}, "IPAM is released even when VPP is down"
    record = json.loads(node.record(cid).read_text())
    assert record["phase"] == "ready"
    vpp.recover()
    node.run("DEL", config, cid).assert_ok()
    assert node.files() == set()


class _SignalOn(Faults):
    """Faults that tell the test when the plugin reached `message` (and never answer it)."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message
        self.reached = threading.Event()
        self.ignore(message, times=None)

    def decide(self, message: str) -> Decision:
        if message == self.message:
            self.reached.set()
        return super().decide(message)


def test_a_plugin_killed_mid_add_leaves_enough_for_del(vpp: VppNode) -> None:
    """Killed at its last VPP call, the route: the port and its neighbour are made."""
    vpp.need_emulator().stop()
    node = vpp.node
    faults = _SignalOn("ip_route_add_del")
    with Emulator.start(node.api_socket, faults=faults), VppProbe(node.api_socket) as probe:
        cid = new_container_id()
        config = node.vpp_config()
        env = node.env("ADD", cid, "net1", "/var/run/netns/pod")
        plugin = subprocess.Popen(
            [DIRECT_PLUGIN],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        assert plugin.stdin is not None
        plugin.stdin.write(json.dumps(config).encode())
        plugin.stdin.close()
        assert faults.reached.wait(timeout=60), "the ADD never got to the route"
        plugin.send_signal(signal.SIGKILL)
        plugin.wait(timeout=30)
        assert len(probe.ports(str(node.cni_dir))) == 1
        assert len(probe.pod_neighbors()) == 1
        assert len(node.reservations()) == 1

        faults.clear()
        node.run("DEL", config, cid).assert_ok()
        assert probe.state(str(node.cni_dir)) == (set(), {}, {})
        assert node.reservations() == {}
        assert node.files() == set()


# What ADD's first (pending) record holds: nothing that names the port or the pod's address.
_NAMED_LATER = ("vhostname", "vhostmac", "ifmac", "ipAddr", "ipAddrs", "port", "result")


@pytest.mark.parametrize("families", [(4,), (4, 6)], ids=["ipv4", "dual-stack"])
def test_del_unwires_a_port_whose_record_names_no_address(vpp: VppNode, families: tuple[int, ...]) -> None:
    """ADD records the port's addresses while VPP wires it, so a plugin killed in between
    leaves a wired port and a pending record that names none of it. DEL finds the addresses
    on the port (its static neighbours, each made before its route) and takes the routes,
    which VPP would keep after the port, with it."""
    node, probe = vpp.node, vpp.probe
    cid = new_container_id()
    config = node.vpp_config()
    config["ipam"] = node.ranges_ipam(*families)
    node.run("ADD", config, cid).assert_ok()
    assert len(probe.pod_routes()) == len(families)
    path = node.record(cid)
    record = json.loads(path.read_text())
    path.write_text(
        json.dumps({k: v for k, v in record.items() if k not in _NAMED_LATER} | {"phase": "pending"})
    )

    node.run("DEL", config, cid).assert_ok()
    assert probe.state(str(node.cni_dir)) == (set(), {}, {})
    assert node.reservations() == {}
    assert node.files() == set()
