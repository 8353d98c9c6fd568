"""Fault injection: make the emulated VPP fail, stall or drop clients on purpose.

Real VPPs fail in ways a test cannot provoke on demand (a create refused mid-ADD, an API
thread stuck behind a long CLI command, a restart between two calls), and the plugin's
error paths are only trustworthy once they have run. Rules are consulted for every request
and may be changed at any time from any thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TypeVar


@dataclass
class _Rule:
    remaining: int | None  # None: forever

    def consume(self) -> bool:
        if self.remaining is None:
            return True
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True


@dataclass
class _Fail(_Rule):
    retval: int


@dataclass
class _Delay(_Rule):
    seconds: float


_R = TypeVar("_R", bound=_Rule)


@dataclass(frozen=True)
class Decision:
    """What to do with one request, decided once when it arrives."""

    fail_retval: int | None = None
    delay: float = 0.0
    ignore: bool = False
    drop_connection: bool = False


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fail: dict[str, list[_Fail]] = {}
        self._delay: dict[str, list[_Delay]] = {}
        self._ignore: dict[str, list[_Rule]] = {}
        self._drop_after: int | None = None
        self._drop_message: str | None = None

    def fail(self, message: str, retval: int = -1, times: int | None = 1) -> None:
        """Answer the next `times` `message` requests (None: all) with `retval`, changing nothing."""
        with self._lock:
            self._fail.setdefault(message, []).append(_Fail(times, retval))

    def delay(self, message: str, seconds: float, times: int | None = None) -> None:
        """Hold the answer to `message` for `seconds` (that client's later requests wait too)."""
        with self._lock:
            self._delay.setdefault(message, []).append(_Delay(times, seconds))

    def ignore(self, message: str, times: int | None = 1) -> None:
        """Never answer `message`, as VPP does for a message it has no handler for."""
        with self._lock:
            self._ignore.setdefault(message, []).append(_Rule(times))

    def drop_connection_after(self, n: int, message: str | None = None) -> None:
        """Serve `n` more requests (of `message`, or any), then close the connection that sends
        the next one without answering it, as a VPP crash mid-call looks to a client. One-shot."""
        if n < 0:
            raise ValueError("n must be >= 0")
        with self._lock:
            self._drop_after = n
            self._drop_message = message

    def clear(self) -> None:
        with self._lock:
            self._fail.clear()
            self._delay.clear()
            self._ignore.clear()
            self._drop_after = None
            self._drop_message = None

    def decide(self, message: str) -> Decision:
        with self._lock:
            if self._drop_after is not None and self._drop_message in (None, message):
                if self._drop_after == 0:
                    self._drop_after = None
                    return Decision(drop_connection=True)
                self._drop_after -= 1
            ignore = self._first(self._ignore, message) is not None
            delay_rule = self._first(self._delay, message)
            fail_rule = self._first(self._fail, message)
        return Decision(
            fail_retval=fail_rule.retval if isinstance(fail_rule, _Fail) else None,
            delay=delay_rule.seconds if isinstance(delay_rule, _Delay) else 0.0,
            ignore=ignore,
        )

    @staticmethod
    def _first(rules: dict[str, list[_R]], message: str) -> _R | None:
        for rule in rules.get(message, []):
            if rule.consume():
                return rule
        return None


def parse_fail(spec: str) -> tuple[str, int, int | None]:
    """CLI form MSG[:RETVAL[:TIMES]]; TIMES 0 or absent-with-retval means every time."""
    parts = spec.split(":")
    if not 1 <= len(parts) <= 3 or not parts[0]:
        raise ValueError(f"bad --fail {spec!r}: want MSG[:RETVAL[:TIMES]]")
    retval = int(parts[1]) if len(parts) > 1 else -1
    times = int(parts[2]) if len(parts) > 2 else 0
    return parts[0], retval, (times or None)


def parse_delay(spec: str) -> tuple[str, float]:
    name, sep, seconds = spec.partition(":")
    if not sep or not name:
        raise ValueError(f"bad --delay {spec!r}: want MSG:SECONDS")
    return name, float(seconds)
