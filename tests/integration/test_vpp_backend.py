"""The binary-API backend end to end: the real executable, real host-local, and the
emulator (or a real VPP when VPP_API_SOCKET is set)."""

from __future__ import annotations

import json
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.integration.conftest import VppNode, new_container_id
from tests.integration.vpp_probe import VppProbe
from vhostuser_vpp.cni.versions import SUPPORTED_VERSIONS
from vhostuser_vpp.sim import Emulator


def _record(vpp: VppNode, cid: str, ifname: str = "net1") -> dict[str, object]:
    data: dict[str, object] = json.loads(vpp.node.record(cid, ifname).read_text())
    return data


@pytest.mark.lifecycle
@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_l3_add_check_del(vpp: VppNode, version: str) -> None:
    node, probe = vpp.node, vpp.probe
    cid = new_container_id()
    config = node.vpp_config(version)
    result = node.run("ADD", config, cid).assert_ok()
    socket_path = f"{node.cni_dir}/{cid}/{cid[:12]}-net1"
    pod_mac = result["interfaces"][0]["mac"]

    [(path, port)] = probe.ports(str(node.cni_dir)).items()
    assert path == socket_path and port.is_server
    iface = probe.interface(port.sw_if_index)
    assert iface.tag == f"cni:{cid[:12]}:net1"
    assert iface.flags & 1, "admin up"
    assert iface.interface_name.startswith("VirtualEthernet0/0/")
    assert probe.pod_routes() == {"10.56.217.131/32": port.sw_if_index}
    assert probe.pod_neighbors() == {"10.56.217.131": (port.sw_if_index, pod_mac)}
    ip4 = json.loads((node.cni_dir / cid / f"{cid[:12]}-net1-ip4.conf").read_text())
    assert ip4["gwMac"] == str(iface.l2_address)
    assert ip4["gwMac"].startswith("02:fe:")
    record = _record(vpp, cid)
    assert record["backend"] == "vpp"
    assert record["vhostname"] == iface.interface_name

    if version >= "0.4.0":
        node.run("CHECK", {**config, "prevResult": result}, cid).assert_ok()
    node.run("DEL", config, cid).assert_ok()
    assert probe.state(str(node.cni_dir)) == (set(), {}, {})
    assert node.files() == set()
    assert node.reservations() == {}


@pytest.mark.lifecycle
def test_l2_puts_the_port_in_a_bridge_domain_and_removes_it_again(vpp: VppNode) -> None:
    node, probe = vpp.node, vpp.probe
    config = node.vpp_config(mode="l2", bridge_domain=4242)
    first, second = new_container_id(), new_container_id()
    node.run("ADD", config, first).assert_ok()
    node.run("ADD", config, second).assert_ok()
    ports = probe.ports(str(node.cni_dir))
    bd = probe.bridge_domain(4242)
    assert bd is not None
    assert {s.sw_if_index for s in bd.sw_if_details} == {p.sw_if_index for p in ports.values()}
    assert probe.pod_routes() == {}
    node.run("DEL", config, first).assert_ok()
    assert probe.bridge_domain(4242).n_sw_ifs == 1
    node.run("DEL", config, second).assert_ok()
    assert probe.bridge_domain(4242) is None, "the plugin made it, and it is empty now"
    assert probe.ports(str(node.cni_dir)) == {}


@pytest.mark.lifecycle
def test_mode_none_makes_only_the_port(vpp: VppNode) -> None:
    node, probe = vpp.node, vpp.probe
    cid = new_container_id()
    config = node.vpp_config(mode="none")
    node.run("ADD", config, cid).assert_ok()
    assert len(probe.ports(str(node.cni_dir))) == 1
    assert probe.pod_routes() == {}
    assert probe.pod_neighbors() == {}
    node.run("DEL", config, cid).assert_ok()
    assert probe.ports(str(node.cni_dir)) == {}


