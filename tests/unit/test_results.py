"""Tests for vhostuser_vpp.cni.results: reading IPAM results and writing each result version."""

from __future__ import annotations

import copy
import ipaddress
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vhostuser_vpp.cni.errors import CniError
from vhostuser_vpp.cni.results import Interface, IPConfig, Result
from vhostuser_vpp.cni.versions import SUPPORTED_VERSIONS

LEGACY_VERSIONS = ("0.3.0", "0.3.1", "0.4.0")
V1_VERSIONS = ("1.0.0", "1.1.0")

# What host-local prints for ADD, by cniVersion (containernetworking-plugins 1.x).
HOST_LOCAL_0_3_1 = {
    "cniVersion": "0.3.1",
    "ips": [{"version": "4", "address": "10.56.217.132/24", "gateway": "10.56.217.1"}],
    "routes": [{"dst": "0.0.0.0/0"}],
    "dns": {},
}
HOST_LOCAL_0_4_0 = {
    "cniVersion": "0.4.0",
    "ips": [
        {"version": "4", "address": "10.56.217.132/24", "gateway": "10.56.217.1"},
        {"version": "6", "address": "2001:db8:1::5/64", "gateway": "2001:db8:1::1"},
    ],
    "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}],
    "dns": {},
}
HOST_LOCAL_1_0_0 = {
    "cniVersion": "1.0.0",
    "ips": [{"address": "10.56.217.132/24", "gateway": "10.56.217.1"}],
    "routes": [{"dst": "0.0.0.0/0", "gw": "10.56.217.1"}],
    "dns": {"nameservers": ["10.96.0.10"], "domain": "cluster.local"},
}


def full_result() -> Result:
    """A result with everything any version can carry."""
    return Result(
        cni_version="1.1.0",
        interfaces=[
            Interface(
                name="4d578250ad8d-net1",
                mac="02:fe:fc:89:49:d8",
                sandbox="",
                socket_path="/var/lib/cni/vhostuser/4d578250ad8d/4d578250ad8d-net1",
            ),
            Interface(name="net1", mac="e2:52:b5:7b:58:ad", sandbox="/var/run/netns/cni-1"),
        ],
        ips=[
            IPConfig(address="10.56.217.132/24", gateway="10.56.217.1", interface=1),
            IPConfig(address="2001:db8::5/64", gateway=None, interface=None),
        ],
        routes=[
            {"dst": "0.0.0.0/0", "gw": "10.56.217.1", "mtu": 1400, "priority": 10, "table": 5},
            {"dst": "10.0.0.0/8", "scope": 253},
        ],
        dns={"nameservers": ["10.96.0.10"]},
    )


# --- parsing -----------------------------------------------------------------------------------


def test_parse_host_local_0_3_1() -> None:
    result = Result.from_json(HOST_LOCAL_0_3_1, source="plugin 'host-local'")
    assert result.cni_version == "0.3.1"
    assert result.ips == [IPConfig(address="10.56.217.132/24", gateway="10.56.217.1", interface=None)]
    assert result.interfaces == []
    assert result.routes == [{"dst": "0.0.0.0/0"}]
    assert result.dns == {}
    assert result.ips[0].ip == "10.56.217.132"
    assert result.ips[0].ip_version == 4


def test_parse_host_local_0_4_0_dual_stack() -> None:
    result = Result.from_json(HOST_LOCAL_0_4_0, source="plugin 'host-local'")
    assert result.cni_version == "0.4.0"
    assert [(ip.address, ip.gateway, ip.ip_version) for ip in result.ips] == [
        ("10.56.217.132/24", "10.56.217.1", 4),
        ("2001:db8:1::5/64", "2001:db8:1::1", 6),
    ]
    assert result.routes == [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]


def test_parse_host_local_1_0_0() -> None:
    result = Result.from_json(HOST_LOCAL_1_0_0, source="plugin 'host-local'")
    assert result.cni_version == "1.0.0"
    assert result.ips == [IPConfig(address="10.56.217.132/24", gateway="10.56.217.1")]
    assert result.routes == [{"dst": "0.0.0.0/0", "gw": "10.56.217.1"}]
    assert result.dns == {"nameservers": ["10.96.0.10"], "domain": "cluster.local"}


