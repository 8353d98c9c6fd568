"""Tests for vhostuser_vpp.config: the network config on stdin.

Bad configs are data: `cases/bad-config-*.json`, each holding the config and
what parse_netconf must raise (`expect`).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.samples import readme_sample
from vhostuser_vpp import config as config_module
from vhostuser_vpp.cni.errors import CniError
from vhostuser_vpp.config import IpamConf, NetConf, VhostConf, parse_netconf
from vhostuser_vpp.defaults import DEFAULT_API_SOCKET, DEFAULT_CNI_DIR

CASES = sorted((Path(__file__).parent / "cases").glob("bad-config-*.json"))

# The original plugin's README sample, verbatim; it never had a cniVersion.
README_SAMPLE: dict[str, Any] = readme_sample()


def minimal(**extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "cniVersion": "1.1.0",
        "name": "vhostuser-network",
        "type": "vhostuser",
        "ipam": {"type": "host-local"},
    }
    doc.update(extra)
    return doc


def _case_params() -> list[Any]:
    params = []
    for path in CASES:
        case = json.loads(path.read_text())
        params.append(pytest.param(case, id=path.stem.removeprefix("bad-config-")))
    return params


def test_there_are_bad_config_cases() -> None:
    assert len(CASES) >= 20


@pytest.mark.parametrize("case", _case_params())
def test_bad_config(case: dict[str, Any]) -> None:
    expect = case["expect"]
    config = case["config"]
    before = copy.deepcopy(config)
    with pytest.raises(CniError) as info:
        parse_netconf(config)
    err = info.value
    assert err.code == expect["code"]
    assert re.search(expect["msg_re"], err.msg), err.msg
    assert re.search(expect["details_re"], err.details), err.details
    assert config == before


# --- good configs ------------------------------------------------------------------------------


def test_readme_sample_parses_with_defaults() -> None:
    conf = parse_netconf(dict(README_SAMPLE, cniVersion="0.3.0"))
    assert conf.cni_version == "0.3.0"
    assert conf.name == "vhostuser-network"
    assert conf.type == "vhostuser"
    assert conf.if0name == "net0"
    assert conf.vhost.vhost_tool == "/path/to/vhost-user-net-plugin/tests/vpp-config.py"
    assert conf.vhost.backend == "auto"
    assert conf.vhost.api_socket == "/run/vpp/api.sock" == DEFAULT_API_SOCKET
    assert (conf.vhost.connect_timeout, conf.vhost.call_timeout, conf.vhost.tool_timeout) == (5.0, 10.0, 30.0)
    assert conf.cni_dir == "/var/lib/cni/vhostuser" == DEFAULT_CNI_DIR
    assert conf.log_file is None
    assert conf.log_level == "info"
    assert conf.runtime_config.mac is None
    assert conf.runtime_config.device_info_file is None
    assert conf.prev_result is None
    assert conf.ipam.type == "host-local"
    # The rest of ipam belongs to the IPAM plugin, which is handed the config as it came.
    assert conf.ipam == IpamConf(type="host-local")


def test_readme_multus_delegate_parses() -> None:
    delegate = copy.deepcopy(README_SAMPLE)
    delegate["if0name"] = "net1"
    conf = parse_netconf(dict(delegate, cniVersion="0.3.1"))
    assert conf.if0name == "net1"


def test_minimal_config_has_defaults() -> None:
    conf = parse_netconf(minimal())
    assert conf.vhost.vhost_tool is None
    assert conf.vhost.backend == "auto"
    assert conf.vhost.api_socket == "/run/vpp/api.sock"
    assert conf.cni_dir == "/var/lib/cni/vhostuser"
    assert conf.if0name is None


def test_every_field_set() -> None:
    conf = parse_netconf(
        minimal(
            cniDir="/var/lib/cni/vhostuser-b/",
            logFile="/var/log/vhostuser-vpp/plugin.log",
            logLevel="debug",
            vhost={
                "backend": "vpp",
                "api_socket": "/run/vpp/api-b.sock",
                "connect_timeout": 2,
                "call_timeout": 2.5,
                "tool_timeout": 600,
            },
            runtimeConfig={
                "mac": "02:AB:cd:00:00:01",
                "CNIDeviceInfoFile": "/run/k8s.cni.cncf.io/devinfo/cni/x.json",
                "portMappings": [],
            },
            prevResult={"cniVersion": "1.1.0", "ips": []},
        )
    )
    assert conf.cni_dir == "/var/lib/cni/vhostuser-b"
    assert conf.log_file == "/var/log/vhostuser-vpp/plugin.log"
    assert conf.log_level == "debug"
    assert conf.vhost.backend == "vpp"
    assert conf.vhost.api_socket == "/run/vpp/api-b.sock"
    assert conf.vhost.connect_timeout == 2.0
    assert conf.vhost.call_timeout == 2.5
    assert conf.vhost.tool_timeout == 600.0
    assert conf.runtime_config.mac == "02:ab:cd:00:00:01"
    assert conf.runtime_config.device_info_file == "/run/k8s.cni.cncf.io/devinfo/cni/x.json"
    assert conf.prev_result == {"cniVersion": "1.1.0", "ips": []}


@pytest.mark.parametrize("backend", ["auto", "vpp", "tool"])
def test_backends(backend: str) -> None:
    assert parse_netconf(minimal(vhost={"backend": backend})).vhost.backend == backend


@pytest.mark.parametrize(("given", "stored"), [("/", "/"), ("//", "/"), ("/var/lib/x///", "/var/lib/x")])
def test_cni_dir_trailing_slashes(given: str, stored: str) -> None:
    assert parse_netconf(minimal(cniDir=given)).cni_dir == stored


def test_unknown_top_level_keys_are_ignored() -> None:
    conf = parse_netconf(
        minimal(
            capabilities={"portMappings": True},
            args={"cni": {"x": 1}},
            dns={"nameservers": ["10.96.0.10"]},
            isDefaultGateway=True,
            masterplugin=True,
            somethingNew=[1, 2, 3],
        )
    )
    assert conf.name == "vhostuser-network"
    assert "somethingNew" not in conf._asdict()


def test_unknown_runtime_config_keys_are_ignored() -> None:
    conf = parse_netconf(minimal(runtimeConfig={"portMappings": [{"hostPort": 80}], "bandwidth": {}}))
    assert conf.runtime_config.mac is None


def test_python_attribute_names_are_not_config_keys() -> None:
    conf = parse_netconf(minimal(cni_dir="/tmp/elsewhere", log_file="/tmp/x.log"))
    assert conf.cni_dir == DEFAULT_CNI_DIR
    assert conf.log_file is None


def test_parse_returns_an_immutable_config() -> None:
    conf = parse_netconf(minimal())
    assert isinstance(conf, NetConf)
    with pytest.raises(AttributeError):
        conf.name = "other"  # type: ignore[misc]


def test_mac_is_lowercased_and_unicast_checked_on_the_first_octet() -> None:
    assert parse_netconf(minimal(runtimeConfig={"mac": "FE:00:00:00:00:01"})).runtime_config.mac == (
        "fe:00:00:00:00:01"
    )
    with pytest.raises(CniError) as info:
        parse_netconf(minimal(runtimeConfig={"mac": "03:00:00:00:00:00"}))
    assert "runtimeConfig.mac" in info.value.details


def test_section_defaults_are_those_of_an_empty_vhost_object() -> None:
    assert parse_netconf(minimal(vhost={})).vhost == VhostConf()
    assert parse_netconf(minimal()).vhost == VhostConf()


def test_a_field_without_a_schema_fails_at_import() -> None:
    class Section(NamedTuple):
        known: str = ""
        forgotten: str = ""

    with pytest.raises(TypeError, match="forgotten"):
        config_module._section(Section, {"known": config_module._STR}, extra="forbid")
