"""A small model of VPP's FIB: entries made of per-source path lists, plus adjacencies.

Only what the API lets a client observe is modelled: which prefixes a route dump shows, with
which paths and stats_index (the FIB entry index), and the adjacency index that
ip_neighbor_add_del reports. Entries are shared between sources the way VPP shares them:
an API route, an interface address and a neighbour can all contribute to the same /32, and
the entry (and its stats_index) goes away only when the last source does.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from vhostuser_vpp.sim.pools import IndexPool

ANY_INDEX = 0xFFFFFFFF
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IP4_ZERO = ipaddress.IPv4Address(0)

PATH_TYPE_NORMAL = 0
PATH_TYPE_LOCAL = 1
PATH_TYPE_DROP = 2
NH_PROTO_IP4 = 0
LABEL_STACK_SIZE = 16

# Higher priority first: the best source's paths are what a dump shows.
SOURCE_SPECIAL = "special"
SOURCE_INTERFACE = "interface"
SOURCE_API = "api"
SOURCE_ADJ = "adjacency"
SOURCE_PRIORITY = (SOURCE_SPECIAL, SOURCE_INTERFACE, SOURCE_API, SOURCE_ADJ)

# A fresh VPP has these entries in the IPv4 and IPv6 default tables, with these indexes
# (the IPv4 ones are in the reference transcript; the IPv6 ones fill indexes 6 and 7, which
# the transcript shows as taken). Entry 0 is never handed out.
IP4_DEFAULTS = (
    ("0.0.0.0/0", 1),
    ("0.0.0.0/32", 2),
    ("240.0.0.0/4", 3),
    ("224.0.0.0/4", 4),
    ("255.255.255.255/32", 5),
)
IP6_DEFAULTS = (("::/0", 6), ("fe80::/10", 7))
# What a fresh VPP 26.06 dumps for these: drops, but fe80::/10 (link-local, punted to the
# host stack) shows a normal path through no interface.
NORMAL_DEFAULTS = frozenset({"fe80::/10"})
FIRST_FREE_ENTRY = 8


def zero_address(is_ip6: bool) -> IPAddress:
    return ipaddress.IPv6Address(0) if is_ip6 else ipaddress.IPv4Address(0)


@dataclass(frozen=True)
class FibPath:
    sw_if_index: int = ANY_INDEX
    nh: IPAddress = IP4_ZERO
    type: int = PATH_TYPE_NORMAL
    weight: int = 1
    preference: int = 0
    flags: int = 0
    proto: int = NH_PROTO_IP4
    table_id: int = 0
    rpf_id: int = 0
    via_label: int = 0
    obj_id: int = 0
    classify_table_index: int = 0
    labels: tuple[tuple[int, int, int, int], ...] = ()

    @classmethod
    def drop(cls, is_ip6: bool) -> FibPath:
        return cls(type=PATH_TYPE_DROP, nh=zero_address(is_ip6), proto=int(is_ip6))


@dataclass
class FibEntry:
    """`prefix` is the lookup key; `address` is what VPP puts on the wire with its length.

    They differ for a connected subnet: VPP reports 10.56.217.1/24, not 10.56.217.0/24, for
    the subnet of address 10.56.217.1/24 (reference transcript).

    `stats_index` is ANY_INDEX while a neighbour is the entry's only source: VPP 26.06 keeps
    no counters for such an attached host and dumps ~0; a route added to it takes an index
    from the pool, and gives it back when only the neighbour is left (seen on a real VPP).
    """

    prefix: IPNetwork
    stats_index: int
    address: IPAddress
    sources: dict[str, list[FibPath]] = field(default_factory=dict)

    @property
    def counted(self) -> bool:
        return any(source != SOURCE_ADJ for source in self.sources)

    def best_paths(self) -> list[FibPath]:
        for source in SOURCE_PRIORITY:
            if source in self.sources:
                return self.sources[source]
        return []


class Fib:
    """Default tables only (table 0 for IPv4 and IPv6): the project never creates VRFs."""

    def __init__(self) -> None:
        self._entries_pool = IndexPool(first=FIRST_FREE_ENTRY)
        self._tables: dict[tuple[bool, int], dict[IPNetwork, FibEntry]] = {(False, 0): {}, (True, 0): {}}
        for is_ip6, defaults in ((False, IP4_DEFAULTS), (True, IP6_DEFAULTS)):
            table = self._tables[(is_ip6, 0)]
            for text, index in defaults:
                prefix = ipaddress.ip_network(text)
                path = FibPath.drop(is_ip6)
                if text in NORMAL_DEFAULTS:
                    path = FibPath(nh=path.nh, proto=path.proto)
                table[prefix] = FibEntry(prefix, index, prefix.network_address, {SOURCE_SPECIAL: [path]})

    def has_table(self, is_ip6: bool, table_id: int) -> bool:
        return (is_ip6, table_id) in self._tables

    def lookup(self, prefix: IPNetwork, table_id: int = 0) -> FibEntry | None:
        return self._tables[(prefix.version == 6, table_id)].get(prefix)

    def longest_match(self, prefix: IPNetwork, table_id: int = 0) -> FibEntry | None:
        """What forwarding would use for `prefix`: the longest entry covering it."""
        table = self._tables[(prefix.version == 6, table_id)]
        covering = [
            entry
            for entry in table.values()
            if entry.prefix.prefixlen <= prefix.prefixlen and prefix.network_address in entry.prefix
        ]
        return max(covering, key=lambda entry: entry.prefix.prefixlen, default=None)

    def set_source(
        self,
        prefix: IPNetwork,
        source: str,
        paths: list[FibPath],
        table_id: int = 0,
        address: IPAddress | None = None,
    ) -> FibEntry:
        table = self._tables[(prefix.version == 6, table_id)]
        entry = table.get(prefix)
        if entry is None:
            wire_address = prefix.network_address if address is None else address
            entry = FibEntry(prefix, ANY_INDEX, wire_address)
            table[prefix] = entry
        entry.sources[source] = paths
        if entry.counted and entry.stats_index == ANY_INDEX:
            entry.stats_index = self._entries_pool.get()
        return entry

    def remove_source(self, prefix: IPNetwork, source: str, table_id: int = 0) -> bool:
        table = self._tables[(prefix.version == 6, table_id)]
        entry = table.get(prefix)
        if entry is None or source not in entry.sources:
            return False
        del entry.sources[source]
        if not entry.counted and entry.stats_index != ANY_INDEX:
            self._entries_pool.put(entry.stats_index)
            entry.stats_index = ANY_INDEX
        if not entry.sources:
            del table[prefix]
        return True

    def hold_entries(self, count: int) -> list[int]:
        """Entry indexes VPP spends on tables the emulator does not model (an IPv6 link's
        link-local entries), so that later entries get VPP's stats_index."""
        return [self._entries_pool.get() for _ in range(count)]

    def release_entries(self, held: list[int]) -> None:
        for index in reversed(held):
            self._entries_pool.put(index)

    def entries(self, is_ip6: bool, table_id: int = 0) -> list[FibEntry]:
        """Walk order: VPP walks one hash per prefix length, shortest first.

        Within a length VPP's order follows its hash function; the emulator keeps insertion
        order there, so clients must not depend on the order of same-length prefixes.
        """
        table = self._tables.get((is_ip6, table_id), {})
        return sorted(table.values(), key=lambda entry: entry.prefix.prefixlen)