def test_parse_1_1_0_interfaces_and_index() -> None:
    doc = {
        "cniVersion": "1.1.0",
        "interfaces": [
            {"name": "vhu", "mac": "02:00:00:00:00:01", "socketPath": "/run/x/sock", "pciID": "0000:00:01.0"},
            {"name": "net1", "sandbox": "/var/run/netns/a"},
        ],
        "ips": [{"address": "10.1.0.2/24", "interface": 1}, {"address": "10.1.0.3/24", "interface": 0}],
    }
    result = Result.from_json(doc, source="x")
    assert result.interfaces == [
        Interface(name="vhu", mac="02:00:00:00:00:01", socket_path="/run/x/sock"),
        Interface(name="net1", sandbox="/var/run/netns/a"),
    ]
    assert [ip.interface for ip in result.ips] == [1, 0]


def test_parse_normalises_addresses() -> None:
    doc = {"cniVersion": "1.0.0", "ips": [{"address": "2001:DB8:0:0::5/64", "gateway": "2001:DB8::1"}]}
    result = Result.from_json(doc, source="x")
    assert result.ips[0].address == "2001:db8::5/64"
    assert result.ips[0].gateway == "2001:db8::1"


def test_parse_does_not_modify_its_input() -> None:
    doc = copy.deepcopy(HOST_LOCAL_0_4_0)
    Result.from_json(doc, source="x")
    assert doc == HOST_LOCAL_0_4_0


