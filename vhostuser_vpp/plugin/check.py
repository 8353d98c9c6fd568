"""CHECK: is the attachment still what ADD made? Prints nothing when it is.

Runtimes call CHECK right after ADD (CRI-O) or periodically, so it reads the
record, the files and one port from the backend, never a full dump.
"""

from __future__ import annotations

import os

from vhostuser_vpp import hostnet
from vhostuser_vpp.addressing import host_prefix
from vhostuser_vpp.backends.base import BackendError
from vhostuser_vpp.cni.env import CmdArgs
from vhostuser_vpp.cni.errors import CniCode, CniError
from vhostuser_vpp.cni.results import Result
from vhostuser_vpp.plugin import backend_choice, errors
from vhostuser_vpp.plugin.context import Invocation, prepare
from vhostuser_vpp.plugin.teardown import port_ref
from vhostuser_vpp.store.attachment import Attachment, StoreError
from vhostuser_vpp.store.lock import LockTimeout, container_lock
from vhostuser_vpp.store.records import PHASE_READY, PortRecord


def run(args: CmdArgs) -> None:
    inv = prepare(args)
    attachment = inv.attachment()
    if not attachment.fits():
        raise CniError(
            CniCode.UNKNOWN_CONTAINER,
            f"no attachment {attachment.ifname} for this container",
            f"{attachment.socket_path} is too long for a socket path: ADD made none",
        )
    try:
        with container_lock(inv.conf.cni_dir, attachment.container_id, gone=attachment.gone):
            record = _read_ready_record(attachment)
            # IPAM checks the address while the files, VPP and the host are looked at; an
            # error of ours is the one reported, as when IPAM was asked last.
            saved = Result.from_json(record.result, source="the saved record")
            with inv.ipam.started("CHECK", prev_result=saved):
                _check_files(attachment, record)
                _check_prev_result(inv, record)
                _check_port(inv, record)
                _check_host_route(record)
    except StoreError as err:
        raise errors.from_store(err) from err
    except LockTimeout as err:
        raise errors.from_lock_timeout(err) from err
    except FileNotFoundError as err:
        raise CniError(CniCode.UNKNOWN_CONTAINER, "no attachment for this container", str(err)) from err


def _read_ready_record(attachment: Attachment) -> PortRecord:
    record = attachment.read_record()
    if record is None or record.phase != PHASE_READY:
        raise CniError(
            CniCode.UNKNOWN_CONTAINER,
            f"no attachment {attachment.ifname} for this container",
            f"{attachment.state_path} is missing or unfinished",
        )
    return record


def _check_files(attachment: Attachment, record: PortRecord) -> None:
    # In client mode the pod's app makes the socket, perhaps only after CHECK.
    names = list(attachment.ip_conf_names_of(record))
    if record.socket_mode == "server":
        names.append(attachment.socket_name)
    for name in names:
        if not os.path.lexists(os.path.join(attachment.container_dir, name)):
            raise CniError(CniCode.INTERNAL, f"CHECK: {name} is missing", attachment.container_dir)


def _check_prev_result(inv: Invocation, record: PortRecord) -> None:
    prev = inv.conf.prev_result
    if prev is None:
        return
    prev_result = Result.from_json(prev, source="prevResult")
    ours = [itf for itf in prev_result.interfaces if itf.name == record.ifname]
    if not ours:
        raise CniError(CniCode.INTERNAL, f"CHECK: prevResult has no interface {record.ifname}")
    if ours[0].mac and ours[0].mac != record.ifmac:
        raise CniError(
            CniCode.INTERNAL,
            "CHECK: prevResult MAC differs from the port's",
            f"{ours[0].mac} != {record.ifmac}",
        )
    missing = [ip for ip in record.pod_ips if ip not in {ip.ip for ip in prev_result.ips}]
    if missing:
        raise CniError(
            CniCode.INTERNAL, "CHECK: prevResult does not hold the port's address", ", ".join(missing)
        )


def _check_host_route(record: PortRecord) -> None:
    for pod_ip in record.pod_ips if record.host_route else ():
        if not hostnet.route_exists(record.host_route, pod_ip):
            raise CniError(
                CniCode.INTERNAL,
                f"CHECK: the host has no route {host_prefix(pod_ip)} dev {record.host_route}",
            )


def _check_port(inv: Invocation, record: PortRecord) -> None:
    backend = backend_choice.open_recorded(inv, record)
    try:
        state = backend.inspect(port_ref(record))
    except BackendError as err:
        raise errors.from_backend(err, f"inspecting {record.vhostname}") from err
    finally:
        backend.close()
    if state is None:
        raise CniError(
            CniCode.INTERNAL, f"CHECK: VPP has no interface {record.vhostname}", record.socket_path
        )
    if state.mac != record.vhostmac:
        raise CniError(
            CniCode.INTERNAL,
            f"CHECK: {record.vhostname} has another MAC than at ADD",
            f"{state.mac} != {record.vhostmac}",
        )
    if state.admin_up is False:
        raise CniError(CniCode.INTERNAL, f"CHECK: {record.vhostname} is admin down")
    if state.wiring_problems:
        raise CniError(
            CniCode.INTERNAL,
            f"CHECK: {record.vhostname} is not wired as at ADD",
            "; ".join(state.wiring_problems),
        )
