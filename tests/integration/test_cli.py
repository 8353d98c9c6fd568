"""The operator CLI (`vhostuser-vpp ports|show|gc|doctor|create|delete`) as an operator runs it:
the installed executable, against the emulator (or a real VPP), with ports made by real
plugin ADDs and leftovers made behind the plugin's back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import NETWORK, VppNode, new_container_id, wait_for
from vhostuser_vpp.sim import Emulator
from vhostuser_vpp.store.lock import container_lock

CLI = str(Path(sys.executable).parent / "vhostuser-vpp")
# The subcommands that read VPP's stats segment, given the node's.
STATS_COMMANDS = ("ports", "show", "top")


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def doc(self) -> Any:
        return json.loads(self.stdout)

    def line_with(self, text: str) -> str:
        lines = [line for line in self.stdout.splitlines() if text in line]
        assert len(lines) == 1, f"{text!r} in {len(lines)} lines of:\n{self.stdout}"
        return lines[0]


def cli(vpp: VppNode, *args: str, api_socket: str | None = None, cni_dir: bool = True) -> Run:
    node = vpp.node
    command = [CLI, *args, "--api-socket", api_socket or node.api_socket]
    if cni_dir:
        command += ["--cni-dir", str(node.cni_dir)]
    if args[0] in STATS_COMMANDS:
        command += ["--stats-socket", node.stats_socket]
    env = {**os.environ, "VHOSTUSER_VPP_NODE_CONFIG": str(node.node_config)}
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def add(vpp: VppNode, cid: str, ifname: str = "net1", **vhost: Any) -> dict[str, Any]:
    result: dict[str, Any] = vpp.node.run("ADD", vpp.node.vpp_config(**vhost), cid, ifname).assert_ok()
    return result


def socket_of(vpp: VppNode, cid: str, ifname: str = "net1") -> str:
    return f"{vpp.node.cni_dir}/{cid}/{cid[:12]}-{ifname}"


def index_of(vpp: VppNode, cid: str, ifname: str = "net1") -> int:
    return int(vpp.probe.ports(str(vpp.node.cni_dir))[socket_of(vpp, cid, ifname)].sw_if_index)


def by_container(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["container_id"]: row for row in doc["ports"]}


# -- ports -------------------------------------------------------------------------------------


def test_ports_joins_each_pods_record_with_its_vpp_port(vpp: VppNode) -> None:
    emulator = vpp.need_emulator()
    first, second = new_container_id(), new_container_id()
    results = {cid: add(vpp, cid) for cid in (first, second)}
    emulator.frontend_connect(index_of(vpp, first))

    table = cli(vpp, "ports")
    assert table.code == 0, table.stderr
    row = table.line_with(first[:12])
    assert row.split()[:2] == ["-", first[:12]], "no pod named; 12 characters of the container ID"
    for text in ("net1", f"VirtualEthernet0/0/{index_of(vpp, first) - 1}", "up/up", "connected", " ok"):
        assert text in row
    assert "up/down" in table.line_with(second[:12])

    doc = cli(vpp, "ports", "-o", "json")
    assert doc.code == 0
    rows = by_container(doc.doc)
    assert set(rows) == {first, second}
    for cid, result in results.items():
        port = vpp.probe.ports(str(vpp.node.cni_dir))[socket_of(vpp, cid)]
        iface = vpp.probe.interface(port.sw_if_index)
        got = rows[cid]
        assert got["status"] == "ok"
        assert got["sw_if_index"] == port.sw_if_index
        assert got["interface"] == iface.interface_name
        assert got["socket"] == socket_of(vpp, cid)
        assert got["pod_ip"] == result["ips"][0]["address"].split("/")[0]
        assert got["pod_mac"] == result["interfaces"][0]["mac"]
        assert got["gateway_mac"] == str(iface.l2_address)
        assert got["backend"] == "vpp" and got["network"] == NETWORK
    assert (rows[first]["frontend_connected"], rows[first]["num_regions"]) == (True, 1)
    assert (rows[second]["frontend_connected"], rows[second]["num_regions"]) == (False, 0)


def test_ports_names_every_kind_of_leftover_and_exits_1(vpp: VppNode) -> None:
    ok, missing, orphan, stale = (new_container_id() for _ in range(4))
    for cid in (ok, missing, orphan, stale):
        add(vpp, cid)
    vpp.probe.delete_port(index_of(vpp, missing))
    vpp.node.forget(orphan)
    Path(socket_of(vpp, stale)).unlink()
    manual = cli(vpp, "create", "--socket", str(vpp.node.root / "manual.sock"), "--tag", "try", cni_dir=False)
    assert manual.code == 0, manual.stderr

    table = cli(vpp, "ports")
    assert table.code == 1
    assert "missing in VPP" in table.line_with(missing[:12])
    assert "orphan in VPP" in table.line_with(orphan[:12])
    assert "stale files" in table.line_with(stale[:12])
    assert table.line_with(ok[:12]).rstrip().endswith("ok")
    assert "manual.sock" not in table.stdout, "ports without a cni: tag need --all"

    rows = by_container(cli(vpp, "ports", "-o", "json").doc)
    assert {cid: row["status"] for cid, row in rows.items()} == {
        ok: "ok",
        missing: "missing in VPP",
        orphan[:12]: "orphan in VPP",
        stale: "stale files",
    }
    assert rows[orphan[:12]]["tag"] == f"cni:{orphan[:12]}:net1"

    everything = cli(vpp, "ports", "--all", "-o", "json").doc["ports"]
    [listed] = [row for row in everything if row["socket"] == str(vpp.node.root / "manual.sock")]
    assert listed["status"] == "manual"
    vpp.probe.delete_port(listed["sw_if_index"])
    assert cli(vpp, "gc").code == 0, "the orphan's port and the missing one's route"


def test_an_unreachable_vpp_is_exit_3(vpp: VppNode) -> None:
    absent = str(vpp.node.root / "absent.sock")
    for command in (["ports"], ["show", "abc"], ["gc", "--dry-run"]):
        run = cli(vpp, *command, api_socket=absent)
        assert run.code == 3, (command, run)
        assert "no VPP API socket" in run.stderr
        assert run.stdout == ""


@pytest.mark.parametrize(
    "command",
    [["show"], ["gc", "--bogus"], ["create"], ["ports", "--timeout", "0"], ["delete"], ["ports", "-o", "x"]],
)
def test_usage_errors_are_exit_2(vpp: VppNode, command: list[str]) -> None:
    run = cli(vpp, *command)
    assert run.code == 2, run
    assert "usage:" in run.stderr


# -- show --------------------------------------------------------------------------------------


def test_show_tells_everything_about_one_port(vpp: VppNode) -> None:
    emulator = vpp.need_emulator()
    cid = new_container_id()
    result = add(vpp, cid)
    index = index_of(vpp, cid)
    emulator.frontend_connect(index)
    pod_ip, pod_mac = result["ips"][0]["address"].split("/")[0], result["interfaces"][0]["mac"]

    run = cli(vpp, "show", cid[:8], "-o", "json")
    assert run.code == 0, run.stderr
    doc = run.doc
    assert doc["port"]["status"] == "ok" and doc["port"]["container_id"] == cid
    assert doc["record"]["containerID"] == cid and doc["record"]["ipAddr"] == pod_ip
    assert all(f["present"] for f in doc["files"]) and len(doc["files"]) == 4
    assert doc["interface"]["tag"] == f"cni:{cid[:12]}:net1" and doc["interface"]["sw_if_index"] == index
    vhost = doc["vhost_user"]
    assert vhost["num_regions"] == 1 and vhost["socket"] == socket_of(vpp, cid)
    assert {"MRG_RXBUF", "VERSION_1"} <= set(vhost["features"])
    assert doc["routes"] == [
        {"prefix": f"{pod_ip}/32", "sw_if_index": index, "interface": doc["interface"]["name"]}
    ]
    assert doc["neighbours"] == [{"ip": pod_ip, "mac": pod_mac, "sw_if_index": index, "static": True}]

    table = cli(vpp, "show", doc["interface"]["name"])
    assert table.code == 0
    assert cid in table.stdout and "MRG_RXBUF" in table.stdout
    assert f"{pod_ip}/32" in table.line_with("via")


def test_show_refuses_an_ambiguous_or_unknown_target(vpp: VppNode) -> None:
    first, second = new_container_id(), new_container_id()
    add(vpp, first)
    add(vpp, second)
    run = cli(vpp, "show", "net1")
    assert run.code == 1
    assert "matches 2 ports" in run.stderr
    assert first[:12] in run.stdout and second[:12] in run.stdout
    unknown = cli(vpp, "show", "no-such-pod")
    assert unknown.code == 1
    assert "no port matches" in unknown.stderr


def _add_pod(vpp: VppNode, cid: str, namespace: str, name: str) -> None:
    uid = f"5c1a0e3e-0000-4000-8000-{cid[:12]}"
    pod_args = f"IgnoreUnknown=1;K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={name};K8S_POD_UID={uid}"
    vpp.node.run("ADD", vpp.node.vpp_config(), cid, extra_env={"CNI_ARGS": pod_args}).assert_ok()


def test_ports_and_show_know_pods_by_namespace_and_name(vpp: VppNode) -> None:
    """What kubelet's runtime passes in CNI_ARGS names the pod in `ports`, and `show` takes
    `namespace/name`, or the name alone while no other pod has it."""
    first, second, third = new_container_id(), new_container_id(), new_container_id()
    _add_pod(vpp, first, "team-a", "dpdk-0")
    _add_pod(vpp, second, "team-b", "dpdk-0")
    _add_pod(vpp, third, "team-b", "cnf-1")
    rows = {row["container_id"]: row for row in cli(vpp, "ports", "-o", "json").doc["ports"]}
    assert rows[first]["pod"] == "team-a/dpdk-0"
    assert rows[first]["pod_uid"] == f"5c1a0e3e-0000-4000-8000-{first[:12]}"
    assert rows[third]["pod"] == "team-b/cnf-1"
    assert "team-b/cnf-1" in cli(vpp, "ports").line_with(third[:12])

    assert cli(vpp, "show", "team-b/dpdk-0", "-o", "json").doc["port"]["container_id"] == second
    assert cli(vpp, "show", "cnf-1", "-o", "json").doc["port"]["container_id"] == third
    ambiguous = cli(vpp, "show", "dpdk-0")
    assert ambiguous.code == 1 and "matches 2 ports" in ambiguous.stderr
    assert "team-a/dpdk-0" in ambiguous.stdout and "team-b/dpdk-0" in ambiguous.stdout


def test_show_of_a_port_vpp_lost_exits_1_with_its_files(vpp: VppNode) -> None:
    cid = new_container_id()
    add(vpp, cid)
    vpp.probe.delete_port(index_of(vpp, cid))
    run = cli(vpp, "show", cid, "-o", "json")
    assert run.code == 1
    assert run.doc["port"]["status"] == "missing in VPP"
    assert run.doc["interface"] is None
    present = {Path(f["path"]).name: f["present"] for f in run.doc["files"]}
    assert present["net1.json"] and not present[f"{cid[:12]}-net1"]


# -- gc ----------------------------------------------------------------------------------------


def test_gc_dry_run_changes_nothing_and_gc_leaves_only_what_pods_own(vpp: VppNode) -> None:
    node, probe = vpp.node, vpp.probe
    keep, missing, orphan = new_container_id(), new_container_id(), new_container_id()
    results = {cid: add(vpp, cid) for cid in (keep, missing, orphan)}
    missing_ip = results[missing]["ips"][0]["address"].split("/")[0]
    probe.delete_port(index_of(vpp, missing))
    node.forget(orphan)
    manual_socket = str(node.root / "manual.sock")
    assert cli(vpp, "create", "--socket", manual_socket, cni_dir=False).code == 0
    untagged = probe.papi.api.create_vhost_user_if_v2(
        is_server=True, sock_filename=str(node.root / "untagged.sock"), tag=""
    ).sw_if_index
    before = (probe.state(str(node.cni_dir)), node.files(), probe.ports(str(node.root)).keys())

    dry = cli(vpp, "gc", "--dry-run", "-o", "json")
    assert dry.code == 1, dry.stderr
    assert dry.doc["dry_run"] is True
    assert {(a["action"], a["result"]) for a in dry.doc["actions"]} == {
        ("delete orphan port", "planned"),
        ("remove stale record", "planned"),
        ("delete stale route", "planned"),
    }
    assert (probe.state(str(node.cni_dir)), node.files(), probe.ports(str(node.root)).keys()) == before
    text = cli(vpp, "gc", "--dry-run")
    assert "dry run: nothing was changed" in text.stdout
    assert "planned" in text.line_with("delete orphan port")
    assert (probe.state(str(node.cni_dir)), node.files()) == before[:2]

    done = cli(vpp, "gc", "-o", "json")
    assert done.code == 0, done.stdout + done.stderr
    assert done.doc["dry_run"] is False
    assert [a["result"] for a in done.doc["actions"]] == ["done"] * 3
    assert any(missing_ip in note and "IPAM" in note for note in done.doc["notes"])
    keep_index = index_of(vpp, keep)
    keep_ip = results[keep]["ips"][0]["address"].split("/")[0]
    assert probe.state(str(node.cni_dir)) == (
        {socket_of(vpp, keep)},
        {f"{keep_ip}/32": keep_index},
        {keep_ip: (keep_index, results[keep]["interfaces"][0]["mac"])},
    )
    assert node.files() == vpp.node.attachment_files(keep)
    assert set(probe.ports(str(node.root))) >= {manual_socket, str(node.root / "untagged.sock")}
    assert probe.interface(untagged) is not None

    again = cli(vpp, "gc")
    assert again.code == 0
    assert "nothing to collect" in again.stdout
    assert cli(vpp, "ports").code == 0
    probe.delete_port(untagged)
    probe.delete_port(probe.ports(str(node.root))[manual_socket].sw_if_index)


def test_gc_removes_a_dead_pods_route_from_the_index_another_pod_now_has(vpp: VppNode) -> None:
    node, probe = vpp.node, vpp.probe
    dead, alive = new_container_id(), new_container_id()
    add(vpp, dead)
    probe.delete_port(index_of(vpp, dead))
    result = add(vpp, alive)
    index = index_of(vpp, alive)
    assert probe.pod_routes() == {"10.56.217.131/32": index, "10.56.217.132/32": index}, "VPP reused it"

    run = cli(vpp, "gc", "-o", "json")
    assert run.code == 0, run.stdout
    assert {(a["action"], a["target"]) for a in run.doc["actions"]} == {
        ("remove stale record", str(node.record(dead))),
        ("delete stale route", "10.56.217.131/32"),
    }
    assert probe.state(str(node.cni_dir)) == (
        {socket_of(vpp, alive)},
        {"10.56.217.132/32": index},
        {"10.56.217.132": (index, result["interfaces"][0]["mac"])},
    )
    assert node.files() == vpp.node.attachment_files(alive)


def test_gc_removes_the_plugins_bridge_domain_its_orphans_leave_empty(vpp: VppNode) -> None:
    node, probe = vpp.node, vpp.probe
    pods = [new_container_id(), new_container_id()]
    for cid in pods:
        add(vpp, cid, mode="l2", bridge_domain=4242)
        node.forget(cid)
    probe.papi.api.bridge_domain_add_del_v2(bd_id=77, bd_tag="operators", is_add=True, flood=True)

    run = cli(vpp, "gc", "-o", "json")
    assert run.code == 0, run.stdout
    assert [a["action"] for a in run.doc["actions"]] == ["delete orphan port"] * 2 + [
        "delete empty bridge domain"
    ]
    assert probe.bridge_domain(4242) is None
    assert probe.bridge_domain(77) is not None, "an operator's empty domain stays"
    assert probe.ports(str(node.cni_dir)) == {}
    assert node.files() == set()
    probe.papi.api.bridge_domain_add_del_v2(bd_id=77, is_add=False)


def test_gc_takes_the_containers_lock_before_removing_its_files(vpp: VppNode) -> None:
    node = vpp.node
    cid = new_container_id()
    add(vpp, cid)
    vpp.probe.delete_port(index_of(vpp, cid))
    with container_lock(str(node.cni_dir), cid):
        busy = cli(vpp, "gc", "--force", "--timeout", "0.5", "-o", "json")
    assert busy.code == 1
    [action] = [a for a in busy.doc["actions"] if a["action"] == "remove stale record"]
    assert action["result"].startswith("failed") and "held" in action["result"]
    assert {f".state/{cid}/net1.json", f"{cid}/{cid[:12]}-net1-ip4.conf"} <= node.files()
    assert cli(vpp, "gc", "--force").code == 0
    assert node.files() == set()


def test_gc_network_touches_only_that_networks_records(vpp: VppNode) -> None:
    node = vpp.node
    mine, theirs, orphan = new_container_id(), new_container_id(), new_container_id()
    add(vpp, mine)
    other = node.vpp_config()
    other["name"] = "other-network"
    other["ipam"]["rangeStart"] = "10.56.217.170"
    node.run("ADD", other, theirs).assert_ok()
    add(vpp, orphan)
    for cid in (mine, theirs):
        vpp.probe.delete_port(index_of(vpp, cid))
    node.forget(orphan)

    run = cli(vpp, "gc", "--force", "--network", "other-network", "-o", "json")
    assert run.code == 0, run.stdout
    assert [a["target"] for a in run.doc["actions"] if a["action"] == "remove stale record"] == [
        str(node.record(theirs))
    ]
    assert any("--network" in note for note in run.doc["notes"])
    assert node.record(mine).exists()
    assert socket_of(vpp, orphan) in vpp.probe.ports(str(node.cni_dir))
    assert cli(vpp, "gc", "--force").code == 0


# -- doctor ------------------------------------------------------------------------------------


def host_root(vpp: VppNode, hugepages: int) -> str:
    root = vpp.node.root / "host"
    (root / "proc").mkdir(parents=True, exist_ok=True)
    (root / "proc" / "meminfo").write_text(f"MemTotal: 1 kB\nHugePages_Total:    {hugepages}\n")
    return str(root)


def test_doctor_passes_on_a_healthy_node(vpp: VppNode) -> None:
    add(vpp, new_container_id())  # makes loop0 with the gateway address, and cniDir
    run = cli(vpp, "doctor", "--host-root", host_root(vpp, 512))
    assert run.code == 0, run.stdout
    lines = run.stdout.splitlines()[2:]
    assert lines and all(line.startswith("PASS") for line in lines), run.stdout
    doc = cli(vpp, "doctor", "--host-root", host_root(vpp, 512), "-o", "json").doc
    assert doc["ok"] is True
    names = [c["check"] for c in doc["checks"]]
    for name in ("API socket", "VPP version", "API messages (l3 mode)", "interface loop0", "node policy"):
        assert name in names
    assert "10.56.217.1" in next(c["detail"] for c in doc["checks"] if c["check"] == "interface loop0")


def test_doctor_fails_with_the_fix_when_the_api_socket_is_absent(vpp: VppNode) -> None:
    add(vpp, new_container_id())
    absent = str(vpp.node.root / "absent.sock")
    run = cli(vpp, "doctor", "--host-root", host_root(vpp, 512), api_socket=absent)
    assert run.code == 1
    line = run.line_with("API socket")
    assert line.startswith("FAIL") and f"no socket at {absent}" in line and "socksvr" in line
    assert "VPP version" not in run.stdout
    assert run.line_with("cniDir").startswith("PASS")


def test_doctor_names_each_failing_check(vpp: VppNode) -> None:
    """A fresh VPP without loop0, no hugepages, no cniDir yet, a bridge domain nobody made."""
    run = cli(vpp, "doctor", "--host-root", host_root(vpp, 0), "--bridge-domain", "9", "-o", "json")
    assert run.code == 1
    failed = {c["check"]: c["fix"] for c in run.doc["checks"] if not c["ok"]}
    assert set(failed) == {"interface loop0", "bridge domain 9", "cniDir", "hugepages"}
    assert all(failed.values()), "every failure says how to fix it"


def test_doctor_names_a_gateway_loopback_left_without_its_address(vpp: VppNode) -> None:
    api = vpp.probe.papi.api
    index = int(api.create_loopback(mac_address="00:00:00:00:00:00").sw_if_index)
    api.sw_interface_tag_add_del(is_add=True, sw_if_index=index, tag="cni-gw:loop77")
    run = cli(vpp, "doctor", "--host-root", host_root(vpp, 512))
    line = run.line_with("gateway loopbacks")
    assert line.startswith("FAIL") and vpp.probe.interface(index).interface_name in line
    api.delete_loopback(sw_if_index=index)


def test_doctor_names_messages_vpp_lacks(vpp: VppNode) -> None:
    vpp.need_emulator().stop()
    with Emulator.start(vpp.node.api_socket, omit=("ip_neighbor_add_del",)):
        run = cli(vpp, "doctor", "--host-root", host_root(vpp, 512))
    assert run.code == 1
    line = run.line_with("(l3 mode)")
    assert line.startswith("FAIL") and "ip_neighbor_add_del (not offered)" in line
    assert run.line_with("(all modes)").startswith("PASS")


def test_doctor_fails_when_the_node_policy_does_not_allow_cni_dir(vpp: VppNode) -> None:
    add(vpp, new_container_id())
    vpp.node.node_config.write_text(json.dumps({"allowed_cni_dirs": ["/var/lib/cni/vhostuser"]}))
    run = cli(vpp, "doctor", "--host-root", host_root(vpp, 512))
    assert run.code == 1
    line = run.line_with("node policy")
    assert line.startswith("FAIL") and "allowed_cni_dirs" in line
    vpp.node.write_policy([])


# -- create and delete -------------------------------------------------------------------------


def test_create_makes_a_tagged_port_that_delete_removes(vpp: VppNode) -> None:
    probe = vpp.probe
    socket_path = str(vpp.node.root / "try.sock")
    made = cli(vpp, "create", "--socket", socket_path, "--tag", "testpmd", "-o", "json", cni_dir=False)
    assert made.code == 0, made.stderr
    index = made.doc["sw_if_index"]
    iface = probe.interface(index)
    assert iface.tag == "cni-manual:testpmd"
    assert iface.flags & 1, "admin up"
    assert (made.doc["name"], made.doc["mac"]) == (iface.interface_name, str(iface.l2_address))
    assert Path(socket_path).is_socket()

    again = cli(vpp, "create", "--socket", socket_path, cni_dir=False)
    assert again.code == 1 and "already has a port" in again.stderr

    gone = cli(vpp, "delete", iface.interface_name, cni_dir=False)
    assert gone.code == 0, gone.stderr
    assert f"deleted {iface.interface_name}" in gone.stdout
    assert probe.interface(index) is None

    table = cli(vpp, "create", "--socket", socket_path, cni_dir=False)
    assert table.code == 0 and "cni-manual:try.sock" in table.line_with("tag")
    assert cli(vpp, "delete", "--socket", socket_path, cni_dir=False).code == 0
    assert socket_path not in probe.ports(str(vpp.node.root))


def test_delete_refuses_a_pods_port_without_force(vpp: VppNode) -> None:
    cid = new_container_id()
    add(vpp, cid)
    index = index_of(vpp, cid)
    name = vpp.probe.interface(index).interface_name
    refused = cli(vpp, "delete", name, cni_dir=False)
    assert refused.code == 1 and "--force" in refused.stderr
    assert vpp.probe.interface(index) is not None
    missing = cli(vpp, "delete", "--socket", "/nowhere.sock", cni_dir=False)
    assert missing.code == 1 and "no vhost-user port" in missing.stderr

    forced = cli(vpp, "delete", "--socket", socket_of(vpp, cid), "--force", cni_dir=False)
    assert forced.code == 0
    assert vpp.probe.interface(index) is None
    assert "gc" in forced.stderr
    assert cli(vpp, "gc", "--force").code == 0
    assert vpp.node.files() == set()


# -- counters: VPP's stats segment ----------------------------------------------------------------


def test_ports_and_show_give_each_pods_counters_and_vpps_drop_reasons(vpp: VppNode) -> None:
    emulator = vpp.need_emulator()
    cid, other = new_container_id(), new_container_id()
    add(vpp, cid)
    add(vpp, other)
    index = index_of(vpp, cid)
    emulator.count(index, if_rx_packets=1200, if_rx_bytes=76800, if_tx_packets=1100, if_tx_bytes=70400)
    emulator.count(index, if_drops=100)
    emulator.count_error("/err/ethernet-input/l3 mac mismatch", 100)

    rows = {row["container_id"]: row for row in cli(vpp, "ports", "-o", "json").doc["ports"]}
    assert rows[cid]["counters"] == {
        "rx_packets": 1200,
        "rx_bytes": 76800,
        "tx_packets": 1100,
        "tx_bytes": 70400,
        "drops": 100,
        "rx_miss": 0,
        "rx_error": 0,
        "tx_error": 0,
        "rx_no_buf": 0,
        "punt": 0,
        "discarded": 100,
    }
    assert rows[other]["counters"]["rx_packets"] == 0
    assert cli(vpp, "ports").line_with(cid[:12]).split()[-5:-2] == ["1200", "1100", "100"]

    shown = cli(vpp, "show", cid[:12], "-o", "json").doc
    assert shown["counters"]["drops"] == 100
    assert shown["drop_reasons"] == {"ethernet-input/l3 mac mismatch": 100}
    table = cli(vpp, "show", cid[:12])
    assert "ethernet-input/l3 mac mismatch" in table.line_with("mac mismatch")


def test_a_new_port_has_counters_from_zero_in_vpps_own_layout(vpp: VppNode) -> None:
    """Read through vpp_papi's VPPStats from the real VPP and from the emulator alike: the
    counters the CLI reads have the types VPP 26.06 gives them, and a port starts at 0."""
    from vhostuser_vpp.vpp.stats import Stats

    cid = new_container_id()
    add(vpp, cid)
    with Stats(vpp.node.stats_socket) as stats:
        directory = stats._connected().directory
        types = {path: directory[path].type for path in ("/if/names", "/if/rx", "/if/tx", "/if/drops")}
        assert types == {"/if/names": 4, "/if/rx": 3, "/if/tx": 3, "/if/drops": 2}
        assert directory["/node/errors"].type == 2
        names = stats._connected()["/if/names"]
        index = index_of(vpp, cid)
        assert names[index] == vpp.probe.interface(index).interface_name
        assert stats.sample().of(index).rx_packets == 0
        vpp.node.run("DEL", vpp.node.vpp_config(), cid).assert_ok()
        assert stats.interface_names()[index] == "deleted", "the name vector keeps its length"


def test_without_a_stats_segment_ports_says_so_and_still_answers(vpp: VppNode) -> None:
    cid = new_container_id()
    add(vpp, cid)
    node = vpp.node
    command = [CLI, "ports", "--api-socket", node.api_socket, "--cni-dir", str(node.cni_dir)]
    command += ["--stats-socket", str(node.root / "nothing-here.sock")]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "no counters: cannot read VPP's stats segment at" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert cid[:12] in proc.stdout


def test_top_gives_each_pods_rates_busiest_first(vpp: VppNode) -> None:
    """Packets counted between two refreshes show as rates over the time between them."""
    emulator = vpp.need_emulator()
    quiet, busy = new_container_id(), new_container_id()
    add(vpp, quiet)
    add(vpp, busy)
    node = vpp.node
    command = [CLI, "top", "--api-socket", node.api_socket, "--cni-dir", str(node.cni_dir)]
    command += ["--stats-socket", node.stats_socket, "--interval", "1", "--count", "2", "-o", "json"]
    top = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert top.stdout is not None
        first = json.loads(top.stdout.readline())
        assert [p["rx_pps"] for p in first["ports"]] == [0.0, 0.0]
        # Top sleeps a whole second after printing: these land in the next refresh.
        emulator.count(index_of(vpp, busy), if_rx_packets=5000, if_rx_bytes=320000, if_drops=50)
        second = json.loads(top.stdout.readline())
        assert top.wait(timeout=30) == 0
    finally:
        top.kill()
    ports = second["ports"]
    assert [p["container_id"] for p in ports] == [busy, quiet]
    seconds = second["seconds"]
    assert ports[0]["rx_pps"] == pytest.approx(5000 / seconds, rel=0.01)
    assert ports[0]["rx_bps"] == pytest.approx(320000 / seconds, rel=0.01)
    assert ports[0]["drops_ps"] == pytest.approx(50 / seconds, rel=0.01)
    assert ports[1]["rx_pps"] == 0.0


# One packet as VPP 26.06's `show trace` printed it in tests/integration/test_cli_dataplane.py
# (a pod sending to another MAC than its port's), with the port's name left to fill in.
STRAY_PACKET = """\
00:01:02:345678: vhost-user-input
  {port} queue 0
   virtio flags:
    SINGLE_DESC Single descriptor packet
