"""The default backend: VPP's binary API through vpp_papi, one connection per plugin run.

Traps of a real VPP this code is built around (see the VPP reference notes):
- VPP hands a freed sw_if_index (and VirtualEthernet0/0/N) to the next port and
  starts again from 1 after a restart, so a port is found by its name, then
  confirmed by our ownership tag and its socket path, never by a saved index.
- A deleted interface's routes stay in the FIB, so DEL removes the route
  before the interface, and also when the interface is already gone.
- `sw_interface_dump`'s name filter is a substring match: results are
  compared by exact name.
ADD and DEL never dump all interfaces unless a port cannot be found by name.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

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
from vhostuser_vpp.vpp.client import VppClient
from vhostuser_vpp.vpp.errors import VppApiError, VppError, VppIncompatible, VppUnavailable

log = logging.getLogger(__name__)

ANY_INDEX = 0xFFFFFFFF
ADMIN_UP = 1
NEIGHBOR_STATIC = 1
PATH_NH_PROTO_IP4 = 0
ERR_INVALID_SW_IF_INDEX = -2
ERR_NO_SUCH_ENTRY = -6
ERR_IF_ALREADY_EXISTS = -79
ERR_ADDRESS_IN_USE = -105
ERR_BD_ALREADY_EXISTS = -119
ERR_BD_IN_USE = -120
VHOST_NAME_PREFIX = "VirtualEthernet"
# Bridge domains the plugin creates carry this tag; the last DEL leaving one empty removes it.
BRIDGE_DOMAIN_TAG = "cni-vhostuser"
GATEWAY_TAG_PREFIX = "cni-gw:"
_EMPTY_LABEL = {"is_uniform": 0, "label": 0, "ttl": 0, "exp": 0}

# Messages every run needs, and those each wiring mode adds; where VPP offers a
# newer variant it is preferred (create_vhost_user_if_v2, bridge_domain_add_del_v2). Public:
# `vhostuser-vpp doctor` checks a node against the same lists.
COMMON_MESSAGES = (
    "sw_interface_dump",
    "sw_interface_set_flags",
    "sw_interface_vhost_user_dump",
    "delete_vhost_user_if",
)
MESSAGES_BY_MODE = {
    "l3": (
        "sw_interface_set_unnumbered",
        "ip_route_add_del",
        "ip_route_lookup",
        "ip_unnumbered_dump",
        "ip_address_dump",
        "ip_neighbor_add_del",
        "ip_neighbor_dump",
    ),
    "l2": ("sw_interface_set_l2_bridge", "bridge_domain_dump"),
    "none": (),
}
CREATE_VARIANTS = ("create_vhost_user_if_v2", "create_vhost_user_if")
# What making the gateway loopback takes (l3 with vhost.create_loopback).
LOOPBACK_MESSAGES = (
    "create_loopback",
    "delete_loopback",
    "sw_interface_add_del_address",
    "sw_interface_tag_add_del",
)
# The api_json modules defining what a run of each mode may send (the lists above, their
# variants, the gateway loopback's messages, show_version for error messages): the plugin
# loads only these. memclnt (connect, control_ping) is always loaded.
COMMON_API_MODULES = ("vpe", "interface", "vhost_user")
API_MODULES_BY_MODE = {"l3": ("ip", "ip_neighbor"), "l2": ("l2",), "none": ()}
BRIDGE_DOMAIN_ADD_DEL_VARIANTS = ("bridge_domain_add_del_v2", "bridge_domain_add_del")


class VppOptions(NamedTuple):
    api_socket: str
    connect_timeout: float
    call_timeout: float
    mode: str = "l3"
    unnumbered_to: str = "loop0"
    create_loopback: bool = False
    bridge_domain: int | None = None
    enable_gso: bool = False
    enable_packed: bool = False
    enable_event_idx: bool = False
    disable_mrg_rxbuf: bool = False
    disable_indirect_desc: bool = False
    port_mac: str | None = None
    # A file to flock while creating node-wide objects (the gateway loopback).
    setup_lock: str = "/run/vhostuser-vpp-setup.lock"

    def recorded(self) -> dict[str, Any]:
        """What `restore` needs to make the port again as it was, kept in the record."""
        keys = (
            "enable_gso",
            "enable_packed",
            "enable_event_idx",
            "disable_mrg_rxbuf",
            "disable_indirect_desc",
        )
        return {key: getattr(self, key) for key in keys}


class GatewayInterface(NamedTuple):
    """The interface found for `unnumbered_to`: ours when it carries our gateway tag."""

    sw_if_index: int
    name: str
    ours: bool
    has_address: bool

    def lender(self) -> int:
        """Its index, if it has an address to lend; an operator's interface without one is
        the operator's to fix, never taken over."""
        if not self.has_address:
            raise BackendMisconfigured(
                f"VPP interface {self.name} (vhost.unnumbered_to) has no IPv4 address to lend the pods",
                "give it the pods' gateway address",
            )
        return self.sw_if_index