def test_two_interfaces_in_one_pod(vpp: VppNode) -> None:
    node, probe = vpp.node, vpp.probe
    cid = new_container_id()
    config = node.vpp_config()
    node.run("ADD", config, cid, ifname="net1").assert_ok()
    node.run("ADD", config, cid, ifname="net2").assert_ok()
    assert len(probe.ports(str(node.cni_dir))) == 2
    assert len(probe.pod_routes()) == 2
    node.run("DEL", config, cid, ifname="net1").assert_ok()
    [remaining] = probe.ports(str(node.cni_dir))
    assert remaining.endswith("-net2")
    node.run("DEL", config, cid, ifname="net2").assert_ok()
    assert probe.state(str(node.cni_dir)) == (set(), {}, {})


def test_a_hundred_pods_leave_nothing_behind(vpp: VppNode) -> None:
    node, probe = vpp.node, vpp.probe
    config = node.vpp_config()
    config["ipam"]["rangeEnd"] = "10.56.217.250"
    pods = [new_container_id() for _ in range(100)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda cid: node.run("ADD", config, cid), pods))
    addresses = {run.assert_ok()["ips"][0]["address"] for run in results}
    assert len(addresses) == 100
    assert len(probe.ports(str(node.cni_dir))) == 100
    assert len(probe.pod_routes()) == 100
    with ThreadPoolExecutor(max_workers=4) as pool:
        for run in pool.map(lambda cid: node.run("DEL", config, cid), pods):
            run.assert_ok()
    assert probe.state(str(node.cni_dir)) == (set(), {}, {})
    assert node.files() == set()
    assert node.reservations() == {}


def test_del_never_deletes_another_pods_port_that_reused_the_index(vpp: VppNode) -> None:
    """VPP hands a freed sw_if_index and VirtualEthernet name to the next port."""
    node, probe = vpp.node, vpp.probe
    config = node.vpp_config()
    first, second = new_container_id(), new_container_id()
    node.run("ADD", config, first).assert_ok()
    [port_a] = probe.ports(str(node.cni_dir)).values()
    probe.delete_port(port_a.sw_if_index)
    node.run("ADD", config, second).assert_ok()
    [port_b] = probe.ports(str(node.cni_dir)).values()
    assert port_b.sw_if_index == port_a.sw_if_index
    assert port_b.interface_name == port_a.interface_name
    assert _record(vpp, first)["vhostname"] == _record(vpp, second)["vhostname"]

    node.run("DEL", config, first).assert_ok()
    assert set(probe.ports(str(node.cni_dir))) == {f"{node.cni_dir}/{second}/{second[:12]}-net1"}
    assert probe.pod_routes() == {"10.56.217.132/32": port_b.sw_if_index}, "first's stale route is gone"
    assert set(probe.pod_neighbors()) == {"10.56.217.132"}
    node.run("DEL", config, second).assert_ok()
    assert probe.state(str(node.cni_dir)) == (set(), {}, {})


@pytest.mark.lifecycle
def test_vpp_restart_between_add_and_del(vpp: VppNode) -> None:
    node = vpp.node
    cid = new_container_id()
    config = node.vpp_config("1.0.0")
    result = node.run("ADD", config, cid).assert_ok()
    vpp.restart()
    error = node.run("CHECK", {**config, "prevResult": result}, cid).assert_error(999)
    assert "VPP has no interface" in error["msg"]
    other = new_container_id()
    node.run("ADD", config, other).assert_ok()  # a new pod gets the index the first one had
    node.run("DEL", config, cid).assert_ok()
    [remaining] = vpp.probe.ports(str(node.cni_dir))
    assert other in remaining
    node.run("DEL", config, other).assert_ok()
    assert vpp.probe.state(str(node.cni_dir)) == (set(), {}, {})
    assert node.files() == set()
    assert node.reservations() == {}


def test_del_removes_the_route_of_a_port_deleted_behind_its_back(vpp: VppNode) -> None:
    """VPP keeps a deleted interface's routes, and refuses to delete one through a path
    whose interface is gone (-54): DEL must still remove it, or it leads to the index the
    next port gets. (Not run against VPP 24.10, which also keeps the deleted interface's
    neighbours, beyond any API call's reach until the index is reused.)"""
    node, probe = vpp.node, vpp.probe
    cid = new_container_id()
    config = node.vpp_config()
    node.run("ADD", config, cid).assert_ok()
    [port] = probe.ports(str(node.cni_dir)).values()
    probe.delete_port(port.sw_if_index)
    assert probe.pod_routes() == {"10.56.217.131/32": port.sw_if_index}
    node.run("DEL", config, cid).assert_ok()
    assert probe.state(str(node.cni_dir)) == (set(), {}, {})
    assert node.files() == set()


