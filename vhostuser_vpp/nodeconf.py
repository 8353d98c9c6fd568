"""Node-local policy: what the plugin may execute, write and delete on this host and in VPP.

The network config can come from any tenant allowed to create a Multus
NetworkAttachmentDefinition, yet the plugin runs as root. So every host path it
would execute (`vhost.vhost_tool`) or write and delete under (`cniDir`,
`logFile`), and every VPP object it would join or borrow from that it did not make
for the pod, must be allowed here, in a root-owned file that only the node's
administrator writes:

    /etc/cni/vhostuser-vpp.json   (VHOSTUSER_VPP_NODE_CONFIG overrides the path)
    {
      "allowed_cni_dirs": ["/var/lib/cni/vhostuser"],
      "allowed_api_sockets": ["/run/vpp/api.sock"],
      "allowed_vhost_tools": [],
      "allowed_host_route_devices": [],
      "allowed_log_dirs": ["/var/log/vhostuser-vpp"],
      "allowed_device_info_dirs": ["/var/run/k8s.cni.cncf.io/devinfo/cni",
                                   "/run/k8s.cni.cncf.io/devinfo/cni"],
      "allowed_unnumbered_interfaces": ["loop0"],
      "allowed_bridge_domains": [],
      "agent_listen": "unix:/run/vhostuser-vpp/agent.sock",
      "agent_socket": "/run/vhostuser-vpp/cni.sock"
    }

A VPP API socket is only connected to, but another unix socket on the host
should not receive our messages either, so it is allowed here too.
The device-info path normally comes from Multus through runtimeConfig, but a
NAD can carry a runtimeConfig of its own, so it is checked like the others.
`allowed_unnumbered_interfaces` names the interfaces whose address L3 ports may
borrow (`vhost.unnumbered_to`, and the loopback `vhost.create_loopback` makes for
that name); `allowed_bridge_domains` the bridge domain IDs L2 ports may join:
none unless the operator says so, since a domain may hold the operator's VMs.
`agent_listen` is where the node agent serves its metrics and health: a unix socket
(`unix:/path`, made 0600) or a loopback address and port (`127.0.0.1:9731`, `[::1]:9731`).
`agent_socket` is the unix socket (0600, root's) where the node agent takes CNI requests
from the `vhostuser` shim; `vhostuser-vpp install` writes it into the shim, so a change
needs a new install; "" turns the fast path off (the shim always runs the plugin itself).

Paths are resolved, not only compared: below an allowed cniDir no component may be
a symlink, and a cniDir may not lie inside another cniDir's pod directories (which
pods write to). A missing file means these defaults: no tool may run at all, L3
through loop0 only, no L2.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from typing import Any, NamedTuple

from vhostuser_vpp.cni.errors import CniCode, CniError
from vhostuser_vpp.defaults import DEFAULT_API_SOCKET, DEFAULT_CNI_DIR

DEFAULT_PATH = "/etc/cni/vhostuser-vpp.json"
PATH_ENV = "VHOSTUSER_VPP_NODE_CONFIG"
DEFAULT_LOG_DIR = "/var/log/vhostuser-vpp"
DEFAULT_DEVICE_INFO_DIRS = ("/var/run/k8s.cni.cncf.io/devinfo/cni", "/run/k8s.cni.cncf.io/devinfo/cni")
_NAME_KEYS = ("allowed_host_route_devices", "allowed_unnumbered_interfaces")
_NUMBER_KEYS = ("allowed_bridge_domains",)
_KEYS = (
    "allowed_cni_dirs",
    "allowed_api_sockets",
    "allowed_vhost_tools",
    "allowed_host_route_devices",
    "allowed_log_dirs",
    "allowed_device_info_dirs",
    "allowed_unnumbered_interfaces",
    "allowed_bridge_domains",
    "agent_listen",
    "agent_socket",
)
DEFAULT_AGENT_LISTEN = "unix:/run/vhostuser-vpp/agent.sock"
DEFAULT_AGENT_SOCKET = "/run/vhostuser-vpp/cni.sock"
# Entries a cniDir in use always holds (the lock directory, `.state`): a directory that
# has one is a cniDir, and what lies below it is its pods' directories.
_CNI_DIR_MARKERS = (".locks", ".state")


class NodePolicy(NamedTuple):
    allowed_cni_dirs: tuple[str, ...] = (DEFAULT_CNI_DIR,)
    allowed_api_sockets: tuple[str, ...] = (DEFAULT_API_SOCKET,)
    allowed_vhost_tools: tuple[str, ...] = ()
    allowed_host_route_devices: tuple[str, ...] = ()
    allowed_log_dirs: tuple[str, ...] = (DEFAULT_LOG_DIR,)
    allowed_device_info_dirs: tuple[str, ...] = DEFAULT_DEVICE_INFO_DIRS
    allowed_unnumbered_interfaces: tuple[str, ...] = ("loop0",)
    allowed_bridge_domains: tuple[int, ...] = ()
    agent_listen: str = DEFAULT_AGENT_LISTEN
    agent_socket: str = DEFAULT_AGENT_SOCKET
    source: str = "built-in defaults"

    def check_cni_dir(self, cni_dir: str) -> None:
        """Allowed, and reached from its allowed base through real directories only, none
        of them a cniDir itself: a cniDir inside a pod's directory, or behind a symlink a
        pod planted there, would have root write where the pod chose."""
        bases = sorted((b for b in self.allowed_cni_dirs if _within(cni_dir, b)), key=len)
        if not bases:
            raise CniError(
                CniCode.INVALID_CONFIG,
                "cniDir is not allowed on this node",
                f"{cni_dir!r} is not under {list(self.allowed_cni_dirs)} ({self.source})",
            )
        base = bases[0]
        below = [part for part in cni_dir[len(base) :].split("/") if part]
        if any(part in (".", "..") for part in below):
            raise CniError(CniCode.INVALID_CONFIG, "cniDir must not contain '.' or '..'", repr(cni_dir))
        path = base
        for depth in range(len(below) + 1):
            if depth:
                if _is_cni_dir(path):
                    raise CniError(
                        CniCode.INVALID_CONFIG,
                        "cniDir must not lie inside another cniDir's pod directories",
                        f"{cni_dir!r} is inside {path!r}",
                    )
                path = os.path.join(path, below[depth - 1])
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                return
            except OSError as exc:
                raise CniError(CniCode.INVALID_CONFIG, "cannot look at cniDir", f"{path}: {exc}") from exc
            if stat.S_ISLNK(st.st_mode) and depth:
                raise CniError(
                    CniCode.INVALID_CONFIG, "cniDir must not be or lie behind a symlink", f"{path} is one"
                )
            if depth == 0 and os.path.realpath(path) != path:
                raise CniError(
                    CniCode.INVALID_CONFIG, "cniDir must not be or lie behind a symlink", f"{path} is one"
                )
            if not stat.S_ISDIR(os.stat(path).st_mode):
                raise CniError(CniCode.INVALID_CONFIG, "cniDir is not a directory", path)
            if st.st_mode & stat.S_IWOTH:
                raise CniError(
                    CniCode.INVALID_CONFIG, "cniDir is writable by others; refusing to use it", path
                )

    def check_unnumbered_to(self, name: str) -> None:
        self._require_listed("vhost.unnumbered_to", name, "allowed_unnumbered_interfaces")

    def check_bridge_domain(self, bd_id: int) -> None:
        if bd_id not in self.allowed_bridge_domains:
            raise CniError(
                CniCode.INVALID_CONFIG,
                "vhost.bridge_domain is not allowed on this node",
                f"{bd_id} is not in allowed_bridge_domains of {self.source}",
            )

    def check_api_socket(self, path: str) -> None:
        self._require_listed("vhost.api_socket", path, "allowed_api_sockets")

    def check_host_route_device(self, device: str) -> None:
        self._require_listed("vhost.host_route", device, "allowed_host_route_devices")

    def check_vhost_tool(self, tool: str) -> None:
        self._require_listed("vhost.vhost_tool", tool, "allowed_vhost_tools")
        try:
            st = os.stat(tool)
        except OSError as exc:
            raise CniError(
                CniCode.INVALID_CONFIG, "vhost.vhost_tool cannot be found", f"{tool}: {exc}"
            ) from exc
        if not stat.S_ISREG(st.st_mode) or not os.access(tool, os.X_OK):
            raise CniError(CniCode.INVALID_CONFIG, "vhost.vhost_tool is not an executable file", tool)
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) or st.st_uid not in (0, os.geteuid()):
            raise CniError(
                CniCode.INVALID_CONFIG,
                "vhost.vhost_tool may be changed by other users; refusing to run it",
                f"{tool}: owner uid {st.st_uid}, mode {stat.filemode(st.st_mode)}",
            )

    def _require_listed(self, what: str, value: str, key: str) -> None:
        if value not in getattr(self, key):
            raise CniError(
                CniCode.INVALID_CONFIG,
                f"{what} is not allowed on this node",
                f"{value!r} is not in {key} of {self.source}",
            )

    def check_log_file(self, log_file: str) -> None:
        _check_file_under(log_file, self.allowed_log_dirs, "logFile", self.source)

    def check_device_info_file(self, path: str) -> None:
        _check_file_under(path, self.allowed_device_info_dirs, "runtimeConfig.CNIDeviceInfoFile", self.source)


def _check_file_under(path: str, bases: tuple[str, ...], what: str, source: str) -> None:
    """Under an allowed directory by name, and still there once symlinks are resolved (the
    directories above a base are the operator's and may be links, like /var/run)."""
    refused = CniError(
        CniCode.INVALID_CONFIG,
        f"{what} is not allowed on this node",
        f"{path!r} is not under {list(bases)} ({source})",
    )
    if ".." in path.split("/") or not any(_within(path, base) and path != base for base in bases):
        raise refused
    directory = os.path.realpath(os.path.dirname(path))
    if not any(_within(directory, os.path.realpath(base)) for base in bases if _within(path, base)):
        refused.details = f"{path!r} leads to {directory!r}, outside {list(bases)} ({source})"
        raise refused


def _setting(key: str, value: Any) -> Any:
    """One key's value as NodePolicy holds it: a tuple of paths, names or bridge domain IDs,
    (agent_listen) an address or (agent_socket) a path; ValueError naming the key when it is none of these."""
    if key == "agent_listen":
        if not isinstance(value, str) or not _listen_address(value):
            raise ValueError("agent_listen must be unix:/absolute/path or 127.0.0.1:PORT / [::1]:PORT")
        return value
    if key == "agent_socket":
        if not isinstance(value, str) or "\0" in value or (value and not value.startswith("/")):
            raise ValueError('agent_socket must be an absolute path, or "" for none')
        return value
    if key in _NUMBER_KEYS:
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 0xFFFFFF for v in value
        ):
            raise ValueError(f"{key} must be a list of bridge domain IDs (1..16777215)")
        return tuple(value)
    names_only = key in _NAME_KEYS
    if not isinstance(value, list) or not all(
        isinstance(v, str) and (v.startswith("/") != names_only) and "\0" not in v for v in value
    ):
        raise ValueError(f"{key} must be a list of {'names' if names_only else 'absolute paths'}")
    return tuple(value) if names_only else tuple(v.rstrip("/") or "/" for v in value)


