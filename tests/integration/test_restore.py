"""`vhostuser-vpp restore`: pods get their ports back after VPP restarts."""

from __future__ import annotations

import json
import stat

from tests.integration.conftest import VppNode, new_container_id


def test_restore_after_a_vpp_restart_brings_back_ports_as_they_were(vpp: VppNode) -> None:
    node, probe = vpp.node, vpp.probe
    l3_pod, l2_pod = new_container_id(), new_container_id()
    l3_config = node.vpp_config("1.0.0", enable_gso=True)
    l2_config = node.vpp_config("1.0.0", mode="l2", bridge_domain=9)
    l3_result = node.run("ADD", l3_config, l3_pod).assert_ok()
    l2_result = node.run("ADD", l2_config, l2_pod).assert_ok()
    before = {
        path: (port.interface_name, str(probe.interface(port.sw_if_index).l2_address))
        for path, port in probe.ports(str(node.cni_dir)).items()
    }

    vpp.restart()
    assert probe.ports(str(node.cni_dir)) == {}

    restored = vpp.run_restore()
    assert restored.returncode == 0, restored.stderr
    assert sorted(o["status"] for o in json.loads(restored.stdout)) == ["restored", "restored"]
    after = {
        path: (port.interface_name, str(probe.interface(port.sw_if_index).l2_address))
        for path, port in probe.ports(str(node.cni_dir)).items()
    }
    assert {path: mac for path, (_, mac) in after.items()} == {path: mac for path, (_, mac) in before.items()}
    [l3_port] = [p for path, p in probe.ports(str(node.cni_dir)).items() if l3_pod in path]
    assert probe.pod_routes() == {"10.56.217.131/32": l3_port.sw_if_index}
    assert probe.bridge_domain(9).n_sw_ifs == 1

    node.run("CHECK", {**l3_config, "prevResult": l3_result}, l3_pod).assert_ok()
    node.run("CHECK", {**l2_config, "prevResult": l2_result}, l2_pod).assert_ok()
    again = vpp.run_restore()
    assert sorted(o["status"] for o in json.loads(again.stdout)) == ["ok", "ok"]

    node.run("DEL", l3_config, l3_pod).assert_ok()
    node.run("DEL", l2_config, l2_pod).assert_ok()
    assert probe.state(str(node.cni_dir)) == (set(), {}, {})
    assert probe.bridge_domain(9) is None


def test_restore_reports_failures_with_exit_1(vpp: VppNode) -> None:
    emulator = vpp.need_emulator()
    node = vpp.node
    node.run("ADD", node.vpp_config(), new_container_id()).assert_ok()
    emulator.restart()
    emulator.faults.fail("create_vhost_user_if_v2", retval=-1, times=None)
    restored = vpp.run_restore()
    assert restored.returncode == 1
    [outcome] = json.loads(restored.stdout)
    assert outcome["status"] == "failed"
    assert "create_vhost_user_if_v2" in outcome["detail"]


def test_gc_after_a_vpp_restart_keeps_the_records_restore_needs(vpp: VppNode) -> None:
    node = vpp.node
    cid = new_container_id()
    node.run("ADD", node.vpp_config(), cid).assert_ok()
    vpp.restart()
    gc = vpp.cli("gc")
    assert gc.returncode == 0, gc.stderr
    doc = json.loads(gc.stdout)
    assert doc["actions"] == []
    assert any("vhostuser-vpp restore" in note for note in doc["notes"])
    assert node.record(cid).exists()
    assert vpp.run_restore().returncode == 0
    node.run("DEL", node.vpp_config(), cid).assert_ok()


def test_restore_gives_the_new_socket_the_access_add_gave(vpp: VppNode) -> None:
    """VPP makes a server socket as root: after a restart the pod's non-root app could not
    open the new one unless restore hands it back the owner, group and mode of the config."""
    node = vpp.node
    cid = new_container_id()
    config = node.vpp_config(socket_file_mode="0660", socket_owner=1234, socket_group=4321)
    node.run("ADD", config, cid).assert_ok()
    socket_path = node.cni_dir / cid / f"{cid[:12]}-net1"
    vpp.restart()
    socket_path.unlink(missing_ok=True)

    restored = vpp.run_restore()
    assert restored.returncode == 0, restored.stderr
    st = socket_path.lstat()
    assert (stat.S_ISSOCK(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (
        True,
        0o660,
        1234,
        4321,
    )
    node.run("DEL", config, cid).assert_ok()


def test_restore_of_a_vpp_that_does_not_answer_is_exit_3(vpp: VppNode) -> None:
    node = vpp.node
    node.run("ADD", node.vpp_config(), new_container_id()).assert_ok()
    vpp.stop()
    restored = vpp.run_restore()
    assert restored.returncode == 3, restored.stderr
    assert "VPP" in restored.stderr and restored.stdout == ""
