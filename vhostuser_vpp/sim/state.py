"""What the emulated VPP knows: interfaces, vhost-user ports, addresses, routes, neighbours,
bridge domains and event subscribers.

Every rule here reproduces something observed on a real VPP 26.06 (see the reference
README): index reuse order, retvals, which state survives an interface's deletion. Methods
return VPP retvals instead of raising, because a wrong retval is itself a fidelity bug the
tests must be able to see. Nothing here does I/O except through `VhostSockets`, so the rules
can be read (and tested) apart from the socket plumbing.
"""

from __future__ import annotations

import ipaddress
import os
import time
from dataclasses import dataclass, field
from typing import Protocol

from vhostuser_vpp.sim import retvals as rv
from vhostuser_vpp.sim.fib import (
    ANY_INDEX,
    PATH_TYPE_LOCAL,
    SOURCE_ADJ,
    SOURCE_API,
    SOURCE_INTERFACE,
    Adjacencies,
    Fib,
    FibPath,
    IPAddress,
    IPNetwork,
    zero_address,
)
from vhostuser_vpp.sim.pools import IndexPool, LowestFree
from vhostuser_vpp.sim.profile_data import AS_26_06, ReleaseBehaviour

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

FLAG_ADMIN_UP = 1
FLAG_LINK_UP = 2
DEFAULT_MTU = 9000
MAX_TAG_BYTES = 63
VHOST_NAME_PREFIX = "VirtualEthernet0/0/"
# What a DPDK virtio_user frontend negotiated with VPP 26.06 in the reference transcript.
NEGOTIATED_FEATURES_FIRST_32 = 1342210048
NEGOTIATED_FEATURES_LAST_32 = 1
NEGOTIATED_NET_HDR_SZ = 12
NEIGHBOR_FLAG_NO_FIB_ENTRY = 2
MAX_BD_ID = (1 << 24) - 1
DEFAULT_BD_FLAGS = {"flood": True, "uu_flood": True, "forward": True, "learn": True}


class VhostSockets(Protocol):
    """The socket side of vhost-user ports, owned by the server's event loop."""

    def listen(self, sw_if_index: int, path: str) -> int:
        """Unlink `path`, bind and listen like VPP does; 0 or the failing errno."""

    def connect(self, sw_if_index: int, path: str) -> int:
        """Client mode: try to reach a listener now and keep retrying; 0 or errno."""

    def close(self, sw_if_index: int, path: str, unlink: bool) -> None:
        """Stop listening or connecting for that port; unlink `path` if asked."""


class NoSockets:
    """For state used without an event loop: every socket operation succeeds, none happens."""

    def listen(self, sw_if_index: int, path: str) -> int:
        return 0

    def connect(self, sw_if_index: int, path: str) -> int:
        return 0

    def close(self, sw_if_index: int, path: str, unlink: bool) -> None:
        return None


@dataclass
class VhostPort:
    instance: int
    sock_filename: str
    is_server: bool
    sock_errno: int = 0
    num_regions: int = 0
    virtio_net_hdr_sz: int = 0
    features_first_32: int = 0
    features_last_32: int = 0
    enable_gso: bool = False
    enable_packed: bool = False
    enable_event_idx: bool = False
    frontend_connected: bool = False


@dataclass
class Interface:
    sw_if_index: int
    name: str
    dev_type: str
    mac: str
    link_mtu: int = DEFAULT_MTU
    mtu: list[int] = field(default_factory=lambda: [DEFAULT_MTU, 0, 0, 0])
    admin_up: bool = False
    link_up: bool = False
    tag: str = ""
    addresses: list[IPInterface] = field(default_factory=list)
    unnumbered_via: int | None = None
    # VPP counts IPv6 enables (ip6_link locks): explicit ones and one per IPv6 address.
    ip6_locks: int = 0
    # FIB entry and adjacency indexes VPP's IPv6 link of this interface holds, and the
    # adjacency of its IPv6 glean (while it has an IPv6 address).
    ip6_link_held: tuple[list[int], list[int]] | None = None
    ip6_glean: list[int] = field(default_factory=list)
    vhost: VhostPort | None = None
    loop_instance: int | None = None
    # Stats segment path (`/if/rx/packets`, `/if/drops`, ...) -> value; set by tests.
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def flags(self) -> int:
        return (FLAG_ADMIN_UP if self.admin_up else 0) | (FLAG_LINK_UP if self.link_up else 0)