def test_del_leaves_a_route_another_pods_port_took_over(vpp: VppNode) -> None:
    """Someone points the first pod's /32 at the second pod's port (ADD refuses to take a
    route over, test_hostile; an operator can). The first pod's DEL must not cut that off."""
    node, probe = vpp.node, vpp.probe
    first, second = new_container_id(), new_container_id()
    config = node.vpp_config()
    node.run("ADD", config, first).assert_ok()
    node.run("ADD", config, second).assert_ok()
    ports = probe.ports(str(node.cni_dir))
    second_index = ports[f"{node.cni_dir}/{second}/{second[:12]}-net1"].sw_if_index
    probe.set_pod_route("10.56.217.131", second_index)

    node.run("DEL", config, first).assert_ok()
    assert probe.pod_routes() == {"10.56.217.131/32": second_index, "10.56.217.132/32": second_index}
    assert set(probe.pod_neighbors()) == {"10.56.217.132"}
    probe.set_pod_route("10.56.217.131", second_index, is_add=False)
    node.run("DEL", config, second).assert_ok()
    assert probe.state(str(node.cni_dir)) == (set(), {}, {})


def test_vpp_down_is_try_again_later_and_leaves_nothing(vpp: VppNode) -> None:
    vpp.stop()
    node = vpp.node
    error = node.run("ADD", node.vpp_config(), new_container_id()).assert_error(11)
    assert f"cannot connect to VPP at {node.api_socket}" in error["details"]
    assert node.files() == set()
    assert node.reservations() == {}


def test_auto_falls_back_to_the_tool_when_vpp_is_absent(vpp: VppNode) -> None:
    vpp.stop()
    node = vpp.node
    cid = new_container_id()
    config = node.config()
    config["vhost"] = {**config["vhost"], "api_socket": node.api_socket}
    run = node.run("ADD", config, cid)
    run.assert_ok()
    assert "falling back to vhost_tool" in run.stderr
    assert _record(vpp, cid)["backend"] == "tool"
    node.run("DEL", config, cid).assert_ok()
    assert node.ports() == {}


def test_auto_without_a_tool_names_both_reasons(vpp: VppNode) -> None:
    vpp.stop()
    node = vpp.node
    config = node.config(vhost={"api_socket": node.api_socket})
    error = node.run("ADD", config, new_container_id()).assert_error(11)
    assert f"cannot connect to VPP at {node.api_socket}" in error["details"]
    assert "no vhost.vhost_tool" in error["details"]


def test_a_vpp_without_the_v2_create_message_still_works(vpp: VppNode) -> None:
    emulator = vpp.need_emulator()
    emulator.stop()
    with Emulator.start(vpp.node.api_socket, omit=("create_vhost_user_if_v2",)):
        node = vpp.node
        cid = new_container_id()
        node.run("ADD", node.vpp_config(), cid).assert_ok()
        node.run("DEL", node.vpp_config(), cid).assert_ok()
        assert node.files() == set()


def test_vpp_22_10_serves_l2_with_the_old_bridge_domain_message(vpp: VppNode) -> None:
    vpp.need_emulator().stop()
    with Emulator.start(vpp.node.api_socket, profile="22.10"), VppProbe(vpp.node.api_socket) as probe:
        node = vpp.node
        config = node.vpp_config(mode="l2", bridge_domain=7)
        cid = new_container_id()
        node.run("ADD", config, cid).assert_ok()
        assert probe.bridge_domain(7).n_sw_ifs == 1
        node.run("DEL", config, cid).assert_ok()
        assert probe.bridge_domain(7) is None


def test_missing_messages_are_named_with_the_vpp_version(vpp: VppNode) -> None:
    vpp.need_emulator().stop()
    with Emulator.start(vpp.node.api_socket, omit=("ip_neighbor_add_del",)):
        node = vpp.node
        error = node.run("ADD", node.vpp_config(), new_container_id()).assert_error(999)
        assert "ip_neighbor_add_del (not offered)" in error["details"]
        assert "26.06" in error["details"]
        assert node.files() == set()
        assert node.reservations() == {}


