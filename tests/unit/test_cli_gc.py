"""`vhostuser-vpp gc`'s plan, from a made-up look at a node: what it removes and what it
only reports."""

from __future__ import annotations

from collections.abc import Sequence

from tests.unit.test_cli_view import CID_A, CID_B, CNI_DIR, local, port, socket_of
from vhostuser_vpp.cli import gc, vppview
from vhostuser_vpp.vpp.ops import BridgeDomain, HostRoute, Neighbour, VppPort

LOOP = 2
TAG_A = f"cni:{CID_A[:12]}:net1"
TAG_B = f"cni:{CID_B[:12]}:net1"


def snapshot(
    records: list[vppview.LocalRecord],
    ports: list[VppPort],
    routes: Sequence[HostRoute] = (),
    bridge_domains: Sequence[BridgeDomain] = (),
    neighbours: dict[int, list[Neighbour]] | None = None,
) -> gc.Snapshot:
    interfaces = {p.sw_if_index: p.name for p in ports} | {LOOP: "loop0"}
    return gc.Snapshot(
        cni_dir=CNI_DIR,
        rows=vppview.join(records, ports),
        routes=list(routes),
        interfaces=interfaces,
        neighbours=neighbours or {},
        bridge_domains=list(bridge_domains),
    )


def kinds(plan: gc.Plan) -> list[tuple[str, str]]:
    return [(a.kind, a.target) for a in plan.actions]


def test_a_healthy_node_has_nothing_to_collect() -> None:
    snap = snapshot([local(CID_A)], [port(1, socket_of(CID_A), TAG_A)], [HostRoute("10.56.217.131", 1)])
    plan = gc.make_plan(snap, None, force=True)
    assert plan.actions == [] and plan.notes == []


def test_an_orphan_goes_with_its_neighbours_and_routes() -> None:
    orphan = port(3, socket_of(CID_B), TAG_B)
    snap = snapshot(
        [],
        [orphan],
        [HostRoute("10.56.217.140", 3), HostRoute("10.56.217.1", LOOP)],
        neighbours={3: [Neighbour("10.56.217.140", "aa:bb:cc:dd:ee:ff", 3, True)]},
    )
    plan = gc.make_plan(snap, None, force=True)
    [action] = plan.actions
    assert (action.kind, action.target) == (gc.ORPHAN_PORT, orphan.name)
    assert action.details["routes"] == ["10.56.217.140/32"]
    assert action.details["neighbours"] == ["10.56.217.140"]
    assert action.details["files_in"] == f"{CNI_DIR}/{CID_B}", "its ip4.conf goes too"
    assert action.subject == orphan
    assert any("10.56.217.140" in note and "IPAM" in note for note in plan.notes)


def test_an_orphans_files_are_only_touched_where_the_plugin_would_have_put_them() -> None:
    elsewhere = port(3, f"/tmp/{CID_B}/{CID_B[:12]}-net1", TAG_B)
    other_name = port(4, f"{CNI_DIR}/{CID_B}/{CID_B[:12]}-net2", TAG_B)
    plan = gc.make_plan(snapshot([], [elsewhere, other_name]), None, force=True)
    assert [a.details["files_in"] for a in plan.actions] == [None, None]


def test_ports_without_the_cni_tag_are_never_planned() -> None:
    ports = [port(3, "/tmp/m.sock", "cni-manual:m"), port(4, "/tmp/q.sock", ""), port(5, "/x", "cni-gw:l")]
    routes = [HostRoute("10.0.0.9", 4)]
    assert gc.make_plan(snapshot([], ports, routes), None, force=True).actions == []


def test_a_record_whose_port_is_gone_is_removed_with_its_route_and_an_ipam_note() -> None:
    snap = snapshot([local(CID_A)], [], [HostRoute("10.56.217.131", 1)])
    plan = gc.make_plan(snap, None, force=True)
    assert kinds(plan) == [
        (gc.STALE_RECORD, socket_of(CID_A) + ".json"),
        (gc.STALE_ROUTE, "10.56.217.131/32"),
    ]
    assert plan.actions[1].details == {"sw_if_index": 1, "reason": "its interface is gone"}
    [note] = plan.notes
    assert "10.56.217.131" in note and CID_A in note


def test_a_route_left_on_an_index_another_pod_now_has_is_stale() -> None:
    """VPP gave the deleted port's index to B's port; A's /32 still points there."""
    snap = snapshot(
        [local(CID_A), local(CID_B, ip_addr="10.56.217.132")],
        [port(1, socket_of(CID_B), TAG_B)],
        [HostRoute("10.56.217.131", 1), HostRoute("10.56.217.132", 1)],
    )
    plan = gc.make_plan(snap, None, force=True)
    assert kinds(plan) == [
        (gc.STALE_RECORD, socket_of(CID_A) + ".json"),
        (gc.STALE_ROUTE, "10.56.217.131/32"),
    ]
    assert "VirtualEthernet0/0/0 has the index now" in plan.actions[1].details["reason"]