class VppBackend:
    name = "vpp"

    def __init__(self, options: VppOptions) -> None:
        self.options = options
        self.client = VppClient(
            options.api_socket,
            options.connect_timeout,
            options.call_timeout,
            api_modules=COMMON_API_MODULES + API_MODULES_BY_MODE[options.mode],
        )
        self._create_msg = ""
        self._bd_add_del_msg = ""

    def connect(self) -> None:
        """Connects and checks that this VPP offers what the configured mode needs."""
        with _mapped("connecting to VPP"):
            self.client.connect()
            needed = list(COMMON_MESSAGES) + list(MESSAGES_BY_MODE[self.options.mode])
            self._create_msg = self._variant(*CREATE_VARIANTS)
            if self.options.enable_event_idx and self._create_msg != "create_vhost_user_if_v2":
                needed.append("create_vhost_user_if_v2")
            if self.options.mode == "l2":
                self._bd_add_del_msg = self._variant(*BRIDGE_DOMAIN_ADD_DEL_VARIANTS)
            if self.options.mode == "l3" and self.options.create_loopback:
                needed += LOOPBACK_MESSAGES
            missing = [self.client.why_missing(m) for m in needed if not self.client.offers(m)]
            if missing:
                raise VppIncompatible(
                    f"VPP {self.client.version()} lacks messages this config needs: {', '.join(missing)}"
                    " (is the vhost plugin loaded?)"
                )

    def _variant(self, newer: str, older: str) -> str:
        return newer if self.client.offers(newer) else older

    def close(self) -> None:
        self.client.close()

    def status(self) -> None:
        with _mapped("asking VPP"):
            self.client.call("control_ping")

    # -- ADD ----------------------------------------------------------------------------------

    def create_port(self, spec: PortSpec) -> Port:
        opts = self.options
        fields: dict[str, Any] = {
            "is_server": spec.is_server,
            "sock_filename": spec.socket_path,
            "renumber": False,
            "custom_dev_instance": 0,
            "disable_mrg_rxbuf": opts.disable_mrg_rxbuf,
            "disable_indirect_desc": opts.disable_indirect_desc,
            "enable_gso": opts.enable_gso,
            "enable_packed": opts.enable_packed,
            "use_custom_mac": opts.port_mac is not None,
            "mac_address": opts.port_mac or "00:00:00:00:00:00",
            "tag": spec.tag,
        }
        if self._create_msg == "create_vhost_user_if_v2":
            fields["enable_event_idx"] = opts.enable_event_idx
        with _mapped("creating the vhost-user interface"):
            try:
                index = int(self.client.call(self._create_msg, **fields).sw_if_index)
            except VppApiError as err:
                if err.retval != ERR_IF_ALREADY_EXISTS:
                    raise
                index = self._adopt_existing(int(err.reply.sw_if_index), spec)
        try:
            with _mapped("bringing the vhost-user interface up"):
                self.client.call("sw_interface_set_flags", sw_if_index=index, flags=ADMIN_UP)
                details = self._interface(index)
            if details is None:
                raise BackendError("VPP lost the interface it just created", f"sw_if_index {index}")
        except BackendError:
            self._ignore_errors(lambda: self.client.call("delete_vhost_user_if", sw_if_index=index))
            raise
        log.info("created %s (sw_if_index %d) at %s", details.interface_name, index, spec.socket_path)
        handle = {"sw_if_index": index, "settings": opts.recorded()}
        return Port(name=details.interface_name, mac=str(details.l2_address), handle=handle)

    def _adopt_existing(self, index: int, spec: PortSpec) -> int:
        """-79: an interface has this socket path already. A retried ADD may find its own
        port (same tag) and keeps it; anybody else's is an error."""
        details = self._interface(index)
        if details is None or details.tag != spec.tag:
            owner = f"{details.interface_name} tagged {details.tag!r}" if details else f"index {index}"
            raise BackendError("the socket path is already used by another VPP interface", owner)
        log.info("reusing %s, made by an earlier attempt of this ADD", details.interface_name)
        return index

    def wire(self, port: Port, wiring: Wiring) -> dict[str, Any]:
        index = int(port.handle["sw_if_index"])
        mode = self.options.mode
        if mode == "l3":
            return self._wire_l3(index, wiring)
        if mode == "l2":
            return self._wire_l2(index)
        return {"mode": "none"}

    def _wire_l3(self, index: int, wiring: Wiring) -> dict[str, Any]:
        undo: list[Callable[[], object]] = []
        try:
            with _mapped(f"wiring the port for {wiring.pod_ip}"):
                loop_index = self._unnumbered_source(wiring)
                self.client.call(
                    "sw_interface_set_unnumbered",
                    sw_if_index=loop_index,
                    unnumbered_sw_if_index=index,
                    is_add=True,
                )
                undo.append(lambda: self._set_unnumbered(loop_index, index, False))
                self._refuse_a_taken_address(wiring.pod_ip, index)
                self.client.call(
                    "ip_route_add_del", is_add=True, is_multipath=False, route=pod_route(wiring, index)
                )
                undo.append(lambda: remove_pod_route(self.client, wiring.pod_ip, index, None))
                self.client.call("ip_neighbor_add_del", is_add=True, neighbor=pod_neighbor(wiring, index))
        except BackendError:
            for step in reversed(undo):
                self._ignore_errors(step)
            raise
        return {
            "mode": "l3",
            "unnumbered_to": self.options.unnumbered_to,
            "create_loopback": self.options.create_loopback,
        }

    def _refuse_a_taken_address(self, pod_ip: str, index: int) -> None:
        """A /32 that leads to another live interface is someone else's pod or the operator's
        (two networks' IPAM ranges overlap): VPP's non-multipath add would silently take it."""
        via = _route_paths(self.client, pod_ip) or []
        for other in (i for i in via if i != index):
            holder = self._interface(other)
            if holder is not None:
                raise BackendMisconfigured(
                    f"{pod_ip}/32 already leads to {holder.interface_name} (sw_if_index {other})",
                    "another attachment or the operator routes this address; do IPAM ranges overlap?",
                )

    def _unnumbered_source(self, wiring: Wiring) -> int:
        name = self.options.unnumbered_to
        found = self._gateway_interface(name)
        if found is not None and (found.has_address or not found.ours):
            return found.lender()
        if not self.options.create_loopback or not wiring.gateway_cidr:
            raise BackendMisconfigured(
                f"VPP has no interface {name!r} to lend the pods' gateway address (vhost.unnumbered_to)",
                "create it with the gateway address, or set vhost.create_loopback",
            )
        # Pods start in parallel: one plugin makes the loopback, the others find it.
        with _file_lock(self.options.setup_lock):
            found = self._gateway_interface(name)
            if found is not None and (found.has_address or not found.ours):
                return found.lender()
            if found is not None:
                # Ours but half made (a plugin killed while making it): made again.
                log.warning("deleting loopback sw_if_index %d, which has no address", found.sw_if_index)
                self.client.call("delete_loopback", sw_if_index=found.sw_if_index)
            return self._create_loopback(name, wiring.gateway_cidr)

    def _gateway_interface(self, name: str) -> GatewayInterface | None:
        """By name; else a loopback we made for that name (VPP names it loopN, N its choice)."""
        tag = _gateway_tag(name)
        found = self._interface_named(name)
        if found is None:
            found = next((d for d in self._interfaces_named_like("loop") if d.tag == tag), None)
        if found is None:
            return None
        index = int(found.sw_if_index)
        has_address = bool(self.client.dump("ip_address_dump", sw_if_index=index, is_ipv6=False))
        return GatewayInterface(index, found.interface_name, found.tag == tag, has_address)

    def _create_loopback(self, name: str, gateway_cidr: str) -> int:
        """Whole or not at all: tagged first, so that even a plugin killed halfway leaves a
        loopback the next ADD knows as ours (and remakes), never an anonymous one."""
        index = int(self.client.call("create_loopback", mac_address="00:00:00:00:00:00").sw_if_index)
        try:
            self.client.call(
                "sw_interface_tag_add_del", is_add=True, sw_if_index=index, tag=_gateway_tag(name)
            )
            self.client.call(
                "sw_interface_add_del_address",
                sw_if_index=index,
                is_add=True,
                del_all=False,
                prefix=gateway_cidr,
            )
            self.client.call("sw_interface_set_flags", sw_if_index=index, flags=ADMIN_UP)
        except VppError as err:
            self._ignore_errors(lambda: self.client.call("delete_loopback", sw_if_index=index))
            if isinstance(err, VppApiError) and err.retval == ERR_ADDRESS_IN_USE:
                raise BackendMisconfigured(
                    f"the gateway address {gateway_cidr} overlaps an address of another VPP interface",
                    f"{err}; give {name} the gateway address by hand, or use another unnumbered_to",
                ) from err
            raise
        log.info("created loopback (sw_if_index %d) with gateway %s", index, gateway_cidr)
        return index

    def _wire_l2(self, index: int) -> dict[str, Any]:
        bd_id = self.options.bridge_domain
        if bd_id is None:
            raise BackendMisconfigured("vhost.mode l2 needs vhost.bridge_domain")
        # Under the node lock: a DEL that empties and deletes the domain between this dump and
        # the join would have VPP make it anew, untagged, and nobody would ever remove it.
        with _mapped(f"adding the port to bridge domain {bd_id}"), _file_lock(self.options.setup_lock):
            if not self.client.dump("bridge_domain_dump", bd_id=bd_id, sw_if_index=ANY_INDEX):
                self._add_bridge_domain(bd_id)
            try:
                self.client.call(
                    "sw_interface_set_l2_bridge",
                    rx_sw_if_index=index,
                    bd_id=bd_id,
                    port_type=0,
                    shg=0,
                    enable=True,
                )
            except VppError:
                self._ignore_errors(lambda: self._delete_bridge_domain_if_empty(bd_id))
                raise
        return {"mode": "l2", "bridge_domain": bd_id}

    def _add_bridge_domain(self, bd_id: int) -> None:
        try:
            self.client.call(
                self._bd_add_del_msg,
                bd_id=bd_id,
                flood=True,
                uu_flood=True,
                forward=True,
                learn=True,
                arp_term=False,
                arp_ufwd=False,
                mac_age=0,
                bd_tag=BRIDGE_DOMAIN_TAG,
                is_add=True,
            )
        except VppApiError as err:
            if err.retval != ERR_BD_ALREADY_EXISTS:  # else another ADD made it a moment ago
                raise

    # -- DEL and CHECK ------------------------------------------------------------------------

    def delete_port(self, ref: PortRef) -> None:
        with _mapped(f"deleting {ref.name or ref.socket_path}"):
            found = self._find(ref)
            index = int(found.sw_if_index) if found is not None else None
            mode, bd_id = self._wiring_of(ref)
            if index is not None:
                self._tolerate(ERR_INVALID_SW_IF_INDEX, "sw_interface_set_flags", sw_if_index=index, flags=0)
            wiring = ref.wiring if ref.wiring_confirmed or index is None else self._wiring_on(index)
            if mode == "l3" and wiring is not None:
                self._unwire_l3(ref, wiring, index)
            with contextlib.ExitStack() as node_lock:
                if mode == "l2" and bd_id is not None:
                    node_lock.enter_context(_file_lock(self.options.setup_lock))
                if mode == "l2" and index is not None and bd_id is not None:
                    self._tolerate(
                        ERR_INVALID_SW_IF_INDEX,
                        "sw_interface_set_l2_bridge",
                        rx_sw_if_index=index,
                        bd_id=bd_id,
                        port_type=0,
                        shg=0,
                        enable=False,
                    )
                if index is not None:
                    self._tolerate(ERR_INVALID_SW_IF_INDEX, "delete_vhost_user_if", sw_if_index=index)
                    log.info("deleted %s (sw_if_index %d)", found.interface_name if found else "", index)
                else:
                    log.info("no VPP interface for %s; nothing to delete", ref.socket_path)
                if mode == "l2" and bd_id is not None:
                    self._delete_bridge_domain_if_empty(bd_id)

    def _wiring_on(self, index: int) -> Wiring | None:
        """The pod's address as VPP has it: the static neighbour on the port ADD made."""
        neighbours = self.client.dump("ip_neighbor_dump", sw_if_index=index, af=0)
        static = [n.neighbor for n in neighbours if int(n.neighbor.flags) & NEIGHBOR_STATIC]
        if not static:
            return None
        return Wiring(pod_ip=str(static[0].ip_address), pod_mac=str(static[0].mac_address))

    def _wiring_of(self, ref: PortRef) -> tuple[str, int | None]:
        """How the port was wired: as the record says, else (an ADD rolling back before its
        record was written) as this backend was configured to wire it."""
        mode = str(ref.handle.get("mode", self.options.mode))
        bd_id = ref.handle.get("bridge_domain", self.options.bridge_domain)
        return mode, int(bd_id) if bd_id is not None else None

    def _unwire_l3(self, ref: PortRef, wiring: Wiring, index: int | None) -> None:
        if index is not None:
            self._tolerate(
                ERR_NO_SUCH_ENTRY, "ip_neighbor_add_del", is_add=False, neighbor=pod_neighbor(wiring, index)
            )
        # Also when the interface is gone: VPP keeps its routes, pointing at an index that
        # the next port will get, or (after a restart) at one that does not exist.
        recorded = ref.handle.get("sw_if_index")
        remove_pod_route(self.client, wiring.pod_ip, index, int(recorded) if recorded is not None else None)
        loop = self._interface_named(str(ref.handle.get("unnumbered_to", self.options.unnumbered_to)))
        if index is not None and loop is not None:
            self._set_unnumbered(int(loop.sw_if_index), index, False)

    def _delete_bridge_domain_if_empty(self, bd_id: int) -> None:
        """Only domains the plugin made (by tag): an operator's domain stays, empty or not."""
        domains = self.client.dump("bridge_domain_dump", bd_id=bd_id, sw_if_index=ANY_INDEX)
        if domains and domains[0].bd_tag == BRIDGE_DOMAIN_TAG and int(domains[0].n_sw_ifs) == 0:
            self._tolerate(
                ERR_BD_IN_USE, self._bd_add_del_msg or "bridge_domain_add_del", bd_id=bd_id, is_add=False
            )

    def inspect(self, ref: PortRef) -> PortState | None:
        with _mapped(f"looking up {ref.name}"):
            found = self._find(ref)
            if found is None:
                return None
            problems = self._wiring_problems(ref, int(found.sw_if_index))
        return PortState(
            name=found.interface_name,
            mac=str(found.l2_address),
            admin_up=bool(int(found.flags) & ADMIN_UP),
            wiring_problems=tuple(problems),
        )

    def _wiring_problems(self, ref: PortRef, index: int) -> list[str]:
        """Checks made with per-interface or per-prefix lookups only, since CRI-O runs CHECK
        after every ADD: for L3 the borrowed gateway address, the static neighbour and where
        VPP forwards the pod's /32, for L2 the membership."""
        mode, bd_id = self._wiring_of(ref)
        if mode == "l3" and ref.wiring is not None:
            problems = []
            lender_problem = self._lender_problem(index, str(ref.handle.get("unnumbered_to", "")))
            if lender_problem:
                problems.append(lender_problem)
            neighbours = self.client.dump("ip_neighbor_dump", sw_if_index=index, af=0)
            wanted = (ref.wiring.pod_ip, ref.wiring.pod_mac)
            if wanted not in {(str(n.neighbor.ip_address), str(n.neighbor.mac_address)) for n in neighbours}:
                problems.append(f"no static neighbour {wanted[0]} -> {wanted[1]}")
            route_problem = self._pod_route_problem(ref.wiring.pod_ip, index)
            if route_problem:
                problems.append(route_problem)
            return problems
        if mode == "l2" and bd_id is not None:
            domains = self.client.dump("bridge_domain_dump", bd_id=bd_id, sw_if_index=ANY_INDEX)
            members = {int(m.sw_if_index) for m in domains[0].sw_if_details} if domains else set()
            if index not in members:
                return [f"not a member of bridge domain {bd_id}"]
        return []

    def _lender_problem(self, index: int, unnumbered_to: str) -> str | None:
        """Without its borrowed address VPP drops the pod's IPv4 traffic: the port must be
        unnumbered to the gateway interface ADD chose (by name, or our tag on a loopback
        VPP named otherwise)."""
        wanted = unnumbered_to or self.options.unnumbered_to
        found = self.client.dump("ip_unnumbered_dump", sw_if_index=index)
        lenders = [int(d.ip_sw_if_index) for d in found if int(d.sw_if_index) == index]
        if not lenders:
            return f"not unnumbered to {wanted}"
        lender = self._interface(lenders[0])
        if lender is None or (wanted != lender.interface_name and lender.tag != _gateway_tag(wanted)):
            name = lender.interface_name if lender is not None else f"sw_if_index {lenders[0]}"
            return f"unnumbered to {name}, not {wanted}"
        return None

    def _pod_route_problem(self, pod_ip: str, index: int) -> str | None:
        """VPP must forward <pod-ip>/32 to the port. The exact entry may come from our route
        or from the static neighbour (an attached host route): either way it has to lead to
        this interface, not to another one (a stale route left by a deleted port whose
        index was reused, or an operator's)."""
        try:
            found = self.client.call("ip_route_lookup", table_id=0, exact=1, prefix=f"{pod_ip}/32")
        except VppApiError as err:
            if err.retval != ERR_NO_SUCH_ENTRY:
                raise
            return f"no route {pod_ip}/32"
        via = {int(path.sw_if_index) for path in found.route.paths[: found.route.n_paths]}
        if index not in via:
            return f"{pod_ip}/32 is routed via sw_if_index {sorted(via)}, not the port's {index}"
        return None

    def _find(self, ref: PortRef) -> Any:
        """Our interface for `ref`: by name, confirmed by tag and socket path; else (after a VPP
        restart or a restore renamed it) by tag among the vhost-user interfaces."""
        if ref.name:
            candidate = self._interface_named(ref.name)
            if candidate is not None and self._is_ours(candidate, ref):
                return candidate
        for candidate in self._interfaces_named_like(VHOST_NAME_PREFIX):
            if self._is_ours(candidate, ref):
                return candidate
        return None

    def _is_ours(self, details: Any, ref: PortRef) -> bool:
        if details.tag != ref.tag:
            return False
        vhost = self.client.dump("sw_interface_vhost_user_dump", sw_if_index=int(details.sw_if_index))
        return bool(vhost) and vhost[0].sock_filename == ref.socket_path

    # -- lookups and small steps ----------------------------------------------------------------

    def _interface(self, index: int) -> Any:
        found = self.client.dump(
            "sw_interface_dump", sw_if_index=index, name_filter_valid=False, name_filter=""
        )
        return next((d for d in found if int(d.sw_if_index) == index), None)

    def _interface_named(self, name: str) -> Any:
        return next((d for d in self._interfaces_named_like(name) if d.interface_name == name), None)

    def _interfaces_named_like(self, name: str) -> list[Any]:
        found: list[Any] = self.client.dump(
            "sw_interface_dump", sw_if_index=ANY_INDEX, name_filter_valid=True, name_filter=name
        )
        return found

    def _set_unnumbered(self, loop_index: int, index: int, is_add: bool) -> None:
        self._tolerate(
            ERR_INVALID_SW_IF_INDEX,
            "sw_interface_set_unnumbered",
            sw_if_index=loop_index,
            unnumbered_sw_if_index=index,
            is_add=is_add,
        )

    def _tolerate(self, retval: int, message: str, **fields: Any) -> None:
        """A call whose `retval` means "already as wanted" (gone, absent): fine in DEL."""
        try:
            self.client.call(message, **fields)
        except VppApiError as err:
            if err.retval != retval:
                raise
            log.debug("%s: already done (%s)", message, err)

    def _ignore_errors(self, step: Callable[[], object]) -> None:
        try:
            step()
        except (VppError, BackendError) as err:
            log.error("rollback step failed: %s", err)


