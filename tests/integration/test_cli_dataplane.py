"""The operator CLI on real packets: two testpmd pods sending through a real VPP, one pod
whose packets VPP drops. What `ports`, `top`, `show` and `trace` say is checked against
what testpmd itself counts."""

from __future__ import annotations

import json
import os
import subprocess
import time
from typing import Any

import pytest

from tests.integration.conftest import VppNode, new_container_id, wait_for
from tests.integration.test_cli import CLI
from tests.integration.testpmd import Pod, Testpmd, pod_to_pod

pytestmark = pytest.mark.dataplane
PACKETS = 10_000
# Not the port's MAC: VPP's ethernet-input drops what an L3 port receives for another MAC.
STRAY_MAC = "02:00:de:ad:be:ef"


def cli(vpp: VppNode, *args: str) -> Any:
    node = vpp.node
    command = [CLI, *args, "--api-socket", node.api_socket, "--cni-dir", str(node.cni_dir), "-o", "json"]
    if args[0] != "trace":
        command += ["--stats-socket", node.stats_socket]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def rows(vpp: VppNode) -> dict[str, dict[str, Any]]:
    return {row["pod"]: row for row in cli(vpp, "ports")["ports"] if row["pod"]}


def test_ports_top_and_trace_follow_packets_between_two_pods(vpp: VppNode, dpdk: None) -> None:
    config = vpp.node.vpp_config()
    sender = Pod(vpp, config, new_container_id(), "team-a/sender")
    receiver = Pod(vpp, config, new_container_id(), "team-a/receiver")
    with pod_to_pod(vpp, sender, receiver, sender.gw_mac, PACKETS) as (_, source):
        first = rows(vpp)
        sent_before, began = source.port_stats()["TX-packets"], time.monotonic()
        top = cli(vpp, "top", "--interval", "2", "--count", "1")
        sent_after, ended = source.port_stats()["TX-packets"], time.monotonic()
        second = rows(vpp)
        trace = cli(vpp, "trace", "team-a/receiver", "--count", "3")
        source.command("stop")

    for pod, key in (("team-a/sender", "rx_packets"), ("team-a/receiver", "tx_packets")):
        assert second[pod]["counters"][key] > first[pod]["counters"][key] >= PACKETS, (pod, key)
    by_pod = {port["pod"]: port for port in top["ports"]}
    testpmd_pps = (sent_after - sent_before) / (ended - began)
    top_pps = by_pod["team-a/sender"]["rx_pps"]
    print(f"sender: testpmd {testpmd_pps:,.0f} packets/s sent, top {top_pps:,.0f} packets/s into VPP")
    assert top_pps == pytest.approx(testpmd_pps, rel=0.10)
    assert top["ports"][0]["pod"] in ("team-a/sender", "team-a/receiver"), "busiest first"

    packets = trace["packets"]
    assert len(packets) == 3
    for packet in packets:
        assert packet["interface"] == sender.name and packet["sent_out"] == receiver.name
        assert packet["path"][0] == "vhost-user-input" and "ip4-lookup" in packet["path"]
        assert packet["fate"] == f"sent out of {receiver.name}"
    for attached in (sender, receiver):
        vpp.node.run("DEL", config, attached.cid).assert_ok()


def test_a_pod_whose_packets_vpp_drops_shows_the_drops_and_why(vpp: VppNode, dpdk: None) -> None:
    config = vpp.node.vpp_config()
    stray = Pod(vpp, config, new_container_id(), "team-b/stray")
    with Testpmd(
        stray.socket,
        stray.mac,
        "--forward-mode=txonly",
        f"--tx-ip={stray.ip},10.56.217.1",
        f"--eth-peer=0,{STRAY_MAC}",
    ) as source:
        source.command("start")
        wait_for(lambda: source.port_stats()["TX-packets"] >= PACKETS, f"{PACKETS} packets sent")
        shown = cli(vpp, "show", "team-b/stray")
        trace = cli(vpp, "trace", "stray", "--count", "2")
        source.command("stop")
    # VPP 26.06 punts them (error-punt, then punt: no punt socket, so gone), not drops.
    assert shown["counters"]["discarded"] >= shown["counters"]["punt"] >= PACKETS // 2
    assert shown["drop_reasons"].get("ethernet-input/l3 mac mismatch", 0) >= PACKETS // 2
    for packet in trace["packets"]:
        assert packet["interface"] == stray.name and packet["sent_out"] is None
        assert packet["fate"] == "dropped: ethernet-input: l3 mac mismatch", packet
    vpp.node.run("DEL", config, stray.cid).assert_ok()
    assert not os.path.exists(stray.socket)
