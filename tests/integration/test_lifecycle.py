"""ADD, CHECK and DEL of the real executable with real host-local, in every spec version."""

from __future__ import annotations

import json
import os
import stat

import pytest

from tests.integration.conftest import STATE_TOOL, Node, new_container_id
from vhostuser_vpp.cni.versions import SUPPORTED_VERSIONS


def test_version_lists_every_supported_spec_version(node: Node) -> None:
    run = node.run("VERSION", stdin=b"{}")
    assert run.assert_ok() == {
        "cniVersion": "1.1.0",
        "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"],
    }


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_add_check_del_in_every_version(node: Node, version: str) -> None:
    cid = new_container_id()
    config = node.config(version)
    result = node.run("ADD", config, cid).assert_ok()

    assert result["cniVersion"] == version
    [interface] = result["interfaces"]
    socket_path = f"{node.cni_dir}/{cid}/{cid[:12]}-net1"
    assert interface["name"] == "net1"
    assert "sandbox" not in interface
    assert ("socketPath" in interface) == (version == "1.1.0")
    if version == "1.1.0":
        assert interface["socketPath"] == socket_path
    [ip] = result["ips"]
    assert ip["address"] == "10.56.217.131/24"
    assert ip["gateway"] == "10.56.217.1"
    assert ip["interface"] == 0
    assert ("version" in ip) == (version < "1.0.0")
    assert result["routes"] == [{"dst": "0.0.0.0/0"}]

    [port] = node.ports().values()
    assert port["socket"] == socket_path
    assert port["pod_ip"] == "10.56.217.131"
    assert port["pod_mac"] == interface["mac"]
    assert stat.S_ISSOCK(os.lstat(socket_path).st_mode)
    assert node.reservations() == {"10.56.217.131": f"{cid}\nnet1"}

    if version >= "0.4.0":
        node.run("CHECK", {**config, "prevResult": result}, cid).assert_ok()

    assert node.run("DEL", config, cid).assert_ok() is None
    assert node.files() == set()
    assert node.ports() == {}
    assert node.reservations() == {}


def test_files_follow_the_original_layout(node: Node) -> None:
    cid = new_container_id()
    result = node.run("ADD", node.config(), cid).assert_ok()
    pod_mac = result["interfaces"][0]["mac"]
    [(vpp_name, port)] = node.ports().items()
    prefix = f"{cid[:12]}-net1"

    assert node.files() == node.attachment_files(cid)
    assert (node.cni_dir / cid / f"{prefix}-ip4.conf").read_text() == (
        "{\n"
        '        "ipAddr": "10.56.217.131/32",\n'
        f'        "macAddr": "{pod_mac}",\n'
        '        "gateway": "10.56.217.1",\n'
        f'        "gwMac": "{port["mac"]}"\n'
        "}\n"
    )
    record_text = (node.cni_dir / cid / f"{prefix}.json").read_text()
    assert record_text.startswith(
        "{\n"
        f'    "vhostname": "{vpp_name}",\n'
        f'    "vhostmac": "{port["mac"]}",\n'
        '    "ifname": "net1",\n'
        f'    "ifmac": "{pod_mac}",\n'
        f'    "vhost_tool": "{STATE_TOOL}",\n'
    )
    assert json.loads(record_text)["network"] == "vhostuser-network"
    assert stat.S_IMODE(os.stat(node.cni_dir / cid).st_mode) == 0o700
    get_prefix = node.cni_dir / "get-prefix.sh"
    assert os.access(get_prefix, os.X_OK)
    node.run("DEL", node.config(), cid).assert_ok()


def test_original_sample_without_cni_version_answers_in_0_3_0(node: Node) -> None:
    cid = new_container_id()
    config = node.config(version=None)
    result = node.run("ADD", config, cid).assert_ok()
    assert result["cniVersion"] == "0.3.0"
    assert result["ips"][0]["version"] == "4"
    node.run("DEL", config, cid).assert_ok()
    assert node.reservations() == {}


def test_ifname_comes_from_the_runtime_not_if0name(node: Node) -> None:
    cid = new_container_id()
    config = node.config(if0name="net0")
    run = node.run("ADD", config, cid, ifname="net2")
    result = run.assert_ok()
    assert result["interfaces"][0]["name"] == "net2"
    assert "if0name 'net0' differs from CNI_IFNAME 'net2'" in run.stderr
    assert (node.cni_dir / cid / f"{cid[:12]}-net2-ip4.conf").exists()
    node.run("DEL", config, cid, ifname="net2").assert_ok()
    assert node.files() == set()