def test_missing_unnumbered_interface_is_a_config_error(vpp: VppNode) -> None:
    node = vpp.node
    config = node.vpp_config(create_loopback=False, unnumbered_to="loop77")
    error = node.run("ADD", config, new_container_id()).assert_error(7)
    assert "loop77" in error["msg"]
    assert vpp.probe.state(str(node.cni_dir)) == (set(), {}, {})
    assert node.reservations() == {}


ADD_STEPS = [
    "create_vhost_user_if_v2",
    "sw_interface_set_flags",
    "sw_interface_set_unnumbered",
    "ip_route_add_del",
    "ip_neighbor_add_del",
]


@pytest.mark.parametrize("message", ADD_STEPS)
def test_vpp_refusing_any_add_step_leaves_vpp_disk_and_ipam_as_before(vpp: VppNode, message: str) -> None:
    emulator = vpp.need_emulator()
    node, probe = vpp.node, vpp.probe
    config = node.vpp_config()
    warm = new_container_id()
    node.run("ADD", config, warm).assert_ok()  # loop0 exists from here on
    before = (probe.state(str(node.cni_dir)), node.snapshot())
    emulator.faults.fail(message, retval=-1, times=1)
    error = node.run("ADD", config, new_container_id()).assert_error(999)
    assert message in error["details"]
    assert (probe.state(str(node.cni_dir)), node.snapshot()) == before
    node.run("DEL", config, warm).assert_ok()


def test_connection_dropped_mid_add_is_try_again_later(vpp: VppNode) -> None:
    emulator = vpp.need_emulator()
    node, probe = vpp.node, vpp.probe
    config = node.vpp_config()
    warm = new_container_id()
    node.run("ADD", config, warm).assert_ok()
    before = node.snapshot()
    emulator.faults.drop_connection_after(6)
    node.run("ADD", config, new_container_id()).assert_error(11)
    emulator.faults.clear()
    assert node.snapshot()[2] == before[2], "the address was released"
    node.run("DEL", config, warm).assert_ok()
    leftovers = probe.ports(str(node.cni_dir))
    assert len(leftovers) <= 1, "at most the port VPP made before the connection died"


def test_tool_backend_refuses_settings_it_cannot_carry_out(vpp: VppNode) -> None:
    node = vpp.node
    config = node.config()
    config["vhost"] = {**config["vhost"], "backend": "tool", "mode": "l2", "bridge_domain": 3}
    error = node.run("ADD", config, new_container_id()).assert_error(2)
    assert "vhost.mode='l2'" in error["details"]
    assert node.files() == set()


@pytest.mark.lifecycle
def test_client_socket_mode_lets_the_pod_make_the_socket(vpp: VppNode) -> None:
    node, probe = vpp.node, vpp.probe
    cid = new_container_id()
    info_path = node.device_info_dir / "net1.json"
    config = node.vpp_config("1.1.0", socket_mode="client")
    config["runtimeConfig"] = {"CNIDeviceInfoFile": str(info_path)}
    result = node.run("ADD", config, cid).assert_ok()
    socket_path = f"{node.cni_dir}/{cid}/{cid[:12]}-net1"
    [port] = probe.ports(str(node.cni_dir)).values()
    assert not port.is_server
    assert not (node.cni_dir / cid / f"{cid[:12]}-net1").exists(), "VPP does not create it in client mode"
    assert result["interfaces"][0]["socketPath"] == socket_path
    assert json.loads(info_path.read_text())["vhost-user"] == {"mode": "server", "path": socket_path}
    assert _record(vpp, cid)["socketMode"] == "client"
    node.run("CHECK", {**config, "prevResult": result}, cid).assert_ok()
    node.run("DEL", config, cid).assert_ok()
    assert probe.state(str(node.cni_dir)) == (set(), {}, {})