@dataclass
class PacketTrace:
    """The packet tracer: `trace add <node> <n>` arms it for n packets at that node; the
    packets are what tests make it see (`Emulator.trace`), each as VPP prints it."""

    node: str = ""
    left: int = 0
    packets: list[str] = field(default_factory=list)


@dataclass
class Neighbor:
    sw_if_index: int
    ip: IPAddress
    mac: str
    flags: int
    adj_index: int
    updated: float


@dataclass
class BridgeMember:
    sw_if_index: int
    shg: int
    port_type: int


@dataclass
class BridgeDomain:
    bd_id: int
    bd_index: int
    flood: bool = True
    uu_flood: bool = True
    forward: bool = True
    learn: bool = True
    arp_term: bool = False
    arp_ufwd: bool = False
    mac_age: int = 0
    bd_tag: str = ""
    members: list[BridgeMember] = field(default_factory=list)
    bvi_sw_if_index: int = ANY_INDEX


@dataclass(frozen=True)
class InterfaceEvent:
    sw_if_index: int
    flags: int
    deleted: bool


@dataclass(frozen=True)
class VhostSpec:
    """The create/modify arguments that matter to the model."""

    sock_filename: str
    is_server: bool
    renumber: bool = False
    custom_dev_instance: int = 0
    use_custom_mac: bool = False
    mac: str = "00:00:00:00:00:00"
    tag: str = ""
    enable_gso: bool = False
    enable_packed: bool = False
    enable_event_idx: bool = False


def random_vhost_mac() -> str:
    """VPP's vhost-user MAC: 02:fe plus four random bytes."""
    tail = os.urandom(4)
    return "02:fe:" + ":".join(f"{byte:02x}" for byte in tail)


