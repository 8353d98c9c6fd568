"""The pod's addresses: what IPAM gave, which of them each backend can wire, and the wiring.

L3 wires every address IPAM returns, IPv4 and IPv6 alike (a /32 or /128, a static
neighbour, the gateway on the interface the port borrows from). The vhost_tool protocol
carries one IPv4 address, so a network that hands out IPv6 is refused on that backend,
before anything is made where the IPAM config says so, else right after IPAM answered.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from vhostuser_vpp.addressing import family
from vhostuser_vpp.backends.base import Wiring
from vhostuser_vpp.cni.errors import CniCode, CniError
from vhostuser_vpp.cni.results import IPConfig, Result
from vhostuser_vpp.store.records import PortRecord


def pod_addresses(result: Result, ipam_type: str) -> list[IPConfig]:
    """Every address of IPAM's answer; an answer without one cannot give a pod a port."""
    if not result.ips:
        raise CniError(
            CniCode.INVALID_CONFIG,
            "the IPAM plugin gave no address",
            f"{ipam_type} returned no ips; a vhost-user port needs an IPv4 or IPv6 address",
        )
    return list(result.ips)


def first_of_family(ips: Sequence[IPConfig], version: int) -> IPConfig | None:
    """The address the pod's `-ip4.conf` / `-ip6.conf` names."""
    return next((ip for ip in ips if ip.ip_version == version), None)


def gateway_cidr(ip: IPConfig) -> str | None:
    """The gateway with its subnet's length (10.56.217.1/24), as the lender must carry it."""
    if not ip.gateway:
        return None
    return f"{ip.gateway}/{ipaddress.ip_interface(ip.address).network.prefixlen}"


def wiring(ips: Sequence[IPConfig], pod_mac: str) -> Wiring:
    cidrs = (gateway_cidr(ip) for ip in ips)
    return Wiring(
        pod_ips=tuple(ip.ip for ip in ips),
        pod_mac=pod_mac,
        gateway_cidrs=tuple(dict.fromkeys(c for c in cidrs if c)),
    )


def recorded_wiring(record: PortRecord) -> Wiring:
    """What ADD wired, from the record: its addresses, with the gateways of its saved result."""
    try:
        saved = Result.from_json(record.result, source="the saved record").ips if record.result else ()
    except CniError:
        saved = ()  # an unreadable result: the lender keeps the gateways it has
    wired = set(record.pod_ips)
    ips = [ip for ip in saved if ip.ip in wired]
    gateways = wiring(ips, record.ifmac).gateway_cidrs
    return Wiring(pod_ips=record.pod_ips, pod_mac=record.ifmac, gateway_cidrs=gateways)


def for_tool(ips: Sequence[IPConfig], ipam_type: str) -> list[IPConfig]:
    """The one address the tool wires: the first IPv4, as the original plugin did."""
    ipv6 = [ip.address for ip in ips if ip.ip_version == 6]
    if ipv6:
        raise ipv6_on_tool(f"{ipam_type} gave {', '.join(ipv6)}")
    return [ip for ip in ips if ip.ip_version == 4][:1]


def ipv6_on_tool(why: str) -> CniError:
    """IPv6 the tool's protocol cannot carry: code 2, as for a `vhost` setting it cannot."""
    return CniError(
        CniCode.UNSUPPORTED_FIELD,
        "the vhost_tool backend cannot wire IPv6 addresses",
        f"{why}; its protocol carries one IPv4 address: use the VPP binary API backend"
        " (vhost.backend vpp) for IPv6 and dual-stack networks",
    )


def declared_ipv6(ipam: Any) -> bool:
    """Whether an IPAM section in host-local's or static's shape hands out IPv6 (`ranges`,
    `subnet`, `addresses`); other IPAM types are only known by their answer."""
    if not isinstance(ipam, Mapping):
        return False
    subnets: list[Any] = [ipam.get("subnet")]
    ranges = ipam.get("ranges")
    if isinstance(ranges, list):
        subnets += [
            r.get("subnet") for rs in ranges if isinstance(rs, list) for r in rs if isinstance(r, Mapping)
        ]
    addresses = ipam.get("addresses")
    if isinstance(addresses, list):
        subnets += [a.get("address") for a in addresses if isinstance(a, Mapping)]
    return any(_is_ipv6_network(s) for s in subnets)


def _is_ipv6_network(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return family(value) == 6
    except ValueError:
        return False
