"""Binary encoding of API messages, driven by the project's own `api_json/` definitions.

The emulator packs and unpacks with `vpp_papi.vpp_serializer` on purpose: a client built on
vpp_papi then sees exactly the byte layout it would get from VPP, and any mismatch between
our definitions and VPP's shows up as a CRC difference in tests rather than as a silent
encoding quirk of a second serializer.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vpp_papi.vpp_papi import VPPApiJSONFiles

from vhostuser_vpp.vpp.api_files import api_json_paths

# Every message starts with its u16 id; requests then carry client_index and context.
MSG_ID = struct.Struct(">H")
REQUEST_HEADER = struct.Struct(">HII")


@dataclass(frozen=True)
class Service:
    """How a request is answered: one reply, a stream of details, or events later on."""

    reply: str
    stream: bool
    events: tuple[str, ...]


class Codec:
    """Packs and unpacks messages by name; ids are the message table's business."""

    def __init__(self, apifiles: Sequence[str] | None = None) -> None:
        files = list(apifiles) if apifiles is not None else api_json_paths()
        _, self._messages, services = VPPApiJSONFiles.load_api(apifiles=files)
        self.services: dict[str, Service] = {
            name: Service(
                reply=str(svc["reply"]),
                stream=bool(svc.get("stream", False)),
                events=tuple(svc.get("events", ())),
            )
            for name, svc in services.items()
        }

    @property
    def names(self) -> list[str]:
        return sorted(self._messages)

    def crc(self, name: str) -> str:
        crc: str = self._messages[name].crc
        return crc

    def fields(self, name: str) -> list[str]:
        return list(self._messages[name].fields)

    def has_field(self, name: str, field: str) -> bool:
        return field in self._messages[name].field_by_name

    def decode(self, name: str, body: bytes, raw: bool = False) -> Any:
        """Unpack with vpp_papi's type conversion (addresses, prefixes and MACs as objects),
        or `raw`: exactly the wire values, e.g. a prefix's host bits that conversion masks."""
        result, _ = self._messages[name].unpack(body, ntc=raw)
        return result

    def encode(self, name: str, msg_id: int, fields: Mapping[str, Any]) -> bytes:
        data = dict(fields)
        data["_vl_msg_id"] = msg_id
        packed: bytes = self._messages[name].pack(data)
        return packed


def peek_msg_id(body: bytes) -> int | None:
    if len(body) < MSG_ID.size:
        return None
    (msg_id,) = MSG_ID.unpack_from(body)
    return int(msg_id)


def peek_context(body: bytes) -> int | None:
    """The context of a request whose layout we may not know: every request has it at byte 6."""
    if len(body) < REQUEST_HEADER.size:
        return None
    _, _, context = REQUEST_HEADER.unpack_from(body)
    return int(context)
