"""`vhost.host_route`: a kernel route to the pod through VPP's tap, with real netlink.

The plugin runs inside a network namespace the test makes (standing in for the
host's), with a veth link standing in for the host side of VPP's tap.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator

import pytest

from tests.integration.conftest import VppNode, new_container_id

TAP = "vpptap0"


def _ip(*args: str) -> str:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=True)
    return proc.stdout


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"vhu-{secrets.token_hex(4)}"
    made = subprocess.run(
        ["ip", "netns", "add", name], capture_output=True, text=True, timeout=10, check=False
    )
    if made.returncode != 0:
        pytest.skip(f"cannot create a network namespace here: {made.stderr.strip()}")
    try:
        # A veth pair stands in for the tap (no dummy module on every machine).
        _ip("-n", name, "link", "add", TAP, "type", "veth", "peer", "name", "vpptap0-peer")
        _ip("-n", name, "link", "set", "vpptap0-peer", "up")
        _ip("-n", name, "link", "set", TAP, "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10, check=False)


def _pod_route(netns: str) -> str:
    return _ip("-n", netns, "-4", "route", "show", "10.56.217.131/32").strip()


def test_add_routes_the_pod_through_the_tap_and_del_removes_it(vpp: VppNode, netns: str) -> None:
    node = vpp.node
    node.write_policy([], host_route_devices=(TAP,))
    cid = new_container_id()
    config = node.vpp_config("1.0.0", host_route=TAP)
    result = node.run("ADD", config, cid, netns_exec=netns).assert_ok()
    assert _pod_route(netns) == f"10.56.217.131 dev {TAP} proto static scope link"
    node.run("CHECK", {**config, "prevResult": result}, cid, netns_exec=netns).assert_ok()

    _ip("-n", netns, "route", "del", "10.56.217.131/32", "dev", TAP)
    error = node.run("CHECK", {**config, "prevResult": result}, cid, netns_exec=netns).assert_error(999)
    assert f"no route 10.56.217.131/32 dev {TAP}" in error["msg"]

    _ip("-n", netns, "route", "add", "10.56.217.131/32", "dev", TAP)
    node.run("DEL", config, cid, netns_exec=netns).assert_ok()
    assert _pod_route(netns) == ""
    assert vpp.probe.ports(str(node.cni_dir)) == {}


def test_a_failed_add_takes_the_host_route_back(vpp: VppNode, netns: str) -> None:
    emulator = vpp.need_emulator()
    node = vpp.node
    node.write_policy([], host_route_devices=(TAP,))
    config = node.vpp_config("1.0.0", host_route=TAP)
    emulator.faults.fail("ip_neighbor_add_del", retval=-1, times=1)
    node.run("ADD", config, new_container_id(), netns_exec=netns).assert_error(999)
    assert _pod_route(netns) == ""
    assert node.files() == set()


def test_host_route_devices_must_be_allowed_by_the_node(vpp: VppNode, netns: str) -> None:
    node = vpp.node
    error = node.run(
        "ADD", node.vpp_config(host_route=TAP), new_container_id(), netns_exec=netns
    ).assert_error(7)
    assert "host_route is not allowed" in error["msg"]
    assert _pod_route(netns) == ""
    assert vpp.probe.ports(str(node.cni_dir)) == {}
