"""Start, stop, crash and inspect an emulated VPP.

The emulator runs its own asyncio loop in a background thread, so a test can drive it with
plain synchronous vpp_papi clients. `Emulator.start()` returns only once the API socket is
bound and listening: callers never need to sleep or poll. All access to the model goes
through the loop thread, so reads from a test see a consistent state.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from vhostuser_vpp.sim.codec import Codec
from vhostuser_vpp.sim.dispatch import Dispatcher
from vhostuser_vpp.sim.faults import Faults
from vhostuser_vpp.sim.msgtable import DEFAULT_PROFILE, MessageTable, build_table
from vhostuser_vpp.sim.profile_data import RELEASE_BEHAVIOUR
from vhostuser_vpp.sim.state import VppState
from vhostuser_vpp.sim.stats_segment import COMBINED, SIMPLE, StatsSegment
from vhostuser_vpp.sim.transport import ApiServer, Connection
from vhostuser_vpp.sim.vhost_sockets import LoopVhostSockets

log = logging.getLogger(__name__)

T = TypeVar("T")
# The build date a real VPP 26.06 reported in the reference transcript.
BUILD_DATE = "2026-11-29T05:50:02"
CALL_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class PortView:
    """A read-only copy of one vhost-user port, for assertions."""

    sw_if_index: int
    name: str
    sock_filename: str
    is_server: bool
    mac: str
    admin_up: bool
    link_up: bool
    tag: str
    num_regions: int
    sock_errno: int


class Emulator:
    """A VPP 26.06 API endpoint for tests and demos; no packets move."""

    def __init__(
        self,
        socket_path: str,
        profile: str = DEFAULT_PROFILE,
        omit: Iterable[str] = (),
        *,
        id_offset: int = 0,
        faults: Faults | None = None,
        codec: Codec | None = None,
        stats_socket: str | None = None,
    ) -> None:
        """`stats_socket`: where to serve a stats segment (sim/stats_segment.py), if anywhere."""
        self.socket_path = str(socket_path)
        self.stats_socket = stats_socket
        self._stats: StatsSegment | None = None
        self._stats_published: tuple[tuple[int, str], ...] = ()
        self.codec = codec or Codec()
        defined = {name: self.codec.crc(name) for name in self.codec.names}
        replies = {name: svc.reply for name, svc in self.codec.services.items()}
        self.table: MessageTable = build_table(defined, replies, profile, omit, id_offset)
        self.version = f"{self.table.release}-release"
        self.faults = faults or Faults()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="vpp-emulator", daemon=True)
        self._server: ApiServer | None = None
        self._dispatcher: Dispatcher | None = None
        self._boots = 0
        # Every boot answers control_ping with pid 1, as a VPP in a container does.
        self.pid_one = False
        self._running = False

    # -- lifecycle -------------------------------------------------------------------------
    @classmethod
    def start(
        cls,
        socket_path: str,
        profile: str = DEFAULT_PROFILE,
        omit: Iterable[str] = (),
        *,
        id_offset: int = 0,
        faults: Faults | None = None,
        stats_socket: str | None = None,
    ) -> Emulator:
        emulator = cls(
            socket_path, profile, omit, id_offset=id_offset, faults=faults, stats_socket=stats_socket
        )
        emulator._thread.start()
        try:
            emulator._submit(emulator._boot())
        except BaseException:
            emulator._shutdown_loop()
            raise
        return emulator

    def __enter__(self) -> Emulator:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._running

    async def _boot(self) -> None:
        """A fresh VPP: new state, new message handling, API socket bound before returning."""
        sockets = LoopVhostSockets(self._loop, self._events_changed)
        state = VppState(sockets, RELEASE_BEHAVIOUR[self.table.release])
        sockets.state = state
        # Each boot a new VPP process, as far as clients can tell: its own vpe_pid.
        self._boots += 1
        vpe_pid = 1 if self.pid_one else (os.getpid() << 8 | self._boots) & 0xFFFFFFFF
        dispatcher = Dispatcher(state, self.codec, self.table, self.faults, self.version, BUILD_DATE, vpe_pid)
        server = ApiServer(self.socket_path, dispatcher.handle, self._client_closed)
        dispatcher.connections = server.connections
        if self.stats_socket is not None:
            self._stats = StatsSegment(self.stats_socket)
            self._stats_published = ()
            dispatcher.after_message = self._publish_stats_on_change
        await server.start()
        self._dispatcher, self._server = dispatcher, server
        self._publish_stats_on_change()
        self._running = True
        log.info("emulated VPP %s listening on %s", self.version, self.socket_path)

    async def _halt(self, graceful: bool) -> None:
        server, dispatcher = self._server, self._dispatcher
        self._running = False
        if server is not None:
            # VPP 26.06 leaves its API socket file behind even on SIGTERM: a stopped VPP
            # refuses connections at a path that still exists.
            await server.close()
        if dispatcher is not None:
            dispatcher.state.close_all_sockets(unlink=graceful)
        if self._stats is not None:
            self._stats.close()
            self._stats = None
        self._server = self._dispatcher = None

    def _client_closed(self, conn: Connection) -> None:
        if self._dispatcher is not None:
            self._dispatcher.client_gone(conn)

    def _events_changed(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.flush_events()

    def stop(self) -> None:
        """Shut down as on SIGTERM: clients dropped, server-mode vhost sockets removed, the API
        socket file left (refusing connections), as a real VPP does."""
        if not self._thread.is_alive():
            return
        self._submit(self._halt(graceful=True))
        self._shutdown_loop()

    def crash(self) -> None:
        """Die like a killed VPP: clients cut off, all state lost, socket files left behind.

        The API socket refuses connections until `restart()`.
        """
        self._submit(self._halt(graceful=False))

    def restart(self) -> None:
        """Crash if still up, then come back as a fresh VPP (indexes start again from 1)."""
        if self._running:
            self.crash()
        self._submit(self._boot())

    def _shutdown_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    # -- access from other threads ---------------------------------------------------------
    def _submit(self, coro: Any) -> Any:
        future: concurrent.futures.Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(CALL_TIMEOUT_SECONDS)

    def call(self, func: Callable[[VppState], T]) -> T:
        """Run `func(state)` on the emulator's thread and return its result.

        Events the call causes are sent to subscribers, as if VPP had done it by itself.
        """

        async def run() -> T:
            if self._dispatcher is None:
                raise RuntimeError("the emulator is not running")
            result = func(self._dispatcher.state)
            self._dispatcher.flush_events()
            return result

        result: T = self._submit(run())
        return result

    def ports(self) -> list[PortView]:
        """The vhost-user ports, in VPP's dump order."""

        def snapshot(state: VppState) -> list[PortView]:
            return [
                PortView(
                    sw_if_index=i.sw_if_index,
                    name=i.name,
                    sock_filename=i.vhost.sock_filename,
                    is_server=i.vhost.is_server,
                    mac=i.mac,
                    admin_up=i.admin_up,
                    link_up=i.link_up,
                    tag=i.tag,
                    num_regions=i.vhost.num_regions,
                    sock_errno=i.vhost.sock_errno,
                )
                for i in state.vhost_interfaces()
                if i.vhost is not None
            ]

        return self.call(snapshot)

    def interface_names(self) -> dict[int, str]:
        return self.call(lambda state: {i: iface.name for i, iface in sorted(state.interfaces.items())})

    def routes(self, is_ip6: bool = False) -> list[tuple[str, int]]:
        """(prefix, stats_index) of every FIB entry in table 0."""
        return self.call(lambda s: [(str(e.prefix), e.stats_index) for e in s.fib.entries(is_ip6)])

    def neighbors(self) -> list[tuple[int, str, str]]:
        return self.call(lambda s: [(n.sw_if_index, str(n.ip), n.mac) for n in s.neighbors.values()])

    def bridge_domains(self) -> dict[int, list[int]]:
        return self.call(
            lambda s: {bd.bd_id: [m.sw_if_index for m in bd.members] for bd in s.bridge_domains_sorted()}
        )

    # -- the stats segment (what a dataplane would count) ----------------------------------
    def count(self, sw_if_index: int, **values: int) -> None:
        """Adds to an interface's counters, by stats path with `_` for `/` and `-`:
        `count(3, if_rx_packets=10, if_rx_bytes=640, if_drops=2)`."""

        def add(state: VppState) -> None:
            counters = state.interfaces[sw_if_index].counters
            for key, value in values.items():
                path = _counter_path(key)
                counters[path] = counters.get(path, 0) + value

        self.call(add)
        self._publish_stats()

    def up_for(self, seconds: float) -> None:
        """This VPP has been up `seconds` already (`show clock`), as a long-running one has."""

        def backdate(state: VppState) -> None:
            state.booted = time.monotonic() - seconds

        self.call(backdate)

    def count_error(self, path: str, packets: int) -> None:
        """Adds to `/err/<node>/<reason>`, e.g. `/err/ethernet-input/l3 mac mismatch`."""

        def add(state: VppState) -> None:
            state.errors[path] = state.errors.get(path, 0) + packets

        self.call(add)
        self._publish_stats()

    def trace(self, packet: str) -> bool:
        """The tracer sees one packet, given as `show trace` prints one (its node records,
        from the input node on); False when no `trace add` is armed for more."""

        def see(state: VppState) -> bool:
            if state.trace.left <= 0:
                return False
            state.trace.left -= 1
            state.trace.packets.append(packet)
            return True

        return self.call(see)

    def _publish_stats_on_change(self) -> None:
        """Again when the interfaces changed (their names and indexes are in the segment)."""
        if self._stats is None or self._dispatcher is None:
            return
        state = self._dispatcher.state
        published = tuple((i, iface.name) for i, iface in sorted(state.interfaces.items()))
        if published != self._stats_published:
            self._stats_published = published
            self._stats.publish(*_stats_of(state))

    def _publish_stats(self) -> None:
        if self._stats is not None:
            self._stats.publish(*self.call(_stats_of))

    # -- frontends (what a DPDK virtio_user would do to a port) ----------------------------
    def frontend_connect(self, sw_if_index: int, link_up: bool = True) -> bool:
        """A frontend negotiated and sent its memory table; link up unless told otherwise."""
        return self.call(lambda s: s.frontend_connected(sw_if_index, link_up))

    def frontend_link_up(self, sw_if_index: int) -> bool:
        return self.call(lambda s: s.frontend_link_up(sw_if_index))

    def frontend_disconnect(self, sw_if_index: int) -> bool:
        return self.call(lambda s: s.frontend_disconnected(sw_if_index))


def _counter_path(key: str) -> str:
    """`if_rx_packets` -> `/if/rx/packets`, `if_rx_miss` -> `/if/rx-miss`."""
    for path in COMBINED:
        for part in ("packets", "bytes"):
            if key == f"{path[1:].replace('/', '_')}_{part}":
                return f"{path}/{part}"
    for path in SIMPLE:
        if key == path[1:].replace("/", "_").replace("-", "_"):
            return path
    raise ValueError(f"no such interface counter: {key}")


def _stats_of(state: VppState) -> tuple[dict[int, str], dict[int, dict[str, int]], dict[str, int]]:
    names = {i: iface.name for i, iface in state.interfaces.items()}
    counters = {i: dict(iface.counters) for i, iface in state.interfaces.items() if iface.counters}
    return names, counters, dict(state.errors)
