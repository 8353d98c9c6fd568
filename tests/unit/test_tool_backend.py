"""Tests for vhostuser_vpp.backends.tool: driving VPP through an external vhost_tool.

The tool is a small Python script in tmp_path that logs its argv and
environment, then answers each verb as the test's scenario says.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from vhostuser_vpp.backends.base import (
    BackendError,
    BackendUnavailable,
    Port,
    PortRef,
    PortSpec,
    PortState,
    Wiring,
)
from vhostuser_vpp.backends.tool import ToolBackend, tool_environment

CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CID = "4d578250ad8d760c0722be78badb4b4b6d57fed8f95dea23aaa0065aa8657b29"
SOCKET = f"/var/lib/cni/vhostuser/{CID}/4d578250ad8d-net1"
IFNAME = "VirtualEthernet0/0/0"

FAKE_TOOL = """\
#!{python} -IS
import json, os, sys, threading
with open({log!r}, "a") as log:
    log.write(json.dumps({{"argv": sys.argv[1:], "env": dict(os.environ)}}) + "\\n")
with open({scenario!r}) as f:
    scenario = json.load(f)
verb = sys.argv[1] if len(sys.argv) > 1 else ""
answer = scenario.get(verb, {{"stderr": "fake tool: no answer for %r" % verb, "exit": 97}})
if answer.get("hang"):
    threading.Event().wait()
