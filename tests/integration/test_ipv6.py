"""IPv6 and dual-stack pods in L3 mode: every address host-local hands out gets its host
route and static neighbour on the port, the gateway interface lends both families, and
CHECK, DEL, restore and the tool backend's refusal cover IPv6 as they do IPv4."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import CNI_BIN_DIR, Node, VppNode, new_container_id
from vhostuser_vpp.cni.versions import SUPPORTED_VERSIONS

V4_GATEWAY, V6_GATEWAY = "10.56.217.1", "fd00:56:217::1"
FIRST_V4, FIRST_V6 = "10.56.217.131", "fd00:56:217::83"


def config_for(node: Node, *families: int, version: str = "1.0.0", **vhost: Any) -> dict[str, Any]:
    config = node.vpp_config(version, **vhost)
    config["ipam"] = node.ranges_ipam(*families)
    return config


def pod_file(node: Node, cid: str, name: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((node.cni_dir / cid / f"{cid[:12]}-net1-{name}").read_text())
    return data


def assert_nothing_left(vpp: VppNode) -> None:
    assert vpp.probe.state(str(vpp.node.cni_dir)) == (set(), {}, {})
    assert vpp.node.files() == set()
    assert vpp.node.reservations() == {}


@pytest.mark.lifecycle
@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_dual_stack_add_check_del(vpp: VppNode, version: str) -> None:
    node, probe = vpp.node, vpp.probe
    cid = new_container_id()
    config = config_for(node, 4, 6, version=version)
    result = node.run("ADD", config, cid).assert_ok()

    pod_mac = result["interfaces"][0]["mac"]
    addresses = [(ip["address"], ip.get("gateway"), ip["interface"]) for ip in result["ips"]]
    assert addresses == [(f"{FIRST_V4}/24", V4_GATEWAY, 0), (f"{FIRST_V6}/64", V6_GATEWAY, 0)]
    if version < "1.0.0":
        assert [ip["version"] for ip in result["ips"]] == ["4", "6"]
    assert result["routes"] == [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]

    [port] = probe.ports(str(node.cni_dir)).values()
    index = port.sw_if_index
    assert probe.pod_routes() == {f"{FIRST_V4}/32": index, f"{FIRST_V6}/128": index}
    assert probe.pod_neighbors() == {FIRST_V4: (index, pod_mac), FIRST_V6: (index, pod_mac)}
    assert probe.addresses("loop0") == [f"{V4_GATEWAY}/24", f"{V6_GATEWAY}/64"]
    gw_mac = str(probe.interface(index).l2_address)
    assert pod_file(node, cid, "ip4.conf") == {
        "ipAddr": f"{FIRST_V4}/32",
        "macAddr": pod_mac,
        "gateway": V4_GATEWAY,
        "gwMac": gw_mac,
    }
    assert pod_file(node, cid, "ip6.conf") == {
        "ipAddr": f"{FIRST_V6}/128",
        "macAddr": pod_mac,
        "gateway": V6_GATEWAY,
        "gwMac": gw_mac,
    }
    record = json.loads(node.record(cid).read_text())
    assert record["ipAddr"] == FIRST_V4 and record["ipAddrs"] == [FIRST_V4, FIRST_V6]

    if version >= "0.4.0":
        node.run("CHECK", {**config, "prevResult": result}, cid).assert_ok()
    node.run("DEL", config, cid).assert_ok()
    assert_nothing_left(vpp)


@pytest.mark.lifecycle
def test_ipv6_only_add_check_del(vpp: VppNode) -> None:
    node, probe = vpp.node, vpp.probe
    cid = new_container_id()
    config = config_for(node, 6)
    result = node.run("ADD", config, cid).assert_ok()

    assert [ip["address"] for ip in result["ips"]] == [f"{FIRST_V6}/64"]
    [port] = probe.ports(str(node.cni_dir)).values()
    assert probe.pod_routes() == {f"{FIRST_V6}/128": port.sw_if_index}
    assert probe.pod_neighbors() == {FIRST_V6: (port.sw_if_index, result["interfaces"][0]["mac"])}
    assert probe.addresses("loop0") == [f"{V6_GATEWAY}/64"]
    assert not (node.cni_dir / cid / f"{cid[:12]}-net1-ip4.conf").exists()
    assert pod_file(node, cid, "ip6.conf")["ipAddr"] == f"{FIRST_V6}/128"
    assert json.loads(node.record(cid).read_text())["ipAddr"] == ""

    node.run("CHECK", {**config, "prevResult": result}, cid).assert_ok()
    node.run("DEL", config, cid).assert_ok()
    assert_nothing_left(vpp)


def test_an_ipv6_network_gives_our_ipv4_loopback_its_gateway(vpp: VppNode) -> None:
    """Two networks lending from one loopback: the IPv4 one made it, the IPv6 one adds its
    gateway address to it rather than failing or making another."""
    node, probe = vpp.node, vpp.probe
    v4_pod, v6_pod = new_container_id(), new_container_id()
    v4_config, v6_config = config_for(node, 4), config_for(node, 6)
    v6_config["name"] = "ipv6-network"
    node.run("ADD", v4_config, v4_pod).assert_ok()
    assert probe.addresses("loop0") == [f"{V4_GATEWAY}/24"]
    node.run("ADD", v6_config, v6_pod).assert_ok()
    assert probe.addresses("loop0") == [f"{V4_GATEWAY}/24", f"{V6_GATEWAY}/64"]
    assert set(probe.pod_routes()) == {f"{FIRST_V4}/32", f"{FIRST_V6}/128"}
    node.run("CHECK", v4_config, v4_pod)
    node.run("DEL", v4_config, v4_pod).assert_ok()
    node.run("DEL", v6_config, v6_pod).assert_ok()
    assert_nothing_left(vpp)


def test_an_operators_gateway_without_ipv6_is_not_taken_over(vpp: VppNode) -> None:
    node, probe = vpp.node, vpp.probe
    probe.make_gateway_loopback(f"{V4_GATEWAY}/24")
    try:
        config = config_for(node, 4, 6, create_loopback=False)
        error = node.run("ADD", config, new_container_id()).assert_error(7)
        assert "has no IPv6 address to lend" in error["msg"]
        assert probe.addresses("loop0") == [f"{V4_GATEWAY}/24"]
        assert_nothing_left(vpp)
    finally:
        probe.delete_loopback("loop0")


def test_check_finds_a_missing_ipv6_neighbour_and_route(vpp: VppNode) -> None:
    node, probe = vpp.node, vpp.probe
    cid = new_container_id()
    config = config_for(node, 4, 6)
    node.run("ADD", config, cid).assert_ok()
    probe.delete_neighbor(FIRST_V6)
    error = node.run("CHECK", config, cid).assert_error(999)
    assert f"no static neighbour {FIRST_V6}" in error["details"]
    assert "10.56.217.131" not in error["details"]
    node.run("DEL", config, cid).assert_ok()
    assert_nothing_left(vpp)


def test_del_after_a_vpp_restart_removes_both_routes(vpp: VppNode) -> None:
    """VPP keeps a deleted port's routes; a restart forgets everything. Either way DEL
    finishes and no /32 or /128 stays."""
    node, probe = vpp.node, vpp.probe
    cid = new_container_id()
    config = config_for(node, 4, 6)
    node.run("ADD", config, cid).assert_ok()
    [port] = probe.ports(str(node.cni_dir)).values()
    probe.delete_port(port.sw_if_index)
    assert set(probe.pod_routes()) == {f"{FIRST_V4}/32", f"{FIRST_V6}/128"}, "VPP keeps them"
    node.run("DEL", config, cid).assert_ok()
    assert_nothing_left(vpp)


def test_restore_wires_both_families_again(vpp: VppNode) -> None:
    node, probe = vpp.node, vpp.probe
    cid = new_container_id()
    config = config_for(node, 4, 6)
    result = node.run("ADD", config, cid).assert_ok()
    vpp.restart()
    restored = vpp.run_restore()
    assert restored.returncode == 0, restored.stderr
    [port] = probe.ports(str(node.cni_dir)).values()
    index, pod_mac = port.sw_if_index, result["interfaces"][0]["mac"]
    assert probe.pod_routes() == {f"{FIRST_V4}/32": index, f"{FIRST_V6}/128": index}
    assert probe.pod_neighbors() == {FIRST_V4: (index, pod_mac), FIRST_V6: (index, pod_mac)}
    assert probe.addresses("loop0") == [f"{V4_GATEWAY}/24", f"{V6_GATEWAY}/64"]
    node.run("CHECK", {**config, "prevResult": result}, cid).assert_ok()
    node.run("DEL", config, cid).assert_ok()
    assert_nothing_left(vpp)


@pytest.mark.parametrize("families", [(6,), (4, 6)])
def test_the_tool_backend_refuses_an_ipv6_network_before_anything_is_made(
    node: Node, families: tuple[int, ...]
) -> None:
    config = node.config()
    config["ipam"] = node.ranges_ipam(*families)
    error = node.run("ADD", config, new_container_id()).assert_error(2)
    assert "vhost_tool backend cannot wire IPv6" in error["msg"]
    assert "host-local config hands out IPv6" in error["details"]
    assert not node.state_file.exists(), "the tool never ran"
    assert node.files() == set() and node.reservations() == {}


def test_the_tool_backend_refuses_ipv6_an_unknown_ipam_gave(node: Node, tmp_path: Path) -> None:
    """An IPAM whose config does not say what it hands out: refused on its answer, and the
    address it gave is released."""
    wrapper = tmp_path / "opaque-ipam"
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        "config = json.load(sys.stdin)\n"
        "config['ipam'] = config['ipam']['hidden']\n"
        "read, write = os.pipe()\n"
        "os.write(write, json.dumps(config).encode()); os.close(write)\n"
        "os.dup2(read, 0)\n"
        f"os.execv({CNI_BIN_DIR + '/host-local'!r}, ['host-local'])\n"
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    config = node.config()
    config["ipam"] = {"type": "opaque-ipam", "hidden": node.ranges_ipam(4, 6)}
    env = {"CNI_PATH": f"{tmp_path}{os.pathsep}{CNI_BIN_DIR}"}
    error = node.run("ADD", config, new_container_id(), extra_env=env).assert_error(2)
    assert f"opaque-ipam gave {FIRST_V6}/64" in error["details"]
    assert not node.state_file.exists(), "the tool never ran"
    assert node.files() == set() and node.reservations() == {}


def cli(vpp: VppNode, *args: str) -> dict[str, Any]:
    run = vpp.cli(*args)
    assert run.returncode == 0, run.stdout + run.stderr
    doc: dict[str, Any] = json.loads(run.stdout)
    return doc


def test_ports_and_show_list_both_families(vpp: VppNode) -> None:
    node = vpp.node
    cid = new_container_id()
    config = config_for(node, 4, 6)
    result = node.run("ADD", config, cid).assert_ok()
    pod_mac = result["interfaces"][0]["mac"]
    [row] = cli(vpp, "ports")["ports"]
    assert (row["pod_ip"], row["pod_ips"]) == (FIRST_V4, [FIRST_V4, FIRST_V6])
    shown = cli(vpp, "show", cid[:12])
    index = shown["interface"]["sw_if_index"]
    assert sorted(r["prefix"] for r in shown["routes"]) == [f"{FIRST_V4}/32", f"{FIRST_V6}/128"]
    assert sorted((n["ip"], n["mac"], n["sw_if_index"]) for n in shown["neighbours"]) == [
        (FIRST_V4, pod_mac, index),
        (FIRST_V6, pod_mac, index),
    ]
    names = {Path(f["path"]).name for f in shown["files"]}
    assert {f"{cid[:12]}-net1-ip4.conf", f"{cid[:12]}-net1-ip6.conf"} <= names
    node.run("DEL", config, cid).assert_ok()
    assert_nothing_left(vpp)


def test_gc_removes_a_dead_dual_stack_pods_routes(vpp: VppNode) -> None:
    """The port deleted behind the plugin's back (VPP keeps its routes): gc takes the record
    and both the /32 and the /128, and leaves the live pod's."""
    node, probe = vpp.node, vpp.probe
    dead, alive = new_container_id(), new_container_id()
    config = config_for(node, 4, 6)
    node.run("ADD", config, dead).assert_ok()
    node.run("ADD", config, alive).assert_ok()
    dead_port = probe.ports(str(node.cni_dir))[f"{node.cni_dir}/{dead}/{dead[:12]}-net1"]
    probe.delete_port(dead_port.sw_if_index)
    done = cli(vpp, "gc")
    assert {(a["action"], a["target"], a["result"]) for a in done["actions"]} == {
        ("remove stale record", str(node.record(dead)), "done"),
        ("delete stale route", f"{FIRST_V4}/32", "done"),
        ("delete stale route", f"{FIRST_V6}/128", "done"),
    }
    assert any(FIRST_V6 in note and "IPAM" in note for note in done["notes"])
    assert set(probe.pod_routes()) == {"10.56.217.132/32", "fd00:56:217::84/128"}
    node.run("DEL", config, dead).assert_ok()
    node.run("DEL", config, alive).assert_ok()
    assert_nothing_left(vpp)
