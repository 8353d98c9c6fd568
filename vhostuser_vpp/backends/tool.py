"""The original plugin's way of driving VPP: an external `vhost_tool` executable.

Protocol (arguments in, one line on stdout, diagnostics on stderr, exit 0 on success):

    TOOL create <socket-path>                 -> VPP interface name, port admin up
    TOOL getmac <ifname>                      -> the port's MAC
    TOOL config <ifname> <pod-ip> <pod-mac>   -> L3 wiring for the pod
    TOOL delete <ifname>                      -> port and its wiring gone

The tool runs from an argument vector (never a shell), with a timeout and a
clean environment: PATH, LANG, and our own VPP* and VHOST_TOOL_* variables,
which is how a node passes it settings such as a vppctl socket. Its output is
validated before use; its stderr ends up in the error a runtime sees.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from collections.abc import Mapping
from typing import Any

from vhostuser_vpp.backends.base import (
    BackendError,
    BackendMisconfigured,
    BackendUnavailable,
    Port,
    PortRef,
    PortSpec,
    PortState,
    Wiring,
)

log = logging.getLogger(__name__)

_IFNAME = re.compile(r"^[A-Za-z][A-Za-z0-9._/:-]{0,63}$")
_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_PASSED_PREFIXES = ("VPP", "VHOST_TOOL_")
_QUOTE_LIMIT = 1000


def tool_environment(environ: Mapping[str, str]) -> dict[str, str]:
    env = {"PATH": _CLEAN_PATH, "LANG": "C.UTF-8"}
    env.update({k: v for k, v in environ.items() if k.startswith(_PASSED_PREFIXES)})
    return env


class ToolBackend:
    name = "tool"

    def __init__(self, tool: str, timeout_s: float, environ: Mapping[str, str]) -> None:
        self.tool = tool
        self.timeout_s = timeout_s
        self._env = tool_environment(environ)

    def create_port(self, spec: PortSpec) -> Port:
        if not spec.is_server:
            raise BackendError("the vhost_tool protocol only creates server-mode ports")
        name = self._run_for_line("create", spec.socket_path, valid=_IFNAME, what="an interface name")
        try:
            mac = self._run_for_line("getmac", name, valid=_MAC, what="a MAC address").lower()
        except BackendError:
            try:
                self.delete_port(PortRef(name=name, socket_path=spec.socket_path, tag=spec.tag))
            except BackendError as cleanup:
                log.error("rollback: could not delete %s: %s", name, cleanup)
            raise
        return Port(name=name, mac=mac)

    def wire(self, port: Port, wiring: Wiring) -> Mapping[str, Any]:
        """The protocol's one address: the plugin gives the tool only IPv4 (it refuses IPv6
        networks on this backend before anything is made)."""
        if len(wiring.pod_ips) != 1 or ":" in wiring.pod_ips[0]:
            raise BackendMisconfigured(
                "the vhost_tool protocol wires one IPv4 address", ", ".join(wiring.pod_ips)
            )
        self._run("config", port.name, wiring.pod_ips[0], wiring.pod_mac)
        return port.handle

    def delete_port(self, ref: PortRef) -> None:
        if not ref.name:
            log.warning(
                "no interface name recorded for %s; nothing to ask the tool to delete", ref.socket_path
            )
            return
        self._run("delete", ref.name)

    def inspect(self, ref: PortRef) -> PortState | None:
        try:
            mac = self._run_for_line("getmac", ref.name, valid=_MAC, what="a MAC address")
        except BackendUnavailable:
            raise
        except BackendError:
            return None
        return PortState(name=ref.name, mac=mac.lower(), admin_up=None)

    def status(self) -> None:
        if not os.access(self.tool, os.X_OK):
            raise BackendUnavailable("vhost_tool is not executable", self.tool)

    def close(self) -> None:
        return None

    def _run_for_line(self, verb: str, arg: str, valid: re.Pattern[str], what: str) -> str:
        out = self._run(verb, arg).strip()
        if "\n" in out or not valid.match(out):
            raise BackendError(
                f"vhost_tool {verb} printed something that is not {what}", repr(out[:_QUOTE_LIMIT])
            )
        return out

    def _run(self, verb: str, *args: str) -> str:
        argv = [self.tool, verb, *args]
        log.info("running vhost_tool: %s", argv)
        try:
            proc = subprocess.run(
                argv,
                env=self._env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self.timeout_s,
                check=False,
                close_fds=True,
            )
        except subprocess.TimeoutExpired as exc:
            raise BackendUnavailable(
                f"vhost_tool {verb} timed out", f"{self.tool}: no answer after {self.timeout_s:g}s"
            ) from exc
        except OSError as exc:
            raise BackendError(f"cannot run vhost_tool {verb}", f"{self.tool}: {exc}") from exc
        stderr = proc.stderr.decode(errors="replace").strip()
        if proc.returncode != 0:
            raise BackendError(
                f"vhost_tool {verb} failed with exit code {proc.returncode}",
                stderr[:_QUOTE_LIMIT] or "(no stderr)",
            )
        if stderr:
            log.info("vhost_tool %s stderr: %s", verb, stderr[:_QUOTE_LIMIT])
        return proc.stdout.decode(errors="replace")
