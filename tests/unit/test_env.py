"""Tests for vhostuser_vpp.cni.env: the CNI_* environment of one invocation."""

from __future__ import annotations

import pytest

from vhostuser_vpp.cni.env import (
    COMMANDS,
    MAX_CONTAINER_ID_LEN,
    kubernetes_pod,
    parse_cni_args,
    read_cmd_args,
    read_command,
    validate_container_id,
    validate_ifname,
)
from vhostuser_vpp.cni.errors import CniError

CID = "4d578250ad8d760c0722be78badb4b4b6d57fed8f95dea23aaa0065aa8657b29"
CONFIG = {"cniVersion": "1.1.0", "name": "vhostuser-network", "type": "vhostuser"}

FULL_ENV: dict[str, str] = {
    "CNI_CONTAINERID": CID,
    "CNI_NETNS": "/var/run/netns/cni-1234",
    "CNI_IFNAME": "net1",
    "CNI_PATH": "/opt/cni/bin:/usr/lib/cni",
}

# The spec's (and libcni skel's) table: which variables each command needs.
REQUIRED: dict[str, tuple[str, ...]] = {
    "ADD": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "DEL": ("CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"),
    "CHECK": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "STATUS": ("CNI_PATH",),
    "GC": ("CNI_PATH",),
}
NOT_REQUIRED = [
    (command, var) for command, needed in REQUIRED.items() for var in FULL_ENV if var not in needed
]


def env_with(command: str, **changes: str | None) -> dict[str, str]:
    env = dict(FULL_ENV, CNI_COMMAND=command)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def cni_error(command: str, env: dict[str, str]) -> CniError:
    with pytest.raises(CniError) as info:
        read_cmd_args(command, env, dict(CONFIG))
    return info.value


# --- the required-variable table ---------------------------------------------------------------


@pytest.mark.parametrize("command", sorted(REQUIRED))
def test_full_environment_is_accepted(command: str) -> None:
    args = read_cmd_args(command, env_with(command), dict(CONFIG))
    assert args.command == command
    assert args.container_id == CID
    assert args.netns == "/var/run/netns/cni-1234"
    assert args.ifname == "net1"
    assert args.path == ("/opt/cni/bin", "/usr/lib/cni")
    assert args.args == {}
    assert args.config == CONFIG
    assert args.environ["CNI_COMMAND"] == command


@pytest.mark.parametrize(
    ("command", "var"), [(cmd, var) for cmd, needed in REQUIRED.items() for var in needed]
)
@pytest.mark.parametrize("how", ["unset", "empty"])
def test_missing_required_variable(command: str, var: str, how: str) -> None:
    env = env_with(command, **{var: None if how == "unset" else ""})
    err = cni_error(command, env)
    if var == "CNI_CONTAINERID":
        assert err.code == 3
        assert err.msg == "missing containerID"
    else:
        assert err.code == 4
        assert var in err.msg


@pytest.mark.parametrize(("command", "var"), NOT_REQUIRED)
def test_variable_not_required(command: str, var: str) -> None:
    args = read_cmd_args(command, env_with(command, **{var: None}), dict(CONFIG))
    assert args.command == command
    field = {"CNI_CONTAINERID": "container_id", "CNI_NETNS": "netns", "CNI_IFNAME": "ifname"}[var]
    assert getattr(args, field) == ""


def test_del_with_empty_netns_works() -> None:
    # The runtime may call DEL after the namespace is gone: CNI_NETNS is then empty.
    args = read_cmd_args("DEL", env_with("DEL", CNI_NETNS=""), dict(CONFIG))
    assert args.netns == ""
    assert args.container_id == CID
    assert args.ifname == "net1"


@pytest.mark.parametrize("command", ["GC", "STATUS"])
def test_gc_and_status_need_no_container(command: str) -> None:
    env = {"CNI_COMMAND": command, "CNI_PATH": "/opt/cni/bin"}
    args = read_cmd_args(command, env, dict(CONFIG))
    assert (args.container_id, args.ifname, args.netns) == ("", "", "")
    assert args.path == ("/opt/cni/bin",)


