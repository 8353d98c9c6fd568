"""VPP connections kept open between the requests one process serves (the node agent's).

A direct plugin run connects once and exits; the agent serves request after request, so
it lends each one a connection that is already up, with every API definition loaded,
and takes it back afterwards. A lent connection is checked first: VPP may have exited or
restarted while it sat idle, and then the kernel has closed VPP's end, which a poll of the
socket shows at once (a `control_ping` round trip cost every request ~0.25 ms more). A
connection is closed instead of kept when a call on it timed out or lost its transport
(late replies could still arrive on it).

`install` makes a pool the process's; `backend_choice.open_vpp` borrows from it when
there is one. One process, one pool: requests name their API socket, which the node
policy has allowed by then, and idle connections are kept per socket.
"""

from __future__ import annotations

import threading
from typing import Any

from vhostuser_vpp.vpp.client import VppClient, disconnect

IDLE_PER_SOCKET = 16


class ClientPool:
    def __init__(self, idle_per_socket: int = IDLE_PER_SOCKET) -> None:
        self.idle_per_socket = idle_per_socket
        self._idle: dict[str, list[Any]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def client(self, socket_path: str, connect_timeout: float, call_timeout: float) -> PooledClient:
        """A client that, on connect, borrows an idle connection or makes one."""
        return PooledClient(self, socket_path, connect_timeout, call_timeout)

    def idle(self, socket_path: str) -> int:
        with self._lock:
            return len(self._idle.get(socket_path, ()))

    def _take(self, socket_path: str) -> Any:
        with self._lock:
            idle = self._idle.get(socket_path)
            return idle.pop() if idle else None

    def _give_back(self, socket_path: str, papi: Any) -> bool:
        with self._lock:
            idle = self._idle.setdefault(socket_path, [])
            if self._closed or len(idle) >= self.idle_per_socket:
                return False
            idle.append(papi)
            return True

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle = [papi for papis in self._idle.values() for papi in papis]
            self._idle.clear()
        for papi in idle:
            disconnect(papi)


class PooledClient(VppClient):
    """A VppClient whose connection comes from, and on close goes back to, a pool."""

    def __init__(self, pool: ClientPool, socket_path: str, connect_timeout: float, call_timeout: float):
        super().__init__(socket_path, connect_timeout, call_timeout, api_modules=None)
        self._pool = pool

    def connect(self) -> None:
        while (papi := self._pool._take(self.socket_path)) is not None:
            if papi.transport.quiet():
                self._papi = papi
                return
            disconnect(papi)
        super().connect()

    def close(self) -> None:
        papi, self._papi = self._papi, None
        if papi is None:
            return
        if self.broken or not self._pool._give_back(self.socket_path, papi):
            disconnect(papi)


# The process's pool: at most one entry.
_installed: list[ClientPool] = []


def install(pool: ClientPool | None) -> None:
    """Makes `pool` (None: none) the one this process's plugin runs borrow from."""
    _installed[:] = [pool] if pool is not None else []


def installed() -> ClientPool | None:
    return _installed[0] if _installed else None