def _listen_address(value: str) -> bool:
    """A unix socket path, or a loopback address with a port: metrics stay on the node."""
    if value.startswith("unix:"):
        return value[5:].startswith("/") and "\0" not in value
    host, sep, port = value.rpartition(":")
    return (
        bool(sep) and host in ("127.0.0.1", "[::1]", "localhost") and port.isdigit() and 0 < int(port) < 65536
    )


def _is_cni_dir(path: str) -> bool:
    return any(os.path.lexists(os.path.join(path, marker)) for marker in _CNI_DIR_MARKERS)


def _within(path: str, base: str) -> bool:
    base = base.rstrip("/")
    return path == (base or "/") or path.startswith(base + "/")


def load_policy(environ: Mapping[str, str]) -> NodePolicy:
    path = environ.get(PATH_ENV) or DEFAULT_PATH
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            data = f.read()
    except FileNotFoundError:
        return NodePolicy()
    except OSError as exc:
        raise CniError(CniCode.IO_FAILURE, "cannot read the node config", f"{path}: {exc}") from exc
    if st.st_uid not in (0, os.geteuid()) or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise CniError(
            CniCode.INVALID_CONFIG,
            "the node config may be changed by other users; refusing to trust it",
            f"{path}: owner uid {st.st_uid}, mode {stat.filemode(st.st_mode)}",
        )
    try:
        doc = json.loads(data)
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        unknown = set(doc) - set(_KEYS)
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}")
        settings = {key: _setting(key, doc[key]) for key in _KEYS if doc.get(key) is not None}
    except ValueError as exc:
        raise CniError(CniCode.INVALID_CONFIG, "invalid node config", f"{path}: {exc}") from exc
    return NodePolicy(**settings, source=path)