@contextlib.contextmanager
def _file_lock(path: str) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _gateway_tag(name: str) -> str:
    """The tag of a loopback we made to stand for `unnumbered_to` `name` (VPP names it loopN)."""
    return f"{GATEWAY_TAG_PREFIX}{name}"


def remove_pod_route(client: VppClient, pod_ip: str, port_index: int | None, added_via: int | None) -> bool:
    """Removes <pod_ip>/32 unless it now leads to an interface some other pod or operator
    wired for that address. Returns whether a route was removed.

    The route is ours to remove when each of its paths leads to the port (`port_index`),
    to an index that no longer exists (the port was deleted, or VPP restarted), or to the
    index ADD routed it through (`added_via`) if the interface there now is not wired for
    the address (no neighbour for it: VPP reused the index for another pod). A route that
    leads to another interface holding the address is left, with a warning.

    The delete names no path (n_paths 0 removes the API's entry as a whole): VPP decodes
    every path first and refuses one through a vanished index with -54
    (NO_MATCHING_INTERFACE), keeping the route.
    """
    via = _route_paths(client, pod_ip)
    if via is None:
        return False
    foreign = [
        index for index in via if index != port_index and not _stale_path(client, index, pod_ip, added_via)
    ]
    if foreign:
        log.warning("left %s/32: it leads to sw_if_index %s, wired for it by someone else", pod_ip, foreign)
        return False
    route = {"table_id": 0, "stats_index": 0, "prefix": f"{pod_ip}/32", "n_paths": 0, "paths": []}
    client.call("ip_route_add_del", is_add=False, is_multipath=False, route=route)
    return True


