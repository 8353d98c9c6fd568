"""Bad input and failing steps: the right CNI code, and nothing left behind."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.conftest import STATE_TOOL, Node, new_container_id


def _assert_untouched(node: Node) -> None:
    assert node.files() == set()
    assert node.ports() == {}
    assert node.reservations() == {}


@pytest.mark.parametrize(
    ("case", "expect_code", "msg_part"),
    [
        ({"stdin": b"{not json"}, 6, "not valid JSON"),
        ({"stdin": b"[1, 2]"}, 6, "not a JSON object"),
        ({"config": {"cniVersion": "9.9.9"}}, 1, "incompatible CNI versions"),
        ({"config": {"cniVersion": 100}}, 7, "cniVersion must be a string"),
        ({"config": {"name": 5}}, 7, "invalid network config"),
        ({"config": {"ipam": {"type": "../../bin/sh"}}}, 7, "invalid network config"),
        ({"config": {"vhost": {"vhost_tool": STATE_TOOL, "backend": "magic"}}}, 7, "invalid network config"),
        ({"config": {"vhost": {"vhost_tool": "tools/relative"}}}, 7, "invalid network config"),
        ({"config": {"cniDir": "/etc"}}, 7, "cniDir is not allowed"),
        ({"config": {"logFile": "/etc/passwd"}}, 7, "logFile is not allowed"),
        (
            {"config": {"runtimeConfig": {"CNIDeviceInfoFile": "/etc/x"}}},
            7,
            "CNIDeviceInfoFile is not allowed",
        ),
        ({"config": {"runtimeConfig": {"mac": "01:00:5e:00:00:01"}}}, 7, "invalid network config"),
        ({"config": {"ipam": {"type": "no-such-ipam"}}}, 7, "failed to find plugin"),
        ({"drop_env": ("CNI_CONTAINERID",)}, 3, "missing containerID"),
        ({"drop_env": ("CNI_NETNS",)}, 4, "CNI_NETNS"),
        ({"drop_env": ("CNI_PATH",)}, 4, "CNI_PATH"),
        ({"drop_env": ("CNI_IFNAME",)}, 4, "CNI_IFNAME"),
        ({"container_id": "../../etc"}, 4, "invalid characters in containerID"),
        ({"container_id": "abc/def"}, 4, "invalid characters in containerID"),
        ({"container_id": "a" * 300}, 4, "containerID is too long"),
        ({"ifname": "../x"}, 4, "invalid character"),
        ({"ifname": "averyveryverylongname"}, 4, "interface name is too long"),
        ({"ifname": "dpdk-net0"}, 7, "socket path is too long"),
        ({"extra_env": {"CNI_COMMAND": "FROB"}}, 4, "unknown CNI_COMMAND"),
        ({"extra_env": {"CNI_ARGS": "IgnoreUnknown"}}, 4, "CNI_ARGS"),
    ],
)
def test_bad_input_gets_a_clear_error_and_leaves_nothing(
    node: Node, case: dict[str, Any], expect_code: int, msg_part: str
) -> None:
    config = node.config()
    config.update(case.get("config", {}))
    run = node.run(
        "ADD",
        config,
        case.get("container_id", new_container_id()),
        ifname=case.get("ifname", "net1"),
        extra_env=case.get("extra_env"),
        drop_env=case.get("drop_env", ()),
        stdin=case.get("stdin"),
    )
    error = run.assert_error(expect_code)
    assert msg_part in f"{error['msg']} {error.get('details', '')}"
    assert "Traceback" not in run.stdout + run.stderr
    _assert_untouched(node)


def test_unknown_cni_args_are_ignored(node: Node) -> None:
    cid = new_container_id()
    args = {"CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=pod;K8S_POD_UID=u"}
    node.run("ADD", node.config(), cid, extra_env=args).assert_ok()
    node.run("DEL", node.config(), cid, extra_env=args).assert_ok()


@pytest.mark.parametrize("failing_verb", ["create", "getmac", "config"])
def test_a_failing_tool_step_rolls_back_port_address_and_files(node: Node, failing_verb: str) -> None:
    run = node.run("ADD", node.config(), new_container_id(), extra_env={"VHOST_TOOL_FAIL": failing_verb})
    error = run.assert_error(999)
    assert f"vhost_tool {failing_verb} failed" in error["msg"]
    assert f"{failing_verb}: injected failure" in error["details"]
    _assert_untouched(node)


def test_a_tool_printing_garbage_is_refused_and_rolled_back(node: Node) -> None:
    run = node.run("ADD", node.config(), new_container_id(), extra_env={"VHOST_TOOL_GARBAGE": "getmac"})
    error = run.assert_error(999)
    assert "is not a MAC address" in error["msg"]
    _assert_untouched(node)


def test_a_hung_tool_times_out_with_try_again_later(node: Node) -> None:
    config = node.config()
    config["vhost"] = {"vhost_tool": STATE_TOOL, "tool_timeout": 0.5}
    run = node.run("ADD", config, new_container_id(), extra_env={"VHOST_TOOL_HANG": "config"})
    error = run.assert_error(11)
    assert "timed out" in error["msg"]
    _assert_untouched(node)


def test_ipam_failure_leaves_nothing(node: Node) -> None:
    config = node.config()
    config["ipam"] = {**config["ipam"], "rangeStart": "10.56.217.131", "rangeEnd": "10.56.217.131"}
    first = new_container_id()
    node.run("ADD", config, first).assert_ok()
    before = node.snapshot()
    run = node.run("ADD", config, new_container_id())
    error = run.assert_error(999)
    assert "host-local" in error["msg"]
    assert node.snapshot() == before
    node.run("DEL", config, first).assert_ok()


def test_a_tool_not_on_the_node_allowlist_never_runs(node: Node) -> None:
    node.write_policy([])
    run = node.run("ADD", node.config(), new_container_id())
    error = run.assert_error(7)
    assert "vhost_tool is not allowed" in error["msg"]
    assert not node.state_file.exists()
    _assert_untouched(node)


def test_a_world_writable_cni_dir_is_refused(node: Node) -> None:
    node.cni_dir.mkdir()
    node.cni_dir.chmod(0o777)
    node.run("ADD", node.config(), new_container_id()).assert_error(7)
    assert list(node.cni_dir.iterdir()) == []


def test_a_symlinked_container_dir_is_not_followed(node: Node) -> None:
    cid = new_container_id()
    outside = node.root / "outside"
    outside.mkdir()
    node.cni_dir.mkdir()
    (node.cni_dir / cid).symlink_to(outside)
    run = node.run("ADD", node.config(), cid)
    run.assert_error(5)
    assert list(outside.iterdir()) == []
    assert node.ports() == {}
    assert node.reservations() == {}
    node.run("DEL", node.config(), cid).assert_ok()
    assert list(outside.iterdir()) == []
    assert (node.cni_dir / cid).is_symlink()


def test_del_reports_a_failing_tool_and_keeps_the_record_for_a_retry(node: Node) -> None:
    cid = new_container_id()
    config = node.config()
    node.run("ADD", config, cid).assert_ok()
    node.run("DEL", config, cid, extra_env={"VHOST_TOOL_FAIL": "delete"}).assert_error(999)
    assert node.reservations() == {}
    assert json.loads(node.record(cid).read_text())["vhostname"] == "VirtualEthernet0/0/0"
    node.run("DEL", config, cid).assert_ok()
    _assert_untouched(node)
