"""The agent's CNI socket: the requests the `vhostuser` shim hands over, served in-process.

Each connection is one request (agent/wire.py), served on its own thread by the same
`plugin.main.serve` a direct run calls, with the same environment and stdin, so the node
policy, the per-container and node locks and every check apply as they would; the
imports, the API definitions and the VPP connections (vpp/pool.py) are what is saved.

A request is declined, and the shim serves it itself, when the agent could not serve it
as a direct run would:
- the peer is not root (the socket is 0600 and root's, so only a leak would let one in);
- the peer lives in another network or mount namespace than the agent: host routes,
  host-local's files and every path the request names would be another host's here.
At most `max_parallel` requests are served at once; the others wait their turn (the
shim was told `accepted` at once, so it does not fall back meanwhile). Stopping closes
the socket first (new shims serve themselves), then waits for the requests in flight.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import socket
import socketserver
import struct
import threading
import time
from typing import TYPE_CHECKING

from vhostuser_vpp.agent import wire
from vhostuser_vpp.cni.env import COMMANDS

if TYPE_CHECKING:
    from vhostuser_vpp.agent.metrics import Metrics

log = logging.getLogger(__name__)

# More requests at once only add contention for one interpreter's lock: on 2 cores 4 to 8
# give the most pods/s (docs/benchmarks.md). The others wait, accepted.
MAX_PARALLEL = 8
# Pods start in bursts; a shim that cannot connect at once serves itself, at ten times
# the cost, so the backlog holds a node's worth of them (the kernel caps it at somaxconn).
BACKLOG = 1024
# The shim sends its whole request at once; a peer that does not is dropped.
READ_TIMEOUT_S = 10.0
_NAMESPACES = ("net", "mnt")


class CniSocket:
    def __init__(self, path: str, metrics: Metrics, max_parallel: int = MAX_PARALLEL) -> None:
        self.path = path
        self.metrics = metrics
        self._slots = threading.BoundedSemaphore(max_parallel)
        self._own = _namespaces("self")
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        _remove_stale(path)
        # Never a moment when others may connect. umask is the process's: this runs before
        # the agent starts any thread that makes files (agent/command.py).
        old_umask = os.umask(0o177)
        try:
            self._server = _Server(path, _handler(self))
        finally:
            os.umask(old_umask)
        self._thread = threading.Thread(target=self._server.serve_forever, name="cni-socket", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """No new requests (the socket goes), then the ones in flight finish."""
        self._server.shutdown()
        self._server.socket.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self._server.server_close()  # joins the request threads
        self._thread.join(timeout=5)

    def why_not(self, pid: int, uid: int) -> tuple[str, str]:
        """(kind, why) this peer's request must be served by the shim; ("", "") when the
        agent may serve it."""
        if uid != 0:
            return "peer", f"peer uid {uid} is not root"
        try:
            theirs = _namespaces(str(pid))
        except OSError as err:
            return "namespace", f"cannot see the peer's namespaces: {err}"
        for kind, own, peer in zip(_NAMESPACES, self._own, theirs, strict=True):
            if own != peer:
                return "namespace", f"peer is in another {kind} namespace"
        return "", ""

    def serve(self, conn: socket.socket) -> None:
        conn.settimeout(READ_TIMEOUT_S)
        pid, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        try:
            environment, stdin, executable = wire.read_request(conn)
            environ = {
                os.fsdecode(key): os.fsdecode(value) for key, value in wire.decode_environment(environment)
            }
        except (OSError, wire.ProtocolError) as err:
            log.warning("declined a request", extra={"event": "declined", "error": str(err), "peer": pid})
            self.metrics.cni_declined.labels("protocol").inc()
            with contextlib.suppress(OSError):
                conn.sendall(wire.DECLINED + b"protocol\n")
            return
        kind, reason = self.why_not(pid, uid)
        if reason:
            log.info("declined a request", extra={"event": "declined", "error": reason, "peer": pid})
            self.metrics.cni_declined.labels(kind).inc()
            conn.sendall(wire.DECLINED + reason.encode() + b"\n")
            return
        conn.sendall(wire.ACCEPTED)
        began = time.monotonic()
        with self.metrics.cni_in_flight.track_inprogress(), self._slots:
            code, stdout, stderr = run(environ, stdin, os.fsdecode(executable))
        self.metrics.cni_request_seconds.observe(time.monotonic() - began)
        command = environ.get("CNI_COMMAND", "")
        label = command if command in COMMANDS else "other"
        self.metrics.cni_requests.labels(label, "ok" if code == 0 else "error").inc()
        conn.settimeout(READ_TIMEOUT_S)
        try:
            conn.sendall(wire.encode_answer(code, stdout, stderr))
        except OSError as err:
            # The shim is gone (the runtime gave up): what was done stays done, as when a
            # runtime kills a plugin that has finished; its DEL or next ADD takes it from there.
            log.warning("shim left before the answer", extra={"event": "answer_lost", "error": str(err)})


def run(environ: dict[str, str], stdin: bytes, executable: str) -> tuple[int, bytes, bytes]:
    """One request through the plugin's `serve`: (exit code, stdout, stderr) as bytes."""
    from vhostuser_vpp.plugin.main import serve

    stdout, stderr = io.StringIO(), io.StringIO()
    code = serve(environ, io.BytesIO(stdin), stdout, stderr, executable)
    return code, stdout.getvalue().encode(), stderr.getvalue().encode(errors="replace")


def _namespaces(pid: str) -> tuple[tuple[int, int], ...]:
    return tuple((st.st_dev, st.st_ino) for st in (os.stat(f"/proc/{pid}/ns/{kind}") for kind in _NAMESPACES))


def _remove_stale(path: str) -> None:
    """A socket left by an agent that died; refuses to start beside one that still answers."""
    if not os.path.lexists(path):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(0.5)
        probe.connect(path)
    except OSError:
        os.unlink(path)
        return
    finally:
        probe.close()
    raise OSError(f"another agent serves {path}")


def _handler(cni_socket: CniSocket) -> type[socketserver.BaseRequestHandler]:
    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            try:
                cni_socket.serve(self.request)
            except Exception:
                log.exception("serving a request failed", extra={"event": "request_failed"})

    return Handler


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = False
    block_on_close = True
    request_queue_size = BACKLOG
