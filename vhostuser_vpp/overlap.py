"""A step of a request run beside another, where both mostly wait: an fsync releases the
interpreter's lock as a wait on VPP's socket does, so ADD writes its files while VPP
wires the port, and the ready record beside the pod's copy of it (docs/benchmarks.md).

The thread runs in a copy of the caller's context, so what it logs goes to the request's
log scope (vhostuser_vpp/logs.py binds it by a context variable). `threading` is loaded
by `logging` already: nothing is added to the plugin's cold start.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def alongside(step: Callable[..., object], *args: object) -> Iterator[None]:
    """`step(*args)` on a thread of its own while the block runs, waited for when the block
    ends. Its error is raised then, unless the block raised one of its own: that one is
    the failure to report, and the undo it sets off removes what the step made."""
    failed: list[BaseException] = []

    def run() -> None:
        try:
            step(*args)
        except BaseException as err:  # raised in the caller's thread, below
            failed.append(err)

    thread = threading.Thread(target=contextvars.copy_context().run, args=(run,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()
    if failed:
        raise failed[0]
