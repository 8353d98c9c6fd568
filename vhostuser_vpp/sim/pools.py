"""Index allocation the way VPP's pools and bitmaps do it.

The reuse order is observable (README: ports 1..5, delete 2, 3, 4 -> next creates get 4, 3, 2)
and is exactly what makes a saved sw_if_index dangerous, so the emulator must reproduce it.
"""

from __future__ import annotations

from collections.abc import Iterable


class IndexPool:
    """A VPP pool: fresh indexes grow from `first`; freed ones come back last-freed-first."""

    def __init__(self, first: int = 0, taken: Iterable[int] = ()) -> None:
        self._next = first
        self._free: list[int] = []
        for index in taken:
            self.take(index)

    def get(self) -> int:
        if self._free:
            return self._free.pop()
        index = self._next
        self._next += 1
        return index

    def take(self, index: int) -> None:
        """Claim a specific index (preallocated entries, renumbered devices)."""
        if index in self._free:
            self._free.remove(index)
            return
        while self._next < index:
            self._free.insert(0, self._next)
            self._next += 1
        if index == self._next:
            self._next += 1

    def put(self, index: int) -> None:
        self._free.append(index)


class LowestFree:
    """A VPP bitmap allocator: always the lowest free number (loopback instances, bd index)."""

    def __init__(self, first: int = 0) -> None:
        self._first = first
        self._used: set[int] = set()

    def get(self) -> int:
        index = self._first
        while index in self._used:
            index += 1
        self._used.add(index)
        return index

    def take(self, index: int) -> bool:
        if index in self._used:
            return False
        self._used.add(index)
        return True

    def put(self, index: int) -> None:
        self._used.discard(index)
