"""Packets through the ports the plugin makes: a real VPP and Debian's dpdk-testpmd as pods.

Each test makes its pods with the real executable (ADD), attaches a testpmd to each
pod's socket, moves packets, reads testpmd's and VPP's counters, and deletes the pods
(DEL) leaving no port, route, neighbour, address or file. On 2 shared cores a receiving
testpmd polls too rarely to take everything a sender pushes (VPP counts the rest as
tx-errors, "no available descriptors"): tests demand a count of packets that arrive and
report VPP's drops, never a rate.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.conftest import VppNode, new_container_id, wait_for
from tests.integration.testpmd import Pod, Testpmd, ping, pod_to_pod

pytestmark = pytest.mark.dataplane
PACKETS = 10_000
WAIT_S = 60.0
VPP_CONFIG_TOOL = str(Path(__file__).resolve().parents[2] / "examples" / "vpp-config.py")


def counters(vpp: VppNode, name: str) -> dict[str, int]:
    """VPP's counters of one interface, from `show interface` (rx/tx packets, drops, errors)."""
    text = vpp.vppctl("show", "interface", name)
    found = {"rx packets": 0, "tx packets": 0, "drops": 0, "tx-error": 0}
    for key in found:
        match = re.search(rf"^\s*(?:{re.escape(name)}.*?)?\s{re.escape(key)}\s+(\d+)", text, re.MULTILINE)
        if match:
            found[key] = int(match.group(1))
    return found


def assert_nothing_left(vpp: VppNode) -> None:
    assert vpp.probe.state(str(vpp.node.cni_dir)) == (set(), {}, {})
    assert vpp.node.files() == set()
    assert vpp.node.reservations() == {}


def test_vpp_pings_a_pod_through_its_l3_port(vpp: VppNode, dpdk: None) -> None:
    config = vpp.node.vpp_config()
    pod = Pod(vpp, config, new_container_id())
    with Testpmd(pod.socket, pod.mac, "--forward-mode=icmpecho") as app:
        app.command("start")
        wait_for(lambda: vpp.probe.link_up(pod.index), "the pod's DPDK app attaches")
        assert ping(vpp, pod.ip) >= 1, "VPP's ping reaches the pod through route and neighbour"
        assert app.port_stats()["TX-packets"] >= 1
    vpp.node.run("DEL", config, pod.cid).assert_ok()
    assert_nothing_left(vpp)


def test_vpp_pings_a_dual_stack_pod_over_ipv6(vpp: VppNode, dpdk: None) -> None:
    """An IPv6 round trip: VPP's echo requests leave through the /128 and the static
    neighbour (no neighbour discovery: testpmd speaks none); testpmd's 5tswap sends each
    back with source and destination swapped, an echo request to the gateway address the
    port borrows, and VPP's echo reply makes the same trip. The port has IPv6 enabled, so
    a pod with an IPv6 stack of its own finds the gateway by neighbour discovery."""
    config = vpp.node.vpp_config()
    config["ipam"] = {
        "type": "host-local",
        "dataDir": str(vpp.node.ipam_dir),
        "ranges": [
            [{"subnet": "10.56.217.0/24", "rangeStart": "10.56.217.131"}],
            [{"subnet": "fd00:56:217::/64"}],
        ],
    }
    pod = Pod(vpp, config, new_container_id())
    ip6 = next(ip["address"].split("/")[0] for ip in pod.result["ips"] if ":" in ip["address"])
    with Testpmd(pod.socket, pod.mac, "--forward-mode=5tswap") as app:
        app.command("start")
        wait_for(lambda: vpp.probe.link_up(pod.index), "the pod's DPDK app attaches")
        assert ping(vpp, ip6) >= 1, "echo replies come back over IPv6"
        assert ping(vpp, pod.ip) >= 1, "and over IPv4"
    ip6_on_port = vpp.vppctl("show", "ip6", "interface", pod.name)
    assert "Neighbor Discovery: enabled" in ip6_on_port
    assert "fd00:56:217::1/64" in ip6_on_port, "the gateway it borrows"
    vpp.node.run("DEL", config, pod.cid).assert_ok()
    assert_nothing_left(vpp)