class VppState:
    def __init__(self, sockets: VhostSockets | None = None, behaviour: ReleaseBehaviour = AS_26_06) -> None:
        self.sockets: VhostSockets = sockets or NoSockets()
        self.behaviour = behaviour
        # `show clock`'s "Time now": seconds since this VPP started.
        self.booted = time.monotonic()
        self.interfaces: dict[int, Interface] = {}
        self._sw_if_pool = IndexPool()
        self._vhost_pool = IndexPool()
        self._loop_instances = LowestFree()
        self._bd_indexes = LowestFree(first=1)
        self.fib = Fib()
        self.adjacencies = Adjacencies()
        self.neighbors: dict[tuple[int, IPAddress], Neighbor] = {}
        self.bridge_domains: dict[int, BridgeDomain] = {}
        self.event_subscribers: dict[int, int] = {}
        self.pending_events: list[InterfaceEvent] = []
        # `/err/<node>/<reason>` -> packets, as tests make VPP count them.
        self.errors: dict[str, int] = {}
        self.trace = PacketTrace()
        local0 = Interface(
            sw_if_index=self._sw_if_pool.get(),
            name="local0",
            dev_type="local",
            mac="00:00:00:00:00:00",
            link_mtu=0,
            mtu=[0, 0, 0, 0],
        )
        self.interfaces[local0.sw_if_index] = local0

    # -- helpers ---------------------------------------------------------------------------
    def _event(self, sw_if_index: int, flags: int, deleted: bool = False) -> None:
        if self.event_subscribers:
            self.pending_events.append(InterfaceEvent(sw_if_index, flags, deleted))

    def take_events(self) -> list[InterfaceEvent]:
        events, self.pending_events = self.pending_events, []
        return events

    def vhost_interfaces(self) -> list[Interface]:
        ports = [i for i in self.interfaces.values() if i.vhost is not None]
        return sorted(ports, key=lambda i: i.vhost.instance if i.vhost else 0)

    def _add_interface(self, name: str, dev_type: str, mac: str) -> Interface:
        iface = Interface(sw_if_index=self._sw_if_pool.get(), name=name, dev_type=dev_type, mac=mac)
        self.interfaces[iface.sw_if_index] = iface
        self._event(iface.sw_if_index, 0)
        return iface

    # -- interfaces ------------------------------------------------------------------------
    def create_loopback(self, mac: str) -> tuple[int, int]:
        instance = self._loop_instances.get()
        if mac == "00:00:00:00:00:00":
            mac = f"de:ad:00:00:00:{instance & 0xFF:02x}"
        iface = self._add_interface(f"loop{instance}", "Loopback", mac)
        iface.loop_instance = instance
        return rv.OK, iface.sw_if_index

    def delete_loopback(self, sw_if_index: int) -> int:
        iface = self.interfaces.get(sw_if_index)
        if iface is None or iface.dev_type != "Loopback" or iface.loop_instance is None:
            return rv.INVALID_SW_IF_INDEX
        self._delete_interface(iface)
        self._loop_instances.put(iface.loop_instance)
        return rv.OK

    def set_flags(self, sw_if_index: int, flags: int) -> int:
        iface = self.interfaces.get(sw_if_index)
        if iface is None:
            return rv.INVALID_SW_IF_INDEX
        admin_up = bool(flags & FLAG_ADMIN_UP)
        if admin_up == iface.admin_up:
            return rv.OK
        iface.admin_up = admin_up
        # VPP adds an interface's address routes on admin up (IPv6's first) and removes them on
        # admin down.
        for address in sorted(iface.addresses, key=lambda a: a.version != 6):
            self._interface_routes(iface, address, add=admin_up)
        self._event(sw_if_index, FLAG_ADMIN_UP if admin_up else 0)
        if iface.dev_type == "Loopback":
            self._set_link(iface, admin_up)
        return rv.OK

    def _set_link(self, iface: Interface, up: bool) -> None:
        if iface.link_up != up:
            iface.link_up = up
            self._event(iface.sw_if_index, FLAG_LINK_UP if up else 0)

    def set_tag(self, sw_if_index: int, tag: str, is_add: bool) -> int:
        iface = self.interfaces.get(sw_if_index)
        if iface is None:
            return rv.INVALID_SW_IF_INDEX
        if is_add and not tag:
            return rv.INVALID_VALUE
        iface.tag = tag[:MAX_TAG_BYTES] if is_add else ""
        return rv.OK

    def set_mac(self, sw_if_index: int, mac: str) -> int:
        iface = self.interfaces.get(sw_if_index)
        if iface is None or sw_if_index == 0:
            return rv.INVALID_SW_IF_INDEX
        iface.mac = mac
        return rv.OK

    def set_mtu(self, sw_if_index: int, mtu: list[int]) -> int:
        iface = self.interfaces.get(sw_if_index)
        if iface is None:
            return rv.INVALID_SW_IF_INDEX
        if any(value > iface.link_mtu for value in mtu):
            return rv.INVALID_VALUE
        iface.mtu = [new or old for new, old in zip(mtu, iface.mtu, strict=True)]
        return rv.OK

    def _ip4_enabled(self, iface: Interface) -> bool:
        return iface.unnumbered_via is not None or any(a.version == 4 for a in iface.addresses)

    def add_del_address(self, sw_if_index: int, address: IPInterface, is_add: bool, del_all: bool) -> int:
        iface = self.interfaces.get(sw_if_index)
        if iface is None:
            return rv.INVALID_SW_IF_INDEX
        if del_all:
            for existing in list(iface.addresses):
                self._remove_address(iface, existing)
            return rv.OK
        if not is_add:
            if address not in iface.addresses:
                return rv.ADDRESS_NOT_FOUND_FOR_INTERFACE
            self._remove_address(iface, address)
            return rv.OK
        for other in self.interfaces.values():
            for existing in other.addresses:
                if existing.version != address.version:
                    continue
                overlap = existing.network.overlaps(address.network)
                same_subnet_here = (
                    other is iface
                    and existing.network.prefixlen == address.network.prefixlen
                    and existing.ip != address.ip
                )
                if overlap and not same_subnet_here:
                    return rv.DUPLICATE_IF_ADDRESS if address.version == 6 else rv.ADDRESS_IN_USE
        iface.addresses.append(address)
        self._address_added(iface, address)
        return rv.OK

    def _address_added(self, iface: Interface, address: IPInterface) -> None:
        if address.version == 6:
            self._lock_ip6(iface)
            if not iface.ip6_glean:
                iface.ip6_glean = self.adjacencies.hold(1)
        else:
            self.adjacencies.ensure_glean(iface.sw_if_index)
        if iface.admin_up:
            self._interface_routes(iface, address, add=True)

    def _remove_address(self, iface: Interface, address: IPInterface) -> None:
        iface.addresses.remove(address)
        if address.version == 6 and iface.ip6_locks:
            self._unlock_ip6(iface)
        if address.version == 6 and all(a.version == 4 for a in iface.addresses):
            self.adjacencies.release(iface.ip6_glean)
            iface.ip6_glean = []
        self._interface_routes(iface, address, add=False)
        if not self._ip4_enabled(iface):
            self.adjacencies.drop_glean(iface.sw_if_index)

    def _interface_routes(self, iface: Interface, address: IPInterface, add: bool) -> None:
        """The receive /32, the connected subnet and (IPv4) its network and broadcast drops."""
        is_ip6 = address.version == 6
        host_len = 128 if is_ip6 else 32
        network = address.network
        host = ipaddress.ip_network(f"{address.ip}/{host_len}")
        proto = int(is_ip6)
        local = FibPath(sw_if_index=iface.sw_if_index, nh=address.ip, type=PATH_TYPE_LOCAL, proto=proto)
        routes: list[tuple[IPNetwork, list[FibPath], IPAddress]] = []
        if network.prefixlen < host_len:
            attached = FibPath(sw_if_index=iface.sw_if_index, nh=zero_address(is_ip6), proto=proto)
            routes.append((network, [attached], address.ip))
        if not is_ip6 and network.prefixlen < host_len - 1:
            for edge in (network.network_address, network.broadcast_address):
                routes.append((ipaddress.ip_network(f"{edge}/32"), [FibPath.drop(False)], edge))
        receive = (host, [local], address.ip)
        routes = [receive, *routes] if self.behaviour.local_route_first else [*routes, receive]
        for prefix, paths, wire_address in routes:
            if add:
                self.fib.set_source(prefix, SOURCE_INTERFACE, paths, address=wire_address)
            else:
                self.fib.remove_source(prefix, SOURCE_INTERFACE)

    def ip6_enable_disable(self, sw_if_index: int, enable: bool) -> int:
        """As VPP's ip6_link: enabling an enabled interface answers -81 but still counts, and
        IPv6 goes off with the last disable; disabling a disabled one is -62."""
        iface = self.interfaces.get(sw_if_index)
        if iface is None:
            return rv.INVALID_SW_IF_INDEX
        if enable:
            self._lock_ip6(iface)
            return rv.VALUE_EXIST if iface.ip6_locks > 1 else rv.OK
        if iface.ip6_locks == 0:
            return rv.IP6_NOT_ENABLED
        self._unlock_ip6(iface)
        return rv.OK

    def _lock_ip6(self, iface: Interface) -> None:
        """The first lock makes the interface's IPv6 link: VPP gives it three entries of its
        link-local and multicast tables and two adjacencies, which show in the stats_index
        of what comes after."""
        iface.ip6_locks += 1
        if iface.ip6_link_held is None:
            iface.ip6_link_held = (self.fib.hold_entries(3), self.adjacencies.hold(2))

    def _unlock_ip6(self, iface: Interface) -> None:
        iface.ip6_locks -= 1
        if iface.ip6_locks == 0:
            self._drop_ip6_link(iface)

    def _drop_ip6_link(self, iface: Interface) -> None:
        held, iface.ip6_link_held = iface.ip6_link_held, None
        iface.ip6_locks = 0
        if held is not None:
            self.fib.release_entries(held[0])
            self.adjacencies.release(held[1])

    def set_unnumbered(self, sw_if_index: int, unnumbered_sw_if_index: int, is_add: bool) -> int:
        # VPP checks the borrower first (-2), then the lender (-10, "sw_if_index #2").
        if unnumbered_sw_if_index not in self.interfaces:
            return rv.INVALID_SW_IF_INDEX
        if sw_if_index not in self.interfaces:
            return rv.INVALID_SW_IF_INDEX_2
        borrower = self.interfaces[unnumbered_sw_if_index]
        if is_add:
            borrower.unnumbered_via = sw_if_index
            self.adjacencies.ensure_glean(unnumbered_sw_if_index)
        elif borrower.unnumbered_via is not None:
            borrower.unnumbered_via = None
            if not self._ip4_enabled(borrower):
                self.adjacencies.drop_glean(unnumbered_sw_if_index)
        return rv.OK

    # -- vhost-user ------------------------------------------------------------------------
    def create_vhost(self, spec: VhostSpec) -> tuple[int, int]:
        if not spec.sock_filename:
            return rv.INVALID_ARGUMENT, ANY_INDEX
        for iface in self.interfaces.values():
            if iface.vhost is not None and iface.vhost.sock_filename == spec.sock_filename:
                return rv.IF_ALREADY_EXISTS, iface.sw_if_index
        if spec.renumber and self._instance_in_use(spec.custom_dev_instance):
            return rv.INSTANCE_IN_USE, ANY_INDEX
        sw_if_index = self._sw_if_pool.get()
        sock_errno = self._open_socket(sw_if_index, spec)
        if spec.is_server and sock_errno:
            self._sw_if_pool.put(sw_if_index)
            return rv.SYSCALL_ERROR_2, ANY_INDEX
        if spec.renumber:
            instance = spec.custom_dev_instance
            self._vhost_pool.take(instance)
        else:
            instance = self._vhost_pool.get()
        mac = spec.mac if spec.use_custom_mac else random_vhost_mac()
        iface = Interface(
            sw_if_index=sw_if_index, name=f"{VHOST_NAME_PREFIX}{instance}", dev_type="vhost-user", mac=mac
        )
        iface.tag = spec.tag[:MAX_TAG_BYTES]
        iface.vhost = VhostPort(
            instance=instance,
            sock_filename=spec.sock_filename,
            is_server=spec.is_server,
            sock_errno=sock_errno,
            enable_gso=spec.enable_gso,
            enable_packed=spec.enable_packed,
            enable_event_idx=spec.enable_event_idx,
        )
        self.interfaces[sw_if_index] = iface
        self._event(sw_if_index, 0)
        return rv.OK, sw_if_index

    def _instance_in_use(self, instance: int) -> bool:
        return any(i.vhost is not None and i.vhost.instance == instance for i in self.interfaces.values())

    def _open_socket(self, sw_if_index: int, spec: VhostSpec) -> int:
        if spec.is_server:
            return self.sockets.listen(sw_if_index, spec.sock_filename)
        return self.sockets.connect(sw_if_index, spec.sock_filename)

    def modify_vhost(self, sw_if_index: int, spec: VhostSpec) -> int:
        iface = self.interfaces.get(sw_if_index)
        if iface is None or iface.vhost is None:
            return rv.INVALID_SW_IF_INDEX
        if not spec.sock_filename:
            return rv.INVALID_ARGUMENT
        port = iface.vhost
        self._frontend_gone(iface)
        self.sockets.close(sw_if_index, port.sock_filename, unlink=port.is_server)
        sock_errno = self._open_socket(sw_if_index, spec)
        port.sock_filename = spec.sock_filename
        port.is_server = spec.is_server
        port.sock_errno = sock_errno
        port.enable_gso = spec.enable_gso
        port.enable_packed = spec.enable_packed
        port.enable_event_idx = spec.enable_event_idx
        if spec.is_server and sock_errno:
            return rv.SYSCALL_ERROR_2
        return rv.OK

    def delete_vhost(self, sw_if_index: int) -> int:
        iface = self.interfaces.get(sw_if_index)
        if iface is None or iface.vhost is None:
            return rv.INVALID_SW_IF_INDEX
        port = iface.vhost
        self.sockets.close(sw_if_index, port.sock_filename, unlink=port.is_server)
        self._delete_interface(iface)
        self._vhost_pool.put(port.instance)
        return rv.OK

    def _delete_interface(self, iface: Interface) -> None:
        """Flush what VPP flushes with an interface; API routes through it stay behind (and
        neighbours too, in releases that do not flush them)."""
        index = iface.sw_if_index
        for key in [k for k in self.neighbors if k[0] == index and self.behaviour.flushes_neighbours]:
            self._remove_neighbor(key)
        for address in list(iface.addresses):
            self._remove_address(iface, address)
        self._drop_ip6_link(iface)
        self.adjacencies.drop_glean(index)
        for bd in self.bridge_domains.values():
            self._remove_member(bd, index)
        for other in self.interfaces.values():
            if other.unnumbered_via == index:
                other.unnumbered_via = None
        del self.interfaces[index]
        self._sw_if_pool.put(index)
        self._event(index, 0, deleted=True)

    def frontend_connected(self, sw_if_index: int, link_up: bool = True) -> bool:
        """A frontend finished negotiation and sent its memory table."""
        iface = self.interfaces.get(sw_if_index)
        if iface is None or iface.vhost is None:
            return False
        port = iface.vhost
        port.frontend_connected = True
        port.sock_errno = 0
        port.num_regions = 1
        port.virtio_net_hdr_sz = NEGOTIATED_NET_HDR_SZ
        port.features_first_32 = NEGOTIATED_FEATURES_FIRST_32
        port.features_last_32 = NEGOTIATED_FEATURES_LAST_32
        if link_up:
            self._set_link(iface, True)
        return True

    def frontend_link_up(self, sw_if_index: int) -> bool:
        iface = self.interfaces.get(sw_if_index)
        if iface is None or iface.vhost is None or not iface.vhost.frontend_connected:
            return False
        self._set_link(iface, True)
        return True

    def frontend_disconnected(self, sw_if_index: int, sock_errno: int = 0) -> bool:
        iface = self.interfaces.get(sw_if_index)
        if iface is None or iface.vhost is None:
            return False
        self._frontend_gone(iface)
        iface.vhost.sock_errno = sock_errno
        return True

    def _frontend_gone(self, iface: Interface) -> None:
        """Features stay as negotiated (as VPP shows them); the memory table and link go."""
        if iface.vhost is not None:
            iface.vhost.frontend_connected = False
            iface.vhost.num_regions = 0
        self._set_link(iface, False)

    def set_sock_errno(self, sw_if_index: int, sock_errno: int) -> None:
        iface = self.interfaces.get(sw_if_index)
        if iface is not None and iface.vhost is not None and not iface.vhost.frontend_connected:
            iface.vhost.sock_errno = sock_errno

    # -- routes ----------------------------------------------------------------------------
    def route_add_del(
        self, prefix: IPNetwork, paths: list[FibPath], is_add: bool, is_multipath: bool, table_id: int
    ) -> tuple[int, int]:
        if not self.fib.has_table(prefix.version == 6, table_id):
            return rv.NO_SUCH_FIB, ANY_INDEX
        # VPP decodes every path before anything else, for adds and deletes alike: a path
        # through an index that no longer exists is refused and the route stays (so a route
        # a deleted interface left behind goes only by a delete naming no path).
        for path in paths:
            if path.sw_if_index != ANY_INDEX and path.sw_if_index not in self.interfaces:
                return rv.NO_MATCHING_INTERFACE, ANY_INDEX
        entry = self.fib.lookup(prefix, table_id)
        current = list(entry.sources.get(SOURCE_API, [])) if entry else []
        if is_add:
            new = current + [p for p in paths if p not in current] if is_multipath else paths
            self._relock_paths(current, new)
            entry = self.fib.set_source(prefix, SOURCE_API, new, table_id)
            return rv.OK, entry.stats_index
        if entry is None or SOURCE_API not in entry.sources:
            return rv.OK, ANY_INDEX
        remaining = [p for p in current if p not in paths] if is_multipath else []
        self._relock_paths(current, remaining)
        if remaining:
            self.fib.set_source(prefix, SOURCE_API, remaining, table_id)
        else:
            self.fib.remove_source(prefix, SOURCE_API, table_id)
        return rv.OK, ANY_INDEX

    def _relock_paths(self, old: list[FibPath], new: list[FibPath]) -> None:
        for path in new:
            if self._nbr_path(path):
                self.adjacencies.lock_nbr(path.sw_if_index, path.nh)
        for path in old:
            if self._nbr_path(path):
                self.adjacencies.unlock_nbr(path.sw_if_index, path.nh)

    @staticmethod
    def _nbr_path(path: FibPath) -> bool:
        return path.sw_if_index != ANY_INDEX and int(path.nh) != 0

    # -- neighbours ------------------------------------------------------------------------
    def neighbor_add_del(
        self, sw_if_index: int, ip: IPAddress, mac: str, flags: int, is_add: bool
    ) -> tuple[int, int]:
        if sw_if_index not in self.interfaces:
            return rv.INVALID_SW_IF_INDEX, ANY_INDEX
        key = (sw_if_index, ip)
        if not is_add:
            if key not in self.neighbors:
                return rv.NO_SUCH_ENTRY, ANY_INDEX
            self._remove_neighbor(key)
            return rv.OK, ANY_INDEX
        existing = self.neighbors.get(key)
        if existing is not None:
            existing.mac = mac
            existing.flags = flags
            existing.updated = time.monotonic()
            return rv.OK, existing.adj_index
        adj_index = self.adjacencies.lock_nbr(sw_if_index, ip)
        self.neighbors[key] = Neighbor(sw_if_index, ip, mac, flags, adj_index, time.monotonic())
        if not flags & NEIGHBOR_FLAG_NO_FIB_ENTRY:
            host = ipaddress.ip_network(ip)
            self.fib.set_source(
                host, SOURCE_ADJ, [FibPath(sw_if_index=sw_if_index, nh=ip, proto=int(ip.version == 6))]
            )
        return rv.OK, adj_index

    def _remove_neighbor(self, key: tuple[int, IPAddress]) -> None:
        neighbor = self.neighbors.pop(key)
        self.adjacencies.unlock_nbr(neighbor.sw_if_index, neighbor.ip)
        if not neighbor.flags & NEIGHBOR_FLAG_NO_FIB_ENTRY:
            self.fib.remove_source(ipaddress.ip_network(neighbor.ip), SOURCE_ADJ)

    def neighbors_for(self, sw_if_index: int, is_ip6: bool) -> list[Neighbor]:
        found = [
            n
            for n in self.neighbors.values()
            if sw_if_index in (ANY_INDEX, n.sw_if_index) and (n.ip.version == 6) == is_ip6
        ]
        return sorted(found, key=lambda n: n.sw_if_index)

    # -- bridge domains --------------------------------------------------------------------
    def bridge_domain_add(self, bd_id: int, settings: dict[str, object]) -> tuple[int, int]:
        if bd_id == ANY_INDEX:
            bd_id = 1
            while bd_id in self.bridge_domains:
                bd_id += 1
        if bd_id == 0:  # the default domain, which always exists
            return rv.BD_ALREADY_EXISTS, bd_id
        if bd_id > MAX_BD_ID:
            return rv.BD_ID_EXCEED_MAX, bd_id
        if bd_id in self.bridge_domains:
            return rv.BD_ALREADY_EXISTS, bd_id
        bd = BridgeDomain(bd_id=bd_id, bd_index=self._bd_indexes.get())
        for name, value in settings.items():
            setattr(bd, name, value)
        self.bridge_domains[bd_id] = bd
        return rv.OK, bd_id

    def bridge_domain_del(self, bd_id: int) -> int:
        if bd_id == 0:
            return rv.BD_NOT_MODIFIABLE
        bd = self.bridge_domains.get(bd_id)
        if bd is None:
            return rv.NO_SUCH_ENTRY
        if bd.members:
            return rv.BD_IN_USE
        del self.bridge_domains[bd_id]
        self._bd_indexes.put(bd.bd_index)
        return rv.OK

    def set_l2_bridge(self, sw_if_index: int, bd_id: int, port_type: int, shg: int, enable: bool) -> int:
        if sw_if_index not in self.interfaces:
            return rv.INVALID_SW_IF_INDEX
        for existing in self.bridge_domains.values():
            self._remove_member(existing, sw_if_index)
        if not enable:
            return rv.OK
        if bd_id not in self.bridge_domains:
            # VPP creates a missing bridge domain on first use, with default settings.
            retval, _ = self.bridge_domain_add(bd_id, dict(DEFAULT_BD_FLAGS))
            if retval != rv.OK:
                return retval
        bd = self.bridge_domains[bd_id]
        bd.members.append(BridgeMember(sw_if_index, shg, port_type))
        if port_type == 1:
            bd.bvi_sw_if_index = sw_if_index
        return rv.OK

    @staticmethod
    def _remove_member(bd: BridgeDomain, sw_if_index: int) -> None:
        """VPP deletes a member by moving the last one into its slot (vec_del1)."""
        for position, member in enumerate(bd.members):
            if member.sw_if_index == sw_if_index:
                last = bd.members.pop()
                if position < len(bd.members):
                    bd.members[position] = last
                if bd.bvi_sw_if_index == sw_if_index:
                    bd.bvi_sw_if_index = ANY_INDEX
                return

    def bridge_domains_sorted(self) -> list[BridgeDomain]:
        return sorted(self.bridge_domains.values(), key=lambda bd: bd.bd_index)

    # -- clients ---------------------------------------------------------------------------
    def want_interface_events(self, client_index: int, enable: bool, pid: int) -> int:
        registered = client_index in self.event_subscribers
        if enable == registered:
            return rv.INVALID_REGISTRATION
        if enable:
            self.event_subscribers[client_index] = pid
        else:
            del self.event_subscribers[client_index]
        return rv.OK

    def client_gone(self, client_index: int) -> None:
        self.event_subscribers.pop(client_index, None)

    def close_all_sockets(self, unlink: bool) -> None:
        for iface in self.vhost_interfaces():
            if iface.vhost is not None:
                self.sockets.close(
                    iface.sw_if_index, iface.vhost.sock_filename, unlink=unlink and iface.vhost.is_server
                )
