"""Address arithmetic the VPP side and the host side share: a pod address's host prefix
(VPP and the kernel route each pod address alone) and its family."""

from __future__ import annotations

import ipaddress


def family(address: str) -> int:
    """4 or 6, of an address or an address with its length."""
    return ipaddress.ip_interface(address).version


def host_prefix(ip: str) -> str:
    """<ip>/32 or <ip>/128."""
    return f"{ip}/128" if family(ip) == 6 else f"{ip}/32"
