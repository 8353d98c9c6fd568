"""A kernel route to the pod in the host's network namespace, for `vhost.host_route`.

A DPDK pod has no kernel interface, so kubelet probes and node daemons reach
it only through VPP: a VPP tap interface shows up in the host as a netdev, and
a `<pod-ip>/32` route through it makes the pod reachable. pyroute2 is imported
here only, so plugins without the feature never pay for it.
"""

from __future__ import annotations

import errno
from typing import Any

from vhostuser_vpp.addressing import family, host_prefix

AF_INET = 2
AF_INET6 = 10
SCOPE_LINK = 253  # RT_SCOPE_LINK: the pod is directly behind the tap, no gateway


class HostRouteError(Exception):
    pass


def _netlink_errors() -> tuple[type[Exception], ...]:
    from pyroute2.netlink.exceptions import NetlinkError

    return (NetlinkError, OSError)


def _ipr() -> Any:
    from pyroute2 import IPRoute

    return IPRoute()


def _link_index(ipr: Any, device: str) -> int:
    found = ipr.link_lookup(ifname=device)
    if not found:
        raise HostRouteError(f"no interface {device!r} in the host network namespace")
    return int(found[0])


def _family(pod_ip: str) -> int:
    return AF_INET6 if family(pod_ip) == 6 else AF_INET


def add_route(device: str, pod_ip: str) -> None:
    """Adds or replaces `<pod_ip>/32 (/128) dev <device>`; replacing makes a retried ADD
    harmless."""
    with _ipr() as ipr:
        index = _link_index(ipr, device)
        try:
            ipr.route("replace", family=_family(pod_ip), dst=host_prefix(pod_ip), oif=index, scope=SCOPE_LINK)
        except _netlink_errors() as exc:
            raise HostRouteError(f"cannot add route {host_prefix(pod_ip)} dev {device}: {exc}") from exc


def delete_route(device: str, pod_ip: str) -> None:
    """Removes the route if it is there and goes through `device`; anything else is left alone."""
    with _ipr() as ipr:
        found = ipr.link_lookup(ifname=device)
        if not found:
            return
        for route in _routes_via(ipr, pod_ip, int(found[0])):
            try:
                # Deleting needs the route's own scope and table, or the kernel finds no match.
                ipr.route(
                    "del",
                    family=_family(pod_ip),
                    dst=host_prefix(pod_ip),
                    oif=int(found[0]),
                    scope=route["scope"],
                    table=route.get_attr("RTA_TABLE"),
                )
            except _netlink_errors() as exc:
                if getattr(exc, "code", None) != errno.ESRCH:
                    raise HostRouteError(
                        f"cannot delete route {host_prefix(pod_ip)} dev {device}: {exc}"
                    ) from exc


def route_exists(device: str, pod_ip: str) -> bool:
    with _ipr() as ipr:
        found = ipr.link_lookup(ifname=device)
        return bool(found) and bool(_routes_via(ipr, pod_ip, int(found[0])))


def _routes_via(ipr: Any, pod_ip: str, index: int) -> list[Any]:
    # A dump, not a "get": a get resolves the address and answers with whatever route
    # would carry it, or an error when none would.
    family = _family(pod_ip)
    routes = ipr.route("dump", family=family, dst_len=128 if family == AF_INET6 else 32)
    return [r for r in routes if r.get_attr("RTA_DST") == pod_ip and r.get_attr("RTA_OIF") == index]