sys.stdout.write(answer.get("stdout", ""))
sys.stderr.write(answer.get("stderr", ""))
sys.exit(answer.get("exit", 0))
"""

DEFAULT_SCENARIO: dict[str, dict[str, Any]] = {
    "create": {"stdout": IFNAME + "\n"},
    "getmac": {"stdout": "02:FE:FC:89:49:D8\n"},
    "config": {},
    "delete": {},
}


class FakeTool:
    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "vpp-config.py"
        self.log = tmp_path / "tool.log"
        self.scenario_path = tmp_path / "scenario.json"
        self.scenario: dict[str, dict[str, Any]] = {k: dict(v) for k, v in DEFAULT_SCENARIO.items()}
        self.path.write_text(
            FAKE_TOOL.format(python=sys.executable, log=str(self.log), scenario=str(self.scenario_path))
        )
        self.path.chmod(0o755)
        self.save()

    def answer(self, verb: str, **answer: Any) -> None:
        self.scenario[verb] = answer
        self.save()

    def save(self) -> None:
        self.scenario_path.write_text(json.dumps(self.scenario))

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def argvs(self) -> list[list[str]]:
        return [call["argv"] for call in self.calls()]

    def backend(self, timeout_s: float = 30.0, environ: dict[str, str] | None = None) -> ToolBackend:
        return ToolBackend(str(self.path), timeout_s, environ if environ is not None else {})


@pytest.fixture
def tool(tmp_path: Path) -> FakeTool:
    return FakeTool(tmp_path)


def spec(socket_path: str = SOCKET) -> PortSpec:
    return PortSpec(socket_path=socket_path, tag="vhostuser-vpp:4d578250ad8d-net1")


# --- the protocol ------------------------------------------------------------------------------


def test_create_then_getmac(tool: FakeTool) -> None:
    port = tool.backend().create_port(spec())
    assert port == Port(name=IFNAME, mac="02:fe:fc:89:49:d8")
    assert tool.argvs() == [["create", SOCKET], ["getmac", IFNAME]]


def test_wire_passes_ifname_ip_and_mac(tool: FakeTool) -> None:
    undo = tool.backend().wire(
        Port(IFNAME, "02:fe:fc:89:49:d8"), Wiring(("10.56.217.132",), "e2:52:b5:7b:58:ad")
    )
    assert tool.argvs() == [["config", IFNAME, "10.56.217.132", "e2:52:b5:7b:58:ad"]]
    assert undo == {}


def test_delete_port(tool: FakeTool) -> None:
    tool.backend().delete_port(PortRef(name=IFNAME, socket_path=SOCKET, tag="t"))
    assert tool.argvs() == [["delete", IFNAME]]


def test_delete_port_without_a_name_runs_nothing(tool: FakeTool) -> None:
    tool.backend().delete_port(PortRef(name="", socket_path=SOCKET, tag="t"))
    assert tool.argvs() == []


def test_inspect(tool: FakeTool) -> None:
    state = tool.backend().inspect(PortRef(name=IFNAME, socket_path=SOCKET, tag="t"))
    assert state == PortState(name=IFNAME, mac="02:fe:fc:89:49:d8", admin_up=None)
    assert tool.argvs() == [["getmac", IFNAME]]


def test_inspect_of_a_missing_port_is_none(tool: FakeTool) -> None:
    tool.answer("getmac", stderr="unknown interface", exit=1)
    assert tool.backend().inspect(PortRef(name=IFNAME, socket_path=SOCKET, tag="t")) is None


def test_inspect_of_a_hanging_tool_is_unavailable(tool: FakeTool) -> None:
    tool.answer("getmac", hang=True)
    with pytest.raises(BackendUnavailable):
        tool.backend(timeout_s=0.3).inspect(PortRef(name=IFNAME, socket_path=SOCKET, tag="t"))


def test_client_mode_is_refused_without_running_the_tool(tool: FakeTool) -> None:
    with pytest.raises(BackendError) as info:
        tool.backend().create_port(PortSpec(socket_path=SOCKET, tag="t", is_server=False))
    assert "server-mode" in info.value.msg
    assert tool.argvs() == []


def test_status(tool: FakeTool, tmp_path: Path) -> None:
    tool.backend().status()
    tool.path.chmod(0o644)
    with pytest.raises(BackendUnavailable):
        tool.backend().status()
    with pytest.raises(BackendUnavailable):
        ToolBackend(str(tmp_path / "absent"), 1.0, {}).status()
    assert tool.argvs() == []


# --- the environment ---------------------------------------------------------------------------


def test_environment_is_cleaned(tool: FakeTool) -> None:
    environ = {
        "PATH": "/tmp/evil:/usr/bin",
        "LANG": "de_DE.UTF-8",
        "HOME": "/root",
        "LD_PRELOAD": "/tmp/evil.so",
        "PYTHONPATH": "/tmp/evil",
        "CNI_COMMAND": "ADD",
        "CNI_ARGS": "K8S_POD_NAME=x",
        "VHOSTUSER_VPP_NODE_CONFIG": "/etc/cni/vhostuser-vpp.json",
        "VPP_API_SOCKET": "/run/vpp/api.sock",
        "VPPCTL_SOCKET": "/run/vpp/cli.sock",
        "VHOST_TOOL_DEBUG": "1",
        "vpp_lower": "no",
        "MY_VHOST_TOOL_X": "no",
    }
    tool.backend(environ=environ).delete_port(PortRef(name=IFNAME, socket_path=SOCKET, tag="t"))
    (call,) = tool.calls()
    assert call["env"] == {
        "PATH": CLEAN_PATH,
        "LANG": "C.UTF-8",
        "VPP_API_SOCKET": "/run/vpp/api.sock",
        "VPPCTL_SOCKET": "/run/vpp/cli.sock",
        "VHOST_TOOL_DEBUG": "1",
    }


def test_tool_environment_function() -> None:
    assert tool_environment({}) == {"PATH": CLEAN_PATH, "LANG": "C.UTF-8"}
    assert tool_environment({"VPP": "a", "VHOST_TOOL_": "b", "VHOST_TOOLX": "c"}) == {
        "PATH": CLEAN_PATH,
        "LANG": "C.UTF-8",
        "VPP": "a",
        "VHOST_TOOL_": "b",
    }


# --- bad answers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stdout",
    [
        "",
        "\n",
        "0/0/0\n",
        "VirtualEthernet0/0/0; rm -rf /\n",
        "Virtual Ethernet\n",
        "VirtualEthernet0/0/0\nVirtualEthernet0/0/1\n",
        "create vhost-user: socket in use\n",
        "V" * 65 + "\n",
    ],
)
def test_create_printing_no_interface_name_is_an_error(tool: FakeTool, stdout: str) -> None:
    tool.answer("create", stdout=stdout)
    with pytest.raises(BackendError) as info:
        tool.backend().create_port(spec())
    assert not isinstance(info.value, BackendUnavailable)
    assert info.value.msg == "vhost_tool create printed something that is not an interface name"
    assert info.value.details == repr(stdout.strip())
    # Nothing was created that we know of: no getmac, no delete.
    assert tool.argvs() == [["create", SOCKET]]


@pytest.mark.parametrize(
    "stdout",
    ["", "02:fe:fc:89:49\n", "02-fe-fc-89-49-d8\n", "zz:fe:fc:89:49:d8\n", "02:fe:fc:89:49:d8 up\n"],
)
def test_getmac_printing_no_mac_is_an_error_and_rolls_back(tool: FakeTool, stdout: str) -> None:
    tool.answer("getmac", stdout=stdout)
    with pytest.raises(BackendError) as info:
        tool.backend().create_port(spec())
    assert info.value.msg == "vhost_tool getmac printed something that is not a MAC address"
    assert info.value.details == repr(stdout.strip())
    assert tool.argvs() == [["create", SOCKET], ["getmac", IFNAME], ["delete", IFNAME]]


def test_getmac_failure_after_create_rolls_back(tool: FakeTool) -> None:
    tool.answer("getmac", stderr="vpp: interface vanished\n", exit=3)
    with pytest.raises(BackendError) as info:
        tool.backend().create_port(spec())
    assert "exit code 3" in info.value.msg
    assert info.value.details == "vpp: interface vanished"
    assert tool.argvs() == [["create", SOCKET], ["getmac", IFNAME], ["delete", IFNAME]]


def test_getmac_hang_after_create_rolls_back(tool: FakeTool) -> None:
    tool.answer("getmac", hang=True)
    # Long enough for create and delete to answer, even on a busy machine.
    with pytest.raises(BackendUnavailable):
        tool.backend(timeout_s=1.0).create_port(spec())
    argvs = tool.argvs()
    assert argvs[0] == ["create", SOCKET]
    assert argvs[-1] == ["delete", IFNAME]


def test_failed_rollback_keeps_the_original_error(tool: FakeTool) -> None:
    tool.answer("getmac", stdout="garbage\n")
    tool.answer("delete", stderr="delete failed too", exit=1)
    with pytest.raises(BackendError) as info:
        tool.backend().create_port(spec())
    assert info.value.msg == "vhost_tool getmac printed something that is not a MAC address"


@pytest.mark.parametrize("verb", ["create", "config", "delete"])
def test_non_zero_exit_quotes_stderr(tool: FakeTool, verb: str) -> None:
    tool.answer(verb, stdout="ignored\n", stderr="  vpp: unknown input `foo'\n", exit=2)
    backend = tool.backend()
    with pytest.raises(BackendError) as info:
        if verb == "create":
            backend.create_port(spec())
        elif verb == "config":
            backend.wire(Port(IFNAME, "02:fe:fc:89:49:d8"), Wiring(("10.56.217.132",), "e2:52:b5:7b:58:ad"))
        else:
            backend.delete_port(PortRef(name=IFNAME, socket_path=SOCKET, tag="t"))
    assert not isinstance(info.value, BackendUnavailable)
    assert info.value.msg == f"vhost_tool {verb} failed with exit code 2"
    assert info.value.details == "vpp: unknown input `foo'"


def test_non_zero_exit_without_stderr(tool: FakeTool) -> None:
    tool.answer("delete", exit=1)
    with pytest.raises(BackendError) as info:
        tool.backend().delete_port(PortRef(name=IFNAME, socket_path=SOCKET, tag="t"))
    assert info.value.details == "(no stderr)"


def test_long_stderr_is_cut(tool: FakeTool) -> None:
    tool.answer("delete", stderr="x" * 5000, exit=1)
    with pytest.raises(BackendError) as info:
        tool.backend().delete_port(PortRef(name=IFNAME, socket_path=SOCKET, tag="t"))
    assert info.value.details == "x" * 1000


def test_stderr_on_success_is_not_an_error(tool: FakeTool) -> None:
    tool.answer("create", stdout=IFNAME + "\n", stderr="warning: something\n")
    assert tool.backend().create_port(spec()).name == IFNAME


@pytest.mark.parametrize("verb", ["create", "config", "delete"])
def test_hang_is_unavailable(tool: FakeTool, verb: str) -> None:
    tool.answer(verb, hang=True)
    backend = tool.backend(timeout_s=0.3)
    with pytest.raises(BackendUnavailable) as info:
        if verb == "create":
            backend.create_port(spec())
        elif verb == "config":
            backend.wire(Port(IFNAME, "02:fe:fc:89:49:d8"), Wiring(("10.56.217.132",), "e2:52:b5:7b:58:ad"))
        else:
            backend.delete_port(PortRef(name=IFNAME, socket_path=SOCKET, tag="t"))
    assert info.value.msg == f"vhost_tool {verb} timed out"
    assert "0.3s" in info.value.details


def test_tool_that_cannot_run_is_an_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.write_text("#!/nonexistent/interpreter\n")
    broken.chmod(0o755)
    with pytest.raises(BackendError) as info:
        ToolBackend(str(broken), 5.0, {}).delete_port(PortRef(name=IFNAME, socket_path=SOCKET, tag="t"))
    assert not isinstance(info.value, BackendUnavailable)
    assert info.value.msg == "cannot run vhost_tool delete"
    assert str(broken) in info.value.details


# --- no shell ----------------------------------------------------------------------------------


def test_arguments_reach_the_tool_intact(tool: FakeTool, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    socket = f"/var/lib/cni/vhostuser/a b/$(touch {marker}); `touch {marker}` 'q\"\\*?~|&>x"
    tool.answer("create", stdout="VirtualEthernet0/0/7\n")
    tool.answer("getmac", stdout="02:00:00:00:00:07\n")
    backend = tool.backend()
    port = backend.create_port(spec(socket))
    backend.wire(port, Wiring((f"10.0.0.1 ; touch {marker}",), "$(id)"))
    backend.delete_port(PortRef(name="Virtual Ethernet*", socket_path=socket, tag="t"))
    assert tool.argvs() == [
        ["create", socket],
        ["getmac", "VirtualEthernet0/0/7"],
        ["config", "VirtualEthernet0/0/7", f"10.0.0.1 ; touch {marker}", "$(id)"],
        ["delete", "Virtual Ethernet*"],
    ]
    assert not marker.exists()


def test_argument_starting_with_a_dash_is_one_element(tool: FakeTool) -> None:
    tool.backend().delete_port(PortRef(name="--help", socket_path=SOCKET, tag="t"))
    assert tool.argvs() == [["delete", "--help"]]
    assert os.path.exists(tool.log)
