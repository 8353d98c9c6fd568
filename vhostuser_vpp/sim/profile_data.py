"""Message CRCs of each VPP release the emulator can pose as, and VPP 26.06's message ids.

Taken from the crc-matrix and message table of the project's VPP reference data, limited to
the messages in `api_json/`. Shipped as code so that an installed emulator needs no data files
beyond the API definitions. For these messages no CRC changed between 22.10 and 26.06; an
older release differs only in what it lacks (22.10 has no `bridge_domain_add_del_v2`).
"""

from __future__ import annotations

from typing import NamedTuple

# message name -> CRC, as VPP 26.06 advertises it in its message table
CRCS_26_06: dict[str, str] = {
    "bridge_domain_add_del": "0x600b7170",
    "bridge_domain_add_del_reply": "0xe8d4e804",
    "bridge_domain_add_del_v2": "0x600b7170",
    "bridge_domain_add_del_v2_reply": "0xfcb1e980",
    "bridge_domain_details": "0x0fa506fd",
    "bridge_domain_dump": "0x74396a43",
    "cli_inband": "0xf8377302",
    "cli_inband_reply": "0x05879051",
    "control_ping": "0x51077d14",
    "control_ping_reply": "0xf6b0b8ca",
    "create_loopback": "0x42bb5d22",
    "create_loopback_reply": "0x5383d31f",
    "create_vhost_user_if": "0xc785c6fc",
    "create_vhost_user_if_reply": "0x5383d31f",
    "create_vhost_user_if_v2": "0xdba1cc1d",
    "create_vhost_user_if_v2_reply": "0x5383d31f",
    "delete_loopback": "0xf9e6675e",
    "delete_loopback_reply": "0xe8d4e804",
    "delete_vhost_user_if": "0xf9e6675e",
    "delete_vhost_user_if_reply": "0xe8d4e804",
    "ip_address_details": "0xee29b797",
    "ip_address_dump": "0x2d033de4",
    "ip_neighbor_add_del": "0x0607c257",
    "ip_neighbor_add_del_reply": "0x1992deab",
    "ip_neighbor_details": "0xe29d79f0",
    "ip_neighbor_dump": "0xd817a484",
    "ip_route_add_del": "0xb8ecfe0d",
    "ip_route_add_del_reply": "0x1992deab",
    "ip_route_details": "0xbda8f315",
    "ip_route_dump": "0xb9d2e09e",
    "ip_route_lookup": "0x710d6471",
    "ip_route_lookup_reply": "0x5d8febcb",
    "ip_unnumbered_details": "0xcc59bd42",
    "ip_unnumbered_dump": "0xf9e6675e",
    "modify_vhost_user_if": "0x0e71d40b",
    "modify_vhost_user_if_reply": "0xe8d4e804",
    "modify_vhost_user_if_v2": "0xb2483771",
    "modify_vhost_user_if_v2_reply": "0xe8d4e804",
    "show_version": "0x51077d14",
    "show_version_reply": "0xc919bde1",
    "sockclnt_create": "0x455fb9c4",
    "sockclnt_create_reply": "0x35166268",
    "sockclnt_delete": "0x8ac76db6",
    "sockclnt_delete_reply": "0x8f38b1ee",
    "sw_interface_add_del_address": "0x5463d73b",
    "sw_interface_add_del_address_reply": "0xe8d4e804",
    "sw_interface_details": "0x6c221fc7",
    "sw_interface_dump": "0xaa610c27",
    "sw_interface_event": "0x2d3d95a7",
    "sw_interface_ip6_enable_disable": "0xae6cfcfb",
    "sw_interface_ip6_enable_disable_reply": "0xe8d4e804",
    "sw_interface_set_flags": "0xf5aec1b8",
    "sw_interface_set_flags_reply": "0xe8d4e804",
    "sw_interface_set_l2_bridge": "0xd0678b13",
    "sw_interface_set_l2_bridge_reply": "0xe8d4e804",
    "sw_interface_set_mac_address": "0xc536e7eb",
    "sw_interface_set_mac_address_reply": "0xe8d4e804",
    "sw_interface_set_mtu": "0x5cbe85e5",
    "sw_interface_set_mtu_reply": "0xe8d4e804",
    "sw_interface_set_unnumbered": "0x154a6439",
    "sw_interface_set_unnumbered_reply": "0xe8d4e804",
    "sw_interface_tag_add_del": "0x426f8bc1",
    "sw_interface_tag_add_del_reply": "0xe8d4e804",
    "sw_interface_vhost_user_details": "0x0cee1e53",
    "sw_interface_vhost_user_dump": "0xf9e6675e",
    "want_interface_events": "0x476f5a08",
    "want_interface_events_reply": "0xe8d4e804",
}