def test_two_interfaces_in_one_pod_are_deleted_one_at_a_time(node: Node) -> None:
    cid = new_container_id()
    config = node.config()
    first = node.run("ADD", config, cid, ifname="net1").assert_ok()
    second = node.run("ADD", config, cid, ifname="net10").assert_ok()
    assert first["ips"][0]["address"] != second["ips"][0]["address"]
    assert len(node.ports()) == 2

    node.run("DEL", config, cid, ifname="net1").assert_ok()
    prefix10 = f"{cid[:12]}-net10"
    assert node.files() == node.attachment_files(cid, "net10")
    [port] = node.ports().values()
    assert port["socket"].endswith(prefix10)
    node.run("CHECK", {**config, "prevResult": second}, cid, ifname="net10").assert_ok()

    node.run("DEL", config, cid, ifname="net10").assert_ok()
    assert node.files() == set()
    assert node.reservations() == {}


def test_repeated_add_returns_the_same_result_without_a_second_port(node: Node) -> None:
    cid = new_container_id()
    config = node.config("1.1.0")
    first = node.run("ADD", config, cid).assert_ok()
    again = node.run("ADD", config, cid).assert_ok()
    assert again == first
    assert len(node.ports()) == 1
    assert len(node.reservations()) == 1
    node.run("DEL", config, cid).assert_ok()


def test_del_is_idempotent(node: Node) -> None:
    cid = new_container_id()
    config = node.config()
    node.run("DEL", config, cid).assert_ok()
    node.run("ADD", config, cid).assert_ok()
    node.run("DEL", config, cid, netns="").assert_ok()
    node.run("DEL", config, cid, netns="").assert_ok()
    assert node.snapshot() == (set(), {}, {})


def test_del_succeeds_when_the_port_or_record_is_already_gone(node: Node) -> None:
    config = node.config()
    lost_port, lost_record = new_container_id(), new_container_id()
    node.run("ADD", config, lost_port).assert_ok()
    node.run("ADD", config, lost_record).assert_ok()
    state = json.loads(node.state_file.read_text())
    state["ports"] = {k: v for k, v in state["ports"].items() if lost_port not in v["socket"]}
    node.state_file.write_text(json.dumps(state))
    node.forget(lost_record)

    node.run("DEL", config, lost_port).assert_ok()
    node.run("DEL", config, lost_record).assert_ok()
    assert node.files() == set()
    assert node.reservations() == {}


def test_device_info_file_for_multus(node: Node) -> None:
    cid = new_container_id()
    info_path = node.device_info_dir / f"{cid}-net1.json"
    config = node.config("1.0.0", runtimeConfig={"CNIDeviceInfoFile": str(info_path)})
    node.run("ADD", config, cid).assert_ok()
    assert json.loads(info_path.read_text()) == {
        "type": "vhost-user",
        "version": "1.1.0",
        "vhost-user": {"mode": "client", "path": f"{node.cni_dir}/{cid}/{cid[:12]}-net1"},
    }
    node.run("DEL", config, cid).assert_ok()
    assert not info_path.exists()


def test_runtime_mac_capability_sets_the_pod_mac(node: Node) -> None:
    cid = new_container_id()
    config = node.config("1.0.0", runtimeConfig={"mac": "0A:58:0A:38:D9:99"})
    result = node.run("ADD", config, cid).assert_ok()
    assert result["interfaces"][0]["mac"] == "0a:58:0a:38:d9:99"
    [port] = node.ports().values()
    assert port["pod_mac"] == "0a:58:0a:38:d9:99"
    node.run("DEL", config, cid).assert_ok()


def test_check_reports_a_port_missing_in_vpp(node: Node) -> None:
    cid = new_container_id()
    config = node.config("1.0.0")
    result = node.run("ADD", config, cid).assert_ok()
    node.state_file.write_text(json.dumps({"ports": {}}))
    error = node.run("CHECK", {**config, "prevResult": result}, cid).assert_error(999)
    assert "VPP has no interface VirtualEthernet0/0/0" in error["msg"]
    node.run("DEL", config, cid).assert_ok()


def test_check_of_an_unknown_container_fails_with_code_3(node: Node) -> None:
    node.run("CHECK", node.config("1.0.0"), new_container_id()).assert_error(3)


def test_log_file_lines_name_command_container_and_interface(node: Node) -> None:
    cid = new_container_id()
    log_file = node.log_dir / "plugin.log"
    node.log_dir.mkdir()
    config = node.config("1.0.0", logFile=str(log_file), logLevel="debug")
    node.run("ADD", config, cid).assert_ok()
    node.run("DEL", config, cid).assert_ok()
    lines = log_file.read_text().splitlines()
    assert any(f"ADD cid={cid[:12]} if=net1 net=vhostuser-network" in line for line in lines)
    assert any(f"DEL cid={cid[:12]} if=net1" in line for line in lines)
