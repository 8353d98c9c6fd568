"""Making again in VPP the ports that records describe: the way back after a VPP restart.

A CNI plugin runs only when a runtime calls it, so nothing re-creates ports that
a restarted VPP forgot; pods would stay cut off until restarted. `restore` reads
every ready record of the binary-API backend and, where VPP lacks the port,
creates it at the same socket path with the same MAC, tag and wiring (and, in
server mode, the socket's owner, group and mode), then updates the record's
interface name and index. Ports VPP still has are left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from vhostuser_vpp.backends.base import BackendError, BackendUnavailable, PortSpec
from vhostuser_vpp.plugin import addresses, backend_choice
from vhostuser_vpp.plugin.teardown import port_ref
from vhostuser_vpp.store.attachment import Attachment, StoreError
from vhostuser_vpp.store.lock import LockTimeout, container_lock, node_setup_lock_path
from vhostuser_vpp.store.records import PHASE_READY, PortRecord, socket_access_settings
from vhostuser_vpp.store.scan import FoundRecord, iter_records
from vhostuser_vpp.vpp.client import VppClient
from vhostuser_vpp.vpp.errors import VppUnavailable
from vhostuser_vpp.vpp.ops import Vpp

log = logging.getLogger(__name__)

# A record moved from a pod's directory (an earlier version's) names an address the pod
# could have written: wiring it again could give the pod another's address.
UNCONFIRMED = "record of an earlier version, its address unconfirmed: delete and add the pod again"


@dataclass(frozen=True)
class Outcome:
    container_id: str
    ifname: str
    vhostname: str
    status: str  # ok (VPP has it), restored, skipped, failed
    detail: str = ""


@dataclass(frozen=True)
class VppAccess:
    api_socket: str
    connect_timeout: float
    call_timeout: float


def restore_all(
    cni_dir: str, vpp: VppAccess, client: VppClient, helpers: Sequence[VppClient] = ()
) -> list[Outcome]:
    """One outcome per record; `BackendUnavailable` when VPP does not answer, since then
    no port can be restored and the caller should retry once VPP is up.

    VPP's ports are listed once (two dumps), not looked up per record: a record that is
    the same under its container's lock as when it was scanned cannot have gained or lost
    its port meanwhile (ADD and DEL rewrite or remove it under that lock), so the list
    answers for it; only a record that changed is looked up again. That keeps a pass over
    500 records linear in them. The ports to make again are shared out between `client`
    and the `helpers` (more connections, one thread each): each port is a dozen calls and
    two fsync'ed record writes, which overlap across connections."""
    try:
        present = {(port.socket_path, port.tag) for port in Vpp(client).vhost_ports()}
    except VppUnavailable as err:
        raise BackendUnavailable("listing VPP's ports: VPP is not answering", str(err)) from err
    outcomes: list[Outcome] = []
    todo: list[FoundRecord] = []
    for found in iter_records(cni_dir):
        record = found.record
        if not record.confirmed or record.phase != PHASE_READY or record.backend != "vpp":
            reason = (
                UNCONFIRMED
                if not record.confirmed
                else "not finished"
                if record.phase != PHASE_READY
                else f"backend {record.backend or 'tool'}"
            )
            outcomes.append(Outcome(found.container_id, found.ifname, record.vhostname, "skipped", reason))
        else:
            todo.append(found)
    connections = [client, *helpers]
    shares = [todo[i :: len(connections)] for i in range(len(connections))]
    if len(connections) == 1:
        outcomes += _restore_share(cni_dir, vpp, client, shares[0], present)
    else:
        with ThreadPoolExecutor(max_workers=len(connections), thread_name_prefix="restore") as pool:

            def share_of(conn: VppClient, share: list[FoundRecord]) -> list[Outcome]:
                return _restore_share(cni_dir, vpp, conn, share, present)

            for done in pool.map(share_of, connections, shares):
                outcomes += done
    return sorted(outcomes, key=lambda o: (o.container_id, o.ifname))


def _restore_share(
    cni_dir: str, vpp: VppAccess, client: VppClient, share: list[FoundRecord], present: set[tuple[str, str]]
) -> list[Outcome]:
    outcomes = []
    for found in share:
        attachment = Attachment(cni_dir, found.container_id, found.ifname)
        try:
            with container_lock(cni_dir, found.container_id, timeout_s=vpp.call_timeout):
                outcomes.append(_restore_one(attachment, vpp, client, found.record, present))
        except BackendUnavailable:
            raise
        except (LockTimeout, StoreError, BackendError) as err:
            outcomes.append(
                Outcome(found.container_id, found.ifname, found.record.vhostname, "failed", str(err))
            )
    return outcomes


def _restore_one(
    attachment: Attachment,
    vpp: VppAccess,
    client: VppClient,
    scanned: PortRecord,
    present: set[tuple[str, str]],
) -> Outcome:
    with attachment.open_dir(create=False) as dir_fd:
        record = attachment.read_record()
        if dir_fd is None or record is None:
            return Outcome(attachment.container_id, attachment.ifname, "", "skipped", "deleted meanwhile")
        if not record.confirmed:
            return Outcome(
                attachment.container_id, attachment.ifname, record.vhostname, "skipped", UNCONFIRMED
            )
        listed = (record.socket_path, record.tag) in present if record == scanned else None
        if listed:
            return Outcome(attachment.container_id, attachment.ifname, record.vhostname, "ok")
        backend = backend_choice.open_for_restore(
            record,
            vpp.api_socket,
            vpp.connect_timeout,
            vpp.call_timeout,
            node_setup_lock_path(attachment.cni_dir),
            client,
        )
        try:
            if listed is None and backend.inspect(port_ref(record)) is not None:
                return Outcome(attachment.container_id, attachment.ifname, record.vhostname, "ok")
            is_server = record.socket_mode == "server"
            port = backend.create_port(PortSpec(record.socket_path, record.tag, is_server=is_server))
            try:
                if is_server and record.socket_access:
                    _give_socket_access(attachment, dir_fd, record.socket_access)
                wired = backend.wire(port, addresses.recorded_wiring(record))
            except (BackendError, StoreError):
                backend.delete_port(port_ref(record))
                raise
        finally:
            backend.close()
        record = record._replace(vhostname=port.name, port=wired)
        attachment.write_record(dir_fd, record)
    log.info("restored %s at %s", port.name, record.socket_path)
    return Outcome(attachment.container_id, attachment.ifname, port.name, "restored")


def _give_socket_access(attachment: Attachment, dir_fd: int, access: Mapping[str, Any]) -> None:
    """The new socket VPP made is root's again: the owner, group and mode ADD gave it."""
    try:
        mode, ids = socket_access_settings(access)
    except ValueError as exc:
        raise StoreError("the record's socketAccess is unreadable", str(exc)) from exc
    attachment.set_socket_access(dir_fd, mode, ids)
