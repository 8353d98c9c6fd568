"""Hostile cases: a tenant (who writes the network config) or a pod (who writes inside its
own socket directory) trying to make the plugin, which runs as root, act outside the node
policy. Each case is an attack that worked before the trust boundary was drawn; the
numbers are those of the issue that listed them, the rest were tried since.

The VPP ones run against the emulator and the real VPP; the operator's objects they set
up (a VM's port, its route, a bridge domain) are removed again, so each test leaves VPP
as it found it.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import DIRECT_PLUGIN, NETWORK, PLUGIN, Node, VppNode, new_container_id

CLI = str(Path(sys.executable).parent / "vhostuser-vpp")
VM_IP = "10.56.217.250"
ANY = 0xFFFFFFFF


def pod_record(node: Node, cid: str, ifname: str = "net1") -> Path:
    """The copy of the record in the pod's directory: the pod can write it."""
    return node.cni_dir / cid / f"{cid[:12]}-{ifname}.json"


def socket_of(node: Node, cid: str, ifname: str = "net1") -> str:
    return f"{node.cni_dir}/{cid}/{cid[:12]}-{ifname}"


@pytest.fixture
def vm_port(vpp: VppNode) -> Iterator[tuple[int, str]]:
    """An operator's untagged vhost-user port for a VM, with a route to the VM's address."""
    probe = vpp.probe
    sock = str(vpp.node.root / "vm.sock")
    index = int(
        probe.papi.api.create_vhost_user_if_v2(is_server=True, sock_filename=sock, tag="").sw_if_index
    )
    probe.set_pod_route(VM_IP, index)
    yield index, sock
    if VM_IP + "/32" in probe.pod_routes():
        probe.set_pod_route(VM_IP, index, is_add=False)
    if probe.interface(index) is not None:
        probe.delete_port(index)


# -- 1. cniDir through a symlink a pod planted, or inside a pod's directory ----------------------


def test_a_cni_dir_inside_a_pods_directory_or_behind_its_symlink_is_refused(node: Node) -> None:
    config = node.config()
    pod = "poda"  # short IDs, so that the attacker's socket paths would fit
    node.run("ADD", config, pod).assert_ok()
    victim = Path(tempfile.mkdtemp(prefix="victim", dir="/tmp"))
    try:
        (node.cni_dir / pod / "evil").symlink_to(victim)
        for cni_dir in (
            f"{node.cni_dir}/{pod}/evil/x",
            f"{node.cni_dir}/{pod}/evil",
            f"{node.cni_dir}/{pod}/sub",
        ):
            doc = node.run("ADD", {**config, "cniDir": cni_dir}, "tenantb").assert_error(7)
            assert "cniDir" in doc["msg"], doc
        assert list(victim.iterdir()) == []
        assert not (node.cni_dir / pod / "sub").exists()
    finally:
        (node.cni_dir / pod / "evil").unlink()
        shutil.rmtree(victim)
    node.run("DEL", config, pod).assert_ok()
    assert node.snapshot() == (set(), {}, {})


# -- 2. DEL, restore and gc act on root's record, not on the pod's copy --------------------------


def forged_record(cid: str, vm: int, vm_socket: str, vm_name: str) -> dict[str, Any]:
    """The pod's copy rewritten to name the operator's VM port, its route and a host route."""
    return {
        "vhostname": vm_name,
        "ifname": "net1",
        "containerID": cid,
        "backend": "vpp",
        "phase": "ready",
        "tag": "",
        "socketPath": vm_socket,
        "ipAddr": VM_IP,
        "hostRoute": "eth0",
        "port": {"sw_if_index": vm, "mode": "l3"},
    }


def test_del_ignores_a_record_the_pod_forged(vpp: VppNode, vm_port: tuple[int, str]) -> None:
    node, probe = vpp.node, vpp.probe
    vm, vm_socket = vm_port
    cid = new_container_id()
    config = node.vpp_config()
    node.run("ADD", config, cid).assert_ok()
    forged = forged_record(cid, vm, vm_socket, probe.interface(vm).interface_name)
    pod_record(node, cid).write_text(json.dumps(forged))

    node.run("DEL", config, cid).assert_ok()
    assert probe.interface(vm) is not None, "the VM's port stays"
    assert probe.pod_routes() == {f"{VM_IP}/32": vm}, "the VM's route stays, the pod's went"
    assert probe.ports(str(node.cni_dir)) == {} and probe.pod_neighbors() == {}
    assert node.snapshot()[0::2] == (set(), {})


