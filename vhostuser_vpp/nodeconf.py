"""Node-local policy: what the plugin may execute, write and delete on this host.

The network config can come from any tenant allowed to create a Multus
NetworkAttachmentDefinition, yet the plugin runs as root. So every host path it
would execute (`vhost.vhost_tool`) or write and delete under (`cniDir`,
`logFile`) must be allowed here, in a root-owned file that only the node's
administrator writes:

    /etc/cni/vhostuser-vpp.json   (VHOSTUSER_VPP_NODE_CONFIG overrides the path)
    {
      "allowed_cni_dirs": ["/var/lib/cni/vhostuser"],
      "allowed_api_sockets": ["/run/vpp/api.sock"],
      "allowed_vhost_tools": [],
      "allowed_host_route_devices": [],
      "allowed_log_dirs": ["/var/log/vhostuser-vpp"],
      "allowed_device_info_dirs": ["/var/run/k8s.cni.cncf.io/devinfo/cni",
                                   "/run/k8s.cni.cncf.io/devinfo/cni"]
    }

A VPP API socket is only connected to, but another unix socket on the host
should not receive our messages either, so it is allowed here too.
The device-info path normally comes from Multus through runtimeConfig, but a
NAD can carry a runtimeConfig of its own, so it is checked like the others.

A missing file means these defaults: no tool may run at all.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from typing import NamedTuple

from vhostuser_vpp.cni.errors import CniCode, CniError
from vhostuser_vpp.defaults import DEFAULT_API_SOCKET, DEFAULT_CNI_DIR

DEFAULT_PATH = "/etc/cni/vhostuser-vpp.json"
PATH_ENV = "VHOSTUSER_VPP_NODE_CONFIG"
DEFAULT_LOG_DIR = "/var/log/vhostuser-vpp"
DEFAULT_DEVICE_INFO_DIRS = ("/var/run/k8s.cni.cncf.io/devinfo/cni", "/run/k8s.cni.cncf.io/devinfo/cni")
_NAME_KEYS = ("allowed_host_route_devices",)
_KEYS = (
    "allowed_cni_dirs",
    "allowed_api_sockets",
    "allowed_vhost_tools",
    "allowed_host_route_devices",
    "allowed_log_dirs",
    "allowed_device_info_dirs",
)


class NodePolicy(NamedTuple):
    allowed_cni_dirs: tuple[str, ...] = (DEFAULT_CNI_DIR,)
    allowed_api_sockets: tuple[str, ...] = (DEFAULT_API_SOCKET,)
    allowed_vhost_tools: tuple[str, ...] = ()
    allowed_host_route_devices: tuple[str, ...] = ()
    allowed_log_dirs: tuple[str, ...] = (DEFAULT_LOG_DIR,)
    allowed_device_info_dirs: tuple[str, ...] = DEFAULT_DEVICE_INFO_DIRS
    source: str = "built-in defaults"

    def check_cni_dir(self, cni_dir: str) -> None:
        if not any(_within(cni_dir, base) for base in self.allowed_cni_dirs):
            raise CniError(
                CniCode.INVALID_CONFIG,
                "cniDir is not allowed on this node",
                f"{cni_dir!r} is not under {list(self.allowed_cni_dirs)} ({self.source})",
            )
        if os.path.lexists(cni_dir):
            if os.path.realpath(cni_dir) != cni_dir:
                raise CniError(CniCode.INVALID_CONFIG, "cniDir must not be or lie behind a symlink", cni_dir)
            mode = os.stat(cni_dir).st_mode
            if not stat.S_ISDIR(mode):
                raise CniError(CniCode.INVALID_CONFIG, "cniDir is not a directory", cni_dir)
            if mode & stat.S_IWOTH:
                raise CniError(
                    CniCode.INVALID_CONFIG, "cniDir is writable by others; refusing to use it", cni_dir
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
    if ".." in path.split("/") or not any(_within(path, base) and path != base for base in bases):
        raise CniError(
            CniCode.INVALID_CONFIG,
            f"{what} is not allowed on this node",
            f"{path!r} is not under {list(bases)} ({source})",
        )


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
        lists: dict[str, tuple[str, ...]] = {}
        for key in _KEYS:
            value = doc.get(key)
            if value is None:
                continue
            names_only = key in _NAME_KEYS
            if not isinstance(value, list) or not all(
                isinstance(v, str) and (v.startswith("/") != names_only) and "\0" not in v for v in value
            ):
                raise ValueError(f"{key} must be a list of {'names' if names_only else 'absolute paths'}")
            lists[key] = tuple(value) if names_only else tuple(v.rstrip("/") or "/" for v in value)
    except ValueError as exc:
        raise CniError(CniCode.INVALID_CONFIG, "invalid node config", f"{path}: {exc}") from exc
    return NodePolicy(**lists, source=path)
