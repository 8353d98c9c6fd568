"""The backend's own record of a port (PortHandle) and the one shape of vhost options."""

from __future__ import annotations

from vhostuser_vpp.backends.vpp import PortHandle
from vhostuser_vpp.config import VhostConf
from vhostuser_vpp.vpp.ops import VhostOptions


def test_every_vhost_option_is_a_config_key_with_the_same_default() -> None:
    """What lets the backend build its options from the config without naming them."""
    config = VhostConf()
    for name, default in VhostOptions._field_defaults.items():
        assert getattr(config, name) == default, name


def test_a_handle_survives_the_record_in_each_mode() -> None:
    options = VhostOptions(enable_gso=True, disable_indirect_desc=True, port_mac="02:00:00:00:00:09")
    for handle in (
        PortHandle(3, options, "l3", "loop0", True),
        PortHandle(4, options, "l2", bridge_domain=42),
        PortHandle(5, options, "none"),
    ):
        assert PortHandle.from_json(handle.to_json(), port_mac="02:00:00:00:00:09") == handle


def test_the_records_port_keeps_its_keys() -> None:
    """Records written before PortHandle, and restore reading them, use these keys."""
    doc = PortHandle(3, VhostOptions(enable_gso=True), "l3", "loop0", False).to_json()
    assert doc == {
        "sw_if_index": 3,
        "settings": {
            "enable_gso": True,
            "enable_packed": False,
            "enable_event_idx": False,
            "disable_mrg_rxbuf": False,
            "disable_indirect_desc": False,
        },
        "mode": "l3",
        "unnumbered_to": "loop0",
        "create_loopback": False,
    }
    assert PortHandle(4, mode="l2", bridge_domain=7).to_json()["bridge_domain"] == 7


def test_a_handle_missing_keys_or_of_the_wrong_types_reads_as_unknown() -> None:
    assert PortHandle.from_json({}) == PortHandle()
    odd = {"sw_if_index": "3", "mode": 1, "bridge_domain": "9", "settings": {"enable_gso": "yes"}}
    assert PortHandle.from_json(odd) == PortHandle()
