"""Two steps of one request side by side, where each mostly waits: on a child process, on
VPP, on the disk's flush. An ADD waits ~3 ms for IPAM while VPP makes the port in ~1 ms,
and an fsync releases the interpreter's lock as a socket wait does, so running such a
step on a thread of its own takes its time off the request's (docs/benchmarks.md).

The thread runs in a copy of the caller's context, so what it logs goes to the request's
log scope (vhostuser_vpp/logs.py binds it by a context variable). `threading` is loaded
by `logging` already: nothing is added to the plugin's cold start.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")


class Started(Generic[T]):
    """`step(*args)` running on its own thread. It is always waited for: by `wait()`, which
    returns its value or raises its error in the caller's thread; by `settle()`; or on
    leaving a `with` block, which raises its error unless the block is raising one of its
    own (then that one is the failure to report, and the step's is dropped)."""

    def __init__(self, step: Callable[..., T], *args: object) -> None:
        self._step = step
        self._args = args
        self._value: list[T] = []
        self._error: BaseException | None = None
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=context.run, args=(self._run,), daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value.append(self._step(*self._args))
        except BaseException as err:  # handed to whoever waits, and raised there
            self._error = err

    def wait(self) -> T:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value[0]

    def settle(self) -> T | None:
        """Waits; the value, or None when the step failed (for a caller already failing)."""
        self._thread.join()
        return self._value[0] if self._value else None

    def __enter__(self) -> Started[T]:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.wait()
        else:
            self.settle()
