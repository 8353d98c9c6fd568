"""The default backend: VPP's binary API, one connection per plugin run.

What it decides, on top of the typed operations of `vpp.ops` (the only place that
names VPP's messages):
- VPP hands a freed sw_if_index (and VirtualEthernet0/0/N) to the next port and
  starts again from 1 after a restart, so a port is found by its name, then
  confirmed by our ownership tag and its socket path, never by a saved index.
- A deleted interface's routes stay in the FIB, so DEL removes the route
  before the interface, and also when the interface is already gone.
ADD and DEL never dump all interfaces unless a port cannot be found by name.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from vhostuser_vpp.addressing import family, host_prefix
from vhostuser_vpp.backends.base import (
    BackendError,
    BackendMisconfigured,
    BackendUnavailable,
    Port,
    PortRef,
    PortSpec,
    PortState,
    Wiring,
)
from vhostuser_vpp.store.lock import file_lock
from vhostuser_vpp.tags import BRIDGE_DOMAIN_TAG, gateway_tag
from vhostuser_vpp.vpp.client import VppClient
from vhostuser_vpp.vpp.errors import (
    SocketInUse,
    VppApiError,
    VppError,
    VppIncompatible,
    VppUnavailable,
)
from vhostuser_vpp.vpp.ops import (
    API_MODULES_BY_MODE,
    COMMON_API_MODULES,
    ERR_ADDRESS_IN_USE,
    ERR_DUPLICATE_IF_ADDRESS,
    LOOPBACK_NAME_PREFIX,
    VHOST_NAME_PREFIX,
    Interface,
    VhostOptions,
    Vpp,
)

log = logging.getLogger(__name__)


class VppOptions(NamedTuple):
    api_socket: str
    connect_timeout: float
    call_timeout: float
    mode: str = "l3"
    unnumbered_to: str = "loop0"
    create_loopback: bool = False
    bridge_domain: int | None = None
    vhost: VhostOptions = VhostOptions()
    # A file to flock while creating node-wide objects (the gateway loopback).
    setup_lock: str = "/run/vhostuser-vpp-setup.lock"


class PortHandle(NamedTuple):
    """The backend's own bookkeeping of a port, kept in the record's `port` (`to_json`) and
    read back from it (`from_json`): its index when made, its options, and its wiring."""

    sw_if_index: int | None = None
    vhost: VhostOptions = VhostOptions()
    mode: str | None = None
    unnumbered_to: str | None = None
    create_loopback: bool = False
    bridge_domain: int | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"sw_if_index": self.sw_if_index, "settings": self.vhost.recorded()}
        if self.mode is not None:
            doc["mode"] = self.mode
        if self.mode == "l3":
            doc.update(unnumbered_to=self.unnumbered_to, create_loopback=self.create_loopback)
        if self.mode == "l2":
            doc["bridge_domain"] = self.bridge_domain
        return doc

    @classmethod
    def from_json(cls, doc: Any, port_mac: str | None = None) -> PortHandle:
        """From a record's `port`; missing or mistyped keys read as unknown."""
        doc = doc if isinstance(doc, dict) else dict(doc)
        index, bd_id = doc.get("sw_if_index"), doc.get("bridge_domain")
        settings = doc.get("settings")
        return cls(
            sw_if_index=int(index) if isinstance(index, int) else None,
            vhost=VhostOptions.from_recorded(settings if isinstance(settings, dict) else {}, port_mac),
            mode=str(doc["mode"]) if isinstance(doc.get("mode"), str) else None,
            unnumbered_to=str(doc["unnumbered_to"]) if isinstance(doc.get("unnumbered_to"), str) else None,
            create_loopback=bool(doc.get("create_loopback", False)),
            bridge_domain=int(bd_id) if isinstance(bd_id, int) else None,
        )


class GatewayInterface(NamedTuple):
    """The interface found for `unnumbered_to`: ours when it carries our gateway tag, and the
    IP versions (4, 6) it has an address of."""

    sw_if_index: int
    name: str
    ours: bool
    families: frozenset[int]

    def lends(self, wanted: frozenset[int]) -> bool:
        return wanted <= self.families

    def lender(self, wanted: frozenset[int]) -> int:
        """Its index, if it has an address of each family to lend; an operator's interface
        without one is the operator's to fix, never taken over."""
        missing = sorted(wanted - self.families)
        if missing:
            families = " and ".join(f"IPv{v}" for v in missing)
            raise BackendMisconfigured(
                f"VPP interface {self.name} (vhost.unnumbered_to) has no {families} address to lend the pods",
                "give it the pods' gateway address",
            )
        return self.sw_if_index


