"""The files a pod and the plugin read, in the original plugin's formats.

`<prefix>-ip4.conf` and `<prefix>.json` keep the original's keys, key order and
indentation, so pods built against it keep parsing them. The record adds what
DEL, CHECK, GC and the operator CLI need after the original keys.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

RECORD_SCHEMA = 1
# A record taken over from a pod's directory (`Attachment.trusted_legacy`).
UNCONFIRMED_SCHEMA = 0

PHASE_PENDING = "pending"
PHASE_READY = "ready"

# Python attribute -> JSON key, where they differ (the original's keys are kept as they were).
_JSON_KEYS = {
    "container_id": "containerID",
    "socket_path": "socketPath",
    "socket_mode": "socketMode",
    "socket_access": "socketAccess",
    "ip_addr": "ipAddr",
    "ip_addrs": "ipAddrs",
    "host_route": "hostRoute",
    "network_id": "networkID",
}
_ATTRS = {v: k for k, v in _JSON_KEYS.items()}


class IpConf(NamedTuple):
    """`<prefix>-ip4.conf` and `<prefix>-ip6.conf`: the same four keys, one address each."""

    ip_addr: str
    mac_addr: str
    gateway: str
    gw_mac: str

    def render(self) -> bytes:
        # The original's layout: 8-space indent, keys in this order.
        fields = (
            ("ipAddr", self.ip_addr),
            ("macAddr", self.mac_addr),
            ("gateway", self.gateway),
            ("gwMac", self.gw_mac),
        )
        body = ",\n".join(f"        {json.dumps(k)}: {json.dumps(v)}" for k, v in fields)
        return f"{{\n{body}\n}}\n".encode()


_EMPTY: Mapping[str, Any] = MappingProxyType({})


def socket_access(mode: str | None, ids: tuple[int, int]) -> Mapping[str, Any]:
    """The record's form of a socket's access: its mode as an octal string (None: as VPP
    made it) and (uid, gid), -1 for "left as is"; empty when nothing is changed."""
    if mode is None and ids == (-1, -1):
        return _EMPTY
    return {"mode": mode, "uid": ids[0], "gid": ids[1]}


def socket_access_settings(access: Mapping[str, Any]) -> tuple[str | None, tuple[int, int]]:
    """`socket_access` read back as (mode, (uid, gid)); ValueError when a record's is unreadable."""
    mode = access.get("mode")
    try:
        return (None if mode is None else str(mode)), (int(access.get("uid", -1)), int(access.get("gid", -1)))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"socketAccess {dict(access)}: {exc}") from exc


class PortRecord(NamedTuple):
    """What one attachment left on the node. Every field has a default so that a
    record written by the original plugin (its five keys only) still loads. Records
    are values: ADD moves one on with `_replace` and writes each version whole."""

    vhostname: str = ""
    vhostmac: str = ""
    ifname: str = ""
    ifmac: str = ""
    vhost_tool: str = ""
    schema: int = RECORD_SCHEMA
    phase: str = PHASE_READY
    container_id: str = ""
    network: str = ""
    # Which network config made it (`network_identity`): GC takes only its own network's.
    network_id: str = ""
    backend: str = ""
    socket_path: str = ""
    socket_mode: str = "server"
    # What ADD gave the socket VPP made (`socket_access`), for `restore` to give it again.
    socket_access: Mapping[str, Any] = _EMPTY
    # The first IPv4 address (or ""), as records before IPv6 had it, for older readers.
    ip_addr: str = ""
    # Every address ADD wired, both families, IPAM's order; empty in records before IPv6.
    ip_addrs: tuple[str, ...] = ()
    tag: str = ""
    host_route: str = ""
    port: Mapping[str, Any] = _EMPTY
    result: Mapping[str, Any] = _EMPTY
    # The Kubernetes pod (namespace, name, uid) CNI_ARGS named, for the operator.
    pod: Mapping[str, Any] = _EMPTY

    @property
    def pod_name(self) -> str:
        """`namespace/name`, or "" when the runtime named no pod."""
        namespace, name = self.pod.get("namespace"), self.pod.get("name")
        return f"{namespace}/{name}" if namespace and name else ""

    @property
    def pod_ips(self) -> tuple[str, ...]:
        """The pod's addresses, in records of every version."""
        return self.ip_addrs or ((self.ip_addr,) if self.ip_addr else ())

    @property
    def confirmed(self) -> bool:
        """Written by this plugin into `.state`, not taken over from a pod's directory."""
        return self.schema != UNCONFIRMED_SCHEMA

    def render(self) -> bytes:
        doc = {
            _JSON_KEYS.get(k, k): dict(v) if isinstance(v, Mapping) else v for k, v in self._asdict().items()
        }
        return (json.dumps(doc, indent=4) + "\n").encode()

    @classmethod
    def parse(cls, data: bytes) -> PortRecord:
        doc = json.loads(data)
        if not isinstance(doc, dict):
            raise ValueError("record is not a JSON object")
        kwargs: dict[str, Any] = {}
        for key, value in doc.items():
            attr = _ATTRS.get(str(key), str(key))
            if attr not in cls._field_defaults:
                continue
            default = cls._field_defaults[attr]
            if isinstance(default, tuple):
                # A list of strings in JSON (every address).
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ValueError(f"record key {key!r} has the wrong type")
                kwargs[attr] = tuple(value)
                continue
            expected = dict if isinstance(default, Mapping) else type(default)
            if not isinstance(value, expected):
                raise ValueError(f"record key {key!r} has the wrong type")
            kwargs[attr] = value
        return cls(**kwargs)


def network_identity(config: Mapping[str, Any]) -> str:
    """What tells one network config from another of the same name: the name and the IPAM
    section (canonical JSON), cniDir being where the record lives. Two tenants may pick the
    same name; their attachments stay apart unless their IPAM configs are the same too, and
    then so are their addresses."""
    return json.dumps({"name": config.get("name"), "ipam": config.get("ipam")}, sort_keys=True)
