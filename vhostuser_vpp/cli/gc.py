"""`vhostuser-vpp gc`: remove what no pod owns, and nothing else.

A pod's attachment should leave nothing behind, but a VPP restart, a port deleted by
hand or a runtime that never called DEL can. From one look at the node this plans:

- orphan ports: vhost-user interfaces tagged `cni:` with no record; admin down, their
  neighbours and the /32s through them removed, then deleted;
- stale records: records whose port VPP no longer has; their files are removed under the
  container's lock (the plugin's own lock, so a running ADD or DEL is never raced). Their
  IPAM address needs the network config, which the record does not keep, so it is left
  to the runtime's CNI DEL or GC and said so;
- stale routes: a /32 or /128 for a record's address whose path goes to a deleted interface or to
  another pod's port not wired for that address (VPP keeps a deleted interface's routes and
  reuses its index). A /32 with no record behind it, or one leading to an interface that
  holds the address as a neighbour, is left;
- empty bridge domains tagged `cni-vhostuser`.

Interfaces without the `cni:` tag are never touched, `cni-manual:` ports included. Every
removal first checks that what it removes is still what was planned. `--dry-run` prints
the same plan and changes nothing.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from typing import Any

from vhostuser_vpp import tags
from vhostuser_vpp.addressing import host_prefix
from vhostuser_vpp.cli import output, session, vppview
from vhostuser_vpp.store.attachment import Attachment, StoreError
from vhostuser_vpp.store.lock import LockTimeout, container_lock, file_lock, node_setup_lock_path
from vhostuser_vpp.store.records import PHASE_READY
from vhostuser_vpp.vpp.errors import VppError
from vhostuser_vpp.vpp.ops import BridgeDomain, HostRoute, Neighbour, Vpp, VppPort

ORPHAN_PORT = "delete orphan port"
STALE_RECORD = "remove stale record"
STALE_ROUTE = "delete stale route"
EMPTY_BRIDGE_DOMAIN = "delete empty bridge domain"
PLANNED, DONE = "planned", "done"
# A record's path already names its container and interface.
_SHOWN_BY_TARGET = frozenset({"container_id", "ifname"})
COLUMNS = (("action", "ACTION"), ("target", "TARGET"), ("details", "DETAILS"), ("result", "RESULT"))


class Skipped(Exception):
    """The node changed since the plan was made; the action no longer applies."""


@dataclass(frozen=True)
class Snapshot:
    """One look at the node: everything the plan is made from."""

    cni_dir: str
    rows: list[vppview.PortRow]
    routes: list[HostRoute]
    interfaces: dict[int, str]
    neighbours: dict[int, list[Neighbour]]  # of each orphan port
    bridge_domains: list[BridgeDomain]


@dataclass
class Action:
    kind: str
    target: str
    details: dict[str, Any]
    # What an orphan-port or stale-record action removes, as it was seen when planning.
    subject: VppPort | vppview.LocalRecord | None = None
    result: str = PLANNED

    def to_json(self) -> dict[str, Any]:
        return {"action": self.kind, "target": self.target, **self.details, "result": self.result}


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="change nothing; print what would be done")
    parser.add_argument(
        "--force", action="store_true", help="remove stale records even when every recorded port is gone"
    )
    parser.add_argument(
        "--network",
        metavar="NAME",
        help="only this network's records (orphan ports and bridge domains belong to none: left alone)",
    )
    session.add_vpp_arguments(parser)
    session.add_cni_dir_argument(parser)
    output.add_output_argument(parser)


def run(args: argparse.Namespace) -> int:
    def body(vpp: Vpp) -> int:
        plan = make_plan(look(vpp, args.cni_dir), args.network, args.force)
        if not args.dry_run:
            for action in plan.actions:
                carry_out(vpp, action, args)
        _print(plan, args)
        if args.dry_run:
            return output.EXIT_PROBLEMS if plan.actions else output.EXIT_OK
        failed = any(a.result.startswith("failed") for a in plan.actions)
        return output.EXIT_PROBLEMS if failed else output.EXIT_OK

    return session.run_with_vpp("gc", args, body)


# -- looking and planning ----------------------------------------------------------------------


def look(vpp: Vpp, cni_dir: str) -> Snapshot:
    rows = vppview.build_view(vpp, cni_dir)
    orphans = [r.port for r in rows if r.status == vppview.STATUS_ORPHAN and r.port]
    return Snapshot(
        cni_dir=cni_dir,
        rows=rows,
        routes=vpp.host_routes(),
        interfaces=vpp.interface_names(),
        neighbours={p.sw_if_index: vpp.neighbours(p.sw_if_index) for p in orphans},
        bridge_domains=vpp.bridge_domains(),
    )


def make_plan(snap: Snapshot, network: str | None, force: bool = False) -> Plan:
    plan = Plan()
    orphans = [r.port for r in snap.rows if r.status == vppview.STATUS_ORPHAN and r.port is not None]
    if network is not None and orphans:
        plan.notes.append(f"{len(orphans)} orphan port(s) belong to no network; not touched with --network")
        orphans = []
    orphan_indexes = {port.sw_if_index for port in orphans}
    for port in orphans:
        action = _orphan_action(port, snap)
        plan.actions.append(action)
        plan.notes.append(_orphan_note(action))
    records = [r for r in snap.rows if r.local and (network is None or r.local.record.network == network)]
    ready = [r for r in records if r.local is not None and r.local.record.phase == PHASE_READY]
    if ready and all(r.port is None for r in ready) and not force:
        # Every pod's port gone at once is what a VPP restart looks like, not dead pods:
        # removing the records now would leave `restore` nothing to rebuild the pods' ports from.
        plan.notes.append(
            "no recorded port exists in VPP: VPP has probably restarted; run `vhostuser-vpp restore` "
            "first (records left alone; --force removes them)"
        )
        records = []
    for row in records:
        if row.local is not None:
            _plan_record(plan, row, row.local)
    _plan_routes(plan, snap, records, orphan_indexes)
    if network is None:
        for bd in snap.bridge_domains:
            if bd.tag == tags.BRIDGE_DOMAIN_TAG and bd.members <= orphan_indexes:
                plan.actions.append(
                    Action(
                        EMPTY_BRIDGE_DOMAIN,
                        f"bridge domain {bd.bd_id}",
                        {"bd_id": bd.bd_id, "orphan_members": sorted(bd.members)},
                    )
                )
    return plan


def _orphan_action(port: VppPort, snap: Snapshot) -> Action:
    index = port.sw_if_index
    attachment = orphan_attachment(snap.cni_dir, port)
    details = {
        "sw_if_index": index,
        "tag": port.tag,
        "socket": port.socket_path,
        "neighbours": [n.ip for n in snap.neighbours.get(index, [])],
        "routes": [host_prefix(r.ip) for r in snap.routes if r.sw_if_index == index],
        # its attachment's leftover files (ip4.conf) go too
        "files_in": attachment.container_dir if attachment else None,
    }
    return Action(ORPHAN_PORT, port.name, details, port)


def _orphan_note(action: Action) -> str:
    addresses = " ".join(action.details["neighbours"]) or "its address"
    return f"{action.target}: {addresses} may stay reserved in IPAM until the runtime's CNI GC releases it"


def _plan_record(plan: Plan, row: vppview.PortRow, local: vppview.LocalRecord) -> None:
    record = local.record
    where = f"{row.container_id[:12]}/{row.ifname}"
    if row.port is not None:
        if row.problem:
            plan.notes.append(
                f"{where}: {row.status}, but its port {row.port.name} exists: left to the runtime's DEL"
            )
        return
    details = {
        "container_id": row.container_id,
        "ifname": row.ifname,
        "network": record.network,
        "pod_ips": list(record.pod_ips),
    }
    plan.actions.append(Action(STALE_RECORD, local.record_path, details, local))
    if record.pod_ips:
        plan.notes.append(
            f"{', '.join(record.pod_ips)} of network {record.network or '?'} stays reserved in IPAM"
            f" until the runtime's CNI DEL or GC for {row.container_id}/{row.ifname} releases it"
        )


def _plan_routes(
    plan: Plan, snap: Snapshot, records: list[vppview.PortRow], orphan_indexes: set[int]
) -> None:
    """A /32 is ours when a record has its address. Not where the record's port is, it is
    stale when the port is gone (VPP kept the route, perhaps on an index it gave to another
    interface since), when its path leads nowhere, or to another pod's port. A live pod's
    address routed to an interface that is not ours, and a /32 to a deleted interface with
    no record behind it, are only reported: there the operator knows better."""
    dead = {ip for r in records if r.local and r.port is None for ip in r.local.record.pod_ips}
    live = {ip for r in records if r.local and r.port is not None for ip in r.local.record.pod_ips}
    expected = {
        (ip, r.port.sw_if_index)
        for r in snap.rows
        if r.local and r.port is not None
        for ip in r.local.record.pod_ips
    }
    ours = {
        r.port.sw_if_index: r.port.name
        for r in snap.rows
        if r.port is not None and r.port.tag.startswith(tags.OWNER_TAG_PREFIX)
    }
    for route in snap.routes:
        ip, index = route.ip, route.sw_if_index
        if (ip, index) in expected or index in orphan_indexes:
            continue
        name = snap.interfaces.get(index)
        if name is None and (ip in dead or ip in live):
            reason = "its interface is gone"
        elif ip in dead:
            reason = f"its pod's port is gone; {name} has the index now"
        elif ip in live and index in ours:
            reason = f"leads to another pod's port {name}"
        elif ip in live:
            plan.notes.append(
                f"{host_prefix(ip)} is a pod's address but leads to {name}, not its port: left alone"
            )
            continue
        elif name is None:
            plan.notes.append(
                f"{host_prefix(ip)} leads to deleted sw_if_index {index}, but no record shows it was a pod's:"
                " left alone"
            )
            continue
        else:
            continue
        plan.actions.append(Action(STALE_ROUTE, host_prefix(ip), {"sw_if_index": index, "reason": reason}))


# -- carrying out ------------------------------------------------------------------------------


def carry_out(vpp: Vpp, action: Action, args: argparse.Namespace) -> None:
    try:
        if isinstance(action.subject, VppPort):
            routes = action.details["routes"]
            _delete_orphan(vpp, action.subject, routes, args.cni_dir, args.timeout)
        elif isinstance(action.subject, vppview.LocalRecord):
            _remove_record(vpp, action.subject, args.cni_dir, args.timeout)
        elif action.kind == STALE_ROUTE:
            _delete_route(vpp, action)
        else:
            _delete_bridge_domain(vpp, action, args.cni_dir)
        action.result = DONE
    except Skipped as why:
        action.result = f"skipped: {why}"
    except (VppError, StoreError, LockTimeout, OSError) as err:
        action.result = f"failed: {err}"


def _delete_orphan(vpp: Vpp, planned: VppPort, routes: list[str], cni_dir: str, timeout: float) -> None:
    """The port, then its attachment's leftover files (ip4.conf) when its socket lies where
    the plugin puts pods' sockets; under that container's lock, so no ADD is raced."""
    attachment = orphan_attachment(cni_dir, planned)
    if attachment is None:
        _delete_port(vpp, planned, routes)
        return
    with container_lock(cni_dir, attachment.container_id, timeout, gone=attachment.gone):
        with attachment.open_dir(create=False) as dir_fd:
            if attachment.read_record() is not None:
                raise Skipped("a record for it appeared")
            _delete_port(vpp, planned, routes)
            attachment.remove_files(dir_fd)
        attachment.remove_dir_if_empty()


def orphan_attachment(cni_dir: str, port: VppPort) -> Attachment | None:
    """The attachment an orphan port was made for, read from its socket path and tag."""
    owner = tags.parse_owner_tag(port.tag)
    if owner is None or not owner[1]:
        return None
    container_id = os.path.basename(os.path.dirname(port.socket_path))
    attachment = Attachment(cni_dir, container_id, owner[1])
    if attachment.socket_path != port.socket_path or attachment.container_id[:12] != owner[0]:
        return None
    return attachment


def _delete_port(vpp: Vpp, planned: VppPort, routes: list[str]) -> None:
    """Everything VPP has on the orphan (its neighbours, the /32s through it), then the port:
    no record says what it was wired for, so what VPP shows is what goes."""
    index = planned.sw_if_index
    now = vpp.vhost_port(index)
    if now is None or (now.tag, now.socket_path) != (planned.tag, planned.socket_path):
        raise Skipped(f"sw_if_index {index} is no longer this port")
    vpp.set_admin_up(index, False)
    for neighbour in vpp.neighbours(index):
        vpp.delete_neighbour(index, neighbour.ip, neighbour.mac, static=neighbour.static)
    for prefix in routes:
        vpp.remove_pod_route(prefix.partition("/")[0], index, None)
    vpp.delete_vhost_port(index)


def _remove_record(vpp: Vpp, local: vppview.LocalRecord, cni_dir: str, timeout: float) -> None:
    attachment = Attachment(cni_dir, local.container_id, local.ifname)
    with container_lock(cni_dir, local.container_id, timeout, gone=attachment.gone):
        with attachment.open_dir(create=False) as dir_fd:
            now = attachment.read_record()
            if now is None:
                raise Skipped("already gone")
            if now != local.record:
                raise Skipped("the record changed since the scan")
            if vpp.vhost_port_at(local.socket_path) is not None:
                raise Skipped("VPP has a port on its socket now")
            attachment.remove_files(dir_fd)
        attachment.remove_dir_if_empty()


def _delete_route(vpp: Vpp, action: Action) -> None:
    ip, index = action.target.partition("/")[0], int(action.details["sw_if_index"])
    if HostRoute(ip, index) not in vpp.host_routes():
        raise Skipped("the route changed since the scan")
    if not vpp.remove_pod_route(ip, None, index):
        raise Skipped(f"sw_if_index {index} is wired for {ip} now")


def _delete_bridge_domain(vpp: Vpp, action: Action, cni_dir: str) -> None:
    """Under the node lock ADD joins bridge domains under, and only if still ours and empty:
    else an ADD between our look and the delete would join a domain VPP then drops."""
    bd_id = int(action.details["bd_id"])
    with file_lock(node_setup_lock_path(cni_dir)):
        now = vpp.bridge_domain(bd_id)
        if now is None or now.tag != tags.BRIDGE_DOMAIN_TAG or now.members:
            raise Skipped("it is not empty or not ours any more")
        if not vpp.delete_bridge_domain(bd_id):
            raise Skipped("it has members again")


# -- printing ----------------------------------------------------------------------------------


def _print(plan: Plan, args: argparse.Namespace) -> None:
    if output.wants_json(args):
        output.print_json(
            {
                "dry_run": bool(args.dry_run),
                "actions": [a.to_json() for a in plan.actions],
                "notes": plan.notes,
            }
        )
        return
    if plan.actions:
        rows = [
            {
                "action": a.kind,
                "target": a.target,
                "details": ", ".join(
                    f"{k}={_plain(v)}" for k, v in a.details.items() if k not in _SHOWN_BY_TARGET
                ),
                "result": a.result,
            }
            for a in plan.actions
        ]
        output.print_table(rows, COLUMNS)
    else:
        print("nothing to collect")
    for note in plan.notes:
        print(f"note: {note}")
    if args.dry_run:
        print("dry run: nothing was changed")


def _plain(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(v) for v in value) or "-"
    return "-" if value is None else str(value)
