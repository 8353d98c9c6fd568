"""The seam between the plugin and whatever configures VPP.

A backend knows VPP (or a tool that does) and nothing of CNI: it gets socket
paths, tags, addresses; it raises `BackendError`s, which the plugin turns into
CNI codes. Every method that removes something treats "already gone" as done,
because DEL must succeed however often it runs.

Call order in ADD, with rollback by `delete_port` after any failure:

    port = backend.create_port(PortSpec(socket_path, tag))   # up, MAC known
    undo = backend.wire(port, Wiring(pod_ips, pod_mac))      # what DEL needs, kept in the record
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol

# A shared, read-only empty handle: NamedTuple defaults are shared between instances.
NO_HANDLE: Mapping[str, Any] = MappingProxyType({})


class BackendError(Exception):
    """VPP or the tool refused or failed; `details` carries their own words."""

    def __init__(self, msg: str, details: str = "") -> None:
        super().__init__(f"{msg}: {details}" if details else msg)
        self.msg = msg
        self.details = details


class BackendUnavailable(BackendError):
    """VPP (or the tool) cannot be reached right now; worth trying again later."""


class BackendMisconfigured(BackendError):
    """The configuration cannot work with this VPP or tool; retrying will not help."""


class PortSpec(NamedTuple):
    socket_path: str
    tag: str
    is_server: bool = True


class Port(NamedTuple):
    """A port as VPP knows it. `handle` is the backend's own bookkeeping, saved in
    the record for operators; DEL never trusts it alone (VPP reuses indexes)."""

    name: str
    mac: str
    handle: Mapping[str, Any] = NO_HANDLE


class Wiring(NamedTuple):
    """The pod's side of L3: every address IPAM gave it (IPv4 and IPv6, IPAM's order), its
    MAC, and the gateways with their subnets' lengths (e.g. 10.56.217.1/24, fd00:56::1/64)
    that the interface the port borrows from must carry."""

    pod_ips: tuple[str, ...]
    pod_mac: str
    gateway_cidrs: tuple[str, ...] = ()


class PortRef(NamedTuple):
    """What DEL and CHECK know about a port: whatever the record kept. `wiring_confirmed` is
    false for a record taken over from a pod's directory: its address is then the pod's
    word, and DEL unwires what VPP has on the port instead."""

    name: str
    socket_path: str
    tag: str
    wiring: Wiring | None = None
    handle: Mapping[str, Any] = NO_HANDLE
    wiring_confirmed: bool = True


class PortState(NamedTuple):
    name: str
    mac: str
    admin_up: bool | None  # None: the backend cannot tell
    wiring_problems: tuple[str, ...] = ()  # how the wiring differs from what ADD made


class PortBackend(Protocol):
    name: str

    def create_port(self, spec: PortSpec) -> Port: ...

    def wire(self, port: Port, wiring: Wiring) -> Mapping[str, Any]:
        """Returns the port's handle with what DEL needs to undo the wiring added, for the
        record; a failure undoes its own steps."""

    def delete_port(self, ref: PortRef) -> None: ...

    def inspect(self, ref: PortRef) -> PortState | None: ...

    def status(self) -> None:
        """Raises BackendUnavailable when ADD could not work right now."""

    def close(self) -> None: ...
