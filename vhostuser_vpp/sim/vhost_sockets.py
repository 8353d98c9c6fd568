"""The unix sockets behind vhost-user ports, made real so that tests can see them.

VPP creates (server mode) or dials (client mode) a socket per port; plugins check for the
file, frontends connect to it. The emulator does the same syscalls VPP does (unlink, bind
with the path cut to 107 bytes, listen; on delete unlink the full path) so their
side effects match. A connection on a port counts as a frontend that has negotiated and
sent its memory table; closing it is the frontend leaving. No vhost-user protocol is spoken
and no packet moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from vhostuser_vpp.sim.state import VppState

log = logging.getLogger(__name__)

# sizeof(sockaddr_un.sun_path) - 1: VPP copies at most this much of the path.
SUN_PATH_MAX = 107
# How often VPP retries a client-mode connection.
CLIENT_RETRY_SECONDS = 1.0


@dataclass
class _Port:
    listener: socket.socket | None = None
    peers: list[socket.socket] = field(default_factory=list)
    retry: asyncio.TimerHandle | None = None
    path: str = ""


class LoopVhostSockets:
    """VhostSockets on an asyncio loop; must only be called from that loop's thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, changed: Callable[[], None]) -> None:
        self._loop = loop
        self._changed = changed
        self._ports: dict[int, _Port] = {}
        self.state: VppState | None = None

    @staticmethod
    def bound_path(path: str) -> bytes:
        return os.fsencode(path)[:SUN_PATH_MAX]

    def listen(self, sw_if_index: int, path: str) -> int:
        with contextlib.suppress(OSError):
            os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(self.bound_path(path))
            sock.listen(8)
        except OSError as exc:
            sock.close()
            return exc.errno or errno.EIO
        sock.setblocking(False)
        port = _Port(listener=sock, path=path)
        self._ports[sw_if_index] = port
        self._loop.add_reader(sock.fileno(), self._accept, sw_if_index)
        return 0

    def _accept(self, sw_if_index: int) -> None:
        port = self._ports.get(sw_if_index)
        if port is None or port.listener is None:
            return
        try:
            peer, _ = port.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        self._attach(sw_if_index, port, peer)

    def _attach(self, sw_if_index: int, port: _Port, peer: socket.socket) -> None:
        peer.setblocking(False)
        port.peers.append(peer)
        self._loop.add_reader(peer.fileno(), self._readable, sw_if_index, peer)
        # Reported from the loop, never inside the create handler: the interface must exist
        # and its create reply must go out first.
        self._loop.call_soon(self._frontend_up, sw_if_index)

    def _frontend_up(self, sw_if_index: int) -> None:
        if self.state is not None and self.state.frontend_connected(sw_if_index):
            self._changed()

    def _readable(self, sw_if_index: int, peer: socket.socket) -> None:
        try:
            data = peer.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if data:
            return
        self._drop_peer(sw_if_index, peer)

    def _drop_peer(self, sw_if_index: int, peer: socket.socket) -> None:
        self._loop.remove_reader(peer.fileno())
        peer.close()
        port = self._ports.get(sw_if_index)
        if port is None:
            return
        if peer in port.peers:
            port.peers.remove(peer)
        if not port.peers and self.state is not None:
            self.state.frontend_disconnected(sw_if_index)
            self._changed()
            if port.listener is None:
                self._schedule_retry(sw_if_index, port)

    def connect(self, sw_if_index: int, path: str) -> int:
        port = _Port(path=path)
        self._ports[sw_if_index] = port
        return self._dial(sw_if_index, port)

    def _dial(self, sw_if_index: int, port: _Port) -> int:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.bound_path(port.path))
        except OSError as exc:
            sock.close()
            self._schedule_retry(sw_if_index, port)
            return exc.errno or errno.EIO
        self._attach(sw_if_index, port, sock)
        return 0

    def _schedule_retry(self, sw_if_index: int, port: _Port) -> None:
        port.retry = self._loop.call_later(CLIENT_RETRY_SECONDS, self._retry, sw_if_index)

    def _retry(self, sw_if_index: int) -> None:
        port = self._ports.get(sw_if_index)
        if port is None or port.peers:
            return
        port.retry = None
        result = self._dial(sw_if_index, port)
        if result and self.state is not None:
            self.state.set_sock_errno(sw_if_index, result)

    def close(self, sw_if_index: int, path: str, unlink: bool) -> None:
        port = self._ports.pop(sw_if_index, None)
        if port is not None:
            if port.retry is not None:
                port.retry.cancel()
            for peer in port.peers:
                self._loop.remove_reader(peer.fileno())
                peer.close()
            if port.listener is not None:
                self._loop.remove_reader(port.listener.fileno())
                port.listener.close()
        if unlink:
            # VPP unlinks the full path: a socket bound under a cut (107-byte) name stays.
            with contextlib.suppress(OSError):
                os.unlink(path)
