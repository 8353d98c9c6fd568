"""Removing one attachment, for DEL, GC and a retried ADD: every step runs, errors are gathered.

Order: the VPP port (with its routes and neighbour), then the IPAM address and,
while IPAM's plugin runs, the files. The record is removed only once the backend
confirmed the port gone, so a DEL that failed on an unreachable VPP can be retried and
still knows what to delete.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping

from vhostuser_vpp import hostnet
from vhostuser_vpp.backends.base import BackendError, PortRef, Wiring
from vhostuser_vpp.cni.errors import CniCode, CniError
from vhostuser_vpp.cni.invoke import SelfDelegation
from vhostuser_vpp.plugin import backend_choice, errors
from vhostuser_vpp.plugin.context import Invocation
from vhostuser_vpp.store.attachment import Attachment, StoreError
from vhostuser_vpp.store.records import PortRecord

log = logging.getLogger(__name__)


def port_ref(record: PortRecord) -> PortRef:
    """A record that names no address may name a wired port all the same: ADD records the
    addresses while VPP wires the port. Then, as for a record the pod could write, what to
    unwire is what VPP has on the port (its static neighbours, each made before its route)."""
    wiring = Wiring(pod_ips=record.pod_ips, pod_mac=record.ifmac) if record.pod_ips else None
    return PortRef(
        name=record.vhostname,
        socket_path=record.socket_path,
        tag=record.tag,
        wiring=wiring,
        handle=record.port,
        wiring_confirmed=record.confirmed and wiring is not None,
    )


def delete_port(inv: Invocation, record: PortRecord) -> CniError | None:
    # The binary-API backend finds a port by its tag and socket path even when the
    # record has no name yet (a plugin killed right after creating it); a tool cannot.
    if not record.vhostname and record.backend != backend_choice.BACKEND_VPP:
        log.info("no VPP interface recorded (ADD stopped before creating it)")
        return None
    # A tool deletes by the name it is given, and a taken-over record's name is the pod's word.
    tool_unsure = not record.confirmed and record.backend != backend_choice.BACKEND_VPP
    if tool_unsure and not _vpp_confirms_tool_port(inv, record):
        log.warning(
            "not deleting VPP interface %s: named by a record the pod could write, and VPP "
            "does not confirm that its socket is %s; remove it by hand if it is this pod's",
            record.vhostname,
            record.socket_path,
        )
        return None
    try:
        backend = backend_choice.open_recorded(inv, record)
    except CniError as err:
        return err
    try:
        backend.delete_port(port_ref(record))
    except BackendError as err:
        return errors.from_backend(err, f"deleting VPP interface {record.vhostname}")
    finally:
        backend.close()
    log.info("deleted the VPP interface of %s", record.socket_path)
    return None


def release_address(inv: Invocation, ipam_env: Mapping[str, str] | None = None) -> list[CniError]:
    with releasing(inv, ipam_env) as failures:
        pass
    return failures


@contextlib.contextmanager
def releasing(inv: Invocation, ipam_env: Mapping[str, str] | None = None) -> Iterator[list[CniError]]:
    """IPAM's DEL, running while the block does; what failed is in the list it yields once
    the block ends. Nothing to release when the config names this plugin as its IPAM (an
    ADD with that config was refused before anything was allocated)."""
    failures: list[CniError] = []
    call = None
    try:
        call = inv.ipam.started("DEL", ipam_env)
    except SelfDelegation as err:
        log.warning("no IPAM address to release: %s", err)
    except CniError as err:
        failures.append(err)
    try:
        yield failures
    finally:
        if call is not None:
            try:
                call.answer()
            except CniError as err:
                failures.append(err)


def _vpp_confirms_tool_port(inv: Invocation, record: PortRecord) -> bool:
    """Whether VPP's binary API (when the config's socket is allowed and answers) shows the
    record's interface name at this attachment's socket path."""
    try:
        backend = backend_choice.open_vpp(inv, "none")
    except CniError as err:
        log.info("cannot ask VPP about %s: %s", record.vhostname, err)
        return False
    try:
        found = backend.inspect(PortRef(name=record.vhostname, socket_path=record.socket_path, tag=""))
    except BackendError as err:
        log.info("cannot ask VPP about %s: %s", record.vhostname, err)
        return False
    finally:
        backend.close()
    return found is not None and found.name == record.vhostname


def remove_attachment(
    inv: Invocation,
    attachment: Attachment,
    ipam_env: Mapping[str, str] | None = None,
) -> list[CniError]:
    """Call with the container's lock held. Returns what failed; nothing raises."""
    failures: list[CniError] = []
    record: PortRecord | None = None
    try:
        record = attachment.read_record()
    except StoreError as err:
        log.warning("%s; deleting what can be found without it", err)
    port_gone = True
    if record is not None:
        port_error = delete_port(inv, record)
        if port_error is not None:
            failures.append(port_error)
            port_gone = False
        for pod_ip in record.pod_ips if record.host_route else ():
            try:
                hostnet.delete_route(record.host_route, pod_ip)
            except hostnet.HostRouteError as err:
                failures.append(CniError(CniCode.INTERNAL, "cannot remove the host route", str(err)))
    # IPAM releases the address while the files go: after the port, so that VPP no longer
    # routes the address when IPAM can give it to another pod.
    file_failures: list[CniError] = []
    with releasing(inv, ipam_env) as release_failures:
        try:
            with attachment.open_dir(create=False) as dir_fd:
                if port_gone:
                    attachment.remove_files(dir_fd)
                elif dir_fd is not None:
                    attachment.remove_ip_confs(dir_fd)
            attachment.remove_dir_if_empty()
        except StoreError as err:
            file_failures.append(errors.from_store(err))
    return failures + release_failures + file_failures
