"""The agent's work: watch VPP, restore every recorded port into a new VPP, and collect
what no pod owns, all through one API connection.

- A VPP that goes away is noticed at the next ping (the connection drops); the agent
  reconnects with backoff. A restart is a new VPP process: `control_ping` answers another
  pid or, where the pid stays (VPP is pid 1 in its container), VPP started at another time
  (`show clock`). Whenever the agent (re)connects it reconciles at once; otherwise every
  `interval`.
- Reconcile = `restore_all` for each cniDir (ports VPP lacks made again as ADD made them,
  under each container's lock, so never racing a plugin run), then `gc`'s plan, carried
  out only for what stays planned for `grace` seconds and only for: orphan ports tagged
  `cni:`, stale /32s, empty `cni-vhostuser` bridge domains, and records of ADDs that died
  halfway. Records whose port is gone are left to the runtime's DEL (the pod may live and
  its restore have failed); nothing without our tags is touched (gc's rules).
- The agent is never needed for ADD or DEL: it only adds recovery.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import NamedTuple

from vhostuser_vpp.agent.metrics import Metrics
from vhostuser_vpp.backends.base import BackendUnavailable
from vhostuser_vpp.cli import gc
from vhostuser_vpp.plugin.restore import Outcome, VppAccess, restore_all
from vhostuser_vpp.store.records import PHASE_PENDING
from vhostuser_vpp.vpp.client import VppClient
from vhostuser_vpp.vpp.errors import VppError, VppUnavailable
from vhostuser_vpp.vpp.ops import Vpp

log = logging.getLogger(__name__)

BACKOFF_START_S = 0.05
BACKOFF_MAX_S = 2.0
# Two start times this close are one VPP: each is read to ~0.1 s (the call's round trip and
# the wall clock); a VPP restarted sooner than this after the last start goes uncounted.
SAME_START_S = 1.0
PORT_STATES = ("ok", "restored", "skipped", "failed")
_COLLECTED_KINDS = (gc.ORPHAN_PORT, gc.STALE_ROUTE, gc.EMPTY_BRIDGE_DOMAIN)


class AgentConfig(NamedTuple):
    api_socket: str
    cni_dirs: tuple[str, ...]
    interval_s: float = 30.0
    grace_s: float = 120.0
    poll_s: float = 0.5
    call_timeout_s: float = 5.0
    # Connections that make ports again after a (re)connect, the agent's own included: the
    # ports' calls and record writes overlap across them (bench/agent_bench.py).
    restore_connections: int = 2


class Agent:
    def __init__(self, config: AgentConfig, metrics: Metrics) -> None:
        self.config = config
        self.metrics = metrics
        self._client: VppClient | None = None
        self._vpe_pid: int | None = None
        self._started_at: float | None = None
        self._ever_connected = False
        self._next_reconcile = 0.0
        self._restoring_since: float | None = None
        self._first_seen: dict[tuple[str, str, str], float] = {}
        self._health = (False, "not connected to VPP yet")
        self._lock = threading.Lock()

    def health(self) -> tuple[bool, str]:
        with self._lock:
            return self._health

    def _set_health(self, ok: bool, why: str) -> None:
        with self._lock:
            self._health = (ok, why)

    def run(self, stop: threading.Event) -> None:
        delay = BACKOFF_START_S
        try:
            while not stop.is_set():
                if self._client is None and not self._connect():
                    stop.wait(delay)
                    delay = min(delay * 2, BACKOFF_MAX_S)
                    continue
                delay = BACKOFF_START_S
                try:
                    if time.monotonic() >= self._next_reconcile:
                        self.reconcile()
                    elif self._ping() != self._vpe_pid:
                        self._lost("VPP answers with another pid")
                        continue
                except (VppError, BackendUnavailable) as err:
                    self._lost(str(err))
                    continue
                except Exception as err:  # a resident process outlives one bad pass
                    log.exception("reconcile failed", extra={"event": "reconcile_failed"})
                    self.metrics.error(f"reconcile: {err!r}")
                    self._set_health(False, f"reconcile failed: {err!r}")
                    self._next_reconcile = time.monotonic() + self.config.interval_s
                stop.wait(self.config.poll_s)
        finally:
            self._close()

    def _ping(self) -> int:
        return Vpp(self._connected()).ping()

    def _connected(self) -> VppClient:
        if self._client is None:
            raise VppUnavailable("not connected to VPP")
        return self._client

    def _connect(self) -> bool:
        client = VppClient(self.config.api_socket, self.config.call_timeout_s, self.config.call_timeout_s)
        try:
            client.connect()
            vpp = Vpp(client)
            pid, started_at = vpp.ping(), vpp.started_at()
        except VppError as err:
            client.close()
            self.metrics.vpp_up.set(0)
            self._set_health(False, f"VPP: {err}")
            log.debug("VPP not answering", extra={"event": "vpp_unavailable", "error": str(err)})
            return False
        if self._ever_connected:
            self.metrics.reconnects.inc()
        if self._is_another_vpp(pid, started_at):
            self.metrics.restarts.inc()
            log.warning(
                "VPP restarted", extra={"event": "vpp_restarted", "old_pid": self._vpe_pid, "pid": pid}
            )
        self._restoring_since = time.monotonic()
        self._vpe_pid, self._started_at = pid, started_at
        self._client, self._ever_connected = client, True
        self._next_reconcile = 0.0
        self.metrics.vpp_up.set(1)
        log.info("connected to VPP", extra={"event": "vpp_connected", "pid": pid})
        return True

    def _is_another_vpp(self, pid: int, started_at: float | None) -> bool:
        if self._vpe_pid is None:
            return False
        if pid != self._vpe_pid:
            return True
        if self._started_at is None or started_at is None:
            return False
        return abs(self._started_at - started_at) > SAME_START_S

    def _lost(self, why: str) -> None:
        log.warning("lost VPP", extra={"event": "vpp_lost", "error": why})
        self.metrics.vpp_up.set(0)
        self.metrics.error(f"lost VPP: {why}")
        self._set_health(False, f"VPP: {why}")
        self._close()

    def _close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- one reconcile --------------------------------------------------------------------------

    def reconcile(self) -> None:
        client = self._connected()
        began = time.monotonic()
        cfg = self.config
        access = VppAccess(cfg.api_socket, cfg.call_timeout_s, cfg.call_timeout_s)
        outcomes: list[Outcome] = []
        with self._helpers() as helpers:
            for cni_dir in cfg.cni_dirs:
                outcomes += restore_all(cni_dir, access, client, helpers)
        states = Counter(o.status for o in outcomes)
        for state in PORT_STATES:
            self.metrics.ports.labels(state).set(states[state])
        for outcome in ("restored", "failed"):
            if states[outcome]:
                self.metrics.restores.labels(outcome).inc(states[outcome])
        for failed in (o for o in outcomes if o.status == "failed"):
            log.error(
                "restore failed",
                extra={
                    "event": "restore_failed",
                    "container": failed.container_id,
                    "ifname": failed.ifname,
                    "error": failed.detail,
                },
            )
            self.metrics.error(f"restore of {failed.container_id[:12]}/{failed.ifname}: {failed.detail}")
        if self._restoring_since is not None and not states["failed"]:
            took = time.monotonic() - self._restoring_since
            self.metrics.restore_seconds.observe(took)
            log.info(
                "every recorded port is in VPP",
                extra={
                    "event": "restored",
                    "restored": states["restored"],
                    "ok": states["ok"],
                    "seconds": took,
                },
            )
            self._restoring_since = None
        self._collect(Vpp(client))
        self.metrics.reconciles.inc()
        self.metrics.reconcile_seconds.observe(time.monotonic() - began)
        self._next_reconcile = time.monotonic() + cfg.interval_s
        if states["failed"]:
            self._set_health(False, f"{states['failed']} port(s) could not be restored")
        else:
            self._set_health(True, "ok")

    @contextlib.contextmanager
    def _helpers(self) -> Iterator[list[VppClient]]:
        """More connections for the pass right after a (re)connect, when every port may be
        missing; none for the periodic pass, which finds them in place."""
        helpers: list[VppClient] = []
        try:
            if self._restoring_since is not None:
                for _ in range(self.config.restore_connections - 1):
                    helper = VppClient(
                        self.config.api_socket, self.config.call_timeout_s, self.config.call_timeout_s
                    )
                    helper.connect()
                    helpers.append(helper)
            yield helpers
        finally:
            for helper in helpers:
                helper.close()

    def _collect(self, vpp: Vpp) -> None:
        now = time.monotonic()
        seen: set[tuple[str, str, str]] = set()
        for cni_dir in self.config.cni_dirs:
            plan = gc.make_plan(gc.look(vpp, cni_dir), None)
            args = argparse.Namespace(cni_dir=cni_dir, timeout=self.config.call_timeout_s)
            for action in plan.actions:
                if not _collectable(action):
                    continue
                key = (cni_dir, action.kind, action.target)
                seen.add(key)
                if now - self._first_seen.setdefault(key, now) < self.config.grace_s:
                    continue
                gc.carry_out(vpp, action, args)
                log.info(
                    "collected",
                    extra={
                        "event": "collected",
                        "kind": action.kind,
                        "target": action.target,
                        "result": action.result,
                    },
                )
                if action.result == gc.DONE:
                    self.metrics.collected.labels(action.kind).inc()
                    seen.discard(key)
        self._first_seen = {k: v for k, v in self._first_seen.items() if k in seen}


def _collectable(action: gc.Action) -> bool:
    if action.kind in _COLLECTED_KINDS:
        return True
    subject = action.subject
    return (
        action.kind == gc.STALE_RECORD
        and getattr(getattr(subject, "record", None), "phase", "") == PHASE_PENDING
    )
