"""Private real VPP processes for the tests: found, started, restarted, stopped and reaped.

A VPP build is looked for, in this order:
- `VPP_BIN` (and `VPP_PLUGIN_DIR`, default `<VPP_BIN>/../lib/vpp_plugins`, or FD.io's
  packaged `/usr/lib/x86_64-linux-gnu/vpp_plugins` next to `/usr/bin/vpp`): any build;
- `../shared/vpp` beside the repository (a relocatable 26.06 with the vhost and ping plugins).
`../shared/vpp-24.10` (or `VPP_OLD_BIN` / `VPP_OLD_PLUGIN_DIR`) is an older release the
lifecycle tests also run against.

Each instance has its own run directory (API, CLI and stats sockets, log), its own
`api-segment` prefix and no hugepages, so several run side by side and never touch
`/run/vpp`. Readiness is the API socket accepting a connection, not a sleep.
`poll-sleep-usec 1000`: VPP's main thread polls every vhost-user queue that is up, which
took half a core here with one port and slowed the suite on 2 cores; sleeping 1 ms a loop
costs 2-3 % of a core and still moves ~250,000 packets/s per queue, plenty for the
dataplane tests.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
VPPCTL_TIMEOUT_S = 30.0

STARTUP_CONF = """\
unix {{ nodaemon cli-listen {run}/cli.sock log {run}/vpp.log{poll_sleep} }}
socksvr {{ socket-name {run}/api.sock }}
api-segment {{ prefix {prefix} }}
plugins {{ path {plugins} plugin default {{ disable }} plugin vhost_plugin.so {{ enable }}
  plugin ping_plugin.so {{ enable }} }}
