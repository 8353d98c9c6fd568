"""The agent's Prometheus metrics and its HTTP endpoint (`/metrics`, `/healthz`).

Besides the agent's own, every pod port's packet counters, read from VPP's stats
segment at each scrape (`PortCounters`), labelled with the pod's namespace and name,
the VPP interface, the network and the pod's interface name.

Served on what the node policy's `agent_listen` names: a unix socket (0600, root's) or a
loopback port, never another address, so nothing off the node reads them.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import os
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

PREFIX = "vhostuser_vpp_agent"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.vpp_up = Gauge(f"{PREFIX}_vpp_up", "1 while the agent is connected to VPP", registry=r)
        self.ports = Gauge(
            f"{PREFIX}_ports", "Recorded ports by state at the last reconcile", ["state"], registry=r
        )
        self.reconnects = Counter(f"{PREFIX}_vpp_reconnects", "Connections to VPP made again", registry=r)
        self.restarts = Counter(
            f"{PREFIX}_vpp_restarts", "VPP restarts seen (a new VPP process answered)", registry=r
        )
        self.restores = Counter(
            f"{PREFIX}_restores", "Ports made again in VPP, by outcome", ["outcome"], registry=r
        )
        self.restore_seconds = Histogram(
            f"{PREFIX}_restore_duration_seconds",
            "From VPP answering again to every recorded port restored",
            buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64),
            registry=r,
        )
        self.reconciles = Counter(f"{PREFIX}_reconciles", "Reconcile passes", registry=r)
        self.reconcile_seconds = Histogram(
            f"{PREFIX}_reconcile_duration_seconds",
            "One reconcile pass: restore, then collect what no pod owns",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16),
            registry=r,
        )
        self.collected = Counter(
            f"{PREFIX}_collected", "Objects of ours no pod owns, removed, by kind", ["kind"], registry=r
        )
        self.cni_requests = Counter(
            f"{PREFIX}_cni_requests",
            "CNI requests served for the shim, by command and result (ok, error: the CNI error answered)",
            ["command", "result"],
            registry=r,
        )
        self.cni_declined = Counter(
            f"{PREFIX}_cni_declined",
            "Shim requests left to the shim, by why (protocol, peer, namespace)",
            ["reason"],
            registry=r,
        )
        self.cni_request_seconds = Histogram(
            f"{PREFIX}_cni_request_duration_seconds",
            "One shim request, from accepted to answered",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.cni_in_flight = Gauge(
            f"{PREFIX}_cni_requests_in_flight", "Shim requests accepted and not yet answered", registry=r
        )
        self.last_error_time = Gauge(
            f"{PREFIX}_last_error_timestamp_seconds", "When the last error happened (0: none)", registry=r
        )
        self.last_error = Info(f"{PREFIX}_last_error", "The last error the agent met", registry=r)

    def count_ports(self, cni_dirs: Sequence[str], stats_socket: str) -> None:
        """Per-port counters from the records in `cni_dirs` and VPP's stats segment."""
        self.registry.register(PortCounters(cni_dirs, stats_socket))

    def error(self, message: str) -> None:
        self.last_error_time.set_to_current_time()
        self.last_error.info({"message": message[:500]})

    def render(self) -> bytes:
        return generate_latest(self.registry)


PORT_LABELS = ("namespace", "pod", "interface", "network", "ifname")
# metric -> (help, the InterfaceCounters field)
_PORT_COUNTERS = {
    "rx_packets": ("Packets VPP received from the pod", "rx_packets"),
    "rx_bytes": ("Bytes VPP received from the pod", "rx_bytes"),
    "tx_packets": ("Packets VPP sent to the pod", "tx_packets"),
    "tx_bytes": ("Bytes VPP sent to the pod", "tx_bytes"),
    "drops": ("Packets of the pod's port VPP dropped", "drops"),
    "punt": ("Packets of the pod's port VPP punted (26.06: those for another MAC)", "punt"),
    "rx_miss": ("Packets the pod's port missed (rx queue full)", "rx_miss"),
}


class PortCounters:
    """A collector: at each scrape, each ready record's port found by its interface name in
    the stats segment's `/if/names`, and that index's counters. The segment is mapped per
    scrape: a restarted VPP has a new one."""

    def __init__(self, cni_dirs: Sequence[str], stats_socket: str) -> None:
        self.cni_dirs = tuple(cni_dirs)
        self.stats_socket = stats_socket

    def collect(self) -> Iterator[Metric]:
        from vhostuser_vpp.store.records import PHASE_READY
        from vhostuser_vpp.store.scan import iter_records
        from vhostuser_vpp.vpp.errors import VppUnavailable
        from vhostuser_vpp.vpp.stats import Stats

        families = {
            name: CounterMetricFamily(f"{PREFIX}_port_{name}", text, labels=PORT_LABELS)
            for name, (text, _) in _PORT_COUNTERS.items()
        }
        try:
            with Stats(self.stats_socket) as stats:
                names = {name: index for index, name in enumerate(stats.interface_names()) if name}
                sample = stats.sample()
        except VppUnavailable:
            yield from families.values()
            return
        for cni_dir in self.cni_dirs:
            try:
                entries = list(iter_records(cni_dir))
            except OSError:  # reported by the reconcile, which reads the same records
                continue
            for entry in entries:
                record = entry.record
                index = names.get(record.vhostname)
                if record.phase != PHASE_READY or index is None:
                    continue
                counters = sample.of(index)
                pod = record.pod
                labels = [pod.get("namespace", ""), pod.get("name", ""), record.vhostname, record.network]
                labels.append(entry.ifname)
                for name, (_, field) in _PORT_COUNTERS.items():
                    families[name].add_metric(labels, getattr(counters, field))
        yield from families.values()


class Endpoint:
    """`/metrics` and `/healthz` on a thread of their own; `health()` says (ok, why)."""

    def __init__(self, listen: str, metrics: Metrics, health: Callable[[], tuple[bool, str]]) -> None:
        handler = _handler(metrics, health)
        self.listen = listen
        self._path = ""
        server: socketserver.BaseServer
        if listen.startswith("unix:"):
            self._path = listen[5:]
            os.makedirs(os.path.dirname(self._path), mode=0o755, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path)
            server = _UnixHTTPServer(self._path, handler)
            os.chmod(self._path, 0o600)
        else:
            host, _, port = listen.rpartition(":")
            family = socket.AF_INET6 if host.startswith("[") else socket.AF_INET
            server = _TcpHTTPServer((host.strip("[]"), int(port)), handler, family)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="agent-endpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        if self._path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path)


def _handler(
    metrics: Metrics, health: Callable[[], tuple[bool, str]]
) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._answer(200, metrics.render(), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                ok, why = health()
                self._answer(200 if ok else 503, (why + "\n").encode(), "text/plain; charset=utf-8")
            else:
                self._answer(404, b"not found\n", "text/plain; charset=utf-8")

        def _answer(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def address_string(self) -> str:
            return "local"

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class UnixHTTPConnection(http.client.HTTPConnection):
    """A client of an `agent_listen` unix socket (`curl --unix-socket` in Python)."""

    def __init__(self, path: str, timeout: float = 10.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class _TcpHTTPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], handler: type[http.server.BaseHTTPRequestHandler], family: int
    ) -> None:
        self.address_family = family
        super().__init__(address, handler)