def _families(addresses: Iterable[str]) -> frozenset[int]:
    return frozenset(family(a) for a in addresses)


class VppBackend:
    name = "vpp"

    def __init__(
        self, options: VppOptions, client: VppClient | None = None, close_client: bool | None = None
    ) -> None:
        """`client`: a connection someone else holds (the node agent's), used and left open
        unless `close_client` (a pool's, which closing gives back); else the backend makes
        its own, loading only its mode's API definitions."""
        self.options = options
        self._owns_client = client is None if close_client is None else close_client
        self.client = client or VppClient(
            options.api_socket,
            options.connect_timeout,
            options.call_timeout,
            api_modules=COMMON_API_MODULES + API_MODULES_BY_MODE[options.mode],
        )
        self.vpp = Vpp(self.client)

    def connect(self) -> None:
        """Connects and checks that this VPP offers what the configured mode needs."""
        opts = self.options
        with _mapped("connecting to VPP"):
            if not self.client.connected:
                self.client.connect()
            missing = self.vpp.missing_for(opts.mode, opts.create_loopback, opts.vhost.enable_event_idx)
            if missing:
                raise VppIncompatible(
                    f"VPP {self.vpp.version()} lacks messages this config needs: {', '.join(missing)}"
                    " (is the vhost plugin loaded?)"
                )

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def status(self) -> None:
        with _mapped("asking VPP"):
            self.vpp.ping()

    # -- ADD ----------------------------------------------------------------------------------

    def create_port(self, spec: PortSpec) -> Port:
        vhost = self.options.vhost
        with _mapped("creating the vhost-user interface"):
            try:
                index = self.vpp.create_vhost_port(spec.socket_path, spec.is_server, spec.tag, vhost)
            except SocketInUse as err:
                index = self._adopt_existing(err.sw_if_index, spec)
        try:
            with _mapped("bringing the vhost-user interface up"):
                self.vpp.set_admin_up(index, True)
                details = self.vpp.interface(index)
            if details is None:
                raise BackendError("VPP lost the interface it just created", f"sw_if_index {index}")
        except BackendError:
            self._ignore_errors(lambda: self.vpp.delete_vhost_port(index))
            raise
        log.info("created %s (sw_if_index %d) at %s", details.name, index, spec.socket_path)
        handle = PortHandle(sw_if_index=index, vhost=vhost)
        return Port(name=details.name, mac=details.mac, handle=handle.to_json())

    def _adopt_existing(self, index: int, spec: PortSpec) -> int:
        """A retried ADD may find its own port (same tag) and keeps it; anybody else's is an
        error."""
        details = self.vpp.interface(index)
        if details is None or details.tag != spec.tag:
            owner = f"{details.name} tagged {details.tag!r}" if details else f"index {index}"
            raise BackendError("the socket path is already used by another VPP interface", owner)
        log.info("reusing %s, made by an earlier attempt of this ADD", details.name)
        return index

    def wire(self, port: Port, wiring: Wiring) -> dict[str, Any]:
        handle = PortHandle.from_json(port.handle, self.options.vhost.port_mac)
        index = handle.sw_if_index
        if index is None:
            raise BackendError("the port's handle has no sw_if_index", str(dict(port.handle)))
        opts = self.options
        if opts.mode == "l3":
            self._wire_l3(index, wiring)
        elif opts.mode == "l2":
            self._wire_l2(index)
        wired = handle._replace(
            mode=opts.mode,
            unnumbered_to=opts.unnumbered_to,
            create_loopback=opts.create_loopback,
            bridge_domain=opts.bridge_domain,
        )
        return wired.to_json()

    def _wire_l3(self, index: int, wiring: Wiring) -> None:
        undo: list[Callable[[], object]] = []
        try:
            with _mapped(f"wiring the port for {', '.join(wiring.pod_ips)}"):
                lender = self._unnumbered_source(wiring)
                self.vpp.set_unnumbered(lender, index, True)
                undo.append(lambda: self.vpp.set_unnumbered(lender, index, False, tolerate_gone=True))
                if 6 in _families(wiring.pod_ips):
                    # Unnumbered alone forwards IPv6; only this makes VPP answer neighbour
                    # discovery on the port, for pods whose IPv6 stack looks the gateway up.
                    self.vpp.enable_ip6(index)
                for pod_ip in wiring.pod_ips:
                    self._refuse_a_taken_address(pod_ip, index)
                    # The neighbour first: while ADD's record names no address yet, DEL
                    # finds what to unwire by the static neighbours on the port, and a
                    # route without its neighbour would be found by none.
                    self.vpp.add_neighbour(index, pod_ip, wiring.pod_mac)
                    undo.append(functools.partial(self.vpp.delete_neighbour, index, pod_ip, wiring.pod_mac))
                    self.vpp.add_pod_route(pod_ip, index)
                    undo.append(functools.partial(self.vpp.remove_pod_route, pod_ip, index, None))
        except BackendError:
            for step in reversed(undo):
                self._ignore_errors(step)
            raise

    def _refuse_a_taken_address(self, pod_ip: str, index: int) -> None:
        """A host prefix that leads to another live interface is someone else's pod or the
        operator's (two networks' IPAM ranges overlap): VPP's non-multipath add would
        silently take it."""
        for other in (i for i in self.vpp.route_paths(pod_ip) or [] if i != index):
            holder = self.vpp.interface(other)
            if holder is not None:
                raise BackendMisconfigured(
                    f"{host_prefix(pod_ip)} already leads to {holder.name} (sw_if_index {other})",
                    "another attachment or the operator routes this address; do IPAM ranges overlap?",
                )

    def _unnumbered_source(self, wiring: Wiring) -> int:
        name = self.options.unnumbered_to
        wanted = _families(wiring.pod_ips)
        found = self._gateway_interface(name, wanted)
        if found is not None and found.lends(wanted):
            return found.sw_if_index
        # Missing or without an address of a family the pod needs: decided under the node
        # lock, which a plugin making the loopback holds from its create to its addresses
        # (pods start in parallel: one makes it, the others then find it whole).
        with file_lock(self.options.setup_lock):
            found = self._gateway_interface(name)
            if found is not None and (
                found.lends(wanted) or not found.ours or not self.options.create_loopback
            ):
                return found.lender(wanted)
            cidrs = [c for c in wiring.gateway_cidrs if family(c) in wanted]
            if not self.options.create_loopback or _families(cidrs) != wanted:
                raise BackendMisconfigured(
                    f"VPP has no interface {name!r} to lend the pods' gateway address (vhost.unnumbered_to)",
                    "create it with the gateway address, or set vhost.create_loopback (and give IPAM"
                    " a gateway for each family)",
                )
            if found is None:
                return self._create_loopback(name, cidrs)
            if not found.families:
                # Ours but half made (a plugin killed while making it): made again.
                log.warning("deleting loopback sw_if_index %d, which has no address", found.sw_if_index)
                self.vpp.delete_loopback(found.sw_if_index)
                return self._create_loopback(name, cidrs)
            # Ours, made for another family (an IPv4 network before this IPv6 one): the gateway
            # of the family it lacks is added.
            missing = [c for c in cidrs if family(c) not in found.families]
            self._add_gateway_addresses(found.sw_if_index, name, missing)
            return found.sw_if_index

    def _gateway_interface(self, name: str, families: Iterable[int] = (4, 6)) -> GatewayInterface | None:
        """By name; else a loopback we made for that name (VPP names it loopN, N its choice).
        Its addresses are looked up for `families` only (one call each, on every ADD)."""
        tag = gateway_tag(name)
        found = self.vpp.interface_named(name)
        if found is None:
            found = next(
                (i for i in self.vpp.interfaces_named_like(LOOPBACK_NAME_PREFIX) if i.tag == tag), None
            )
        if found is None:
            return None
        has = frozenset(v for v in sorted(families) if self.vpp.addresses(found.sw_if_index, ip6=v == 6))
        return GatewayInterface(found.sw_if_index, found.name, found.tag == tag, has)

    def _create_loopback(self, name: str, gateway_cidrs: list[str]) -> int:
        """Whole or not at all: tagged first, so that even a plugin killed halfway leaves a
        loopback the next ADD knows as ours (and remakes), never an anonymous one."""
        index = self.vpp.create_loopback()
        try:
            self.vpp.set_tag(index, gateway_tag(name))
            self._add_gateway_addresses(index, name, gateway_cidrs)
            self.vpp.set_admin_up(index, True)
        except (VppError, BackendError):
            self._ignore_errors(lambda: self.vpp.delete_loopback(index))
            raise
        log.info("created loopback (sw_if_index %d) with gateway %s", index, ", ".join(gateway_cidrs))
        return index

    def _add_gateway_addresses(self, index: int, name: str, gateway_cidrs: list[str]) -> None:
        for cidr in gateway_cidrs:
            try:
                self.vpp.add_address(index, cidr)
            except VppApiError as err:
                # IPv4 answers an overlap with -105, IPv6 with -127.
                if err.retval not in (ERR_ADDRESS_IN_USE, ERR_DUPLICATE_IF_ADDRESS):
                    raise
                raise BackendMisconfigured(
                    f"the gateway address {cidr} overlaps an address of another VPP interface",
                    f"{err}; give {name} the gateway address by hand, or use another unnumbered_to",
                ) from err

    def _wire_l2(self, index: int) -> None:
        bd_id = self.options.bridge_domain
        if bd_id is None:
            raise BackendMisconfigured("vhost.mode l2 needs vhost.bridge_domain")
        # Under the node lock: a DEL that empties and deletes the domain between this dump and
        # the join would have VPP make it anew, untagged, and nobody would ever remove it.
        with _mapped(f"adding the port to bridge domain {bd_id}"), file_lock(self.options.setup_lock):
            if self.vpp.bridge_domain(bd_id) is None:
                self.vpp.add_bridge_domain(bd_id)
            try:
                self.vpp.set_bridge_domain(index, bd_id, True)
            except VppError:
                self._ignore_errors(lambda: self._delete_bridge_domain_if_empty(bd_id))
                raise

    # -- DEL and CHECK ------------------------------------------------------------------------

    def delete_port(self, ref: PortRef) -> None:
        with _mapped(f"deleting {ref.name or ref.socket_path}"):
            found = self._find(ref)
            index = found.sw_if_index if found is not None else None
            handle = self._handle_of(ref)
            if index is not None:
                self.vpp.set_admin_up(index, False, tolerate_gone=True)
            wiring = ref.wiring if ref.wiring_confirmed or index is None else self._wiring_on(index)
            if handle.mode == "l3" and wiring is not None:
                self._unwire_l3(handle, wiring, index)
            bd_id = handle.bridge_domain if handle.mode == "l2" else None
            with contextlib.ExitStack() as node_lock:
                if bd_id is not None:
                    node_lock.enter_context(file_lock(self.options.setup_lock))
                if index is not None and bd_id is not None:
                    self.vpp.set_bridge_domain(index, bd_id, False, tolerate_gone=True)
                if index is not None:
                    self.vpp.delete_vhost_port(index, tolerate_gone=True)
                    log.info("deleted %s (sw_if_index %d)", found.name if found else "", index)
                else:
                    log.info("no VPP interface for %s; nothing to delete", ref.socket_path)
                if bd_id is not None:
                    self._delete_bridge_domain_if_empty(bd_id)

    def _wiring_on(self, index: int) -> Wiring | None:
        """The pod's addresses as VPP has them: the static neighbours on the port ADD made."""
        static = [n for n in self.vpp.neighbours(index) if n.static]
        return Wiring(pod_ips=tuple(n.ip for n in static), pod_mac=static[0].mac) if static else None

    def _handle_of(self, ref: PortRef) -> PortHandle:
        """How the port was made and wired: as the record says, else (an ADD rolling back
        before its record was written) as this backend was configured to wire it."""
        handle = PortHandle.from_json(ref.handle)
        opts = self.options
        return handle._replace(
            mode=handle.mode or opts.mode,
            unnumbered_to=handle.unnumbered_to or opts.unnumbered_to,
            bridge_domain=handle.bridge_domain if handle.mode else opts.bridge_domain,
        )

    def _unwire_l3(self, handle: PortHandle, wiring: Wiring, index: int | None) -> None:
        for pod_ip in wiring.pod_ips:
            if index is not None:
                self.vpp.delete_neighbour(index, pod_ip, wiring.pod_mac)
            # Also when the interface is gone: VPP keeps its routes, pointing at an index that
            # the next port will get, or (after a restart) at one that does not exist.
            self.vpp.remove_pod_route(pod_ip, index, handle.sw_if_index)
        lender = self.vpp.interface_named(str(handle.unnumbered_to))
        if index is not None and lender is not None:
            self.vpp.set_unnumbered(lender.sw_if_index, index, False, tolerate_gone=True)

    def _delete_bridge_domain_if_empty(self, bd_id: int) -> None:
        """Only domains the plugin made (by tag): an operator's domain stays, empty or not."""
        domain = self.vpp.bridge_domain(bd_id)
        if domain is not None and domain.tag == BRIDGE_DOMAIN_TAG and not domain.members:
            self.vpp.delete_bridge_domain(bd_id)

    def inspect(self, ref: PortRef) -> PortState | None:
        with _mapped(f"looking up {ref.name}"):
            found = self._find(ref)
            if found is None:
                return None
            problems = self._wiring_problems(ref, found.sw_if_index)
        return PortState(
            name=found.name,
            mac=found.mac,
            admin_up=found.admin_up,
            wiring_problems=tuple(problems),
        )

    def _wiring_problems(self, ref: PortRef, index: int) -> list[str]:
        """Checks made with per-interface or per-prefix lookups only, since CRI-O runs CHECK
        after every ADD: for L3 the borrowed gateway address, each address's static neighbour
        and where VPP forwards its /32 or /128, for L2 the membership."""
        handle = self._handle_of(ref)
        if handle.mode == "l3" and ref.wiring is not None:
            problems = []
            lender_problem = self._lender_problem(index, PortHandle.from_json(ref.handle).unnumbered_to)
            if lender_problem:
                problems.append(lender_problem)
            neighbours = {
                (n.ip, n.mac)
                for version in sorted(_families(ref.wiring.pod_ips))
                for n in self.vpp.neighbours(index, ip6=version == 6)
            }
            for pod_ip in ref.wiring.pod_ips:
                if (pod_ip, ref.wiring.pod_mac) not in neighbours:
                    problems.append(f"no static neighbour {pod_ip} -> {ref.wiring.pod_mac}")
                route_problem = self._pod_route_problem(pod_ip, index)
                if route_problem:
                    problems.append(route_problem)
            return problems
        if handle.mode == "l2" and handle.bridge_domain is not None:
            domain = self.vpp.bridge_domain(handle.bridge_domain)
            if domain is None or index not in domain.members:
                return [f"not a member of bridge domain {handle.bridge_domain}"]
        return []

    def _lender_problem(self, index: int, unnumbered_to: str | None) -> str | None:
        """Without its borrowed address VPP drops the pod's IPv4 traffic: the port must be
        unnumbered to the gateway interface ADD chose (by name, or our tag on a loopback
        VPP named otherwise)."""
        wanted = unnumbered_to or self.options.unnumbered_to
        lender_index = self.vpp.lender_of(index)
        if lender_index is None:
            return f"not unnumbered to {wanted}"
        lender = self.vpp.interface(lender_index)
        if lender is None or (wanted != lender.name and lender.tag != gateway_tag(wanted)):
            name = lender.name if lender is not None else f"sw_if_index {lender_index}"
            return f"unnumbered to {name}, not {wanted}"
        return None

    def _pod_route_problem(self, pod_ip: str, index: int) -> str | None:
        """VPP must forward <pod-ip>/32 (/128) to the port. The exact entry may come from our
        route or from the static neighbour (an attached host route): either way it has to
        lead to this interface, not to another one (a stale route left by a deleted port
        whose index was reused, or an operator's)."""
        via = self.vpp.route_paths(pod_ip)
        if via is None:
            return f"no route {host_prefix(pod_ip)}"
        if index not in via:
            return f"{host_prefix(pod_ip)} is routed via sw_if_index {sorted(via)}, not the port's {index}"
        return None

    def _find(self, ref: PortRef) -> Interface | None:
        """Our interface for `ref`: by name, confirmed by tag and socket path; else (after a VPP
        restart or a restore renamed it) by tag among the vhost-user interfaces."""
        if ref.name:
            candidate = self.vpp.interface_named(ref.name)
            if candidate is not None and self._is_ours(candidate, ref):
                return candidate
        for candidate in self.vpp.interfaces_named_like(VHOST_NAME_PREFIX):
            if self._is_ours(candidate, ref):
                return candidate
        return None

    def _is_ours(self, interface: Interface, ref: PortRef) -> bool:
        if interface.tag != ref.tag:
            return False
        return self.vpp.vhost_socket(interface.sw_if_index) == ref.socket_path

    def _ignore_errors(self, step: Callable[[], object]) -> None:
        try:
            step()
        except (VppError, BackendError) as err:
            log.error("rollback step failed: %s", err)


class _mapped:
    """Turns VPP client errors into backend errors, naming what we were doing."""

    def __init__(self, doing: str) -> None:
        self.doing = doing

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None or not isinstance(exc, VppError):
            return
        if isinstance(exc, VppUnavailable):
            raise BackendUnavailable(f"{self.doing}: VPP is not answering", str(exc)) from exc
        if isinstance(exc, VppIncompatible):
            raise BackendError(f"{self.doing}: this VPP cannot serve the config", str(exc)) from exc
        raise BackendError(f"{self.doing}: VPP refused", str(exc)) from exc
