"""CNI results: one internal shape (the 1.x one) and its conversion to what a config asked for.

The result must come back in exactly the config's `cniVersion`, while the IPAM
plugin may have answered in another one, so every result is read into `Result`
and written out by `to_json(version)`. Only the two shapes we speak exist:
0.3.x/0.4.0 (each IP carries `version`) and 1.x (it does not; 1.1.0 adds
`socketPath` and `pciID` to interfaces and more route attributes).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

from vhostuser_vpp.cni import versions
from vhostuser_vpp.cni.errors import CniCode, CniError

_ROUTE_KEYS_1_0 = ("dst", "gw")


class Interface(NamedTuple):
    name: str
    mac: str = ""
    sandbox: str = ""
    socket_path: str = ""


class IPConfig(NamedTuple):
    address: str
    gateway: str | None = None
    interface: int | None = None

    @property
    def ip_version(self) -> int:
        return ipaddress.ip_interface(self.address).version

    @property
    def ip(self) -> str:
        return str(ipaddress.ip_interface(self.address).ip)


class Result(NamedTuple):
    cni_version: str
    interfaces: Sequence[Interface] = ()
    ips: Sequence[IPConfig] = ()
    routes: Sequence[dict[str, Any]] = ()
    dns: Mapping[str, Any] = MappingProxyType({})

    @classmethod
    def from_json(cls, doc: Any, source: str) -> Result:
        """Read a 0.3.x, 0.4.0 or 1.x result; `source` names its producer in errors."""
        try:
            return cls._from_json(doc)
        except (KeyError, TypeError, ValueError) as exc:
            raise CniError(CniCode.DECODE_FAILURE, f"cannot decode the result of {source}", str(exc)) from exc

    @classmethod
    def _from_json(cls, doc: Any) -> Result:
        if not isinstance(doc, Mapping):
            raise TypeError("result is not a JSON object")
        version = doc.get("cniVersion", "")
        if version not in versions.SUPPORTED_VERSIONS:
            raise ValueError(f"cniVersion {version!r} is not one of {list(versions.SUPPORTED_VERSIONS)}")
        ips = [
            IPConfig(
                address=str(ipaddress.ip_interface(_str(ip["address"]))),
                gateway=str(ipaddress.ip_address(_str(ip["gateway"]))) if ip.get("gateway") else None,
                interface=_opt_int(ip.get("interface")),
            )
            for ip in _list(doc.get("ips"))
        ]
        interfaces = [
            Interface(
                name=_str(itf["name"]),
                mac=_str(itf.get("mac", "")),
                sandbox=_str(itf.get("sandbox", "")),
                socket_path=_str(itf.get("socketPath", "")),
            )
            for itf in _list(doc.get("interfaces"))
        ]
        routes = [dict(_dict(route)) for route in _list(doc.get("routes"))]
        dns = dict(_dict(doc.get("dns") or {}))
        return cls(cni_version=version, interfaces=interfaces, ips=ips, routes=routes, dns=dns)

    def after(self, prev: Result) -> Result:
        """This plugin's result chained after the previous plugins' (the spec's `prevResult`):
        their interfaces, addresses and routes kept, ours appended, our addresses pointing
        at our interface's new position; their DNS unless they had none."""
        offset = len(prev.interfaces)
        ips = [
            ip._replace(interface=None if ip.interface is None else ip.interface + offset) for ip in self.ips
        ]
        return self._replace(
            interfaces=[*prev.interfaces, *self.interfaces],
            ips=[*prev.ips, *ips],
            routes=[*prev.routes, *self.routes],
            dns=prev.dns or self.dns,
        )

    def to_json(self, version: str) -> dict[str, Any]:
        legacy = versions.is_legacy_result(version)
        has_1_1_fields = versions.at_least(version, "1.1.0")
        doc: dict[str, Any] = {"cniVersion": version}
        if self.interfaces:
            doc["interfaces"] = [_interface_json(itf, has_1_1_fields) for itf in self.interfaces]
        ips = []
        for ip in self.ips:
            entry: dict[str, Any] = {}
            if legacy:
                entry["version"] = str(ip.ip_version)
            entry["address"] = ip.address
            if ip.gateway:
                entry["gateway"] = ip.gateway
            if ip.interface is not None:
                entry["interface"] = ip.interface
            ips.append(entry)
        if ips:
            doc["ips"] = ips
        if self.routes:
            doc["routes"] = [
                route if has_1_1_fields else {k: v for k, v in route.items() if k in _ROUTE_KEYS_1_0}
                for route in self.routes
            ]
        if self.dns:
            doc["dns"] = dict(self.dns)
        return doc


def _interface_json(itf: Interface, has_1_1_fields: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": itf.name}
    if itf.mac:
        entry["mac"] = itf.mac
    if itf.sandbox:
        entry["sandbox"] = itf.sandbox
    if itf.socket_path and has_1_1_fields:
        entry["socketPath"] = itf.socket_path
    return entry


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {value!r}")
    return value


def _dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {value!r}")
    return value


def _opt_int(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an integer, got {value!r}")
    return value