class Adjacencies:
    """Adjacency indexes: one glean per IPv4-enabled interface, one per (interface, neighbour).

    A neighbour adjacency lives as long as some route path or neighbour entry refers to it.
    """

    def __init__(self) -> None:
        self._pool = IndexPool()
        self._glean: dict[int, int] = {}
        self._nbr: dict[tuple[int, IPAddress], list[int]] = {}

    def ensure_glean(self, sw_if_index: int) -> None:
        if sw_if_index not in self._glean:
            self._glean[sw_if_index] = self._pool.get()

    def drop_glean(self, sw_if_index: int) -> None:
        index = self._glean.pop(sw_if_index, None)
        if index is not None:
            self._pool.put(index)

    def hold(self, count: int) -> list[int]:
        """Adjacencies the emulator does not model (an IPv6 link's multicast and glean ones)."""
        return [self._pool.get() for _ in range(count)]

    def release(self, held: list[int]) -> None:
        for index in reversed(held):
            self._pool.put(index)

    def lock_nbr(self, sw_if_index: int, address: IPAddress) -> int:
        key = (sw_if_index, address)
        slot = self._nbr.get(key)
        if slot is None:
            slot = [self._pool.get(), 0]
            self._nbr[key] = slot
        slot[1] += 1
        return slot[0]

    def unlock_nbr(self, sw_if_index: int, address: IPAddress) -> None:
        key = (sw_if_index, address)
        slot = self._nbr.get(key)
        if slot is None:
            return
        slot[1] -= 1
        if slot[1] <= 0:
            del self._nbr[key]
            self._pool.put(slot[0])
