"""The vhost_tool backend end to end against the emulator and the real VPP: the plugin runs
a tool that drives VPP's API (tests/tools/papi_vhost_tool.py), as a site's own script would."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.conftest import VppNode, new_container_id
from tests.tools.papi_vhost_tool import install
from vhostuser_vpp.cni.versions import SUPPORTED_VERSIONS


@pytest.fixture
def tool(vpp: VppNode) -> Iterator[str]:
    path = vpp.node.root / "papi-tool"
    install(path)
    vpp.node.write_policy([str(path)])
    # The node's gateway loopback, which the tool protocol expects to exist.
    vpp.probe.make_gateway_loopback("10.56.217.1/24")
    yield str(path)
    if vpp.emulator is None:  # a fresh emulator per test; the one real VPP is left as found
        vpp.probe.delete_loopback("loop0")


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_tool_backend_add_check_del(vpp: VppNode, tool: str, version: str) -> None:
    node, probe = vpp.node, vpp.probe
    cid = new_container_id()
    config = node.config(version, vhost={"backend": "tool", "vhost_tool": tool})
    env = {"VHOST_TOOL_API_SOCKET": node.api_socket}
    result = node.run("ADD", config, cid, extra_env=env).assert_ok()
    [port] = probe.ports(str(node.cni_dir)).values()
    assert probe.interface(port.sw_if_index).flags & 1
    assert probe.pod_routes() == {"10.56.217.131/32": port.sw_if_index}
    assert probe.pod_neighbors() == {"10.56.217.131": (port.sw_if_index, result["interfaces"][0]["mac"])}
    if version >= "0.4.0":
        node.run("CHECK", {**config, "prevResult": result}, cid, extra_env=env).assert_ok()
    node.run("DEL", config, cid, extra_env=env).assert_ok()
    assert probe.state(str(node.cni_dir)) == (set(), {}, {})
    assert node.files() == set()
    assert node.reservations() == {}


def test_del_after_the_tool_lost_the_port(vpp: VppNode, tool: str) -> None:
    """DEL succeeds. The tool protocol's `delete <ifname>` names no address, and a deleted
    interface's neighbours are gone, so the /32 VPP keeps is found by no tool: it stays
    (as the original plugin's would) until an operator removes it."""
    node, probe = vpp.node, vpp.probe
    cid = new_container_id()
    config = node.config(vhost={"backend": "tool", "vhost_tool": tool})
    env = {"VHOST_TOOL_API_SOCKET": node.api_socket}
    node.run("ADD", config, cid, extra_env=env).assert_ok()
    [port] = probe.ports(str(node.cni_dir)).values()
    probe.delete_port(port.sw_if_index)
    node.run("DEL", config, cid, extra_env=env).assert_ok()
    assert probe.state(str(node.cni_dir)) == (set(), {"10.56.217.131/32": port.sw_if_index}, {})
    whole = {"table_id": 0, "prefix": "10.56.217.131/32", "n_paths": 0, "paths": []}
    assert probe.papi.api.ip_route_add_del(is_add=False, is_multipath=False, route=whole).retval == 0
    assert node.files() == set()
    assert node.reservations() == {}


def test_a_vpp_refusal_inside_the_tool_rolls_everything_back(vpp: VppNode, tool: str) -> None:
    emulator = vpp.need_emulator()
    node, probe = vpp.node, vpp.probe
    config = node.config(vhost={"backend": "tool", "vhost_tool": tool})
    emulator.faults.fail("ip_neighbor_add_del", retval=-1, times=1)
    error = node.run("ADD", config, new_container_id(), extra_env={"VHOST_TOOL_API_SOCKET": node.api_socket})
    assert "vhost_tool config failed" in error.assert_error(999)["msg"]
    assert probe.ports(str(node.cni_dir)) == {}
    assert node.files() == set()
    assert node.reservations() == {}