buffers {{ buffers-per-numa 16384 page-size 4k }}
memory {{ main-heap-size 256M main-heap-page-size 4k }}
cpu {{ main-core {main_core} }}
statseg {{ socket-name {run}/stats.sock page-size 4k }}
"""


class VppBuild(NamedTuple):
    label: str  # how test ids and summaries name it, e.g. "vpp-26.06"
    vpp: Path
    vppctl: Path
    plugin_dir: Path


def _build(label: str, vpp: Path, plugin_dir: Path | None) -> VppBuild | None:
    if not os.access(vpp, os.X_OK):
        return None
    if plugin_dir is None:
        relocatable = vpp.parent.parent / "lib" / "vpp_plugins"
        packaged = Path("/usr/lib/x86_64-linux-gnu/vpp_plugins")
        plugin_dir = relocatable if relocatable.is_dir() else packaged
    return VppBuild(label, vpp, vpp.parent / "vppctl", plugin_dir)


def _version_label(vpp: Path) -> str:
    """'vpp-26.06' from `vpp -c /dev/null show version`'s banner is slow; the build's
    versioned libraries (libvnet.so.26.06) say it without starting it."""
    for lib_dir in (vpp.parent.parent / "lib", Path("/usr/lib/x86_64-linux-gnu")):
        for lib in sorted(lib_dir.glob("libvnet.so.*")):
            return "vpp-" + lib.name.removeprefix("libvnet.so.")
    return "vpp"


def find_build() -> VppBuild | None:
    """The VPP the suite is judged on, or None when this machine has none."""
    return _find("VPP", "vpp-26.06", SHARED / "vpp")


def find_old_build() -> VppBuild | None:
    """An older release for the lifecycle tests, when one is at hand."""
    return _find("VPP_OLD", "vpp-24.10", SHARED / "vpp-24.10")


def _find(env: str, label: str, shared: Path) -> VppBuild | None:
    """`<env>_BIN` (and `<env>_PLUGIN_DIR`) when set, else the build in `shared`."""
    env_bin = os.environ.get(f"{env}_BIN")
    if env_bin:
        plugin_dir = os.environ.get(f"{env}_PLUGIN_DIR")
        path = Path(env_bin)
        return _build(_version_label(path), path, Path(plugin_dir) if plugin_dir else None)
    return _build(label, shared / "bin" / "vpp", None)


class VppInstance:
    """One private VPP. `start()` returns once its API socket accepts connections."""

    _count = 0

    def __init__(
        self, build: VppBuild, run_dir: Path | None = None, poll_sleep_usec: int | None = 1000
    ) -> None:
        """`poll_sleep_usec`: the main loop's nap, so that a polled port does not spin a
        core of a shared test machine (each API round trip then waits up to that long);
        None leaves VPP's default (no nap: it sleeps in epoll while idle, as the shared
        build's README runs it), for benchmarks of API latency."""
        VppInstance._count += 1
        self.build = build
        self.poll_sleep = "" if poll_sleep_usec is None else f" poll-sleep-usec {poll_sleep_usec}"
        self._owns_run_dir = run_dir is None
        # Short: unix socket paths hold at most 107 bytes.
        self.run_dir = run_dir or Path(tempfile.mkdtemp(prefix="vpp-", dir="/tmp"))
        self.prefix = f"vhu{os.getpid()}x{VppInstance._count}"
        self.api_socket = str(self.run_dir / "api.sock")
        self.cli_socket = str(self.run_dir / "cli.sock")
        self.stats_socket = str(self.run_dir / "stats.sock")
        self.log_path = self.run_dir / "vpp.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def __enter__(self) -> VppInstance:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        if self.running:
            return
        for leftover in (self.api_socket, self.cli_socket, self.stats_socket):
            Path(leftover).unlink(missing_ok=True)
        self._launch()
        self.starts += 1
        self._wait_ready()

    def _launch(self) -> None:
        """Starts the VPP process (tests/vpp_container.py starts a container instead)."""
        conf = self.run_dir / "startup.conf"
        conf.write_text(
            STARTUP_CONF.format(
                run=self.run_dir,
                prefix=self.prefix,
                plugins=self.build.plugin_dir,
                main_core=min(1, (os.cpu_count() or 1) - 1),
                poll_sleep=self.poll_sleep,
            )
        )
        output = (self.run_dir / "stdout.log").open("ab")
        try:
            self._proc = subprocess.Popen(
                [str(self.build.vpp), "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # Runs one prctl call in the child, with libc loaded beforehand.
                preexec_fn=_die_with_parent,  # noqa: PLW1509
            )
        finally:
            output.close()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        delay = 0.01
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"VPP exited on start ({self.exit_status()}): {self.log_tail()}")
            if _accepts(self.api_socket) and _accepts(self.cli_socket):
                return
            time.sleep(delay)  # polling a condition with a deadline, not synchronisation by time
            delay = min(delay * 2, 0.2)
        self.stop()
        raise RuntimeError(f"VPP did not open {self.api_socket} within {START_TIMEOUT_S:g}s")

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc is not None else None

    def exit_status(self) -> str:
        """How the last VPP ended, for errors."""
        return "never started" if self._proc is None else f"exit status {self._proc.returncode}"

    def stop(self, crash: bool = False) -> None:
        """SIGTERM (VPP removes its vhost-user server sockets), then SIGKILL if it lingers;
        `crash`: SIGKILL at once, as an OOM kill, leaving every socket file behind."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGKILL if crash else signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT_S)

    def restart(self, crash: bool = False) -> None:
        """A new VPP on the same paths, as after an upgrade or (`crash`) a crash."""
        self.stop(crash)
        self.start()

    def close(self) -> None:
        self.stop()
        if self._owns_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def vppctl(self, *args: str, timeout: float = VPPCTL_TIMEOUT_S) -> str:
        """VPP's CLI; note that vppctl exits 0 even when the command failed."""
        proc = subprocess.run(
            [str(self.build.vppctl), "-s", self.cli_socket, *args],
            capture_output=True,
            timeout=timeout,
            check=True,
        )
        return proc.stdout.decode()

    def log_tail(self, lines: int = 20) -> str:
        text = ""
        for name in ("stdout.log", "vpp.log"):
            path = self.run_dir / name
            if path.exists():
                text += "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
        return text


_LIBC = ctypes.CDLL("libc.so.6", use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """A test run killed before its clean-up must not leave VPPs behind."""
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _accepts(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except OSError:
            return False
    return True
