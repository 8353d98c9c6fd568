"""VPP's counters, from its stats segment: packets and drops per interface, drop reasons.

The API has no per-interface counters worth polling; VPP keeps them in a shared-memory
segment that any reader maps (`statseg { socket-name }`, default /run/vpp/stats.sock),
read here with vpp_papi's `VPPStats`. Counters are kept per VPP thread and summed here.
Interfaces are by `sw_if_index`, the same index the API gives, so the operator CLI joins
them with its ports; the segment's own `/if/names` is not needed for that.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from vhostuser_vpp.defaults import DEFAULT_STATS_SOCKET
from vhostuser_vpp.vpp.errors import VppUnavailable

# Counter name in the segment -> our name; all are summed over VPP's threads.
_COMBINED = {"/if/rx": "rx", "/if/tx": "tx"}
_SIMPLE = {
    "/if/drops": "drops",
    "/if/rx-miss": "rx_miss",
    "/if/rx-error": "rx_error",
    "/if/tx-error": "tx_error",
    "/if/rx-no-buf": "rx_no_buf",
    "/if/punt": "punt",
}


class InterfaceCounters(NamedTuple):
    """`drops` and `punt` are both packets VPP discarded: VPP 26.06 punts, not drops, what
    an L3 port receives for another MAC (ethernet-input "l3 mac mismatch")."""

    rx_packets: int = 0
    rx_bytes: int = 0
    tx_packets: int = 0
    tx_bytes: int = 0
    drops: int = 0
    rx_miss: int = 0
    rx_error: int = 0
    tx_error: int = 0
    rx_no_buf: int = 0
    punt: int = 0

    @property
    def discarded(self) -> int:
        return self.drops + self.punt

    def summary(self) -> dict[str, int]:
        """As the CLI's JSON carries them."""
        return {**self._asdict(), "discarded": self.discarded}


class CounterSample(NamedTuple):
    """Every interface's counters at one moment (`monotonic`, seconds)."""

    monotonic: float
    interfaces: dict[int, InterfaceCounters]

    def of(self, sw_if_index: int) -> InterfaceCounters:
        return self.interfaces.get(sw_if_index, InterfaceCounters())


class Rates(NamedTuple):
    rx_pps: float
    rx_bps: float
    tx_pps: float
    tx_bps: float
    drops_ps: float


def rates(before: InterfaceCounters, after: InterfaceCounters, seconds: float) -> Rates:
    """Per second between two samples (bytes/s as bytes, not bits); 0 for no time."""
    if seconds <= 0:
        return Rates(0.0, 0.0, 0.0, 0.0, 0.0)
    return Rates(
        (after.rx_packets - before.rx_packets) / seconds,
        (after.rx_bytes - before.rx_bytes) / seconds,
        (after.tx_packets - before.tx_packets) / seconds,
        (after.tx_bytes - before.tx_bytes) / seconds,
        (after.discarded - before.discarded) / seconds,
    )


class Stats:
    """A connected reader of one VPP's stats segment."""

    def __init__(self, socket_path: str = DEFAULT_STATS_SOCKET) -> None:
        self.socket_path = socket_path
        self._stats: Any = None

    def __enter__(self) -> Stats:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        from vpp_papi.vpp_stats import VPPStats

        stats = VPPStats(self.socket_path)
        try:
            stats.connect()
        except Exception as exc:  # OSError, or VPPStats' bare Exception for another segment version
            raise VppUnavailable(
                f"cannot read VPP's stats segment at {self.socket_path}: {exc} "
                "(is VPP running with `statseg { socket-name ... }`? --stats-socket names another)"
            ) from exc
        self._stats = stats

    def close(self) -> None:
        stats, self._stats = self._stats, None
        if stats is not None:
            stats.disconnect()

    def sample(self) -> CounterSample:
        stats = self._connected()
        taken = time.monotonic()
        values: dict[str, list[int]] = {}
        try:
            for path, name in _COMBINED.items():
                per_thread = stats[path]
                values[f"{name}_packets"] = _sum_threads([[c["packets"] for c in t] for t in per_thread])
                values[f"{name}_bytes"] = _sum_threads([[c["bytes"] for c in t] for t in per_thread])
            for path, name in _SIMPLE.items():
                values[name] = _sum_threads([list(t) for t in stats[path]])
        except (OSError, KeyError) as exc:
            raise VppUnavailable(f"VPP's stats segment at {self.socket_path}: {exc!r}") from exc
        count = max((len(v) for v in values.values()), default=0)
        interfaces = {
            index: InterfaceCounters(**{k: v[index] if index < len(v) else 0 for k, v in values.items()})
            for index in range(count)
        }
        return CounterSample(taken, interfaces)

    def interface_names(self) -> list[str]:
        """Index -> VPP's interface name (`/if/names`; "" for a free index)."""
        try:
            return [str(name) for name in self._connected()["/if/names"]]
        except (OSError, KeyError) as exc:
            raise VppUnavailable(f"VPP's stats segment at {self.socket_path}: {exc!r}") from exc

    def drop_reasons(self) -> dict[str, int]:
        """`node/reason` -> packets, for every error counter above 0 (VPP-wide: the segment
        does not say which interface a packet came in on)."""
        stats = self._connected()
        try:
            found = stats.set_errors()
        except (OSError, KeyError) as exc:
            raise VppUnavailable(f"VPP's stats segment at {self.socket_path}: {exc!r}") from exc
        return {path.removeprefix("/err/"): int(count) for path, count in sorted(found.items())}

    def _connected(self) -> Any:
        if self._stats is None:
            raise VppUnavailable("not connected to VPP's stats segment")
        return self._stats


def _sum_threads(per_thread: list[list[int]]) -> list[int]:
    width = max((len(t) for t in per_thread), default=0)
    return [sum(t[i] for t in per_thread if i < len(t)) for i in range(width)]
