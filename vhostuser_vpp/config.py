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

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vhostuser_vpp.cni.errors import CniCode, CniError

DEFAULT_CNI_DIR = "/var/lib/cni/vhostuser"
DEFAULT_API_SOCKET = "/run/vpp/api.sock"
_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_PLUGIN_TYPE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$")


def _absolute(value: str, what: str) -> str:
    if not value.startswith("/") or "\0" in value:
        raise ValueError(f"{what} must be an absolute path")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", populate_by_name=True, frozen=True)


class VhostConf(_Strict):
    vhost_tool: str | None = None
    backend: Literal["auto", "vpp", "tool"] = "auto"
    api_socket: str = DEFAULT_API_SOCKET
    connect_timeout: float = Field(5.0, gt=0, le=300)
    call_timeout: float = Field(10.0, gt=0, le=300)
    tool_timeout: float = Field(30.0, gt=0, le=600)

    @field_validator("vhost_tool", "api_socket")
    @classmethod
    def _paths_are_absolute(cls, value: str | None) -> str | None:
        return None if value is None else _absolute(value, "the path")


class IpamConf(BaseModel):
    """Only `type` is ours to read; the rest belongs to the IPAM plugin."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)
    type: str

    @field_validator("type")
    @classmethod
    def _type_is_a_file_name(cls, value: str) -> str:
        if not _PLUGIN_TYPE.match(value):
            raise ValueError("must be a plugin file name (letters, digits, '_', '.', '-')")
        return value


class RuntimeConf(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", populate_by_name=True, frozen=True)
    mac: str | None = None
    device_info_file: str | None = Field(None, alias="CNIDeviceInfoFile")

    @field_validator("mac")
    @classmethod
    def _mac_syntax(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _MAC.match(value):
            raise ValueError("must be a MAC address like 02:00:00:00:00:01")
        if int(value[:2], 16) & 1:
            raise ValueError("must be a unicast MAC address (first octet even)")
        return value.lower()

    @field_validator("device_info_file")
    @classmethod
    def _device_info_absolute(cls, value: str | None) -> str | None:
        return None if value is None else _absolute(value, "CNIDeviceInfoFile")


class NetConf(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", populate_by_name=True, frozen=True)

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
        if not _PLUGIN_TYPE.match(value):
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