@pytest.mark.parametrize("mode", ["l3", "l2"])
def test_pod_to_pod_through_vpp(vpp: VppNode, dpdk: None, mode: str) -> None:
    """The sender addresses the receiver's IP at its gateway MAC (L3: VPP routes by the /32
    and rewrites with the static neighbour) or the receiver's MAC (L2: the bridge domain
    floods, then learns)."""
    config = vpp.node.vpp_config() if mode == "l3" else vpp.node.vpp_config(mode="l2", bridge_domain=4242)
    sender, receiver = Pod(vpp, config, new_container_id()), Pod(vpp, config, new_container_id())
    peer = sender.gw_mac if mode == "l3" else receiver.mac
    with pod_to_pod(vpp, sender, receiver, peer, PACKETS) as (sink, source):
        source.command("stop")
        received = sink.port_stats()["RX-packets"]
        sent = source.port_stats()["TX-packets"]
    taken_in, sent_out = counters(vpp, sender.name), counters(vpp, receiver.name)
    print(
        f"{mode}: sender sent {sent}, receiver got {received}; VPP took in {taken_in['rx packets']} on "
        f"{sender.name}, sent {sent_out['tx packets']} out of {receiver.name}, "
        f"tx-errors {sent_out['tx-error']} (descriptors the receiver did not free in time)"
    )
    assert taken_in["rx packets"] >= received
    assert sent_out["tx packets"] >= received >= PACKETS
    for pod in (sender, receiver):
        vpp.node.run("DEL", config, pod.cid).assert_ok()
    assert_nothing_left(vpp)


def test_client_socket_mode_the_pod_makes_the_socket(vpp: VppNode, dpdk: None) -> None:
    config = vpp.node.vpp_config(socket_mode="client")
    pod = Pod(vpp, config, new_container_id())
    with Testpmd(pod.socket, pod.mac, "--forward-mode=icmpecho", server=True) as app:
        app.command("start")
        wait_for(lambda: vpp.probe.link_up(pod.index), "VPP connects to the pod's socket")
        assert ping(vpp, pod.ip) >= 1
    vpp.node.run("DEL", config, pod.cid).assert_ok()
    assert_nothing_left(vpp)


@pytest.mark.lifecycle
def test_the_tool_backend_with_the_reference_vppctl_tool(vpp: VppNode, dpdk: None) -> None:
    """examples/vpp-config.py drives the real vppctl: ADD wires the port, VPP pings the pod,
    DEL leaves nothing. The tool borrows the address of the node's loop0."""
    node = vpp.node
    if vpp.instance is None:
        pytest.skip("needs VPP's CLI socket: a VPP this suite starts")
    node.write_policy([VPP_CONFIG_TOOL])
    vpp.probe.make_gateway_loopback("10.56.217.1/24")
    config = node.config(vhost={"vhost_tool": VPP_CONFIG_TOOL, "backend": "tool"})
    tool_env = {"VPPCTL": str(vpp.instance.build.vppctl), "VPP_CLI_SOCKET": vpp.instance.cli_socket}
    cid = new_container_id()
    result = node.run("ADD", config, cid, extra_env=tool_env).assert_ok()
    socket = f"{node.cni_dir}/{cid}/{cid[:12]}-net1"
    index = int(vpp.probe.ports(str(node.cni_dir))[socket].sw_if_index)
    ip = result["ips"][0]["address"].split("/")[0]
    with Testpmd(socket, result["interfaces"][0]["mac"], "--forward-mode=icmpecho") as app:
        app.command("start")
        wait_for(lambda: vpp.probe.link_up(index), "the pod's DPDK app attaches")
        assert ping(vpp, ip) >= 1
    node.run("DEL", config, cid, extra_env=tool_env).assert_ok()
    assert_nothing_left(vpp)
    vpp.probe.delete_loopback("loop0")
