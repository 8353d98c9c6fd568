"""The emulator's stats segment: what vpp_papi's `VPPStats` maps, laid out as VPP 26.06 lays it.

VPP serves a memfd over a SOCK_SEQPACKET unix socket (`statseg { socket-name }`): a
client connects, receives the fd (SCM_RIGHTS) and maps it read-only. The segment starts
with a header (version 2, the address VPP mapped it at, an epoch, an in-progress flag,
the directory vector); a vector is its elements preceded by an 8-byte header whose first
u32 is its length; every pointer is that base address plus an offset. Directory entries
are (type, value, 128-byte name). What the emulator publishes, as the real one names and
types them (tests/integration/test_differential.py compares):

- `/if/names`: name vector (type 4), one name per sw_if_index, `deleted` for an index
  whose interface was deleted (the vectors never shrink);
- `/if/rx`, `/if/tx`: combined counters (type 3): per thread, per interface (packets, bytes);
- `/if/drops`, `/if/rx-miss`, `/if/rx-error`, `/if/tx-error`, `/if/rx-no-buf`, `/if/punt`:
  simple counters (type 2): per thread, per interface;
- `/node/errors`: a simple counter, per thread, per error; `/err/<node>/<reason>`: a
  symlink (type 6: the directory index of `/node/errors` and the error's index, two u32s
  in the value) for each error the tests made VPP count.

No packets move in the emulator, so the counters are what tests set (`Emulator.count`).
The whole segment is written again on each change, with the in-progress flag up and the
epoch moved on, which is how readers know to retry (VPPStats' optimistic lock).
"""

from __future__ import annotations

import array
import contextlib
import logging
import mmap
import os
import socket
import struct
import threading
from collections.abc import Mapping, Sequence
from typing import Any

log = logging.getLogger(__name__)

SEGMENT_SIZE = 4 << 20
BASE = 0x7F0000000000  # where the segment is "mapped" in VPP: pointers are relative to it
VERSION = 2
TYPE_SIMPLE, TYPE_COMBINED, TYPE_NAME, TYPE_SYMLINK = 2, 3, 4, 6
# version, base, epoch, in_progress, directory vector, error vector
_HEADER = struct.Struct("QPQQPP")
_IN_PROGRESS_AT = 24
_ENTRY = struct.Struct("IQ128s")
_VEC_HEADER = 8

COMBINED = ("/if/rx", "/if/tx")
SIMPLE = ("/if/drops", "/if/rx-miss", "/if/rx-error", "/if/tx-error", "/if/rx-no-buf", "/if/punt")


class _Writer:
    """Lays vectors out one after another in a bytearray; pointers are BASE-relative."""

    def __init__(self) -> None:
        self.data = bytearray(_HEADER.size)

    def vector(self, element: struct.Struct, items: Sequence[tuple[Any, ...]]) -> int:
        self._align()
        self.data += struct.pack("I4x", len(items))
        at = len(self.data)
        for item in items:
            self.data += element.pack(*item)
        return BASE + at

    def string(self, text: str) -> int:
        raw = text.encode() + b"\0"
        return self.vector(struct.Struct("B"), [(b,) for b in raw])

    def _align(self) -> None:
        self.data += bytes(-len(self.data) % 8)


def render(
    epoch: int,
    width: int,
    names: Mapping[int, str],
    counters: Mapping[int, Mapping[str, int]],
    errors: Mapping[str, int],
) -> bytes:
    """The segment for `width` interface indexes (index -> name, index -> counter path ->
    value) and error counters (path -> value), from one thread."""
    out = _Writer()
    entries: list[tuple[int, int, bytes]] = []
    name_pointers = [(out.string(names.get(i, "deleted")),) for i in range(width)]
    entries.append((TYPE_NAME, out.vector(struct.Struct("P"), name_pointers), b"/if/names"))
    for path in COMBINED:
        values = [
            (counters.get(i, {}).get(f"{path}/packets", 0), counters.get(i, {}).get(f"{path}/bytes", 0))
            for i in range(width)
        ]
        per_thread = [(out.vector(struct.Struct("QQ"), values),)]
        entries.append((TYPE_COMBINED, out.vector(struct.Struct("P"), per_thread), path.encode()))
    for path in SIMPLE:
        values_simple = [(counters.get(i, {}).get(path, 0),) for i in range(width)]
        per_thread = [(out.vector(struct.Struct("Q"), values_simple),)]
        entries.append((TYPE_SIMPLE, out.vector(struct.Struct("P"), per_thread), path.encode()))
    reasons = sorted(errors)
    per_thread = [(out.vector(struct.Struct("Q"), [(errors[r],) for r in reasons]),)]
    node_errors = len(entries)
    entries.append((TYPE_SIMPLE, out.vector(struct.Struct("P"), per_thread), b"/node/errors"))
    for index, path in enumerate(reasons):
        link = struct.unpack("Q", struct.pack("II", node_errors, index))[0]
        entries.append((TYPE_SYMLINK, link, path.encode()))
    directory = out.vector(_ENTRY, entries)
    if len(out.data) > SEGMENT_SIZE:
        raise ValueError(f"stats segment of {len(out.data)} bytes exceeds {SEGMENT_SIZE}")
    _HEADER.pack_into(out.data, 0, VERSION, BASE, epoch, 0, directory, 0)
    return bytes(out.data)


class StatsSegment:
    """The memfd and the socket that hands it out, on a thread of its own."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self._fd = os.memfd_create("vpp-emulator-stats")
        os.ftruncate(self._fd, SEGMENT_SIZE)
        self._map = mmap.mmap(self._fd, SEGMENT_SIZE)
        self._epoch = 0
        self._width = 0
        self._lock = threading.Lock()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(socket_path)
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._listener.bind(socket_path)
        self._listener.listen(16)
        self.publish({}, {}, {})
        self._thread = threading.Thread(target=self._serve, name="vpp-emulator-stats", daemon=True)
        self._thread.start()

    def publish(
        self, names: Mapping[int, str], counters: Mapping[int, Mapping[str, int]], errors: Mapping[str, int]
    ) -> None:
        with self._lock:
            self._epoch += 1
            self._width = max(self._width, max(names, default=-1) + 1)
            body = render(self._epoch, self._width, names, counters, errors)
            struct.pack_into("Q", self._map, _IN_PROGRESS_AT, 1)
            self._map[_HEADER.size : len(body)] = body[_HEADER.size :]
            self._map[:_IN_PROGRESS_AT] = body[:_IN_PROGRESS_AT]  # version, base, epoch
            self._map[_IN_PROGRESS_AT + 8 : _HEADER.size] = body[_IN_PROGRESS_AT + 8 : _HEADER.size]
            struct.pack_into("Q", self._map, _IN_PROGRESS_AT, 0)

    def _serve(self) -> None:
        fds = array.array("i", [self._fd])
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            with conn:
                try:
                    conn.sendmsg([b"\0"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds.tobytes())])
                except OSError as exc:
                    log.debug("stats client left early: %s", exc)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(timeout=5)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)
        self._map.close()
        os.close(self._fd)