def test_several_missing_variables_are_all_named() -> None:
    err = cni_error("ADD", env_with("ADD", CNI_NETNS=None, CNI_PATH=None))
    assert err.code == 4
    assert "CNI_NETNS" in err.msg
    assert "CNI_PATH" in err.msg


def test_missing_container_id_wins_over_other_missing_variables() -> None:
    err = cni_error("ADD", env_with("ADD", CNI_CONTAINERID=None, CNI_NETNS=None))
    assert err.code == 3


def test_cni_path_drops_empty_elements() -> None:
    args = read_cmd_args("ADD", env_with("ADD", CNI_PATH=":/a::/b:"), dict(CONFIG))
    assert args.path == ("/a", "/b")


# --- CNI_COMMAND -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_read_command_known(command: str) -> None:
    assert read_command({"CNI_COMMAND": command}) == command


@pytest.mark.parametrize("command", ["", "add", "Add", "DELETE", "ADD ", "UPDATE"])
def test_read_command_unknown_is_code_4(command: str) -> None:
    with pytest.raises(CniError) as info:
        read_command({"CNI_COMMAND": command})
    assert info.value.code == 4
    assert repr(command) in info.value.msg


def test_read_command_unset_is_code_4() -> None:
    with pytest.raises(CniError) as info:
        read_command({})
    assert info.value.code == 4


# --- container IDs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "container_id",
    [CID, "a", "0", "pod_1.sandbox-2", "A" * MAX_CONTAINER_ID_LEN, "a..b", "x.."],
)
def test_valid_container_ids(container_id: str) -> None:
    validate_container_id(container_id)
    args = read_cmd_args("ADD", env_with("ADD", CNI_CONTAINERID=container_id), dict(CONFIG))
    assert args.container_id == container_id


@pytest.mark.parametrize(
    "container_id",
    [
        "..",
        ".",
        ".hidden",
        "-leading-dash",
        "_leading_underscore",
        "a/b",
        "../etc",
        "/abs",
        "a\0b",
        "with space",
        "tab\there",
        "semi;colon",
        "ünïcode",
        "a" * (MAX_CONTAINER_ID_LEN + 1),
    ],
)
def test_invalid_container_ids_are_code_4(container_id: str) -> None:
    with pytest.raises(CniError) as info:
        validate_container_id(container_id)
    assert info.value.code == 4
    err = cni_error("ADD", env_with("ADD", CNI_CONTAINERID=container_id))
    assert err.code == 4


def test_over_long_container_id_names_the_limit() -> None:
    with pytest.raises(CniError) as info:
        validate_container_id("a" * 256)
    assert info.value.msg == "containerID is too long"
    assert "256" in info.value.details
    assert "255" in info.value.details


def test_empty_container_id_is_code_3() -> None:
    with pytest.raises(CniError) as info:
        validate_container_id("")
    assert info.value.code == 3


@pytest.mark.parametrize("command", ["GC", "STATUS"])
def test_container_id_is_checked_when_given_to_gc_and_status(command: str) -> None:
    err = cni_error(command, {"CNI_PATH": "/opt/cni/bin", "CNI_CONTAINERID": "../x"})
    assert err.code == 4


def test_container_id_with_trailing_newline_is_code_4() -> None:
    with pytest.raises(CniError) as info:
        validate_container_id(CID + "\n")
    assert info.value.code == 4


# --- interface names ---------------------------------------------------------------------------


@pytest.mark.parametrize("ifname", ["net1", "eth0", "a", "x" * 15, "net-1_2.3", "vhost@1"])
def test_valid_ifnames(ifname: str) -> None:
    validate_ifname(ifname)
    args = read_cmd_args("ADD", env_with("ADD", CNI_IFNAME=ifname), dict(CONFIG))
    assert args.ifname == ifname