00:01:02:345690: ethernet-input
  frame: flags 0x1, hw-if-index 1, sw-if-index 1
  IP4: 62:95:56:93:4b:3c -> 02:00:de:ad:be:ef
00:01:02:345700: error-punt
  rx:{port}
00:01:02:345710: punt
  ethernet-input: l3 mac mismatch
"""


def test_trace_shows_a_pods_packets_to_their_fate_and_clears_the_trace(vpp: VppNode) -> None:
    emulator = vpp.need_emulator()
    mine, other = new_container_id(), new_container_id()
    add(vpp, mine)
    add(vpp, other)
    names = emulator.interface_names()
    port, other_port = names[index_of(vpp, mine)], names[index_of(vpp, other)]
    node = vpp.node
    command = [CLI, "trace", mine[:12], "--count", "2", "--wait", "60", "-o", "json"]
    command += ["--api-socket", node.api_socket, "--cni-dir", str(node.cni_dir)]
    trace = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: emulator.call(lambda s: s.trace.left > 0), "the trace armed")
        for name in (other_port, port, port):
            assert emulator.trace(STRAY_PACKET.format(port=name))
        out, err = trace.communicate(timeout=60)
    finally:
        trace.kill()
    assert trace.returncode == 0, err
    doc = json.loads(out)
    assert [p["packet"] for p in doc["packets"]] == [2, 3], "the other pod's packet is left out"
    first = doc["packets"][0]
    assert first["interface"] == port and first["sent_out"] is None
    assert first["path"] == ["vhost-user-input", "ethernet-input", "error-punt", "punt"]
    assert first["fate"] == "dropped: ethernet-input: l3 mac mismatch"
    assert emulator.call(lambda s: (s.trace.left, s.trace.packets)) == (0, []), "cleared afterwards"


def test_trace_refuses_an_ambiguous_target_as_show_does(vpp: VppNode) -> None:
    first, second = new_container_id(), new_container_id()
    add(vpp, first)
    add(vpp, second)
    run = cli(vpp, "trace", "net1", "--wait", "0.1")
    assert run.code == 1
    assert "matches 2 ports" in run.stderr
    assert first[:12] in run.stdout and second[:12] in run.stdout
