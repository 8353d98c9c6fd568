"""ADD: an address from IPAM, a vhost-user port in VPP wired to it, and the pod's files.

All or nothing. A pending record is in place before VPP makes anything (IPAM runs
meanwhile: its address is released by container and interface, record or not), so
that even a plugin killed mid-ADD leaves enough for DEL or GC to clean up;
each step registers its undo right after it succeeds, and any failure unwinds
them in reverse order before the error is returned.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from vhostuser_vpp import hostnet, overlap
from vhostuser_vpp.addressing import host_prefix
from vhostuser_vpp.backends.base import BackendError, Port, PortBackend, PortRef, PortSpec, Wiring
from vhostuser_vpp.cni.env import CmdArgs, kubernetes_pod
from vhostuser_vpp.cni.errors import CniCode, CniError
from vhostuser_vpp.cni.results import Interface, IPConfig, Result
from vhostuser_vpp.plugin import addresses, backend_choice, errors
from vhostuser_vpp.plugin.backend_choice import BACKEND_TOOL
from vhostuser_vpp.plugin.context import Invocation, check_socket_path, prepare
from vhostuser_vpp.plugin.teardown import remove_attachment
from vhostuser_vpp.store import node_files
from vhostuser_vpp.store.attachment import Attachment, StoreError
from vhostuser_vpp.store.lock import LockTimeout, container_lock
from vhostuser_vpp.store.records import (
    PHASE_PENDING,
    PHASE_READY,
    IpConf,
    PortRecord,
    network_identity,
    socket_access,
)
from vhostuser_vpp.tags import ownership_tag

log = logging.getLogger(__name__)

# The result is kept in the record in the newest shape and converted on the way out.
RECORDED_RESULT_VERSION = "1.1.0"


def random_mac() -> str:
    """A locally administered unicast MAC, like the ones the original plugin handed out."""
    octets = bytearray(os.urandom(6))
    octets[0] = (octets[0] & 0xFC) | 0x02
    return ":".join(f"{b:02x}" for b in octets)


def run(args: CmdArgs) -> Result:
    inv = prepare(args)
    attachment = inv.attachment()
    check_socket_path(attachment)
    device_info_file = inv.conf.runtime_config.device_info_file
    if device_info_file:
        inv.policy.check_device_info_file(device_info_file)
    vhost = inv.conf.vhost
    if vhost.host_route:
        inv.policy.check_host_route_device(vhost.host_route)
    if vhost.mode == "l3":
        inv.policy.check_unnumbered_to(vhost.unnumbered_to)
    if vhost.mode == "l2" and vhost.bridge_domain is not None:
        inv.policy.check_bridge_domain(vhost.bridge_domain)
    try:
        socket_ids = inv.conf.vhost.socket_ids()
    except ValueError as err:
        raise CniError(CniCode.INVALID_CONFIG, "invalid network config", str(err)) from err
    # Not first in a conflist: the result extends the previous plugins'. Decoded before
    # anything is made, so a malformed one (code 6) leaves nothing behind.
    prev = inv.conf.prev_result
    prev_result = Result.from_json(prev, source="prevResult") if prev is not None else None
    try:
        node_files.ensure_cni_dir(inv.conf.cni_dir)
        node_files.ensure_get_prefix(inv.conf.cni_dir)
        with container_lock(inv.conf.cni_dir, attachment.container_id, gone=attachment.gone):
            ours = _add_locked(inv, attachment, socket_ids)
        return ours.after(prev_result) if prev_result is not None else ours
    except StoreError as err:
        raise errors.from_store(err) from err
    except LockTimeout as err:
        raise errors.from_lock_timeout(err) from err


def _add_locked(inv: Invocation, attachment: Attachment, socket_ids: tuple[int, int]) -> Result:
    existing = attachment.read_record()
    if existing is not None:
        if existing.network and existing.network != inv.conf.name:
            raise CniError(
                CniCode.INVALID_CONFIG,
                f"interface {attachment.ifname} of this container belongs to another network",
                f"network {existing.network!r} holds {attachment.record_name}",
            )
        if existing.confirmed and existing.phase == PHASE_READY and existing.result:
            log.info("attachment exists already; returning its result")
            return Result.from_json(existing.result, source="the saved record")
        log.warning("found the record of an unfinished ADD; removing what it made first")
        failures = remove_attachment(inv, attachment)
        if failures:
            raise errors.combine(failures, "cleaning up an earlier ADD")

    # Opening the backend first means an unreachable VPP fails the ADD before
    # anything was allocated.
    backend = backend_choice.open_for_add(inv)
    try:
        if backend.name == BACKEND_TOOL and addresses.declared_ipv6(inv.args.config.get("ipam")):
            raise addresses.ipv6_on_tool(f"the {inv.conf.ipam.type} config hands out IPv6 addresses")

        return _add_with_backend(inv, attachment, backend, socket_ids)
    finally:
        backend.close()


def _add_with_backend(
    inv: Invocation, attachment: Attachment, backend: PortBackend, socket_ids: tuple[int, int]
) -> Result:
    with attachment.open_dir(create=True) as dir_fd, contextlib.ExitStack() as undo:
        if dir_fd is None:
            raise StoreError("container directory vanished", attachment.container_dir)
        undo.callback(_undo, "remove the container directory", attachment.remove_dir_if_empty)
        vhost = inv.conf.vhost
        attachment.set_dir_access(dir_fd, int(vhost.socket_dir_mode, 8), socket_ids)
        vpp_is_server = vhost.socket_mode == "server"
        record = _pending_record(inv, attachment, backend, socket_ids)
        # IPAM runs while the record is written and VPP makes the port. The record is in
        # place before the port exists: a plugin killed from then on leaves DEL and GC the
        # port's tag and socket. The address needs no record: DEL releases it by container
        # and interface, record or not. A tool wires one IPv4 address, so IPAM's answer
        # decides first whether it may run at all. Undone in reverse: the port, the
        # address, the files.
        spec = PortSpec(socket_path=attachment.socket_path, tag=record.tag, is_server=vpp_is_server)
        undo.callback(_undo, "remove the attachment's files", attachment.remove_files, dir_fd)
        allocation = inv.ipam.adding()
        undo.callback(_undo, "release the IPAM address", allocation.release)
        made = _MadePort(backend, spec)
        undo.callback(_undo, "delete the VPP interface", made.delete)
        with allocation:
            attachment.write_record(dir_fd, record, sync_dir=False)
            if backend.name != BACKEND_TOOL:
                made.make()
        pod_ips = addresses.pod_addresses(allocation.result, inv.conf.ipam.type)
        if backend.name == BACKEND_TOOL:
            pod_ips = addresses.for_tool(pod_ips, inv.conf.ipam.type)
        port = made.port or made.make()
        pod_mac = inv.conf.runtime_config.mac or random_mac()
        wiring = addresses.wiring(pod_ips, pod_mac)
        made.wiring = wiring
        ip4 = addresses.first_of_family(pod_ips, 4)
        record = record._replace(
            vhostname=port.name,
            vhostmac=port.mac,
            ifmac=pod_mac,
            ip_addr=ip4.ip if ip4 else "",
            ip_addrs=wiring.pod_ips,
            port=port.handle,
        )
        if vpp_is_server:
            attachment.set_socket_access(dir_fd, vhost.socket_file_mode, socket_ids)
        wired = _wire(backend, port, wiring, attachment, dir_fd, record, pod_ips)

        host_route = inv.conf.vhost.host_route
        if host_route:
            for pod_ip in wiring.pod_ips:
                _add_host_route(host_route, pod_ip)
                undo.callback(_undo, "remove the host route", hostnet.delete_route, host_route, pod_ip)
            record = record._replace(host_route=host_route)

        device_info_file = inv.conf.runtime_config.device_info_file
        if device_info_file:
            node_files.write_device_info(
                device_info_file, node_files.device_info(attachment.socket_path, vpp_is_server)
            )
            undo.callback(
                _undo, "remove the device-info file", node_files.remove_device_info, device_info_file
            )

        result = Result(
            cni_version=inv.conf.cni_version,
            interfaces=[Interface(name=attachment.ifname, mac=pod_mac, socket_path=attachment.socket_path)],
            ips=[
                IPConfig(address=ip.address, gateway=ip.gateway, interface=0) for ip in allocation.result.ips
            ],
            routes=allocation.result.routes,
            dns=allocation.result.dns,
        )
        record = record._replace(
            phase=PHASE_READY, port=wired, result=result.to_json(RECORDED_RESULT_VERSION)
        )
        attachment.write_record(dir_fd, record)
        undo.pop_all()
    log.info(
        "added %s (%s) for %s at %s", port.name, port.mac, ", ".join(wiring.pod_ips), attachment.socket_path
    )
    return result


def _pending_record(
    inv: Invocation, attachment: Attachment, backend: PortBackend, socket_ids: tuple[int, int]
) -> PortRecord:
    """What is known before anything is made: enough for DEL to find the port by."""
    vhost = inv.conf.vhost
    vpp_is_server = vhost.socket_mode == "server"
    return PortRecord(
        ifname=attachment.ifname,
        phase=PHASE_PENDING,
        container_id=attachment.container_id,
        network=inv.conf.name,
        network_id=network_identity(inv.args.config),
        backend=backend.name,
        vhost_tool=(vhost.vhost_tool or "") if backend.name == BACKEND_TOOL else "",
        socket_path=attachment.socket_path,
        socket_mode=vhost.socket_mode,
        socket_access=socket_access(vhost.socket_file_mode, socket_ids) if vpp_is_server else {},
        tag=ownership_tag(attachment.container_id, attachment.ifname),
        pod=kubernetes_pod(inv.args.args),
    )


class _MadePort:
    """The port ADD makes, and deletes again on a rollback: with its wiring once it has one
    to be wired with (before that there is nothing to unwire)."""

    def __init__(self, backend: PortBackend, spec: PortSpec) -> None:
        self.backend = backend
        self.spec = spec
        self.port: Port | None = None
        self.wiring: Wiring | None = None

    def make(self) -> Port:
        try:
            self.port = self.backend.create_port(self.spec)
        except BackendError as err:
            raise errors.from_backend(err, "creating the vhost-user port") from err
        return self.port

    def delete(self) -> None:
        if self.port is None:
            return
        spec = self.spec
        ref = PortRef(self.port.name, spec.socket_path, spec.tag, wiring=self.wiring, handle=self.port.handle)
        self.backend.delete_port(ref)


def _add_host_route(device: str, pod_ip: str) -> None:
    try:
        hostnet.add_route(device, pod_ip)
    except hostnet.HostRouteError as err:
        raise CniError(CniCode.INTERNAL, "cannot route to the pod from the host", str(err)) from err


def _wire(
    backend: PortBackend,
    port: Port,
    wiring: Wiring,
    attachment: Attachment,
    dir_fd: int,
    record: PortRecord,
    pod_ips: list[IPConfig],
) -> Mapping[str, Any]:
    """VPP wires the port while the record, still pending but now naming the port and the
    pod's addresses, and the pod's address files are written. Until that record is in
    place, DEL and GC find what the wiring made on the port (teardown.port_ref). A tool
    deletes by the name the record gives, so it wires only once that is written. Each
    rename is made durable by the ready version's, in either directory, or undone."""
    named_first = backend.name == BACKEND_TOOL
    if named_first:
        attachment.write_record(dir_fd, record, sync_dir=False)
    files = (attachment, dir_fd, None if named_first else record, pod_ips, record.ifmac, port.mac)
    with overlap.alongside(_write_while_wiring, *files):
        try:
            return backend.wire(port, wiring)
        except BackendError as err:
            raise errors.from_backend(err, f"wiring {port.name} for {', '.join(wiring.pod_ips)}") from err


def _write_while_wiring(
    attachment: Attachment,
    dir_fd: int,
    record: PortRecord | None,
    pod_ips: list[IPConfig],
    pod_mac: str,
    gw_mac: str,
) -> None:
    """The pending record naming port and addresses (None: written already), then
    `-ip4.conf` and `-ip6.conf`, each with the family's first address as a host prefix
    (/32, /128: VPP routes it alone to the port); a family IPAM gave none of has no file."""
    if record is not None:
        attachment.write_record(dir_fd, record, sync_dir=False)
    for version in (4, 6):
        ip = addresses.first_of_family(pod_ips, version)
        if ip is not None:
            conf = IpConf(
                ip_addr=host_prefix(ip.ip), mac_addr=pod_mac, gateway=ip.gateway or "", gw_mac=gw_mac
            )
            attachment.write_ip_conf(dir_fd, version, conf, sync_dir=False)


def _undo(what: str, step: Callable[..., object], *step_args: object) -> None:
    """Runs one rollback step; a failure is logged for the operator, never raised over the real error."""
    try:
        step(*step_args)
    except (BackendError, CniError, StoreError, OSError, hostnet.HostRouteError) as err:
        log.error("rollback: could not %s: %s", what, err)