def test_check_reports_a_lost_neighbour(vpp: VppNode) -> None:
    node, probe = vpp.node, vpp.probe
    cid = new_container_id()
    config = node.vpp_config()
    result = node.run("ADD", config, cid).assert_ok()
    probe.delete_neighbor("10.56.217.131")
    error = node.run("CHECK", {**config, "prevResult": result}, cid).assert_error(999)
    assert "not wired as at ADD" in error["msg"]
    assert "no static neighbour 10.56.217.131" in error["details"]
    node.run("DEL", config, cid).assert_ok()


def test_check_reports_a_pod_route_that_leads_elsewhere(vpp: VppNode) -> None:
    node, probe = vpp.node, vpp.probe
    cid = new_container_id()
    config = node.vpp_config()
    result = node.run("ADD", config, cid).assert_ok()
    node.run("CHECK", {**config, "prevResult": result}, cid).assert_ok()
    [port] = probe.ports(str(node.cni_dir)).values()
    loop_index = probe.interface_named("loop0").sw_if_index
    probe.set_pod_route("10.56.217.131", loop_index)
    error = node.run("CHECK", {**config, "prevResult": result}, cid).assert_error(999)
    wanted = f"10.56.217.131/32 is routed via sw_if_index [{loop_index}], not the port's {port.sw_if_index}"
    assert wanted in error["details"]
    probe.set_pod_route("10.56.217.131", loop_index, is_add=False)
    node.run("DEL", config, cid).assert_ok()
    assert probe.state(str(node.cni_dir)) == (set(), {}, {})


def test_check_reports_a_port_that_lost_its_borrowed_address(vpp: VppNode) -> None:
    node, probe = vpp.node, vpp.probe
    cid = new_container_id()
    config = node.vpp_config()
    result = node.run("ADD", config, cid).assert_ok()
    [port] = probe.ports(str(node.cni_dir)).values()
    loop_index = probe.interface_named("loop0").sw_if_index
    probe.set_unnumbered(loop_index, port.sw_if_index, is_add=False)
    error = node.run("CHECK", {**config, "prevResult": result}, cid).assert_error(999)
    assert "not unnumbered to loop0" in error["details"]

    # Another interface lends its address instead: a second vhost-user port outside cniDir.
    lender = probe.papi.api.create_vhost_user_if_v2(
        is_server=True, sock_filename=str(node.root / "lender.sock"), tag="test-lender"
    )
    assert lender.retval == 0
    other = lender.sw_if_index
    probe.set_unnumbered(other, port.sw_if_index, is_add=True)
    error = node.run("CHECK", {**config, "prevResult": result}, cid).assert_error(999)
    assert f"unnumbered to {probe.interface(other).interface_name}, not loop0" in error["details"]

    probe.set_unnumbered(other, port.sw_if_index, is_add=False)
    probe.set_unnumbered(loop_index, port.sw_if_index, is_add=True)
    node.run("CHECK", {**config, "prevResult": result}, cid).assert_ok()
    node.run("DEL", config, cid).assert_ok()
    probe.delete_port(other)
    assert probe.state(str(node.cni_dir)) == (set(), {}, {})


def test_check_reports_a_pod_without_a_route_or_neighbour(vpp: VppNode) -> None:
    node, probe = vpp.node, vpp.probe
    cid = new_container_id()
    config = node.vpp_config()
    result = node.run("ADD", config, cid).assert_ok()
    [port] = probe.ports(str(node.cni_dir)).values()
    probe.delete_neighbor("10.56.217.131")
    probe.set_pod_route("10.56.217.131", port.sw_if_index, is_add=False)
    error = node.run("CHECK", {**config, "prevResult": result}, cid).assert_error(999)
    assert "no static neighbour 10.56.217.131" in error["details"]
    assert "no route 10.56.217.131/32" in error["details"]
    node.run("DEL", config, cid).assert_ok()


def test_check_reports_a_port_that_left_its_bridge_domain(vpp: VppNode) -> None:
    node, probe = vpp.node, vpp.probe
    cid = new_container_id()
    config = node.vpp_config(mode="l2", bridge_domain=12)
    result = node.run("ADD", config, cid).assert_ok()
    [port] = probe.ports(str(node.cni_dir)).values()
    probe.leave_bridge_domain(port.sw_if_index, 12)
    error = node.run("CHECK", {**config, "prevResult": result}, cid).assert_error(999)
    assert "not a member of bridge domain 12" in error["details"]
    node.run("DEL", config, cid).assert_ok()
    assert probe.ports(str(node.cni_dir)) == {}


