"""Looking at VPP from the test's side, through its API, so the same assertions hold
against the emulator and against a real VPP.

The probe loads every definition of tests/data/vpp-26.06, more than the product ships: a
test also lists addresses, deletes loopbacks and takes a snapshot of everything the
plugin could have touched, to prove it left VPP as it found it."""

from __future__ import annotations

import ipaddress
from typing import Any

from vpp_papi import VPPApiClient

from tests.reference import full_api_json_paths
from vhostuser_vpp.vpp.ops import pod_route

ANY = 0xFFFFFFFF
POD_RANGE = (ipaddress.IPv4Address("10.56.217.131"), ipaddress.IPv4Address("10.56.217.254"))
# The IPv6 pods' subnet (tests/integration/test_ipv6.py), its gateway ::1 left out.
POD_RANGE6 = (ipaddress.IPv6Address("fd00:56:217::2"), ipaddress.IPv6Address("fd00:56:217::ffff"))


def _in_pod_range(address: Any) -> bool:
    ip = ipaddress.ip_address(str(address))
    low, high = POD_RANGE6 if isinstance(ip, ipaddress.IPv6Address) else POD_RANGE
    return low <= ip <= high  # type: ignore[operator]


class VppProbe:
    def __init__(self, api_socket: str) -> None:
        self.api_socket = api_socket
        self.papi: Any = None

    def __enter__(self) -> VppProbe:
        self.reconnect()
        return self

    def reconnect(self) -> None:
        """A fresh connection, e.g. after VPP restarted and dropped the old one."""
        self.close()
        self.papi = VPPApiClient(
            apifiles=full_api_json_paths(), server_address=self.api_socket, read_timeout=10
        )
        self.papi.connect("vhostuser-tests")

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        papi, self.papi = self.papi, None
        if papi is not None and papi.transport.connected:
            papi.disconnect()

    def ports(self, cni_dir: str) -> dict[str, Any]:
        """socket path -> sw_interface_vhost_user_details, for sockets under cni_dir."""
        details = self.papi.api.sw_interface_vhost_user_dump(sw_if_index=ANY)
        return {d.sock_filename: d for d in details if d.sock_filename.startswith(cni_dir + "/")}

    def interface(self, index: int) -> Any:
        found = self.papi.api.sw_interface_dump(sw_if_index=index, name_filter_valid=False, name_filter="")
        return next((d for d in found if d.sw_if_index == index), None)

    def interface_named(self, name: str) -> Any:
        found = self.papi.api.sw_interface_dump(sw_if_index=ANY, name_filter_valid=True, name_filter=name)
        return next((d for d in found if d.interface_name == name), None)

    def pod_routes(self) -> dict[str, int]:
        """pod /32 or /128 -> sw_if_index of its path."""
        routes = [
            r
            for is_ip6 in (False, True)
            for r in self.papi.api.ip_route_dump(table={"table_id": 0, "is_ip6": is_ip6, "name": ""})
        ]
        return {
            str(r.route.prefix): r.route.paths[0].sw_if_index
            for r in routes
            if r.route.prefix.prefixlen == r.route.prefix.max_prefixlen
            and _in_pod_range(r.route.prefix.network_address)
        }

    def pod_neighbors(self) -> dict[str, tuple[int, str]]:
        """pod ip -> (sw_if_index, mac), both families."""
        found = [n for af in (0, 1) for n in self.papi.api.ip_neighbor_dump(sw_if_index=ANY, af=af)]
        return {
            str(n.neighbor.ip_address): (n.neighbor.sw_if_index, str(n.neighbor.mac_address))
            for n in found
            if _in_pod_range(n.neighbor.ip_address)
        }

    def bridge_domain(self, bd_id: int) -> Any:
        found = self.papi.api.bridge_domain_dump(bd_id=bd_id, sw_if_index=ANY)
        return found[0] if found else None

    def delete_port(self, index: int) -> None:
        """Deletes a port behind the plugin's back, as an operator or a crash might."""
        assert self.papi.api.delete_vhost_user_if(sw_if_index=index).retval == 0

    def make_gateway_loopback(self, *gateway_cidrs: str) -> None:
        """loop0 with the pods' gateway addresses, as a node's VPP set-up would have it."""
        index = self.papi.api.create_loopback(mac_address="00:00:00:00:00:00").sw_if_index
        for cidr in gateway_cidrs:
            reply = self.papi.api.sw_interface_add_del_address(
                sw_if_index=index, is_add=True, del_all=False, prefix=cidr
            )
            assert reply.retval == 0
        assert self.papi.api.sw_interface_set_flags(sw_if_index=index, flags=1).retval == 0

    def delete_loopback(self, name: str) -> None:
        loop = self.interface_named(name)
        assert self.papi.api.delete_loopback(sw_if_index=loop.sw_if_index).retval == 0

    def link_up(self, index: int) -> bool:
        """A frontend (the pod's DPDK app) attached and VPP sees the link up."""
        found = self.interface(index)
        return found is not None and bool(int(found.flags) & 2)

    def addresses(self, name: str) -> list[str]:
        """An interface's addresses, IPv4 then IPv6."""
        index = self.interface_named(name).sw_if_index
        return [
            str(a.prefix)
            for is_ipv6 in (False, True)
            for a in self.papi.api.ip_address_dump(sw_if_index=index, is_ipv6=is_ipv6)
        ]

    def delete_neighbor(self, ip: str) -> None:
        index, mac = self.pod_neighbors()[ip]
        neighbor = {"sw_if_index": index, "flags": 1, "mac_address": mac, "ip_address": ip}
        assert self.papi.api.ip_neighbor_add_del(is_add=False, neighbor=neighbor).retval == 0

    def set_unnumbered(self, lender: int, borrower: int, is_add: bool) -> None:
        reply = self.papi.api.sw_interface_set_unnumbered(
            sw_if_index=lender, unnumbered_sw_if_index=borrower, is_add=is_add
        )
        assert reply.retval == 0

    def set_pod_route(self, ip: str, index: int, is_add: bool = True) -> None:
        """Points <ip>/32 at another interface (replacing the route's paths), or removes that."""
        route = pod_route(ip, index)
        reply = self.papi.api.ip_route_add_del(is_add=is_add, is_multipath=False, route=route)
        assert reply.retval == 0

    def leave_bridge_domain(self, index: int, bd_id: int) -> None:
        reply = self.papi.api.sw_interface_set_l2_bridge(
            rx_sw_if_index=index, bd_id=bd_id, port_type=0, shg=0, enable=False
        )
        assert reply.retval == 0

    def state(self, cni_dir: str) -> tuple[set[str], dict[str, int], dict[str, tuple[int, str]]]:
        return set(self.ports(cni_dir)), self.pod_routes(), self.pod_neighbors()

    def snapshot(self, addresses: bool = True) -> dict[str, Any]:
        """Everything of VPP's that the plugin, the CLI or a test may change, in comparable
        form: interfaces (index, name, tag, admin state, vhost socket), addresses, unnumbered
        pairs, both FIBs' routes with their paths, neighbours and bridge domains. The
        emulator has no address dump (`addresses=False`); the FIB's local /32s show them too."""
        api = self.papi.api
        interfaces = api.sw_interface_dump(sw_if_index=ANY, name_filter_valid=False, name_filter="")
        vhost = {d.sw_if_index: d.sock_filename for d in api.sw_interface_vhost_user_dump(sw_if_index=ANY)}
        state: dict[str, Any] = {
            "interfaces": sorted(
                (i.sw_if_index, i.interface_name, i.tag, int(i.flags) & 1, vhost.get(i.sw_if_index, ""))
                for i in interfaces
            ),
            "addresses": sorted(
                (i.sw_if_index, str(a.prefix))
                for i in (interfaces if addresses else [])
                for is_ipv6 in (False, True)
                for a in api.ip_address_dump(sw_if_index=i.sw_if_index, is_ipv6=is_ipv6)
            ),
            "unnumbered": sorted(
                (u.sw_if_index, u.ip_sw_if_index) for u in api.ip_unnumbered_dump(sw_if_index=ANY)
            ),
            "neighbors": sorted(
                (n.neighbor.sw_if_index, str(n.neighbor.ip_address), str(n.neighbor.mac_address))
                for af in (0, 1)
                for n in api.ip_neighbor_dump(sw_if_index=ANY, af=af)
            ),
            "bridge_domains": sorted(
                (b.bd_id, b.bd_tag, tuple(sorted(m.sw_if_index for m in b.sw_if_details)))
                for b in api.bridge_domain_dump(bd_id=ANY, sw_if_index=ANY)
            ),
        }
        state["routes"] = sorted(
            (str(r.route.prefix), tuple(sorted((p.sw_if_index, int(p.type)) for p in r.route.paths)))
            for is_ip6 in (False, True)
            for r in api.ip_route_dump(table={"table_id": 0, "is_ip6": is_ip6, "name": ""})
        )
        return state

    def remove_gateway_loopbacks(self, keep: set[int]) -> None:
        """Deletes the loopbacks the plugin made for `vhost.create_loopback` (tag `cni-gw:`)
        but those in `keep`: node-wide by design, they outlive the test that made them."""
        found = self.papi.api.sw_interface_dump(sw_if_index=ANY, name_filter_valid=True, name_filter="loop")
        for loop in found:
            if loop.tag.startswith("cni-gw:") and loop.sw_if_index not in keep:
                assert self.papi.api.delete_loopback(sw_if_index=loop.sw_if_index).retval == 0
