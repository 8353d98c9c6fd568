"""From a framed request to framed answers: lookup, faults, handler, context, events.

Anything the emulator cannot answer properly still gets an answer a client can handle:
VPP itself logs and drops a message it has no handler for, which leaves a client waiting
until its read timeout; the emulator instead answers with a `control_ping_reply` carrying
the request's context and retval -9 (UNIMPLEMENTED), the one reply every client can decode.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from vhostuser_vpp.sim import retvals as rv
from vhostuser_vpp.sim.codec import Codec, peek_context, peek_msg_id
from vhostuser_vpp.sim.faults import Faults
from vhostuser_vpp.sim.fib import ANY_INDEX
from vhostuser_vpp.sim.handlers import HANDLERS, Context, Reply
from vhostuser_vpp.sim.msgtable import MessageTable
from vhostuser_vpp.sim.state import VppState
from vhostuser_vpp.sim.transport import Connection

log = logging.getLogger(__name__)

EVENT_MESSAGE = "sw_interface_event"
# Reply fields that name an object: VPP leaves them at ~0 when a request fails.
INDEX_FIELDS = ("sw_if_index", "stats_index")


class Dispatcher:
    def __init__(
        self,
        state: VppState,
        codec: Codec,
        table: MessageTable,
        faults: Faults,
        version: str,
        build_date: str,
        vpe_pid: int,
    ) -> None:
        """`vpe_pid` is what control_ping answers: a restarted VPP is a new process."""
        self.vpe_pid = vpe_pid
        self.codec = codec
        self.table = table
        self.faults = faults
        self.version = version
        self.build_date = build_date
        self.state = state
        self.connections: dict[int, Connection] = {}
        self._names = table.names_by_id
        # Called after every message answered (the stats segment follows the interfaces).
        self.after_message: Callable[[], None] | None = None

    async def handle(self, conn: Connection, body: bytes) -> bool:
        """Answer one request; False means close this connection."""
        msg_id = peek_msg_id(body)
        name = self._names.get(msg_id) if msg_id is not None else None
        if name is None or name not in HANDLERS:
            self._unanswerable(conn, body, f"unknown message id {msg_id}")
            return True
        decision = self.faults.decide(name)
        if decision.drop_connection:
            log.info("fault: dropping client %#x at %s", conn.client_index, name)
            return False
        if decision.delay:
            await asyncio.sleep(decision.delay)
        if decision.ignore or conn.closed:
            return True
        try:
            msg = self.codec.decode(name, body)
        except Exception:  # a malformed body must not take the emulator down
            log.exception("cannot decode %s from client %#x", name, conn.client_index)
            self._unanswerable(conn, body, f"undecodable {name}")
            return True
        if decision.fail_retval is not None:
            replies = self._failure(name, decision.fail_retval)
        else:
            replies = self._run(name, conn, msg)
        for reply_name, fields in replies:
            self._send(conn, reply_name, fields, getattr(msg, "context", 0))
        self.flush_events()
        if self.after_message is not None:
            self.after_message()
        return name != "sockclnt_delete"

    def _run(self, name: str, conn: Connection, msg: Any) -> list[Reply]:
        ctx = Context(
            state=self.state,
            table=self.table,
            client_index=conn.client_index,
            vpe_pid=self.vpe_pid,
            version=self.version,
            build_date=self.build_date,
        )
        try:
            return HANDLERS[name](ctx, msg)
        except Exception:
            log.exception("handler for %s failed", name)
            return self._failure(name, rv.UNSPECIFIED)

    def _failure(self, name: str, retval: int) -> list[Reply]:
        service = self.codec.services.get(name)
        if service is None or service.stream:
            return []
        fields: dict[str, Any] = {"retval": retval}
        for field in INDEX_FIELDS:
            if self.codec.has_field(service.reply, field):
                fields[field] = ANY_INDEX
        return [(service.reply, fields)]

    def _send(self, conn: Connection, name: str, fields: dict[str, Any], context: int) -> None:
        if name not in self.table:
            log.warning("not sending %s: left out of the message table", name)
            return
        data = dict(fields)
        if self.codec.has_field(name, "context"):
            data["context"] = context
        conn.send(self.codec.encode(name, self.table.ids[name], data))

    def _unanswerable(self, conn: Connection, body: bytes, why: str) -> None:
        context = peek_context(body)
        log.warning(
            "client %#x: %s; answering control_ping_reply %d", conn.client_index, why, rv.UNIMPLEMENTED
        )
        if context is None:
            return
        self._send(conn, "control_ping_reply", {"retval": rv.UNIMPLEMENTED, "vpe_pid": self.vpe_pid}, context)

    def flush_events(self) -> None:
        """Send pending interface events to every subscriber, after the reply that caused them."""
        events = self.state.take_events()
        if not events or EVENT_MESSAGE not in self.table:
            return
        for client_index, pid in list(self.state.event_subscribers.items()):
            conn = self.connections.get(client_index)
            if conn is None:
                continue
            for event in events:
                self._send(
                    conn,
                    EVENT_MESSAGE,
                    {
                        "client_index": client_index,
                        "pid": pid,
                        "sw_if_index": event.sw_if_index,
                        "flags": event.flags,
                        "deleted": event.deleted,
                    },
                    0,
                )

    def client_gone(self, conn: Connection) -> None:
        self.connections.pop(conn.client_index, None)
        self.state.client_gone(conn.client_index)
