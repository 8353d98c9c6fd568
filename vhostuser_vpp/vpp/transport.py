"""vpp_papi's socket transport, minus its reader thread: replies are read by the caller.

vpp_papi reads every message on a thread of its own and hands it over through a
`multiprocessing.Queue` (a pickle, a pipe and a feeder thread each way), built for
asynchronous event callbacks. This client makes one call at a time and subscribes to no
events, so the calling thread reads its reply straight off the socket: a few hundred
microseconds less per message, and no thread to start per connection. A message without
our context (an event) is handed to vpp_papi's handler as its reader thread would.

A read that times out may leave half a message in the socket: the client marks itself
broken (`VppClient.broken`) and is never reused.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
from typing import Any

from vpp_papi.vpp_transport_socket import VppTransport, VppTransportSocketIOError

_SOCKCLNT_CREATE_ID = 15
_SOCKCLNT_CREATE_REPLY_ID = 16
# msgid, client_index, context: the header of every message that has a context.
_HEADER_WITH_CONTEXT = struct.Struct(">HII")


class CallerReadTransport(VppTransport):  # type: ignore[misc]
    def __init__(self, parent: Any, read_timeout: float, server_address: str) -> None:
        # Not the parent's: it makes the two queues (pipes, locks) this class does without.
        self.connected = False
        self.read_timeout = read_timeout if read_timeout > 0 else None
        self.parent = parent
        self.server_address = server_address
        self.header = struct.Struct(">QII")
        self.message_table: dict[str, int] = {}
        self.message_thread = None
        self.socket: socket.socket | None = None
        self.do_async = False

    def connect(self, name: str, pfx: Any, msg_handler: Any, rx_qlen: int, do_async: bool = False) -> int:
        if self.socket is not None:
            raise VppTransportSocketIOError(1, "PAPI socket transport connect: Need to disconnect first.")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.read_timeout)
            sock.connect(self.server_address)
        except OSError:
            sock.close()
            raise
        self.socket = sock
        self.connected = True
        self.do_async = do_async
        create = self.parent.messages["sockclnt_create"]
        self.write(create.pack({"_vl_msg_id": _SOCKCLNT_CREATE_ID, "name": name, "context": 124}))
        msg = self._read()
        header, _ = self.parent.header.unpack(msg, 0)
        if header.msgid != _SOCKCLNT_CREATE_REPLY_ID:
            raise VppTransportSocketIOError(1, "Invalid reply message")
        reply, _ = self.parent.messages["sockclnt_create_reply"].unpack(msg)
        self.socket_index = reply.index
        self.message_table = {m.name: m.index for m in reply.message_table}
        return 0

    def disconnect(self) -> int:
        rv = 0
        with contextlib.suppress(OSError, self.parent.VPPApiError):
            rv = self.parent.api.sockclnt_delete(index=self.socket_index)
        self.connected = False
        if self.socket is not None:
            self.socket.close()
        self.socket = None
        self.message_table = {}
        return rv

    def write(self, buf: bytes) -> None:
        if not self.connected or self.socket is None:
            raise VppTransportSocketIOError(1, "Not connected")
        try:
            self.socket.sendall(self.header.pack(0, len(buf), 0) + buf)
        except OSError as err:
            raise VppTransportSocketIOError(1, f"Sendall error: {err!r}") from err

    def read(self, timeout: float | None = None) -> Any:
        """The next message with a context; None when none comes in `timeout` seconds."""
        if not self.connected or self.socket is None:
            raise VppTransportSocketIOError(1, "Not connected")
        self.socket.settimeout(self.read_timeout if timeout is None else timeout)
        while True:
            try:
                msg = self._read()
            except OSError:  # socket.timeout included
                return None
            if not msg:
                return None
            if not self.do_async and self._has_context(msg):
                return msg
            self.parent.msg_handler_async(msg)

    def quiet(self) -> bool:
        """Whether the connection is open with nothing waiting to be read. Between calls
        nothing should be: readable means VPP closed its end (it exited or restarted) or
        sent what no call asked for; either way the connection is not to be used."""
        if not self.connected or self.socket is None:
            return False
        poller = select.poll()
        poller.register(self.socket, select.POLLIN)
        return not poller.poll(0)

    def _has_context(self, msg: bytes) -> bool:
        """vpp_papi's `has_context` without building a type per message (a namedtuple and
        an eval each time: a tenth of a call's cost)."""
        if len(msg) < _HEADER_WITH_CONTEXT.size:
            return False
        msgid, _, _ = _HEADER_WITH_CONTEXT.unpack_from(msg)
        definition = self.parent.id_msgdef[msgid] if msgid < len(self.parent.id_msgdef) else None
        return definition is not None and "context" in definition.field_by_name