# release -> the messages of CRCS_26_06 it does not have
RELEASE_LACKS: dict[str, tuple[str, ...]] = {
    "22.10": ("bridge_domain_add_del_v2", "bridge_domain_add_del_v2_reply"),
    "23.10": (),
    "24.10": (),
    "25.10": (),
    "26.06": (),
}


class ReleaseBehaviour(NamedTuple):
    """Where releases answer the same messages differently (seen on real VPPs 24.10 and 26.06).

    - `flushes_neighbours`: deleting an interface removes its neighbours. 24.10 keeps them,
      on the dead index (no API call can remove them: -2), and the next interface to get
      that index inherits them.
    - `local_route_first`: an interface address makes its receive /32 before the subnet's
      entries, which decides their stats_index order.
    """

    flushes_neighbours: bool
    local_route_first: bool


AS_24_10 = ReleaseBehaviour(flushes_neighbours=False, local_route_first=False)
AS_26_06 = ReleaseBehaviour(flushes_neighbours=True, local_route_first=True)
# 22.10, 23.10 and 25.10 were never run here: assumed to behave as the nearest release seen.
RELEASE_BEHAVIOUR: dict[str, ReleaseBehaviour] = {
    "22.10": AS_24_10,
    "23.10": AS_24_10,
    "24.10": AS_24_10,
    "25.10": AS_26_06,
    "26.06": AS_26_06,
}


def release_crcs(release: str) -> dict[str, str]:
    """name -> CRC for one release; KeyError for a release we have no data for."""
    lacks = RELEASE_LACKS[release]
    return {name: crc for name, crc in CRCS_26_06.items() if name not in lacks}


# message name -> id in the table of a real VPP 26.06 (vhost and ping plugins loaded)
VPP_2606_MESSAGE_IDS: dict[str, int] = {
    "sockclnt_create": 15,
    "sockclnt_create_reply": 16,
    "sockclnt_delete": 17,
    "cli_inband": 93,
    "cli_inband_reply": 95,
    "sockclnt_delete_reply": 18,
    "control_ping": 23,
    "control_ping_reply": 24,
    "sw_interface_set_flags": 128,
    "sw_interface_set_flags_reply": 129,
    "sw_interface_set_mtu": 134,
    "sw_interface_set_mtu_reply": 135,
    "sw_interface_event": 138,
    "want_interface_events": 139,
    "want_interface_events_reply": 140,
    "sw_interface_details": 141,
    "sw_interface_dump": 142,
    "sw_interface_add_del_address": 143,
    "sw_interface_add_del_address_reply": 144,
    "sw_interface_set_unnumbered": 153,
    "sw_interface_set_unnumbered_reply": 154,
    "sw_interface_tag_add_del": 157,
    "sw_interface_tag_add_del_reply": 158,
    "sw_interface_set_mac_address": 161,
    "sw_interface_set_mac_address_reply": 162,
    "create_loopback": 186,
    "create_loopback_reply": 187,
    "delete_loopback": 190,
    "delete_loopback_reply": 191,
    "bridge_domain_add_del": 245,
    "bridge_domain_add_del_reply": 246,
    "bridge_domain_add_del_v2": 247,
    "bridge_domain_add_del_v2_reply": 248,
    "bridge_domain_dump": 249,
    "bridge_domain_details": 250,
    "sw_interface_set_l2_bridge": 261,
    "sw_interface_set_l2_bridge_reply": 262,
    "ip_route_add_del": 362,
    "ip_route_add_del_reply": 364,
    "ip_route_dump": 366,
    "ip_route_details": 368,
    "ip_route_lookup": 370,
    "ip_route_lookup_reply": 372,
    "sw_interface_ip6_enable_disable": 382,
    "sw_interface_ip6_enable_disable_reply": 383,
    "ip_address_details": 392,
    "ip_address_dump": 393,
    "ip_unnumbered_details": 394,
    "ip_unnumbered_dump": 395,
    "ip_neighbor_add_del": 453,
    "ip_neighbor_add_del_reply": 454,
    "ip_neighbor_dump": 455,
    "ip_neighbor_details": 456,
    "show_version": 824,
    "show_version_reply": 825,
    "create_vhost_user_if": 830,
    "create_vhost_user_if_reply": 831,
    "modify_vhost_user_if": 832,
    "modify_vhost_user_if_reply": 833,
    "create_vhost_user_if_v2": 834,
    "create_vhost_user_if_v2_reply": 835,
    "modify_vhost_user_if_v2": 836,
    "modify_vhost_user_if_v2_reply": 837,
    "delete_vhost_user_if": 838,
    "delete_vhost_user_if_reply": 839,
    "sw_interface_vhost_user_details": 840,
    "sw_interface_vhost_user_dump": 841,
}
