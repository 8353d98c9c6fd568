"""Replay every client request a real VPP 26.06 answered (reference transcript) against the
emulator and compare the answers field by field, events included.

The requests are sent as raw frames, re-encoded only where they name something of the
recording machine (socket paths), so the emulator sees exactly the bytes VPP saw.
Values that differ from run to run on a real VPP too (random vhost-user MACs, pids,
neighbour age, the full 841-message table) are left out of the comparison; the order of
routes of equal prefix length is compared as a set (VPP walks a hash there).
"""

from __future__ import annotations

import json
import socket
import struct
from pathlib import Path
from typing import Any

from tests.integration.papi_values import plain
from tests.reference import MESSAGE_TABLE, TRANSCRIPT
from vhostuser_vpp.sim import Emulator
from vhostuser_vpp.sim.codec import Codec

RECORDED_BASE = "/var/lib/cni/vhostuser"
HEADER = struct.Struct(">QII")
VOLATILE = {"vpe_pid", "pid", "age", "count", "message_table"}


def packable(value: Any) -> Any:
    """Decoded namedtuples back into the dicts vpp_serializer packs; leaf values unchanged."""
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {k: packable(v) for k, v in value._asdict().items() if k != "_0"}
    if isinstance(value, list):
        return [packable(v) for v in value]
    return value


class RawClient:
    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(path)

    def send(self, body: bytes) -> None:
        self.sock.sendall(HEADER.pack(0, len(body), 0) + body)

    def _exact(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            assert chunk, "emulator closed the connection"
            data += chunk
        return data

    def recv(self) -> bytes:
        _, length, _ = HEADER.unpack(self._exact(HEADER.size))
        return self._exact(length)


def frames() -> list[dict[str, Any]]:
    doc: dict[str, Any] = json.loads(TRANSCRIPT.read_text())
    return list(doc["frames"])


def map_path(recorded: str, base: Path) -> str:
    if recorded.startswith(RECORDED_BASE):
        return str(base) + recorded[len(RECORDED_BASE) :]
    return recorded


def prepare_dirs(all_frames: list[dict[str, Any]], base: Path) -> None:
    """The recording machine had the pods' socket directories, but not the 'missing' one."""
    for frame in all_frames:
        path = frame.get("fields", {}).get("sock_filename", "")
        if path.startswith(RECORDED_BASE) and "/missing/" not in path:
            Path(map_path(path, base)).parent.mkdir(parents=True, exist_ok=True)


def comparable(name: str, decoded: dict[str, Any], base: Path, vhost_indexes: set[int]) -> dict[str, Any]:
    out = {k: v for k, v in decoded.items() if k not in VOLATILE}
    if "sock_filename" in out:
        out["sock_filename"] = map_path(out["sock_filename"], base)
    if name == "sw_interface_details" and out["sw_if_index"] in vhost_indexes:
        out.pop("l2_address")
    return out


def test_transcript_codec_round_trip() -> None:
    """Our api_json encodes every recorded frame back to VPP's exact bytes."""
    codec = Codec()
    for frame in frames():
        if "msg" not in frame:
            continue
        body = bytes.fromhex(frame["hex"])
        fields = packable(codec.decode(frame["msg"], body, raw=True))
        assert codec.encode(frame["msg"], frame["msg_id"], fields) == body, frame["msg"]


def test_replay_transcript(short_dir: Path) -> None:
    all_frames = frames()
    # No longer than the recorded base, so that no path crosses the 107-byte socket limit.
    base = short_dir / "v"
    prepare_dirs(all_frames, base)
    codec = Codec()
    with Emulator.start(str(short_dir / "api.sock")) as emu:
        client = RawClient(emu.socket_path)
        vhost_indexes: set[int] = set()
        pending_routes: list[tuple[dict[str, Any], dict[str, Any]]] = []
        previous_event_link_up = False
        for position, frame in enumerate(all_frames):
            if "step" in frame and "msg" not in frame:
                if frame["step"].startswith("frontend (DPDK virtio_user) connects"):
                    # The recorded dump saw the memory table before the link came up.
                    assert emu.frontend_connect(2, link_up=False)
                continue
            name = frame["msg"]
            body = bytes.fromhex(frame["hex"])
            if frame["dir"] == "client->vpp":
                assert not pending_routes
                fields = packable(codec.decode(name, body))
                if "sock_filename" in fields:
                    fields["sock_filename"] = map_path(fields["sock_filename"], base)
                client.send(codec.encode(name, emu.table.ids[name], fields))
                continue
            if name == "sw_interface_event":
                flags = frame["fields"]["flags"]
                if flags == 2:
                    assert emu.frontend_link_up(frame["fields"]["sw_if_index"])
                elif previous_event_link_up:
                    assert emu.frontend_disconnect(frame["fields"]["sw_if_index"])
                previous_event_link_up = flags == 2
            got_body = client.recv()
            got_id = struct.unpack_from(">H", got_body)[0]
            assert emu.table.names_by_id[got_id] == name, f"frame {position}: expected {name}"
            expected = plain(codec.decode(name, body, raw=True))
            got = plain(codec.decode(name, got_body, raw=True))
            if name in {"create_vhost_user_if_reply", "create_vhost_user_if_v2_reply"} and got["retval"] == 0:
                vhost_indexes.add(got["sw_if_index"])
            if name == "sockclnt_create_reply":
                check_message_table(got)
            if name == "ip_route_details":
                pending_routes.append((expected, got))
                continue
            if pending_routes:
                check_routes(pending_routes)
                pending_routes = []
            assert comparable(name, got, base, vhost_indexes) == comparable(
                name, expected, base, vhost_indexes
            ), f"frame {position} ({name}) differs"


def check_message_table(reply: dict[str, Any]) -> None:
    real: dict[str, int] = json.loads(MESSAGE_TABLE.read_text())["messages"]
    ours = {entry["name"]: entry["index"] for entry in reply["message_table"]}
    assert reply["count"] == len(ours)
    for name_crc, msg_id in ours.items():
        assert real.get(name_crc) == msg_id, name_crc


def check_routes(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    """Same routes; lengths in the same (ascending) order; equal lengths in any order."""

    def length(detail: dict[str, Any]) -> int:
        return int(detail["route"]["prefix"]["len"])

    def key(detail: dict[str, Any]) -> str:
        return json.dumps(detail["route"]["prefix"], sort_keys=True)

    expected = [e for e, _ in pairs]
    got = [g for _, g in pairs]
    assert [length(d) for d in got] == [length(d) for d in expected]
    assert sorted(got, key=key) == sorted(expected, key=key)
