"""The network configuration a runtime hands the plugin on stdin.

Keys of the original plugin (`name`, `type`, `if0name`, `vhost.vhost_tool`,
`ipam`, `cniDir`) keep their names and meaning. Types are strict: "5" is not a
number. Unknown top-level keys are ignored, as Go's json.Unmarshal does, since
runtimes and Multus add their own; unknown keys inside `vhost` are rejected,
because there they can only be typos of ours.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vhostuser_vpp.cni.errors import CniCode, CniError
from vhostuser_vpp.defaults import DEFAULT_API_SOCKET, DEFAULT_CNI_DIR

_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_PLUGIN_TYPE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$")
_VPP_IFNAME = r"^[A-Za-z][A-Za-z0-9/._:-]{0,62}$"


def _unicast_mac(value: str) -> str:
    if not _MAC.fullmatch(value):
        raise ValueError("must be a MAC address like 02:00:00:00:00:01")
    if int(value[:2], 16) & 1:
        raise ValueError("must be a unicast MAC address (first octet even)")
    return value.lower()


def _absolute(value: str, what: str) -> str:
    if not value.startswith("/") or "\0" in value:
        raise ValueError(f"{what} must be an absolute path")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class VhostConf(_Strict):
    vhost_tool: str | None = None
    backend: Literal["auto", "vpp", "tool"] = "auto"
    api_socket: str = DEFAULT_API_SOCKET
    connect_timeout: float = Field(5.0, gt=0, le=300)
    call_timeout: float = Field(10.0, gt=0, le=300)
    tool_timeout: float = Field(30.0, gt=0, le=600)
    # How the port is wired in VPP: l3 as the original tool did (unnumbered to a
    # loopback holding the gateway address, /32 route, static neighbour), l2 into a
    # bridge domain, or none (the port only).
    mode: Literal["l3", "l2", "none"] = "l3"
    # Who creates the socket: VPP (server, as the original) or the pod's app (client:
    # VPP connects and keeps retrying, so VPP can restart without the pod re-opening).
    socket_mode: Literal["server", "client"] = "server"
    unnumbered_to: str = Field("loop0", pattern=_VPP_IFNAME)
    create_loopback: bool = False
    bridge_domain: int | None = Field(None, ge=1, le=0xFFFFFF)
    enable_gso: bool = False
    enable_packed: bool = False
    enable_event_idx: bool = False
    disable_mrg_rxbuf: bool = False
    disable_indirect_desc: bool = False
    port_mac: str | None = None
    # Host-side name of a VPP tap interface: ADD routes <pod-ip>/32 through it in the
    # host's network namespace (must be allowed by the node policy).
    host_route: str | None = Field(None, pattern=r"^[^/\s:]{1,15}$")
    # So that a non-root DPDK app or QEMU can use the socket: the container
    # directory's mode, the socket's mode (server mode: VPP makes it as root), and the
    # owner and group both are given to. Modes are octal strings; "others" never get write.
    socket_dir_mode: str = "0700"
    socket_file_mode: str | None = None
    socket_group: int | str | None = None
    socket_owner: int | str | None = None

    def socket_ids(self) -> tuple[int, int]:
        """(uid, gid) for the directory and socket, -1 for "leave as is"; names are looked
        up in the node's user and group databases."""
        import grp
        import pwd

        uid = gid = -1
        try:
            if isinstance(self.socket_owner, int):
                uid = self.socket_owner
            elif self.socket_owner is not None:
                uid = pwd.getpwnam(self.socket_owner).pw_uid
        except KeyError:
            raise ValueError(f"vhost.socket_owner: no user {self.socket_owner!r} on this node") from None
        try:
            if isinstance(self.socket_group, int):
                gid = self.socket_group
            elif self.socket_group is not None:
                gid = grp.getgrnam(self.socket_group).gr_gid
        except KeyError:
            raise ValueError(f"vhost.socket_group: no group {self.socket_group!r} on this node") from None
        return uid, gid

    @field_validator("vhost_tool", "api_socket")
    @classmethod
    def _paths_are_absolute(cls, value: str | None) -> str | None:
        return None if value is None else _absolute(value, "the path")

    @field_validator("socket_dir_mode", "socket_file_mode")
    @classmethod
    def _safe_mode(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.fullmatch(r"0?[0-7]{3}", value):
            raise ValueError("must be an octal mode like '0750'")
        if int(value, 8) & 0o002:
            raise ValueError("must not let others write")
        return value

    @field_validator("port_mac")
    @classmethod
    def _port_mac_syntax(cls, value: str | None) -> str | None:
        return None if value is None else _unicast_mac(value)

    @model_validator(mode="after")
    def _l2_needs_a_bridge_domain(self) -> VhostConf:
        if self.mode == "l2" and self.bridge_domain is None:
            raise ValueError("mode l2 needs bridge_domain (1..16777215)")
        return self

    def tool_unsupported(self) -> list[str]:
        """Settings the vhost_tool protocol cannot carry out, as `key=value`."""
        defaults = VhostConf()
        keys = (
            "mode",
            "socket_mode",
            "create_loopback",
            "bridge_domain",
            "enable_gso",
            "enable_packed",
            "enable_event_idx",
            "disable_mrg_rxbuf",
            "disable_indirect_desc",
            "port_mac",
        )
        return [f"vhost.{k}={getattr(self, k)!r}" for k in keys if getattr(self, k) != getattr(defaults, k)]


class IpamConf(BaseModel):
    """Only `type` is ours to read; the rest belongs to the IPAM plugin."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)
    type: str

    @field_validator("type")
    @classmethod
    def _type_is_a_file_name(cls, value: str) -> str:
        if not _PLUGIN_TYPE.fullmatch(value):
            raise ValueError("must be a plugin file name (letters, digits, '_', '.', '-')")
        return value


class RuntimeConf(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)
    mac: str | None = None
    device_info_file: str | None = Field(None, alias="CNIDeviceInfoFile")

    @field_validator("mac")
    @classmethod
    def _mac_syntax(cls, value: str | None) -> str | None:
        return None if value is None else _unicast_mac(value)

    @field_validator("device_info_file")
    @classmethod
    def _device_info_absolute(cls, value: str | None) -> str | None:
        return None if value is None else _absolute(value, "CNIDeviceInfoFile")


class NetConf(BaseModel):
    # No populate_by_name: an unknown `cni_dir` key must be ignored, not taken as cniDir.
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    cni_version: str = Field(alias="cniVersion")
    name: str = Field(min_length=1)
    type: str
    if0name: str | None = None
    vhost: VhostConf = VhostConf()
    ipam: IpamConf
    cni_dir: str = Field(DEFAULT_CNI_DIR, alias="cniDir")
    log_file: str | None = Field(None, alias="logFile")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", alias="logLevel")
    runtime_config: RuntimeConf = Field(RuntimeConf(), alias="runtimeConfig")
    prev_result: dict[str, Any] | None = Field(None, alias="prevResult")

    @field_validator("name")
    @classmethod
    def _name_charset(cls, value: str) -> str:
        if not _PLUGIN_TYPE.fullmatch(value):
            raise ValueError("must start with a letter or digit and hold only letters, digits, '_', '.', '-'")
        return value

    @field_validator("cni_dir", "log_file")
    @classmethod
    def _absolute_paths(cls, value: str | None) -> str | None:
        if value is None:
            return None
        _absolute(value, "the path")
        if any(part == ".." for part in value.split("/")):
            raise ValueError("must not contain '..'")
        return value.rstrip("/") or "/"


def parse_netconf(config: dict[str, Any]) -> NetConf:
    """Validate a decoded config; every problem becomes code 7 naming the field."""
    try:
        return NetConf.model_validate(config)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            where = ".".join(str(part) for part in error["loc"]) or "config"
            problems.append(f"{where}: {error['msg']}")
        raise CniError(CniCode.INVALID_CONFIG, "invalid network config", "; ".join(problems)) from exc