def _route_paths(client: VppClient, pod_ip: str) -> list[int] | None:
    """The interfaces <pod_ip>/32's exact entry leads to, or None when there is none."""
    try:
        found = client.call("ip_route_lookup", table_id=0, exact=1, prefix=f"{pod_ip}/32")
    except VppApiError as err:
        if err.retval != ERR_NO_SUCH_ENTRY:
            raise
        return None
    return [int(path.sw_if_index) for path in found.route.paths[: found.route.n_paths]]


def _stale_path(client: VppClient, index: int, pod_ip: str, added_via: int | None) -> bool:
    alive = client.dump("sw_interface_dump", sw_if_index=index, name_filter_valid=False, name_filter="")
    if not any(int(d.sw_if_index) == index for d in alive):
        return True
    if index != added_via:
        return False
    neighbours = client.dump("ip_neighbor_dump", sw_if_index=index, af=0)
    return all(str(n.neighbor.ip_address) != pod_ip for n in neighbours)


def pod_route(wiring: Wiring, index: int) -> dict[str, Any]:
    """`ip_route_add_del`'s route: <pod-ip>/32 via the port (vpp_papi wants all 16 labels)."""
    path = {
        "sw_if_index": index,
        "table_id": 0,
        "rpf_id": 0,
        "weight": 0,
        "preference": 0,
        "type": 0,
        "flags": 0,
        "proto": PATH_NH_PROTO_IP4,
        "nh": {"address": {"ip4": wiring.pod_ip}, "via_label": 0, "obj_id": 0, "classify_table_index": 0},
        "n_labels": 0,
        "label_stack": [_EMPTY_LABEL] * 16,
    }
    return {"table_id": 0, "stats_index": 0, "prefix": f"{wiring.pod_ip}/32", "n_paths": 1, "paths": [path]}


def pod_neighbor(wiring: Wiring, index: int) -> dict[str, Any]:
    """`ip_neighbor_add_del`'s static entry pod-ip -> pod-mac on the port."""
    return {
        "sw_if_index": index,
        "flags": NEIGHBOR_STATIC,
        "mac_address": wiring.pod_mac,
        "ip_address": wiring.pod_ip,
    }


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
