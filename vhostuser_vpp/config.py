"""The network configuration a runtime hands the plugin on stdin.

Keys of the original plugin (`name`, `type`, `if0name`, `vhost.vhost_tool`,
`ipam`, `cniDir`) keep their names and meaning. Types are strict: "5" is not a
number. Unknown top-level keys are ignored, as Go's json.Unmarshal does, since
runtimes and Multus add their own; unknown keys inside `vhost` are rejected,
because there they can only be typos of ours.

Validation is pydantic v2's engine, pydantic-core, driven by core schemas written
here, not by `pydantic.BaseModel`: building BaseModel classes costs every pod's
start-up 55-75 ms of imports and schema generation (docs/benchmarks.md), while
pydantic-core is already loaded with `pydantic` itself. The errors are pydantic's
own, with field paths and messages. Each config section is a NamedTuple that
holds the defaults; beside it, a table gives each key's schema.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Literal, NamedTuple, TypeVar

from pydantic_core import SchemaValidator, ValidationError
from pydantic_core import core_schema as cs

from vhostuser_vpp.cni.errors import CniCode, CniError
from vhostuser_vpp.defaults import DEFAULT_API_SOCKET, DEFAULT_CNI_DIR

_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_PLUGIN_TYPE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$")
_VPP_IFNAME = r"^[A-Za-z][A-Za-z0-9/._:-]{0,62}$"

_Section = TypeVar("_Section", bound=tuple[Any, ...])


def _unicast_mac(value: str) -> str:
    if not _MAC.fullmatch(value):
        raise ValueError("must be a MAC address like 02:00:00:00:00:01")
    if int(value[:2], 16) & 1:
        raise ValueError("must be a unicast MAC address (first octet even)")
    return value.lower()


def _absolute(value: str, what: str = "the path") -> str:
    if not value.startswith("/") or "\0" in value:
        raise ValueError(f"{what} must be an absolute path")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError(f"{what} must be valid UTF-8") from None
    return value


def _plugin_file_name(value: str) -> str:
    if not _PLUGIN_TYPE.fullmatch(value):
        raise ValueError("must be a plugin file name (letters, digits, '_', '.', '-')")
    return value


def _network_name(value: str) -> str:
    if not _PLUGIN_TYPE.fullmatch(value):
        raise ValueError("must start with a letter or digit and hold only letters, digits, '_', '.', '-'")
    return value


def _host_path(value: str) -> str:
    _absolute(value)
    if any(part == ".." for part in value.split("/")):
        raise ValueError("must not contain '..'")
    if any(part == "." for part in value.split("/")):
        raise ValueError("must not contain '.' components")
    return value.rstrip("/") or "/"


def _safe_mode(value: str) -> str:
    if not re.fullmatch(r"0?[0-7]{3}", value):
        raise ValueError("must be an octal mode like '0750'")
    if int(value, 8) & 0o002:
        raise ValueError("must not let others write")
    return value


def _checked(schema: cs.CoreSchema, check: Callable[[Any], Any]) -> cs.CoreSchema:
    return cs.no_info_after_validator_function(check, schema)


def _optional(schema: cs.CoreSchema) -> cs.CoreSchema:
    return cs.nullable_schema(schema)


_STR = cs.str_schema()
_BOOL = cs.bool_schema()
_ABSOLUTE_PATH = _checked(_STR, _absolute)
_UNICAST_MAC = _checked(_STR, _unicast_mac)


def _section(
    section: type[_Section],
    schemas: Mapping[str, cs.CoreSchema],
    extra: Literal["ignore", "forbid"],
    aliases: Mapping[str, str] | None = None,
    check: Callable[[_Section], _Section] | None = None,
) -> cs.CoreSchema:
    """A JSON object validated key by key and built into the NamedTuple `section`; keys
    it gives a default may be left out, the others are required; `check` sees the
    whole section. Every field needs a schema, and only those: a mismatch fails at
    import, in every test."""
    declared: tuple[str, ...] = section._fields  # type: ignore[attr-defined]
    defaults: dict[str, Any] = section._field_defaults  # type: ignore[attr-defined]
    if set(declared) != set(schemas):
        raise TypeError(f"{section.__name__}: schemas for {sorted(schemas)}, fields {sorted(declared)}")
    aliases = aliases or {}
    keys = {
        name: cs.typed_dict_field(schema, required=name not in defaults, validation_alias=aliases.get(name))
        for name, schema in schemas.items()
    }
    # Strictness is set per object: a typed dict does not inherit the validator's config.
    strict = cs.typed_dict_schema(keys, extra_behavior=extra, config=cs.CoreConfig(strict=True))

    def build(values: dict[str, Any]) -> _Section:
        built = section(**values)
        return check(built) if check else built

    return _checked(strict, build)


class VhostConf(NamedTuple):
    vhost_tool: str | None = None
    backend: Literal["auto", "vpp", "tool"] = "auto"
    api_socket: str = DEFAULT_API_SOCKET
    connect_timeout: float = 5.0
    call_timeout: float = 10.0
    tool_timeout: float = 30.0
    # How the port is wired in VPP: l3 as the original tool did (unnumbered to a
    # loopback holding the gateway address, /32 route, static neighbour), l2 into a
    # bridge domain, or none (the port only).
    mode: Literal["l3", "l2", "none"] = "l3"
    # Who creates the socket: VPP (server, as the original) or the pod's app (client:
    # VPP connects and keeps retrying, so VPP can restart without the pod re-opening).
    socket_mode: Literal["server", "client"] = "server"
    unnumbered_to: str = "loop0"
    create_loopback: bool = False
    bridge_domain: int | None = None
    enable_gso: bool = False
    enable_packed: bool = False
    enable_event_idx: bool = False
    disable_mrg_rxbuf: bool = False
    disable_indirect_desc: bool = False
    port_mac: str | None = None
    # Host-side name of a VPP tap interface: ADD routes <pod-ip>/32 through it in the
    # host's network namespace (must be allowed by the node policy).
    host_route: str | None = None
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


def _l2_needs_a_bridge_domain(vhost: VhostConf) -> VhostConf:
    if vhost.mode == "l2" and vhost.bridge_domain is None:
        raise ValueError("mode l2 needs bridge_domain (1..16777215)")
    return vhost


# A uid or gid as chown(2) takes it (-1, "leave as is", is what leaving the key out means).
_OWNER = _optional(cs.union_schema([cs.int_schema(ge=0, le=0xFFFFFFFE), _STR]))

_VHOST = _section(
    VhostConf,
    {
        "vhost_tool": _optional(_ABSOLUTE_PATH),
        "backend": cs.literal_schema(["auto", "vpp", "tool"]),
        "api_socket": _ABSOLUTE_PATH,
        "connect_timeout": cs.float_schema(gt=0, le=300),
        "call_timeout": cs.float_schema(gt=0, le=300),
        "tool_timeout": cs.float_schema(gt=0, le=600),
        "mode": cs.literal_schema(["l3", "l2", "none"]),
        "socket_mode": cs.literal_schema(["server", "client"]),
        "unnumbered_to": cs.str_schema(pattern=_VPP_IFNAME),
        "create_loopback": _BOOL,
        "bridge_domain": _optional(cs.int_schema(ge=1, le=0xFFFFFF)),
        "enable_gso": _BOOL,
        "enable_packed": _BOOL,
        "enable_event_idx": _BOOL,
        "disable_mrg_rxbuf": _BOOL,
        "disable_indirect_desc": _BOOL,
        "port_mac": _optional(_UNICAST_MAC),
        "host_route": _optional(cs.str_schema(pattern=r"^[^/\s:]{1,15}$")),
        "socket_dir_mode": _checked(_STR, _safe_mode),
        "socket_file_mode": _optional(_checked(_STR, _safe_mode)),
        "socket_group": _OWNER,
        "socket_owner": _OWNER,
    },
    extra="forbid",
    check=_l2_needs_a_bridge_domain,
)


class IpamConf(NamedTuple):
    """Only `type` is ours to read; the rest belongs to the IPAM plugin, which gets the
    whole config as it came."""

    type: str


class RuntimeConf(NamedTuple):
    mac: str | None = None
    device_info_file: str | None = None


class NetConf(NamedTuple):
    cni_version: str
    name: str
    type: str
    ipam: IpamConf
    if0name: str | None = None
    vhost: VhostConf = VhostConf()
    cni_dir: str = DEFAULT_CNI_DIR
    log_file: str | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    runtime_config: RuntimeConf = RuntimeConf()
    prev_result: dict[str, Any] | None = None


# Keys are checked in this order, which is the order problems are reported in.
_NETCONF = _section(
    NetConf,
    {
        "cni_version": _STR,
        "name": _checked(cs.str_schema(min_length=1), _network_name),
        "type": _STR,
        "if0name": _optional(_STR),
        "vhost": _VHOST,
        "ipam": _section(IpamConf, {"type": _checked(_STR, _plugin_file_name)}, extra="ignore"),
        "cni_dir": _checked(_STR, _host_path),
        "log_file": _optional(_checked(_STR, _host_path)),
        "log_level": cs.literal_schema(["debug", "info", "warning", "error"]),
        "runtime_config": _section(
            RuntimeConf,
            {
                "mac": _optional(_UNICAST_MAC),
                "device_info_file": _optional(_checked(_STR, lambda v: _absolute(v, "CNIDeviceInfoFile"))),
            },
            extra="ignore",
            aliases={"device_info_file": "CNIDeviceInfoFile"},
        ),
        "prev_result": _optional(cs.dict_schema(_STR, cs.any_schema())),
    },
    extra="ignore",
    # No validation by attribute name: an unknown `cni_dir` key is ignored, not taken as cniDir.
    aliases={
        "cni_version": "cniVersion",
        "cni_dir": "cniDir",
        "log_file": "logFile",
        "log_level": "logLevel",
        "runtime_config": "runtimeConfig",
        "prev_result": "prevResult",
    },
)

_VALIDATOR = SchemaValidator(_NETCONF)


def parse_netconf(config: dict[str, Any]) -> NetConf:
    """Validate a decoded config; every problem becomes code 7 naming the field."""
    try:
        conf: NetConf = _VALIDATOR.validate_python(config)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            where = ".".join(str(part) for part in error["loc"]) or "config"
            problems.append(f"{where}: {error['msg']}")
        raise CniError(CniCode.INVALID_CONFIG, "invalid network config", "; ".join(problems)) from exc
    return conf
