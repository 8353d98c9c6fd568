"""The `vhostuser` executable a runtime runs: hands the request to the node agent, or serves it.

Started as `python3 -IS` (no `site`, no environment-driven imports) and importing nothing
beyond the interpreter's built-in modules, it costs a tenth of the plugin's cold start.
Not even `os`: frozen into the interpreter, it still costs ~1 ms to run (with
`_collections_abc`), a tenth of the shim's time; `posix` underlies it and is built in.
`install` starts it with the distribution's python3 where there is one (no venv to set up,
an optimised build: 3 ms less than the venv's interpreter here, docs/benchmarks.md).
It reads the runtime's stdin, sends it with the environment to the agent's root-only
socket (`agent_socket` of the node policy, written in by `vhostuser-vpp install`), and
prints the agent's stdout and stderr and exits with its code: what a direct run would
have printed, since the agent runs the same `serve` on the same input.

Whenever the agent cannot serve, the shim becomes the plugin, exactly as before the fast
path (the package's interpreter, isolated, the runtime's stdin, exec'd in its place):
- no socket, a refused or slow connection (`CONNECT_TIMEOUT_S`), no `accepted` within
  `ACCEPT_TIMEOUT_S`, a decline (another protocol version; a shim in other namespaces);
- the connection lost after `accepted` (the agent restarted or died mid-request): the
  verbs are safe to run again (ADD returns the finished attachment's result or undoes an
  unfinished one first; DEL tolerates what is gone), so a request is never lost;
- no answer within `ANSWER_TIMEOUT_S`, longer than any request takes (IPAM, VPP and lock
  waits are bounded well below it).
The socket must be held by root (or by this user): the shim talks to no other peer.
"""

import _socket
import posix
import sys

from vhostuser_vpp.agent import wire

TYPE_CHECKING = False  # `typing` is not imported at run time (agent/wire.py)
if TYPE_CHECKING:
    from typing import NoReturn

CONNECT_TIMEOUT_S = 0.5
ACCEPT_TIMEOUT_S = 2.0
ANSWER_TIMEOUT_S = 600.0


# Run by the package's interpreter in the shim's place: the plugin's main, with the
# shim's path as its argv[0] (a delegated plugin that is this file is the plugin itself).
PLUGIN_CODE = "import sys; sys.argv[0] = sys.argv.pop(1); from vhostuser_vpp.plugin.main import main; main()"


def main(agent_socket: str, plugin_python: str) -> None:
    command = posix.environ.get(b"CNI_COMMAND", b"")
    # VERSION is served by the plugin, always: it is how `vhostuser-vpp install` checks
    # that the shim can serve by itself. A run without a command is someone at a terminal.
    if not (agent_socket and command and command != b"VERSION"):
        run_plugin(plugin_python, None)
    stdin = _read_all(0)
    answer = ask_agent(agent_socket, stdin)
    if answer is None:
        run_plugin(plugin_python, stdin)
    code, stdout, stderr = answer
    _write_all(1, stdout)
    _write_all(2, stderr)
    posix._exit(code)


def ask_agent(path: str, stdin: bytes) -> tuple[int, bytes, bytes] | None:
    """The agent's (exit code, stdout, stderr), or None when the shim must serve."""
    environ = [key + b"=" + value for key, value in posix.environ.items()]
    conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        conn.settimeout(CONNECT_TIMEOUT_S)
        conn.connect(path)
        if not _held_by_root(conn):
            return None
        conn.settimeout(ACCEPT_TIMEOUT_S)
        conn.sendall(wire.encode_request(environ, stdin, _own_path()))
        if wire.read_line(conn) != wire.ACCEPTED:
            return None
        conn.settimeout(ANSWER_TIMEOUT_S)
        return wire.read_answer(conn)
    except (OSError, wire.ProtocolError):
        return None
    finally:
        conn.close()


def _own_path() -> bytes:
    """The file the runtime ran, absolute (the agent compares it with IPAM's plugin, which
    must not be this plugin again); runtimes run it by an absolute path already."""
    path = sys.argv[0].encode(sys.getfilesystemencoding(), "surrogateescape")
    return path if path.startswith(b"/") else posix.getcwdb() + b"/" + path


def _held_by_root(conn: _socket.socket) -> bool:
    creds = conn.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
    uid = int.from_bytes(creds[4:8], sys.byteorder)
    return uid in (0, posix.geteuid())


def run_plugin(python: str, stdin: bytes | None) -> "NoReturn":
    """Replaces this process with the plugin run directly. `stdin`: what the shim read of
    the runtime's stdin, given back whole on fd 0 (None: not read, left as it is)."""
    if stdin is not None:
        fd = posix.memfd_create("cni-stdin")
        _write_all(fd, stdin)
        posix.lseek(fd, 0, 0)  # SEEK_SET
        posix.dup2(fd, 0)
        posix.close(fd)
    posix.execv(python, [python, "-I", "-c", PLUGIN_CODE, sys.argv[0]])  # argv, no shell


def _read_all(fd: int) -> bytes:
    parts = []
    while True:
        try:
            chunk = posix.read(fd, 1 << 16)
        except OSError:  # no stdin at all (closed fd)
            break
        if not chunk:
            break
        parts.append(chunk)
    return b"".join(parts)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[posix.write(fd, view) :]