def test_socket_directory_and_file_access_for_a_non_root_app(vpp: VppNode) -> None:
    node = vpp.node
    cid = new_container_id()
    config = node.vpp_config(
        socket_dir_mode="0750", socket_file_mode="0660", socket_owner=1234, socket_group=4321
    )
    node.run("ADD", config, cid).assert_ok()
    directory = os.stat(node.cni_dir / cid)
    socket = os.stat(node.cni_dir / cid / f"{cid[:12]}-net1")
    assert (stat.S_IMODE(directory.st_mode), directory.st_uid, directory.st_gid) == (0o750, 1234, 4321)
    assert stat.S_ISSOCK(socket.st_mode)
    assert (stat.S_IMODE(socket.st_mode), socket.st_uid, socket.st_gid) == (0o660, 1234, 4321)
    node.run("DEL", config, cid).assert_ok()


@pytest.mark.parametrize(
    ("vhost", "details"),
    [
        ({"socket_group": "no-such-group-here"}, "no group 'no-such-group-here'"),
        ({"socket_owner": "no-such-user-here"}, "no user 'no-such-user-here'"),
        ({"socket_file_mode": "0666"}, "must not let others write"),
    ],
)
def test_bad_socket_access_settings_are_refused(vpp: VppNode, vhost: dict[str, Any], details: str) -> None:
    node = vpp.node
    error = node.run("ADD", node.vpp_config(**vhost), new_container_id()).assert_error(7)
    assert details in error["details"]
    assert node.files() == set()
    assert vpp.probe.ports(str(node.cni_dir)) == {}


BRIDGE_RESULT = {
    "cniVersion": "1.0.0",
    "interfaces": [
        {"name": "cni0", "mac": "a2:00:00:00:00:01"},
        {"name": "eth0", "sandbox": "/var/run/netns/pod"},
    ],
    "ips": [{"address": "10.88.0.5/16", "gateway": "10.88.0.1", "interface": 1}],
    "routes": [{"dst": "0.0.0.0/0", "gw": "10.88.0.1"}],
    "dns": {"nameservers": ["10.96.0.10"]},
}


def test_second_in_a_conflist_the_result_extends_prev_result(vpp: VppNode) -> None:
    """As libcni runs a chain: the previous plugin's result comes as prevResult, and ours
    is it plus our interface and addresses; CHECK and DEL take the chain's final result."""
    node = vpp.node
    cid = new_container_id()
    config = {**node.vpp_config(), "prevResult": BRIDGE_RESULT}
    result = node.run("ADD", config, cid).assert_ok()
    assert [i["name"] for i in result["interfaces"]] == ["cni0", "eth0", "net1"]
    assert [(ip["address"], ip["interface"]) for ip in result["ips"]] == [
        ("10.88.0.5/16", 1),
        ("10.56.217.131/24", 2),
    ]
    assert result["routes"] == [{"dst": "0.0.0.0/0", "gw": "10.88.0.1"}, {"dst": "0.0.0.0/0"}]
    assert result["dns"] == BRIDGE_RESULT["dns"]
    again = node.run("ADD", config, cid).assert_ok()
    assert again == result, "a repeated ADD chains the saved result the same way"
    node.run("CHECK", {**config, "prevResult": result}, cid).assert_ok()
    node.run("DEL", {**config, "prevResult": result}, cid).assert_ok()
    assert vpp.probe.state(str(node.cni_dir)) == (set(), {}, {})
    assert node.files() == set() and node.reservations() == {}


def test_a_malformed_prev_result_is_refused_before_anything_is_made(vpp: VppNode) -> None:
    node = vpp.node
    config = {**node.vpp_config(), "prevResult": {"cniVersion": "1.0.0", "ips": [{"address": "nonsense"}]}}
    error = node.run("ADD", config, new_container_id()).assert_error(6)
    assert "prevResult" in error["msg"]
    assert vpp.probe.state(str(node.cni_dir)) == (set(), {}, {})
    assert node.files() == set() and node.reservations() == {}