def test_a_record_of_an_earlier_version_is_trusted_only_as_far_as_vpp_confirms_it(
    vpp: VppNode, vm_port: tuple[int, str]
) -> None:
    """No `.state` for the container (an earlier version made it): the pod's file is read,
    but what it names is checked against VPP: the port by tag and socket, the address by
    the port's own neighbour."""
    node, probe = vpp.node, vpp.probe
    vm, vm_socket = vm_port
    cid = new_container_id()
    config = node.vpp_config()
    node.run("ADD", config, cid).assert_ok()
    shutil.rmtree(node.cni_dir / ".state" / cid)
    forged = forged_record(cid, vm, vm_socket, probe.interface(vm).interface_name)
    pod_record(node, cid).write_text(json.dumps(forged))

    node.run("DEL", config, cid).assert_ok()
    assert probe.interface(vm) is not None
    assert probe.pod_routes() == {f"{VM_IP}/32": vm}
    assert probe.ports(str(node.cni_dir)) == {} and probe.pod_neighbors() == {}
    assert node.snapshot()[0::2] == (set(), {})


@pytest.mark.lifecycle
def test_restore_makes_the_pods_own_port_whatever_its_copy_says(vpp: VppNode) -> None:
    node, probe = vpp.node, vpp.probe
    cid = new_container_id()
    config = node.vpp_config()
    result = node.run("ADD", config, cid).assert_ok()
    host_file = node.root / "host-file"
    host_file.write_text("the operator's")
    record = json.loads(pod_record(node, cid).read_text())
    pod_record(node, cid).write_text(
        json.dumps({**record, "socketPath": str(host_file), "ipAddr": "10.56.217.177"})
    )
    vpp.restart()
    run = subprocess.run(
        [CLI, "restore", "--api-socket", node.api_socket, "--cni-dir", str(node.cni_dir), "-o", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert host_file.read_text() == "the operator's"
    [(path, port)] = probe.ports(str(node.root)).items()
    assert path == socket_of(node, cid)
    pod_ip = result["ips"][0]["address"].split("/")[0]
    assert probe.pod_routes() == {f"{pod_ip}/32": port.sw_if_index}, "one address: its own"
    node.run("DEL", config, cid).assert_ok()


def test_gc_ignores_records_a_pod_adds_to_its_directory(vpp: VppNode, vm_port: tuple[int, str]) -> None:
    node, probe = vpp.node, vpp.probe
    vm, vm_socket = vm_port
    cid = new_container_id()
    node.run("ADD", node.vpp_config(), cid).assert_ok()
    fake = {**forged_record(cid, vm, vm_socket, "VirtualEthernet0/0/99"), "ifname": "net9"}
    pod_record(node, cid, "net9").write_text(json.dumps(fake))
    env = {**os.environ, "VHOSTUSER_VPP_NODE_CONFIG": str(node.node_config)}
    run = subprocess.run(
        [CLI, "gc", "--force", "--api-socket", node.api_socket, "--cni-dir", str(node.cni_dir), "-o", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads(run.stdout)["actions"] == []
    assert probe.pod_routes()[f"{VM_IP}/32"] == vm
    pod_record(node, cid, "net9").unlink()


# -- 3. a /32 that another interface holds -------------------------------------------------------


def test_add_of_an_address_another_pod_holds_is_refused_and_leaves_nothing(vpp: VppNode) -> None:
    node, probe = vpp.node, vpp.probe
    first, second = new_container_id(), new_container_id()
    config = node.vpp_config()
    overlapping = {**node.vpp_config(), "name": "overlapping-network"}
    node.run("ADD", config, first).assert_ok()
    [(_, port)] = probe.ports(str(node.cni_dir)).items()
    before = probe.state(str(node.cni_dir))

    doc = node.run("ADD", overlapping, second).assert_error(7)
    assert probe.interface(port.sw_if_index).interface_name in doc["msg"], doc
    assert probe.state(str(node.cni_dir)) == before, "the first pod keeps its route"
    assert not (node.ipam_dir / "overlapping-network" / "10.56.217.131").exists()
    assert node.files() == node.attachment_files(first)
    node.run("DEL", overlapping, second).assert_ok()
    assert probe.state(str(node.cni_dir)) == before
    node.run("DEL", config, first).assert_ok()


# -- 4. GC by network config, not by name ------------------------------------------------------


def test_gc_of_one_tenants_network_leaves_another_tenants_of_the_same_name(node: Node) -> None:
    tenant_a = node.config("1.1.0")
    tenant_b = node.config("1.1.0")
    tenant_b["ipam"] = {
        **tenant_b["ipam"],
        "rangeStart": "10.56.217.160",
        "dataDir": str(node.root / "ipam-b"),
    }
    a, b = new_container_id(), new_container_id()
    node.run("ADD", tenant_a, a).assert_ok()
    node.run("ADD", tenant_b, b).assert_ok()
    valid = {"cni.dev/valid-attachments": [{"containerID": a, "ifname": "net1"}]}
    node.run("GC", {**tenant_a, **valid}, container_id="", ifname="", netns="").assert_ok()
    assert len(node.ports()) == 2
    assert node.attachment_files(b) <= node.files()
    assert (node.root / "ipam-b" / NETWORK / "10.56.217.160").exists()
    node.run("DEL", tenant_a, a).assert_ok()
    node.run("DEL", tenant_b, b).assert_ok()
    assert node.snapshot() == (set(), {}, {})


# -- 5. VPP objects the node policy does not give tenants --------------------------------------


def test_vpp_objects_outside_the_policy_are_refused(vpp: VppNode) -> None:
    node, probe = vpp.node, vpp.probe
    probe.papi.api.bridge_domain_add_del_v2(bd_id=99, bd_tag="infra", is_add=True, flood=True)
    try:
        before = probe.snapshot(addresses=vpp.emulator is None)
        for vhost in ({"mode": "l2", "bridge_domain": 99}, {"unnumbered_to": "uplink"}):
            doc = node.run("ADD", node.vpp_config(**vhost), new_container_id()).assert_error(7)
            assert "not allowed on this node" in doc["msg"], doc
        assert probe.snapshot(addresses=vpp.emulator is None) == before
        assert node.snapshot() == (set(), {}, {})
    finally:
        probe.papi.api.bridge_domain_add_del_v2(bd_id=99, is_add=False)


# -- 6. the plugin as its own IPAM -------------------------------------------------------------


@pytest.mark.parametrize("command", ["ADD", "GC", "STATUS"])
def test_the_plugin_refuses_itself_as_ipam(node: Node, command: str) -> None:
    bin_dir = node.root / "bin"
    bin_dir.mkdir()
    (bin_dir / "vhostuser").symlink_to(PLUGIN)
    (bin_dir / "myipam").symlink_to(PLUGIN)
    for ipam_type in ("vhostuser", "myipam"):
        config = node.config("1.1.0", ipam={"type": ipam_type})
        if command == "GC":
            config["cni.dev/valid-attachments"] = []
        cid, ifname, netns = (
            (new_container_id(), "net1", "/var/run/netns/pod") if command == "ADD" else ("", "", "")
        )
        run = node.run(command, config, cid, ifname, netns, extra_env={"CNI_PATH": str(bin_dir)})
        doc = run.assert_error(7)
        assert "itself" in doc["msg"], doc
        if command == "ADD":
            node.run("DEL", config, cid, extra_env={"CNI_PATH": str(bin_dir)}).assert_ok()
    assert node.snapshot() == (set(), {}, {})


# -- 7. the gateway loopback: whole, ours, with its address ------------------------------------


def test_a_loopback_without_an_address_is_not_taken_as_the_gateway(vpp: VppNode) -> None:
    node, probe = vpp.node, vpp.probe
    index = int(probe.papi.api.create_loopback(mac_address="00:00:00:00:00:00").sw_if_index)
    name = probe.interface(index).interface_name
    try:
        doc = node.run("ADD", node.vpp_config(unnumbered_to=name), new_container_id()).assert_error(7)
        assert "no IPv4 address" in doc["msg"], doc
        assert probe.ports(str(node.cni_dir)) == {}
    finally:
        probe.papi.api.delete_loopback(sw_if_index=index)


def test_a_half_made_loopback_of_ours_is_made_again(vpp: VppNode) -> None:
    node, probe = vpp.node, vpp.probe
    index = int(probe.papi.api.create_loopback(mac_address="00:00:00:00:00:00").sw_if_index)
    probe.papi.api.sw_interface_tag_add_del(is_add=True, sw_if_index=index, tag="cni-gw:loop77")
    cid = new_container_id()
    config = node.vpp_config(unnumbered_to="loop77")
    result = node.run("ADD", config, cid).assert_ok()
    loops = probe.papi.api.sw_interface_dump(sw_if_index=ANY, name_filter_valid=True, name_filter="loop")
    [loop] = [i.sw_if_index for i in loops if i.tag == "cni-gw:loop77"]
    addresses = probe.papi.api.ip_address_dump(sw_if_index=loop, is_ipv6=False)
    assert [str(a.prefix) for a in addresses] == ["10.56.217.1/24"]
    node.run("CHECK", {**config, "prevResult": result}, cid).assert_ok()
    node.run("DEL", config, cid).assert_ok()


def test_a_gateway_address_vpp_refuses_leaks_no_loopback(vpp: VppNode) -> None:
    node, probe = vpp.node, vpp.probe
    index = int(probe.papi.api.create_loopback(mac_address="00:00:00:00:00:00").sw_if_index)
    probe.papi.api.sw_interface_add_del_address(
        sw_if_index=index, is_add=True, del_all=False, prefix="10.56.217.2/24"
    )
    try:
        before = probe.snapshot(addresses=vpp.emulator is None)
        for _ in range(2):
            doc = node.run("ADD", node.vpp_config(unnumbered_to="loop77"), new_container_id()).assert_error(7)
            assert "10.56.217.1/24" in doc["msg"], doc
        assert probe.snapshot(addresses=vpp.emulator is None) == before
    finally:
        probe.papi.api.delete_loopback(sw_if_index=index)


def test_an_add_waits_for_a_loopback_another_add_is_making(vpp: VppNode) -> None:
    """Pods start in parallel: while one ADD makes the gateway loopback (under the node lock,
    untagged and address-less for a moment), another must wait for it, not refuse it."""
    node, probe = vpp.node, vpp.probe
    config = node.vpp_config()
    first = new_container_id()
    node.run("ADD", config, first).assert_ok()  # cniDir and its lock directory exist
    node.run("DEL", config, first).assert_ok()
    probe.delete_loopback("loop0")
    fd = os.open(node.cni_dir / ".locks" / "vpp-setup.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        index = int(probe.papi.api.create_loopback(mac_address="00:00:00:00:00:00").sw_if_index)
        assert probe.interface(index).interface_name == "loop0", "found by its name, not yet by its tag"
        env = node.env("ADD", second := new_container_id(), "net1", "/var/run/netns/pod")
        add = subprocess.Popen([DIRECT_PLUGIN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        assert add.stdin is not None
        add.stdin.write(json.dumps(config).encode())
        add.stdin.close()
        wait_until_in_flock(add.pid)
        probe.papi.api.sw_interface_tag_add_del(is_add=True, sw_if_index=index, tag="cni-gw:loop0")
        probe.papi.api.sw_interface_add_del_address(
            sw_if_index=index, is_add=True, del_all=False, prefix="10.56.217.1/24"
        )
    finally:
        os.close(fd)
    assert add.wait(timeout=60) == 0
    node.run("DEL", config, second).assert_ok()


# -- 8. leftovers nobody could see -------------------------------------------------------------


def test_del_removes_what_a_killed_write_left_and_the_lock(node: Node) -> None:
    config = node.config()
    cid = new_container_id()
    node.run("ADD", config, cid).assert_ok()
    for directory, name in (
        (node.cni_dir / cid, f"{cid[:12]}-net1.json"),
        (node.cni_dir / ".state" / cid, "net1.json"),
    ):
        (directory / f".{name}.0badf00d.tmp").write_text("{")
    node.run("DEL", config, cid).assert_ok()
    assert node.files() == set()
    assert not (node.cni_dir / ".locks" / f"{cid}.lock").exists()


def test_a_failed_add_and_a_check_of_an_unknown_container_leave_no_lock(node: Node) -> None:
    cid = new_container_id()
    assert node.run("ADD", node.config(vhost={"vhost_tool": "/nonexistent"}), cid).code == 1
    config = node.config()
    node.run("CHECK", {**config, "prevResult": {"cniVersion": "1.0.0"}}, new_container_id()).assert_error(3)
    assert sorted(os.listdir(node.cni_dir / ".locks")) == []
    assert node.snapshot() == (set(), {}, {})


def test_a_bridge_domain_is_left_and_deleted_under_the_node_lock(vpp: VppNode) -> None:
    """Else a DEL emptying the domain between an ADD's dump and its join makes VPP create
    it anew, untagged, for nobody to remove. The test holds the node lock and sees DEL
    wait for it (blocked in flock(2)) with the domain untouched."""
    node, probe = vpp.node, vpp.probe
    cid = new_container_id()
    config = node.vpp_config(mode="l2", bridge_domain=4242)
    node.run("ADD", config, cid).assert_ok()
    fd = os.open(node.cni_dir / ".locks" / "vpp-setup.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        env = node.env("DEL", cid, "net1", "/var/run/netns/pod")
        delete = subprocess.Popen([DIRECT_PLUGIN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        assert delete.stdin is not None
        delete.stdin.write(json.dumps(config).encode())
        delete.stdin.close()
        wait_until_in_flock(delete.pid)
        assert probe.bridge_domain(4242).n_sw_ifs == 1
    finally:
        os.close(fd)
    assert delete.wait(timeout=60) == 0
    assert probe.bridge_domain(4242) is None


def wait_until_in_flock(pid: int, timeout_s: float = 30.0) -> None:
    """Until the process sits in flock(2), as /proc/<pid>/syscall shows (x86_64: 73)."""
    if platform.machine() != "x86_64":
        pytest.skip("knows flock(2)'s syscall number on x86_64 only")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        fields = Path(f"/proc/{pid}/syscall").read_text().split()
        if fields and fields[0] == "73":
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} never waited for the lock")


# -- 9. the right codes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "vhost",
    [{"socket_owner": -2}, {"socket_owner": 2**40}, {"socket_group": 2**70}],
    ids=["owner-negative", "owner-huge", "group-huge"],
)
def test_ids_no_node_can_have_are_code_7(node: Node, vhost: dict[str, int]) -> None:
    config = node.config()
    config["vhost"].update(vhost)
    doc = node.run("ADD", config, new_container_id()).assert_error(7)
    assert "socket_" in doc["details"], doc
    assert node.snapshot() == (set(), {}, {})


def test_undecodable_names_are_refused_with_their_codes(node: Node) -> None:
    bad_ifname = os.fsdecode(b"net\xff")
    node.run("ADD", node.config(), new_container_id(), ifname=bad_ifname).assert_error(4)
    config = node.config()
    config["cniDir"] = str(node.cni_dir) + "/\udcff"
    node.run("ADD", config, new_container_id()).assert_error(7)
    assert node.snapshot() == (set(), {}, {})


@pytest.mark.parametrize("length", [251, 255])
def test_del_and_check_of_a_very_long_container_id(node: Node, length: int) -> None:
    cid = "c" * length
    other = new_container_id()
    node.run("ADD", node.config(), other).assert_ok()  # cniDir and its lock directory exist
    node.run("DEL", node.config(), cid).assert_ok()
    node.run("CHECK", {**node.config(), "prevResult": {"cniVersion": "1.0.0"}}, cid).assert_error(3)
    node.run("ADD", node.config(), cid).assert_error(7)
    node.run("DEL", node.config(), other).assert_ok()
    assert node.snapshot() == (set(), {}, {})


# -- 10. DEL is never blocked by a setting ADD was refused for ----------------------------------


def test_del_with_settings_the_policy_refuses_succeeds(node: Node) -> None:
    cid = new_container_id()
    config = node.config()
    node.run("ADD", config, cid).assert_ok()
    with_log = {**config, "logFile": "/var/log/elsewhere/plugin.log"}
    node.run("ADD", with_log, new_container_id()).assert_error(7)
    run = node.run("DEL", with_log, cid)
    run.assert_ok()
    assert "logFile" in run.stderr
    assert not Path("/var/log/elsewhere").exists()
    assert node.snapshot() == (set(), {}, {})
    foreign_dir = {**config, "cniDir": "/var/lib/cni/not-allowed"}
    run = node.run("DEL", foreign_dir, new_container_id())
    run.assert_ok()
    assert "cniDir" in run.stderr and not Path("/var/lib/cni/not-allowed").exists()
    device_info = {**config, "runtimeConfig": {"CNIDeviceInfoFile": "/etc/x.json"}}
    node.run("DEL", device_info, new_container_id()).assert_ok()


# -- beyond the ten ----------------------------------------------------------------------------


def test_two_containers_whose_ids_share_12_characters_keep_their_own_ports(vpp: VppNode) -> None:
    """Tags hold only 12 characters of the ID: DEL must still tell the two apart."""
    node, probe = vpp.node, vpp.probe
    shared = new_container_id()[:12]
    first, second = shared + "a" * 52, shared + "b" * 52
    config = node.vpp_config()
    node.run("ADD", config, first).assert_ok()
    node.run("ADD", config, second).assert_ok()
    node.run("DEL", config, first).assert_ok()
    assert set(probe.ports(str(node.cni_dir))) == {socket_of(node, second)}
    node.run("DEL", config, second).assert_ok()
    assert probe.ports(str(node.cni_dir)) == {}


def test_a_fifo_in_place_of_a_record_does_not_hang_del(node: Node) -> None:
    """A container of an earlier version (no `.state`) whose pod put a FIFO where its record
    was: reading it would block DEL until the runtime gives up."""
    cid = new_container_id()
    config = node.config()
    node.run("ADD", config, cid).assert_ok()
    shutil.rmtree(node.cni_dir / ".state" / cid)
    pod_record(node, cid).unlink()
    os.mkfifo(pod_record(node, cid))
    node.run("DEL", config, cid).assert_ok()
    assert node.files() == set() and node.reservations() == {}
