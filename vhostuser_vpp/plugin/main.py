"""The `vhostuser` executable that container runtimes run, once per attachment and verb."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import IO

from vhostuser_vpp import __version__, logs
from vhostuser_vpp.cni.dispatch import Dispatcher, Handlers
from vhostuser_vpp.plugin import add, check, delete, gc, status


def claim_stdout() -> IO[str]:
    """Keeps fd 1 for the CNI result alone: stray prints of any library, and the
    stdout of any child that inherits it, land on stderr instead."""
    result_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(result_fd, "w", encoding="utf-8")


HANDLERS = Handlers(add=add.run, delete=delete.run, check=check.run, status=status.run, gc=gc.run)
ABOUT = f"vhostuser CNI plugin (vhostuser-vpp {__version__})"


def serve(
    environ: Mapping[str, str], stdin: IO[bytes], stdout: IO[str], stderr: IO[str], executable: str
) -> int:
    """One CNI request, start to end, with the process left as it was found: what main()
    runs once, and what the node agent runs per request, several at once, for the shim
    (vhostuser_vpp/agent/cni_socket.py). `executable`: the file the runtime ran. Returns
    the exit code a runtime must see."""
    with logs.request_scope(stderr):
        dispatcher = Dispatcher(environ, stdin, stdout, stderr, about=ABOUT, executable=executable)
        return dispatcher.run(HANDLERS)


def main() -> None:
    result_out = claim_stdout()
    code = serve(os.environ, sys.stdin.buffer, result_out, sys.stderr, sys.argv[0])
    # Everything is done and printed: skip the interpreter's teardown (module and
    # thread clean-up, ~20 ms of every pod's start-up), as a Go plugin would.
    logging.shutdown()
    result_out.flush()
    sys.stderr.flush()
    os._exit(code)
