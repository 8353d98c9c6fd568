"""VPP's API socket transport: a stream unix socket carrying `>QII`-framed messages.

Every connection is served by its own task, so a slow or stalled client (or an injected
delay) never holds up the others, while the messages of one client are handled strictly in
order, which is what makes dump + control_ping sequencing work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

FRAME_HEADER = struct.Struct(">QII")
# A message larger than this is a framing error, not a request: VPP's own limit is similar.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# VPP's socket clients are numbered from 1 (0 is the listener) with the top bit set.
CLIENT_INDEX_BIT = 0x80000000


class Connection:
    """One API client: where to send its replies and what it is called."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        self._reader = reader
        self._writer = writer
        self.index = index
        self.client_index = CLIENT_INDEX_BIT | index
        self.closed = False

    def send(self, body: bytes) -> None:
        if self.closed:
            return
        self._writer.write(FRAME_HEADER.pack(0, len(body), 0) + body)

    async def flush(self) -> None:
        if self.closed:
            return
        try:
            await self._writer.drain()
        except (ConnectionError, OSError):
            self.close()

    async def read_message(self) -> bytes | None:
        try:
            header = await self._reader.readexactly(FRAME_HEADER.size)
            _, length, _ = FRAME_HEADER.unpack(header)
            if length > MAX_MESSAGE_BYTES:
                log.warning("client %#x: frame of %d bytes, closing", self.client_index, length)
                return None
            return await self._reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            return None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._writer.close()


MessageHandler = Callable[[Connection, bytes], Awaitable[bool]]
CloseHandler = Callable[[Connection], None]


class ApiServer:
    """Accepts clients on `path` and feeds their messages to `on_message` one at a time.

    `on_message` returns False to have the connection closed (sockclnt_delete, faults).
    """

    def __init__(self, path: str, on_message: MessageHandler, on_close: CloseHandler) -> None:
        self.path = path
        self._on_message = on_message
        self._on_close = on_close
        self._server: asyncio.Server | None = None
        self._free: list[int] = []
        self._next_index = 1
        self.connections: dict[int, Connection] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Bind before returning: once this is done, clients can connect."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(self.path)
            sock.listen(512)
        except OSError:
            sock.close()
            raise
        self._server = await asyncio.start_unix_server(self._serve, sock=sock)

    def _allocate(self) -> int:
        if self._free:
            return self._free.pop()
        index = self._next_index
        self._next_index += 1
        return index

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        conn = Connection(reader, writer, self._allocate())
        self.connections[conn.client_index] = conn
        try:
            while not conn.closed:
                body = await conn.read_message()
                if body is None or not await self._on_message(conn, body):
                    break
                await conn.flush()
        except asyncio.CancelledError:
            pass
        finally:
            conn.close()
            self.connections.pop(conn.client_index, None)
            self._free.append(conn.index)
            self._on_close(conn)
            if task is not None:
                self._tasks.discard(task)

    async def close(self) -> None:
        """Stop listening and drop every client. The socket file stays, as VPP leaves it."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for conn in list(self.connections.values()):
            conn.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
