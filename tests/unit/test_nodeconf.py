"""Tests for vhostuser_vpp.nodeconf: the node's policy on paths the plugin may use."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from vhostuser_vpp.cni.errors import CniError
from vhostuser_vpp.nodeconf import (
    DEFAULT_DEVICE_INFO_DIRS,
    DEFAULT_LOG_DIR,
    PATH_ENV,
    NodePolicy,
    load_policy,
)


@pytest.fixture
def base(tmp_path: Path) -> Path:
    # Resolved, so that the checks against symlinks only see the ones a test makes.
    return tmp_path.resolve()


def write_policy(path: Path, doc: Any, mode: int = 0o644) -> dict[str, str]:
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    path.chmod(mode)
    return {PATH_ENV: str(path)}


def code_of(exc: pytest.ExceptionInfo[CniError]) -> int:
    return exc.value.code


# --- load_policy -------------------------------------------------------------------------------


def test_missing_file_means_defaults_with_no_tools(base: Path) -> None:
    policy = load_policy({PATH_ENV: str(base / "absent.json")})
    assert policy == NodePolicy()
    assert policy.allowed_vhost_tools == ()
    assert policy.allowed_cni_dirs == ("/var/lib/cni/vhostuser",)
    assert policy.allowed_log_dirs == (DEFAULT_LOG_DIR,)
    assert policy.allowed_device_info_dirs == DEFAULT_DEVICE_INFO_DIRS
    assert policy.source == "built-in defaults"


def test_full_policy_is_read(base: Path) -> None:
    env = write_policy(
        base / "policy.json",
        {
            "allowed_cni_dirs": ["/var/lib/cni/vhostuser/", "/srv/cni"],
            "allowed_vhost_tools": ["/usr/local/bin/vpp-config.py"],
            "allowed_log_dirs": ["/var/log/x"],
            "allowed_device_info_dirs": ["/run/devinfo"],
        },
    )
    policy = load_policy(env)
    assert policy.allowed_cni_dirs == ("/var/lib/cni/vhostuser", "/srv/cni")
    assert policy.allowed_vhost_tools == ("/usr/local/bin/vpp-config.py",)
    assert policy.allowed_log_dirs == ("/var/log/x",)
    assert policy.allowed_device_info_dirs == ("/run/devinfo",)
    assert policy.source == str(base / "policy.json")


def test_keys_left_out_keep_their_defaults(base: Path) -> None:
    policy = load_policy(write_policy(base / "p.json", {"allowed_vhost_tools": ["/opt/tool"]}))
    assert policy.allowed_vhost_tools == ("/opt/tool",)
    assert policy.allowed_cni_dirs == NodePolicy().allowed_cni_dirs
    assert policy.allowed_device_info_dirs == DEFAULT_DEVICE_INFO_DIRS


def test_null_value_keeps_the_default(base: Path) -> None:
    policy = load_policy(write_policy(base / "p.json", {"allowed_cni_dirs": None}))
    assert policy.allowed_cni_dirs == ("/var/lib/cni/vhostuser",)


def test_empty_object_is_defaults_from_that_file(base: Path) -> None:
    policy = load_policy(write_policy(base / "p.json", {}))
    assert policy.allowed_vhost_tools == ()
    assert policy.source == str(base / "p.json")


@pytest.mark.parametrize("mode", [0o664, 0o646, 0o666, 0o660, 0o602])
def test_group_or_world_writable_file_is_code_7(base: Path, mode: int) -> None:
    env = write_policy(base / "p.json", {"allowed_vhost_tools": ["/tmp/evil"]}, mode=mode)
    with pytest.raises(CniError) as info:
        load_policy(env)
    assert code_of(info) == 7
    assert "changed by other users" in info.value.msg
    assert str(base / "p.json") in info.value.details


@pytest.mark.parametrize("mode", [0o644, 0o600, 0o444, 0o640])
def test_private_file_modes_are_fine(base: Path, mode: int) -> None:
    policy = load_policy(write_policy(base / "p.json", {"allowed_vhost_tools": ["/opt/t"]}, mode=mode))
    assert policy.allowed_vhost_tools == ("/opt/t",)


@pytest.mark.parametrize(
    ("doc", "details"),
    [
        ({"allowed_cni_dir": ["/x"]}, "unknown keys ['allowed_cni_dir']"),
        ({"allowed_vhost_tools": [], "extra": 1}, "unknown keys ['extra']"),
        ({"allowed_cni_dirs": ["var/lib/cni"]}, "allowed_cni_dirs must be a list of absolute paths"),
        ({"allowed_vhost_tools": ["./tool"]}, "allowed_vhost_tools must be a list of absolute paths"),
        ({"allowed_log_dirs": ["/ok", "rel"]}, "allowed_log_dirs must be a list of absolute paths"),
        ({"allowed_device_info_dirs": [""]}, "allowed_device_info_dirs must be a list of absolute paths"),
        ({"allowed_cni_dirs": "/var/lib/cni"}, "allowed_cni_dirs must be a list"),
        ({"allowed_cni_dirs": [1]}, "allowed_cni_dirs must be a list"),
        ({"allowed_bridge_domains": ["10"]}, "allowed_bridge_domains must be a list of bridge domain IDs"),
        ({"allowed_bridge_domains": [0]}, "allowed_bridge_domains must be a list of bridge domain IDs"),
        ({"allowed_bridge_domains": [True]}, "allowed_bridge_domains must be a list of bridge domain IDs"),
        (
            {"allowed_unnumbered_interfaces": ["/loop0"]},
            "allowed_unnumbered_interfaces must be a list of names",
        ),
        ({"agent_socket": "run/cni.sock"}, "agent_socket must be an absolute path"),
        ({"agent_socket": 5}, "agent_socket must be an absolute path"),
        ([], "not a JSON object"),
        ("{", ""),
        ("", ""),
    ],
)
def test_invalid_policy_is_code_7(base: Path, doc: Any, details: str) -> None:
    with pytest.raises(CniError) as info:
        load_policy(write_policy(base / "p.json", doc))
    assert code_of(info) == 7
    assert info.value.msg == "invalid node config"
    assert info.value.details.startswith(str(base / "p.json"))
    assert details in info.value.details


def test_the_agent_socket_is_a_path_or_none(base: Path) -> None:
    assert NodePolicy().agent_socket == "/run/vhostuser-vpp/cni.sock"
    assert load_policy(write_policy(base / "p.json", {"agent_socket": ""})).agent_socket == ""
    assert (
        load_policy(write_policy(base / "p.json", {"agent_socket": "/x/c.sock"})).agent_socket == "/x/c.sock"
    )


def test_unreadable_policy_is_code_5(base: Path) -> None:
    # A path through a regular file: ENOTDIR, not "missing".
    (base / "file").write_text("")
    with pytest.raises(CniError) as info:
        load_policy({PATH_ENV: str(base / "file" / "policy.json")})
    assert code_of(info) == 5


def test_policy_path_that_is_a_directory_is_a_cni_error(base: Path) -> None:
    (base / "dir").mkdir(mode=0o755)
    with pytest.raises(CniError) as info:
        load_policy({PATH_ENV: str(base / "dir")})
    assert code_of(info) in (5, 7)


# --- check_cni_dir -----------------------------------------------------------------------------


def test_cni_dir_inside_allowed_is_fine(base: Path) -> None:
    allowed = base / "cni"
    allowed.mkdir(mode=0o755)
    (allowed / "sub").mkdir(mode=0o755)
    policy = NodePolicy(allowed_cni_dirs=(str(allowed),))
    policy.check_cni_dir(str(allowed))
    policy.check_cni_dir(str(allowed / "sub"))
    # Not there yet is fine: ADD creates it.
    policy.check_cni_dir(str(allowed / "not-yet"))


@pytest.mark.parametrize("outside", ["cni-evil", "other", "cn", ""])
def test_cni_dir_outside_allowed_is_code_7(base: Path, outside: str) -> None:
    policy = NodePolicy(allowed_cni_dirs=(str(base / "cni"),), source="/etc/cni/vhostuser-vpp.json")
    with pytest.raises(CniError) as info:
        policy.check_cni_dir(str(base / outside) if outside else "/")
    assert code_of(info) == 7
    assert info.value.msg == "cniDir is not allowed on this node"
    assert "/etc/cni/vhostuser-vpp.json" in info.value.details


def test_default_policy_allows_only_the_default_cni_dir() -> None:
    policy = NodePolicy()
    with pytest.raises(CniError) as info:
        policy.check_cni_dir("/var/lib/cni/vhostuser-other")
    assert code_of(info) == 7


def test_cni_dir_that_is_a_symlink_is_code_7(base: Path) -> None:
    real = base / "real"
    real.mkdir(mode=0o755)
    allowed = base / "cni"
    allowed.mkdir(mode=0o755)
    (allowed / "link").symlink_to(real)
    policy = NodePolicy(allowed_cni_dirs=(str(allowed),))
    with pytest.raises(CniError) as info:
        policy.check_cni_dir(str(allowed / "link"))
    assert code_of(info) == 7
    assert "symlink" in info.value.msg


def test_cni_dir_behind_a_symlink_is_code_7(base: Path) -> None:
    real = base / "real"
    (real / "vhostuser").mkdir(parents=True, mode=0o755)
    link = base / "link"
    link.symlink_to(real)
    policy = NodePolicy(allowed_cni_dirs=(str(link),))
    with pytest.raises(CniError) as info:
        policy.check_cni_dir(str(link / "vhostuser"))
    assert code_of(info) == 7
    assert "symlink" in info.value.msg


def test_a_symlink_anywhere_below_the_allowed_dir_is_code_7(base: Path) -> None:
    allowed = base / "cni"
    allowed.mkdir(mode=0o755)
    (base / "victim").mkdir(mode=0o755)
    (allowed / "link").symlink_to(base / "victim")
    policy = NodePolicy(allowed_cni_dirs=(str(allowed),))
    for cni_dir in (allowed / "link" / "not-yet", allowed / "link" / "a" / "b"):
        with pytest.raises(CniError) as info:
            policy.check_cni_dir(str(cni_dir))
        assert "symlink" in info.value.msg and str(allowed / "link") in info.value.details


def test_a_cni_dir_inside_another_cni_dirs_pod_directories_is_code_7(base: Path) -> None:
    allowed = base / "cni"
    (allowed / "tenant-a" / ".locks").mkdir(parents=True, mode=0o755)
    (allowed / "tenant-a" / "pod1").mkdir(mode=0o755)
    (allowed / "tenant-b").mkdir(mode=0o755)
    policy = NodePolicy(allowed_cni_dirs=(str(allowed),))
    policy.check_cni_dir(str(allowed / "tenant-a"))
    policy.check_cni_dir(str(allowed / "tenant-b" / "new"))
    for inside in (
        allowed / "tenant-a" / "pod1",
        allowed / "tenant-a" / "pod1" / "x",
        allowed / "tenant-a" / "new",
    ):
        with pytest.raises(CniError) as info:
            policy.check_cni_dir(str(inside))
        assert info.value.msg == "cniDir must not lie inside another cniDir's pod directories"
    with pytest.raises(CniError):
        policy.check_cni_dir(f"{allowed}/tenant-b/./x")


def test_vpp_objects_allowed_by_default_and_by_the_file(base: Path) -> None:
    default = NodePolicy()
    default.check_unnumbered_to("loop0")
    with pytest.raises(CniError) as info:
        default.check_unnumbered_to("uplink")
    assert code_of(info) == 7
    with pytest.raises(CniError) as info:
        default.check_bridge_domain(10)
    assert code_of(info) == 7
    doc = {"allowed_bridge_domains": [10, 20], "allowed_unnumbered_interfaces": ["loop5"]}
    policy = load_policy(write_policy(base / "p.json", doc))
    policy.check_bridge_domain(20)
    policy.check_unnumbered_to("loop5")
    with pytest.raises(CniError):
        policy.check_unnumbered_to("loop0")


def test_a_log_file_through_a_symlink_out_of_the_allowed_dir_is_code_7(base: Path) -> None:
    logs = base / "log"
    logs.mkdir()
    (base / "elsewhere").mkdir()
    (logs / "sub").symlink_to(base / "elsewhere")
    with pytest.raises(CniError) as info:
        NodePolicy(allowed_log_dirs=(str(logs),)).check_log_file(str(logs / "sub" / "plugin.log"))
    assert "leads to" in info.value.details


def test_dangling_symlink_as_cni_dir_is_code_7(base: Path) -> None:
    allowed = base / "cni"
    allowed.mkdir(mode=0o755)
    (allowed / "dangling").symlink_to(base / "nowhere")
    with pytest.raises(CniError) as info:
        NodePolicy(allowed_cni_dirs=(str(allowed),)).check_cni_dir(str(allowed / "dangling"))
    assert code_of(info) == 7


def test_world_writable_cni_dir_is_code_7(base: Path) -> None:
    allowed = base / "cni"
    allowed.mkdir()
    allowed.chmod(0o777)
    with pytest.raises(CniError) as info:
        NodePolicy(allowed_cni_dirs=(str(allowed),)).check_cni_dir(str(allowed))
    assert code_of(info) == 7
    assert "writable by others" in info.value.msg


def test_cni_dir_that_is_a_file_is_code_7(base: Path) -> None:
    allowed = base / "cni"
    allowed.write_text("")
    with pytest.raises(CniError) as info:
        NodePolicy(allowed_cni_dirs=(str(allowed),)).check_cni_dir(str(allowed))
    assert code_of(info) == 7
    assert "not a directory" in info.value.msg


def test_cni_dir_escaping_with_dotdot_is_code_7(base: Path) -> None:
    allowed = base / "cni"
    allowed.mkdir(mode=0o755)
    (base / "victim").mkdir(mode=0o755)
    with pytest.raises(CniError) as info:
        NodePolicy(allowed_cni_dirs=(str(allowed),)).check_cni_dir(f"{allowed}/../victim")
    assert code_of(info) == 7


def test_root_as_allowed_dir_allows_everything_under_it() -> None:
    NodePolicy(allowed_log_dirs=("/",)).check_log_file("/var/log/vhostuser-vpp/plugin.log")


# --- check_api_socket --------------------------------------------------------------------------


def test_default_api_socket_is_allowed_by_default() -> None:
    NodePolicy().check_api_socket("/run/vpp/api.sock")


@pytest.mark.parametrize("path", ["/run/vpp/api.sock/", "/run/vpp/other.sock", "/tmp/api.sock"])
def test_other_api_sockets_are_code_7(path: str) -> None:
    with pytest.raises(CniError) as info:
        NodePolicy().check_api_socket(path)
    assert code_of(info) == 7
    assert info.value.msg == "vhost.api_socket is not allowed on this node"


def test_api_sockets_from_the_policy_file(base: Path) -> None:
    policy = load_policy(write_policy(base / "p.json", {"allowed_api_sockets": ["/run/vpp-b/api.sock"]}))
    policy.check_api_socket("/run/vpp-b/api.sock")
    with pytest.raises(CniError):
        policy.check_api_socket("/run/vpp/api.sock")


# --- check_vhost_tool --------------------------------------------------------------------------


def make_tool(path: Path, mode: int) -> str:
    path.write_text("#!/bin/sh\necho VirtualEthernet0/0/0\n")
    path.chmod(mode)
    return str(path)


def test_listed_root_owned_0755_tool_is_fine(base: Path) -> None:
    tool = make_tool(base / "vpp-config.py", 0o755)
    assert os.stat(tool).st_uid in (0, os.geteuid())
    NodePolicy(allowed_vhost_tools=(tool,)).check_vhost_tool(tool)


def test_unlisted_tool_is_code_7(base: Path) -> None:
    tool = make_tool(base / "vpp-config.py", 0o755)
    other = make_tool(base / "other.py", 0o755)
    with pytest.raises(CniError) as info:
        NodePolicy(allowed_vhost_tools=(other,), source="/etc/p.json").check_vhost_tool(tool)
    assert code_of(info) == 7
    assert info.value.msg == "vhost.vhost_tool is not allowed on this node"
    assert "/etc/p.json" in info.value.details


def test_default_policy_allows_no_tool(base: Path) -> None:
    tool = make_tool(base / "vpp-config.py", 0o755)
    with pytest.raises(CniError) as info:
        NodePolicy().check_vhost_tool(tool)
    assert code_of(info) == 7


def test_listed_tool_is_matched_exactly(base: Path) -> None:
    tool = make_tool(base / "vpp-config.py", 0o755)
    policy = NodePolicy(allowed_vhost_tools=(tool,))
    with pytest.raises(CniError) as info:
        policy.check_vhost_tool(f"{base}//vpp-config.py")
    assert code_of(info) == 7


@pytest.mark.parametrize("mode", [0o775, 0o757, 0o777, 0o2775])
def test_listed_but_writable_by_others_is_code_7(base: Path, mode: int) -> None:
    tool = make_tool(base / "vpp-config.py", mode)
    with pytest.raises(CniError) as info:
        NodePolicy(allowed_vhost_tools=(tool,)).check_vhost_tool(tool)
    assert code_of(info) == 7
    assert "changed by other users" in info.value.msg


def test_listed_but_not_executable_is_code_7(base: Path) -> None:
    tool = make_tool(base / "vpp-config.py", 0o644)
    with pytest.raises(CniError) as info:
        NodePolicy(allowed_vhost_tools=(tool,)).check_vhost_tool(tool)
    assert code_of(info) == 7
    assert "not an executable file" in info.value.msg


def test_listed_but_missing_is_code_7(base: Path) -> None:
    tool = str(base / "absent")
    with pytest.raises(CniError) as info:
        NodePolicy(allowed_vhost_tools=(tool,)).check_vhost_tool(tool)
    assert code_of(info) == 7
    assert "cannot be found" in info.value.msg


def test_listed_but_a_directory_is_code_7(base: Path) -> None:
    tool = base / "tooldir"
    tool.mkdir(mode=0o755)
    with pytest.raises(CniError) as info:
        NodePolicy(allowed_vhost_tools=(str(tool),)).check_vhost_tool(str(tool))
    assert code_of(info) == 7


# --- check_log_file and check_device_info_file -------------------------------------------------


def test_log_file_under_allowed_dir_is_fine() -> None:
    NodePolicy().check_log_file("/var/log/vhostuser-vpp/plugin.log")
    NodePolicy().check_log_file("/var/log/vhostuser-vpp/sub/plugin.log")


@pytest.mark.parametrize(
    "path",
    [
        "/var/log/vhostuser-vpp",
        "/var/log/vhostuser-vpp-evil/plugin.log",
        "/var/log/plugin.log",
        "/var/log/vhostuser-vpp/../../../etc/shadow",
        "/var/log/vhostuser-vpp/..",
        "relative/plugin.log",
    ],
)
def test_log_file_outside_is_code_7(path: str) -> None:
    with pytest.raises(CniError) as info:
        NodePolicy().check_log_file(path)
    assert code_of(info) == 7
    assert info.value.msg == "logFile is not allowed on this node"
    assert repr(path) in info.value.details


@pytest.mark.parametrize(
    "path",
    [
        "/var/run/k8s.cni.cncf.io/devinfo/cni/4d578250ad8d-net1-vhostuser.json",
        "/run/k8s.cni.cncf.io/devinfo/cni/x.json",
    ],
)
def test_device_info_file_under_default_dirs_is_fine(path: str) -> None:
    NodePolicy().check_device_info_file(path)


@pytest.mark.parametrize(
    "path",
    [
        "/run/k8s.cni.cncf.io/devinfo/cni/../../../../etc/passwd",
        "/run/k8s.cni.cncf.io/devinfo/cni/..",
        "/run/k8s.cni.cncf.io/devinfo/cni/a/../../x.json",
        "/run/k8s.cni.cncf.io/devinfo/cni-evil/x.json",
        "/run/k8s.cni.cncf.io/devinfo/cni",
        "/etc/cni/net.d/00-multus.conf",
    ],
)
def test_device_info_file_escape_is_code_7(path: str) -> None:
    with pytest.raises(CniError) as info:
        NodePolicy().check_device_info_file(path)
    assert code_of(info) == 7
    assert info.value.msg == "runtimeConfig.CNIDeviceInfoFile is not allowed on this node"


def test_device_info_dirs_from_the_policy_file(base: Path) -> None:
    policy = load_policy(write_policy(base / "p.json", {"allowed_device_info_dirs": ["/srv/devinfo/"]}))
    policy.check_device_info_file("/srv/devinfo/x.json")
    with pytest.raises(CniError):
        policy.check_device_info_file("/run/k8s.cni.cncf.io/devinfo/cni/x.json")