@pytest.mark.parametrize(
    "ifname",
    [
        "",
        "x" * 16,
        ".",
        "..",
        "a/b",
        "/",
        "net:1",
        "net 1",
        " net1",
        "net1\t",
        "net\n1",
        "net1\n",
        "\u00a0net",  # no-break space is whitespace too
        "a\0b",
    ],
)
def test_invalid_ifnames_are_code_4(ifname: str) -> None:
    with pytest.raises(CniError) as info:
        validate_ifname(ifname)
    assert info.value.code == 4


@pytest.mark.parametrize("ifname", ["x" * 16, "..", "a/b", "net:1", "net 1", "a\0b"])
def test_invalid_ifname_in_environment_is_code_4(ifname: str) -> None:
    err = cni_error("ADD", env_with("ADD", CNI_IFNAME=ifname))
    assert err.code == 4


def test_over_long_ifname_names_the_limit() -> None:
    with pytest.raises(CniError) as info:
        validate_ifname("abcdefghijklmnop")
    assert info.value.msg == "interface name is too long"
    assert "16" in info.value.details
    assert "15" in info.value.details


def test_ifname_limit_counts_bytes() -> None:
    with pytest.raises(CniError) as info:
        validate_ifname("é" * 8)
    assert info.value.code == 4


# --- CNI_ARGS ----------------------------------------------------------------------------------


def test_cni_args_kubernetes_keys() -> None:
    raw = (
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=dpdk-app-0;"
        "K8S_POD_INFRA_CONTAINER_ID=" + CID + ";K8S_POD_UID=3f1b2c9e-0000-4000-8000-000000000001"
    )
    args = read_cmd_args("ADD", env_with("ADD", CNI_ARGS=raw), dict(CONFIG))
    assert args.args == {
        "IgnoreUnknown": "1",
        "K8S_POD_NAMESPACE": "default",
        "K8S_POD_NAME": "dpdk-app-0",
        "K8S_POD_INFRA_CONTAINER_ID": CID,
        "K8S_POD_UID": "3f1b2c9e-0000-4000-8000-000000000001",
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", {}),
        ("A=1", {"A": "1"}),
        ("A=1;", {"A": "1"}),
        (";A=1;;B=2", {"A": "1", "B": "2"}),
        ("A=", {"A": ""}),
        ("A=b=c", {"A": "b=c"}),
        ("FOO_UNKNOWN=x;A=1", {"FOO_UNKNOWN": "x", "A": "1"}),
        ("A=1;A=2", {"A": "2"}),
    ],
)
def test_parse_cni_args(raw: str, expected: dict[str, str]) -> None:
    assert parse_cni_args(raw) == expected


@pytest.mark.parametrize("raw", ["A", "A=1;B", "=x", "A=1;=2", "K8S_POD_NAME"])
def test_malformed_cni_args_pair_is_code_4(raw: str) -> None:
    with pytest.raises(CniError) as info:
        parse_cni_args(raw)
    assert info.value.code == 4
    err = cni_error("ADD", env_with("ADD", CNI_ARGS=raw))
    assert err.code == 4
    assert err.details in raw.split(";")


@pytest.mark.parametrize(
    ("cni_args", "pod"),
    [
        (
            {"K8S_POD_NAMESPACE": "kube-system", "K8S_POD_NAME": "dpdk-app.0", "K8S_POD_UID": "5c1a-0e3e"},
            {"namespace": "kube-system", "name": "dpdk-app.0", "uid": "5c1a-0e3e"},
        ),
        ({"K8S_POD_NAME": "p"}, {"name": "p"}),
        ({}, {}),
        # Shown on operators' terminals and as metric labels: nothing but Kubernetes' form.
        ({"K8S_POD_NAMESPACE": "Team", "K8S_POD_NAME": "a\x1b[2J", "K8S_POD_UID": "x y"}, {}),
        ({"K8S_POD_NAME": "-a", "K8S_POD_NAMESPACE": "a" * 254}, {}),
    ],
)
def test_the_pod_is_what_cni_args_name_in_kubernetes_form(
    cni_args: dict[str, str], pod: dict[str, str]
) -> None:
    assert kubernetes_pod(cni_args) == pod