def test_a_live_pods_address_routed_to_another_pods_port_is_stale() -> None:
    snap = snapshot(
        [local(CID_A), local(CID_B, ip_addr="10.56.217.132")],
        [port(1, socket_of(CID_A), TAG_A), port(5, socket_of(CID_B), TAG_B)],
        [HostRoute("10.56.217.131", 5), HostRoute("10.56.217.132", 5)],
    )
    plan = gc.make_plan(snap, None, force=True)
    assert kinds(plan) == [(gc.STALE_ROUTE, "10.56.217.131/32")]
    assert plan.actions[0].details["reason"] == "leads to another pod's port VirtualEthernet0/0/4"


def test_a_route_without_a_record_is_only_reported_and_one_to_a_live_interface_ignored() -> None:
    snap = snapshot(
        [local(CID_A)],
        [port(1, socket_of(CID_A), TAG_A)],
        [HostRoute("10.56.217.131", 1), HostRoute("192.0.2.7", 42), HostRoute("192.0.2.8", LOOP)],
    )
    plan = gc.make_plan(snap, None, force=True)
    assert plan.actions == []
    [note] = plan.notes
    assert "192.0.2.7/32" in note and "left alone" in note


def test_a_live_pods_address_routed_to_a_foreign_interface_is_only_reported() -> None:
    snap = snapshot([local(CID_A)], [port(1, socket_of(CID_A), TAG_A)], [HostRoute("10.56.217.131", LOOP)])
    plan = gc.make_plan(snap, None, force=True)
    assert plan.actions == []
    assert "leads to loop0" in plan.notes[0]


def test_a_dead_pods_route_on_an_index_a_foreign_interface_now_has_is_stale() -> None:
    snap = snapshot([local(CID_A)], [], [HostRoute("10.56.217.131", LOOP)])
    plan = gc.make_plan(snap, None, force=True)
    assert kinds(plan) == [
        (gc.STALE_RECORD, socket_of(CID_A) + ".json"),
        (gc.STALE_ROUTE, "10.56.217.131/32"),
    ]
    assert "loop0 has the index now" in plan.actions[1].details["reason"]


def test_a_stale_record_whose_port_exists_is_left_to_the_runtime() -> None:
    pending = local(CID_A, phase="pending")
    snap = snapshot([pending], [port(1, socket_of(CID_A), TAG_A)])
    plan = gc.make_plan(snap, None, force=True)
    assert plan.actions == []
    assert "left to the runtime's DEL" in plan.notes[0]


def test_only_our_bridge_domains_left_empty_by_orphans_go() -> None:
    orphan = port(3, socket_of(CID_B), TAG_B)
    live = port(1, socket_of(CID_A), TAG_A)
    domains = [
        BridgeDomain(10, "cni-vhostuser", frozenset({3})),
        BridgeDomain(11, "cni-vhostuser", frozenset()),
        BridgeDomain(12, "cni-vhostuser", frozenset({1, 3})),
        BridgeDomain(13, "operators", frozenset()),
    ]
    plan = gc.make_plan(snapshot([local(CID_A)], [live, orphan], bridge_domains=domains), None)
    assert [a.details["bd_id"] for a in plan.actions if a.kind == gc.EMPTY_BRIDGE_DOMAIN] == [10, 11]


def test_network_limits_records_and_leaves_orphans_and_bridge_domains() -> None:
    other = local(CID_B, network="other", ip_addr="10.56.217.132")
    snap = snapshot(
        [local(CID_A, network="mine"), other],
        [port(5, socket_of("c" * 64), "cni:cccccccccccc:net1")],
        [HostRoute("10.56.217.131", 1), HostRoute("10.56.217.132", 8)],
        bridge_domains=[BridgeDomain(11, "cni-vhostuser", frozenset())],
    )
    plan = gc.make_plan(snap, "mine", force=True)
    assert kinds(plan) == [
        (gc.STALE_RECORD, socket_of(CID_A) + ".json"),
        (gc.STALE_ROUTE, "10.56.217.131/32"),
    ]
    assert any("orphan" in note and "--network" in note for note in plan.notes)
    assert any("10.56.217.132/32" in note for note in plan.notes), "other's route is only reported"


def test_actions_print_as_json_with_their_result() -> None:
    action = gc.Action(gc.STALE_ROUTE, "10.0.0.1/32", {"sw_if_index": 4})
    assert action.to_json() == {
        "action": gc.STALE_ROUTE,
        "target": "10.0.0.1/32",
        "sw_if_index": 4,
        "result": "planned",
    }


def test_every_recorded_port_gone_looks_like_a_vpp_restart_and_keeps_the_records() -> None:
    snap = snapshot([local(CID_A), local(CID_B)], [])
    plan = gc.make_plan(snap, None)
    assert plan.actions == []
    assert any("vhostuser-vpp restore" in note for note in plan.notes)
    forced = gc.make_plan(snap, None, force=True)
    assert [a.kind for a in forced.actions] == [gc.STALE_RECORD, gc.STALE_RECORD]


def test_one_dead_pod_among_live_ones_is_collected_without_force() -> None:
    snap = snapshot([local(CID_A), local(CID_B)], [port(1, socket_of(CID_A), TAG_A)])
    plan = gc.make_plan(snap, None)
    assert [a.kind for a in plan.actions] == [gc.STALE_RECORD]
    assert CID_B in plan.actions[0].target