def test_empty_gateway_means_none() -> None:
    result = Result.from_json({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.1/8", "gateway": ""}]}, "x")
    assert result.ips[0].gateway is None


def test_null_lists_and_dns_are_empty() -> None:
    doc = {"cniVersion": "1.0.0", "ips": None, "interfaces": None, "routes": None, "dns": None}
    result = Result.from_json(doc, source="x")
    assert (result.ips, result.interfaces, result.routes, result.dns) == ([], [], [], {})


BAD_RESULTS: list[tuple[str, Any]] = [
    ("not an object", ["cniVersion", "1.0.0"]),
    ("a string", "1.0.0"),
    ("no cniVersion", {"ips": [{"address": "10.0.0.1/24"}]}),
    ("cniVersion not semver", {"cniVersion": "1.0"}),
    ("cniVersion a number", {"cniVersion": 1}),
    ("ips not a list", {"cniVersion": "1.0.0", "ips": {"address": "10.0.0.1/24"}}),
    ("ip not an object", {"cniVersion": "1.0.0", "ips": ["10.0.0.1/24"]}),
    ("ip without address", {"cniVersion": "1.0.0", "ips": [{"gateway": "10.0.0.1"}]}),
    ("address garbage", {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.300/24"}]}),
    ("address a number", {"cniVersion": "1.0.0", "ips": [{"address": 167772161}]}),
    ("gateway garbage", {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.1/24", "gateway": "x"}]}),
    (
        "gateway with prefix",
        {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.1/24", "gateway": "10.0.0.1/24"}]},
    ),
    ("interface a string", {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.1/24", "interface": "0"}]}),
    ("interface a bool", {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.1/24", "interface": True}]}),
    ("interface a float", {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.1/24", "interface": 0.5}]}),
    ("interfaces not a list", {"cniVersion": "1.0.0", "interfaces": "net1"}),
    ("interface without name", {"cniVersion": "1.0.0", "interfaces": [{"mac": "02:00:00:00:00:01"}]}),
    ("interface name a number", {"cniVersion": "1.0.0", "interfaces": [{"name": 1}]}),
    ("interface mac null", {"cniVersion": "1.0.0", "interfaces": [{"name": "a", "mac": None}]}),
    ("socketPath a list", {"cniVersion": "1.1.0", "interfaces": [{"name": "a", "socketPath": []}]}),
    ("route not an object", {"cniVersion": "1.0.0", "routes": ["0.0.0.0/0"]}),
    ("routes not a list", {"cniVersion": "1.0.0", "routes": {"dst": "0.0.0.0/0"}}),
    ("dns not an object", {"cniVersion": "1.0.0", "dns": "10.96.0.10"}),
]


@pytest.mark.parametrize(("why", "doc"), BAD_RESULTS, ids=[why for why, _ in BAD_RESULTS])
def test_undecodable_result_is_code_6_naming_the_source(why: str, doc: Any) -> None:
    with pytest.raises(CniError) as info:
        Result.from_json(doc, source="plugin 'host-local'")
    assert info.value.code == 6, why
    assert info.value.msg == "cannot decode the result of plugin 'host-local'"
    assert info.value.details != ""


# --- writing each version ----------------------------------------------------------------------


@pytest.mark.parametrize("version", LEGACY_VERSIONS)
def test_to_json_legacy(version: str) -> None:
    doc = full_result().to_json(version)
    assert doc == {
        "cniVersion": version,
        "interfaces": [
            {"name": "4d578250ad8d-net1", "mac": "02:fe:fc:89:49:d8"},
            {"name": "net1", "mac": "e2:52:b5:7b:58:ad", "sandbox": "/var/run/netns/cni-1"},
        ],
        "ips": [
            {"version": "4", "address": "10.56.217.132/24", "gateway": "10.56.217.1", "interface": 1},
            {"version": "6", "address": "2001:db8::5/64"},
        ],
        "routes": [{"dst": "0.0.0.0/0", "gw": "10.56.217.1"}, {"dst": "10.0.0.0/8"}],
        "dns": {"nameservers": ["10.96.0.10"]},
    }


def test_to_json_1_0_0() -> None:
    doc = full_result().to_json("1.0.0")
    assert doc == {
        "cniVersion": "1.0.0",
        "interfaces": [
            {"name": "4d578250ad8d-net1", "mac": "02:fe:fc:89:49:d8"},
            {"name": "net1", "mac": "e2:52:b5:7b:58:ad", "sandbox": "/var/run/netns/cni-1"},
        ],
        "ips": [
            {"address": "10.56.217.132/24", "gateway": "10.56.217.1", "interface": 1},
            {"address": "2001:db8::5/64"},
        ],
        "routes": [{"dst": "0.0.0.0/0", "gw": "10.56.217.1"}, {"dst": "10.0.0.0/8"}],
        "dns": {"nameservers": ["10.96.0.10"]},
    }


def test_to_json_1_1_0() -> None:
    doc = full_result().to_json("1.1.0")
    assert doc == {
        "cniVersion": "1.1.0",
        "interfaces": [
            {
                "name": "4d578250ad8d-net1",
                "mac": "02:fe:fc:89:49:d8",
                "socketPath": "/var/lib/cni/vhostuser/4d578250ad8d/4d578250ad8d-net1",
            },
            {"name": "net1", "mac": "e2:52:b5:7b:58:ad", "sandbox": "/var/run/netns/cni-1"},
        ],
        "ips": [
            {"address": "10.56.217.132/24", "gateway": "10.56.217.1", "interface": 1},
            {"address": "2001:db8::5/64"},
        ],
        "routes": [
            {"dst": "0.0.0.0/0", "gw": "10.56.217.1", "mtu": 1400, "priority": 10, "table": 5},
            {"dst": "10.0.0.0/8", "scope": 253},
        ],
        "dns": {"nameservers": ["10.96.0.10"]},
    }


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_to_json_interface_index_zero_is_kept(version: str) -> None:
    result = Result(cni_version="1.1.0", ips=[IPConfig(address="10.0.0.2/24", interface=0)])
    assert result.to_json(version)["ips"][0]["interface"] == 0


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_to_json_empty_result_has_only_the_version(version: str) -> None:
    assert Result(cni_version="1.1.0").to_json(version) == {"cniVersion": version}


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_to_json_does_not_change_the_result(version: str) -> None:
    result = full_result()
    before = copy.deepcopy(result)
    doc = result.to_json(version)
    json.dumps(doc)  # must be serialisable as is
    assert result == before


def test_host_local_0_4_0_converted_to_1_1_0_and_back() -> None:
    result = Result.from_json(HOST_LOCAL_0_4_0, source="x")
    assert result.to_json("1.1.0") == {
        "cniVersion": "1.1.0",
        "ips": [
            {"address": "10.56.217.132/24", "gateway": "10.56.217.1"},
            {"address": "2001:db8:1::5/64", "gateway": "2001:db8:1::1"},
        ],
        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}],
    }
    assert result.to_json("0.4.0") == {k: v for k, v in HOST_LOCAL_0_4_0.items() if k != "dns"}


def test_host_local_1_0_0_converted_to_0_3_1() -> None:
    result = Result.from_json(HOST_LOCAL_1_0_0, source="x")
    assert result.to_json("0.3.1") == {
        "cniVersion": "0.3.1",
        "ips": [{"version": "4", "address": "10.56.217.132/24", "gateway": "10.56.217.1"}],
        "routes": [{"dst": "0.0.0.0/0", "gw": "10.56.217.1"}],
        "dns": {"nameservers": ["10.96.0.10"], "domain": "cluster.local"},
    }


# --- round trip --------------------------------------------------------------------------------

_ipv4 = st.builds(
    lambda addr, prefix: str(ipaddress.ip_interface((addr, prefix))),
    st.ip_addresses(v=4),
    st.integers(0, 32),
)
_ipv6 = st.builds(
    lambda addr, prefix: str(ipaddress.ip_interface((addr, prefix))),
    st.ip_addresses(v=6),
    st.integers(0, 128),
)
_gateway = st.none() | st.ip_addresses().map(str)
_ip_configs = st.builds(
    IPConfig,
    address=_ipv4 | _ipv6,
    gateway=_gateway,
    interface=st.none() | st.integers(0, 1000),
)
_interfaces = st.builds(
    Interface,
    name=st.text(min_size=1, max_size=20),
    mac=st.sampled_from(["", "02:fe:fc:89:49:d8", "e2:52:b5:7b:58:ad"]),
    sandbox=st.sampled_from(["", "/var/run/netns/cni-1"]),
    socket_path=st.sampled_from(["", "/var/lib/cni/vhostuser/x/x-net1"]),
)
_results = st.builds(
    Result,
    cni_version=st.sampled_from(SUPPORTED_VERSIONS),
    interfaces=st.lists(_interfaces, max_size=3),
    ips=st.lists(_ip_configs, max_size=4),
    routes=st.lists(
        st.fixed_dictionaries(
            {"dst": st.sampled_from(["0.0.0.0/0", "::/0"])}, optional={"gw": st.ip_addresses().map(str)}
        ),
        max_size=2,
    ),
    dns=st.just({}) | st.just({"nameservers": ["10.96.0.10"], "domain": "cluster.local"}),
)


@given(result=_results, version=st.sampled_from(SUPPORTED_VERSIONS))
def test_round_trip_through_every_version(result: Result, version: str) -> None:
    wire = json.loads(json.dumps(result.to_json(version)))
    assert wire["cniVersion"] == version
    for ip in wire.get("ips", []):
        assert ("version" in ip) == (version in LEGACY_VERSIONS)
    back = Result.from_json(wire, source="round trip")
    assert back.cni_version == version
    assert back.ips == result.ips
    keeps_socket = version == "1.1.0"
    expected_interfaces = [
        Interface(itf.name, itf.mac, itf.sandbox, itf.socket_path if keeps_socket else "")
        for itf in result.interfaces
    ]
    assert back.interfaces == expected_interfaces


def test_a_chained_result_extends_the_previous_plugins() -> None:
    prev = Result.from_json(
        {
            "cniVersion": "1.0.0",
            "interfaces": [{"name": "cni0"}, {"name": "eth0", "sandbox": "/var/run/netns/pod"}],
            "ips": [{"address": "10.88.0.5/16", "gateway": "10.88.0.1", "interface": 1}],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dns": {"nameservers": ["10.96.0.10"]},
        },
        source="prevResult",
    )
    ours = Result(
        cni_version="1.0.0",
        interfaces=[Interface(name="net1", mac="02:00:00:00:00:01")],
        ips=[IPConfig("10.56.217.131/24", "10.56.217.1", 0), IPConfig("fd00::83/64", None, 0)],
        routes=[{"dst": "10.56.0.0/16"}],
    )
    chained = ours.after(prev).to_json("1.0.0")
    assert [i["name"] for i in chained["interfaces"]] == ["cni0", "eth0", "net1"]
    assert [(ip["address"], ip["interface"]) for ip in chained["ips"]] == [
        ("10.88.0.5/16", 1),
        ("10.56.217.131/24", 2),
        ("fd00::83/64", 2),
    ]
    assert chained["routes"] == [{"dst": "0.0.0.0/0"}, {"dst": "10.56.0.0/16"}]
    assert chained["dns"] == {"nameservers": ["10.96.0.10"]}
