"""Tests for vhostuser_vpp.cni.invoke: running a delegated (IPAM) plugin like libcni does.

The plugins are tiny Python scripts written into tmp_path; each appends what it
got (command, environment, stdin) to a log file, then answers as told.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.samples import readme_sample
from vhostuser_vpp.cni.errors import CniError
from vhostuser_vpp.cni.invoke import DELEGATED_ENV, DelegatedPlugin, find_plugin
from vhostuser_vpp.cni.results import Interface, IPConfig, Result

CID = "4d578250ad8d760c0722be78badb4b4b6d57fed8f95dea23aaa0065aa8657b29"
ALL_VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
DEBIAN_VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"]

FAKE_PLUGIN = """\
#!{python} -IS
import json, os, sys, threading
B = json.loads({behaviour!r})
stdin = sys.stdin.read()
cmd = os.environ.get("CNI_COMMAND", "")
with open(B["log"], "a") as log:
    log.write(json.dumps({{"command": cmd, "env": dict(os.environ), "stdin": stdin}}) + "\\n")
mode = B["mode"]
if mode == "hang":
    threading.Event().wait()
if mode == "garbage":
    sys.stdout.write(B.get("stdout", "<html>not json</html>"))
    sys.stderr.write(B.get("stderr", ""))
    sys.exit(B.get("exit", 1))
if mode == "error":
    print(json.dumps(B["error"]))
    sys.exit(1)
supported = B["supported"]
if cmd == "VERSION":
    print(json.dumps(B.get("version_answer", {{"cniVersion": "1.0.0", "supportedVersions": supported}})))
    sys.exit(0)
conf = json.loads(stdin)
version = conf.get("cniVersion", "")
if mode == "incompatible" or version not in supported:
    err = {{"code": 1, "msg": "incompatible CNI versions",
           "details": "config is %s, plugin supports %s" % (json.dumps(version), json.dumps(supported))}}
    print(json.dumps(err))
    sys.exit(1)
if cmd == "ADD":
    ip = {{"address": "10.56.217.132/24", "gateway": "10.56.217.1"}}
    if version.startswith("0."):
        ip["version"] = "4"
    print(json.dumps({{"cniVersion": version, "ips": [ip], "routes": [{{"dst": "0.0.0.0/0"}}], "dns": {{}}}}))
"""


class FakePlugin:
    """One fake plugin executable in `<tmp>/bin/<name>` and the log of its calls."""

    def __init__(self, tmp_path: Path, name: str = "host-local", mode: str = "ok", **behaviour: Any) -> None:
        self.bin_dir = tmp_path / "bin"
        self.bin_dir.mkdir(exist_ok=True)
        self.path = self.bin_dir / name
        self.log = tmp_path / f"{name}.log"
        doc = {"log": str(self.log), "mode": mode, "supported": ALL_VERSIONS, **behaviour}
        self.path.write_text(FAKE_PLUGIN.format(python=sys.executable, behaviour=json.dumps(doc)))
        self.path.chmod(0o755)

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def commands(self) -> list[str]:
        return [call["command"] for call in self.calls()]

    def stdins(self) -> list[Any]:
        return [json.loads(call["stdin"]) for call in self.calls()]


def netconf(version: str = "1.0.0") -> dict[str, Any]:
    return readme_sample(cniVersion=version, vhost={"vhost_tool": "/usr/local/bin/vpp-config.py"})


def environ(fake: FakePlugin, command: str = "ADD") -> dict[str, str]:
    return {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": CID,
        "CNI_NETNS": "/var/run/netns/cni-1",
        "CNI_IFNAME": "net1",
        "CNI_PATH": str(fake.bin_dir),
        "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAME=dpdk-app;K8S_POD_NAMESPACE=default",
        "LANG": "C.UTF-8",
        "SOME_OTHER_VARIABLE": "passed through",
    }


def delegate(fake: FakePlugin, config: dict[str, Any], timeout_s: float = 30.0) -> DelegatedPlugin:
    return DelegatedPlugin(
        plugin_type=fake.path.name,
        config=config,
        environ=environ(fake),
        search_path=(str(fake.bin_dir),),
        timeout_s=timeout_s,
    )


def added(plugin: DelegatedPlugin) -> Result:
    """IPAM's ADD as the plugin runs it, alongside an (here empty) block of its own work."""
    with plugin.adding() as allocation:
        pass
    return allocation.result


def child_env(call: dict[str, Any]) -> dict[str, str]:
    # The interpreter may add LC_CTYPE (PEP 538); everything else came from us.
    return {k: v for k, v in call["env"].items() if k != "LC_CTYPE"}


# --- the ordinary calls ------------------------------------------------------------------------


def test_add_passes_config_and_environment(tmp_path: Path) -> None:
    fake = FakePlugin(tmp_path)
    config = netconf("1.0.0")
    plugin = delegate(fake, config)
    result = added(plugin)
    assert result.cni_version == "1.0.0"
    assert result.ips == [IPConfig(address="10.56.217.132/24", gateway="10.56.217.1")]
    assert result.routes == [{"dst": "0.0.0.0/0"}]
    (call,) = fake.calls()
    assert call["command"] == "ADD"
    assert json.loads(call["stdin"]) == config
    assert child_env(call) == {**environ(fake), DELEGATED_ENV: "1"}
    assert plugin.path == str(fake.path)


@pytest.mark.parametrize("version", ["0.3.0", "0.3.1", "0.4.0"])
def test_add_reads_legacy_results(tmp_path: Path, version: str) -> None:
    fake = FakePlugin(tmp_path)
    result = added(delegate(fake, netconf(version)))
    assert result.cni_version == version
    assert [ip.address for ip in result.ips] == ["10.56.217.132/24"]
    assert fake.stdins()[0]["cniVersion"] == version


def test_cni_command_is_overridden_and_the_rest_passed_through(tmp_path: Path) -> None:
    fake = FakePlugin(tmp_path)
    plugin = delegate(fake, netconf())
    plugin.delete()
    plugin.call("STATUS")
    calls = fake.calls()
    assert [call["command"] for call in calls] == ["DEL", "STATUS"]
    for call, command in zip(calls, ["DEL", "STATUS"], strict=True):
        assert child_env(call) == {**environ(fake), "CNI_COMMAND": command, DELEGATED_ENV: "1"}


def test_del_overrides_reach_the_child(tmp_path: Path) -> None:
    fake = FakePlugin(tmp_path)
    plugin = delegate(fake, netconf())
    before = dict(plugin.environ)
    other = "f" * 64
    plugin.delete({"CNI_CONTAINERID": other, "CNI_IFNAME": "net9"})
    (call,) = fake.calls()
    assert call["command"] == "DEL"
    assert call["env"]["CNI_CONTAINERID"] == other
    assert call["env"]["CNI_IFNAME"] == "net9"
    assert call["env"]["CNI_NETNS"] == "/var/run/netns/cni-1"
    assert dict(plugin.environ) == before


def test_check_sends_prev_result_in_the_config_version(tmp_path: Path) -> None:
    fake = FakePlugin(tmp_path)
    prev = Result(
        cni_version="1.1.0",
        interfaces=[Interface(name="vhu", socket_path="/s")],
        ips=[IPConfig(address="10.56.217.132/24", gateway="10.56.217.1", interface=0)],
    )
    config = netconf("0.4.0")
    plugin = delegate(fake, config)
    plugin.started("CHECK", prev_result=prev).answer()
    (stdin,) = fake.stdins()
    assert fake.commands() == ["CHECK"]
    assert stdin["prevResult"] == prev.to_json("0.4.0")
    assert {k: v for k, v in stdin.items() if k != "prevResult"} == config
    assert "prevResult" not in plugin.config


def test_commands_without_output_return_none(tmp_path: Path) -> None:
    fake = FakePlugin(tmp_path)
    plugin = delegate(fake, netconf("1.1.0"))
    assert plugin.call("GC") is None
    assert plugin.call("STATUS") is None
    assert fake.commands() == ["GC", "STATUS"]
    assert [s["cniVersion"] for s in fake.stdins()] == ["1.1.0", "1.1.0"]


def test_supported_versions(tmp_path: Path) -> None:
    fake = FakePlugin(tmp_path, supported=DEBIAN_VERSIONS)
    plugin = delegate(fake, netconf())
    assert plugin.supported_versions() == DEBIAN_VERSIONS
    assert plugin.supports("1.0.0")
    assert not plugin.supports("1.1.0")
    assert fake.commands() == ["VERSION", "VERSION", "VERSION"]
    assert fake.stdins()[0] == {"cniVersion": "1.1.0"}


def test_version_answer_without_supported_versions_is_code_6(tmp_path: Path) -> None:
    fake = FakePlugin(tmp_path, version_answer={"cniVersion": "1.0.0"})
    with pytest.raises(CniError) as info:
        delegate(fake, netconf()).supported_versions()
    assert info.value.code == 6
    assert "supportedVersions" in info.value.msg


# --- negotiation: Debian's host-local stops at 1.0.0 -------------------------------------------


def test_add_at_1_1_0_is_redelegated_at_1_0_0(tmp_path: Path) -> None:
    fake = FakePlugin(tmp_path, supported=DEBIAN_VERSIONS)
    config = netconf("1.1.0")
    plugin = delegate(fake, config)
    result = added(plugin)
    assert result.cni_version == "1.0.0"
    assert [ip.address for ip in result.ips] == ["10.56.217.132/24"]
    assert fake.commands() == ["ADD", "VERSION", "ADD"]
    first, version_query, second = fake.stdins()
    assert first == config
    assert version_query == {"cniVersion": "1.1.0"}
    assert second == dict(config, cniVersion="1.0.0")
    assert list(second) == list(config)
    # The caller's config is left as it was.
    assert config["cniVersion"] == "1.1.0"
    # The agreed version is remembered: DEL goes straight to 1.0.0.
    plugin.delete()
    assert fake.commands()[3:] == ["DEL"]
    assert fake.stdins()[3] == dict(config, cniVersion="1.0.0")


def test_check_at_1_1_0_is_redelegated_with_prev_result_converted(tmp_path: Path) -> None:
    fake = FakePlugin(tmp_path, supported=DEBIAN_VERSIONS)
    prev = Result(
        cni_version="1.1.0",
        interfaces=[Interface(name="vhu", socket_path="/var/lib/cni/vhostuser/x/x-net1")],
        ips=[IPConfig(address="10.56.217.132/24", gateway="10.56.217.1", interface=0)],
        routes=[{"dst": "0.0.0.0/0", "mtu": 1400}],
    )
    plugin = delegate(fake, netconf("1.1.0"))
    plugin.started("CHECK", prev_result=prev).answer()
    assert fake.commands() == ["CHECK", "VERSION", "CHECK"]
    first, _, second = fake.stdins()
    assert first["prevResult"] == prev.to_json("1.1.0")
    assert second["prevResult"] == prev.to_json("1.0.0")
    assert "socketPath" not in json.dumps(second["prevResult"])
    assert {k: v for k, v in second.items() if k != "prevResult"} == netconf("1.0.0")


def test_del_with_overrides_is_redelegated_with_the_same_overrides(tmp_path: Path) -> None:
    fake = FakePlugin(tmp_path, supported=DEBIAN_VERSIONS)
    plugin = delegate(fake, netconf("1.1.0"))
    plugin.delete({"CNI_IFNAME": "net7"})
    calls = fake.calls()
    assert [c["command"] for c in calls] == ["DEL", "VERSION", "DEL"]
    assert calls[0]["env"]["CNI_IFNAME"] == "net7"
    assert calls[2]["env"]["CNI_IFNAME"] == "net7"


def test_incompatible_without_a_common_version_keeps_the_error(tmp_path: Path) -> None:
    fake = FakePlugin(tmp_path, supported=["0.1.0", "0.2.0"])
    with pytest.raises(CniError) as info:
        added(delegate(fake, netconf("1.1.0")))
    assert info.value.code == 1
    assert "incompatible CNI versions" in info.value.msg
    assert '"1.1.0"' in info.value.details
    assert fake.commands() == ["ADD", "VERSION"]


def test_incompatible_at_a_version_it_claims_is_not_retried(tmp_path: Path) -> None:
    fake = FakePlugin(tmp_path, mode="incompatible")
    with pytest.raises(CniError) as info:
        added(delegate(fake, netconf("1.1.0")))
    assert info.value.code == 1
    assert fake.commands() == ["ADD", "VERSION"]


def test_redelegation_never_goes_above_the_config_version(tmp_path: Path) -> None:
    fake = FakePlugin(tmp_path, supported=["0.3.1", "1.0.0"])
    result = added(delegate(fake, netconf("0.4.0")))
    assert result.cni_version == "0.3.1"
    assert [s["cniVersion"] for s in fake.stdins()] == ["0.4.0", "1.1.0", "0.3.1"]


# --- failures ----------------------------------------------------------------------------------


def test_error_json_without_cni_version_keeps_its_code(tmp_path: Path) -> None:
    error = {"code": 18, "msg": "no IP addresses available in range set", "details": "10.56.217.131-190"}
    fake = FakePlugin(tmp_path, mode="error", error=error)
    with pytest.raises(CniError) as info:
        added(delegate(fake, netconf("1.1.0")))
    assert info.value.code == 18
    assert "no IP addresses available in range set" in info.value.msg
    assert "host-local" in info.value.msg
    assert info.value.details == "10.56.217.131-190"
    assert fake.commands() == ["ADD"]


def test_error_json_with_code_11_is_kept(tmp_path: Path) -> None:
    fake = FakePlugin(tmp_path, mode="error", error={"cniVersion": "1.0.0", "code": 11, "msg": "busy"})
    with pytest.raises(CniError) as info:
        delegate(fake, netconf()).delete()
    assert (info.value.code, info.value.details) == (11, "")


def test_exit_1_with_garbage_is_999_quoting_stderr(tmp_path: Path) -> None:
    stderr = "host-local: open /var/lib/cni/networks/x: permission denied"
    fake = FakePlugin(tmp_path, mode="garbage", stderr=stderr + "\n", exit=1)
    with pytest.raises(CniError) as info:
        added(delegate(fake, netconf()))
    assert info.value.code == 999
    assert "exit code 1" in info.value.msg
    assert info.value.details == stderr


def test_exit_2_with_garbage_and_no_stderr_quotes_stdout(tmp_path: Path) -> None:
    fake = FakePlugin(tmp_path, mode="garbage", stdout="panic: runtime error", stderr="", exit=2)
    with pytest.raises(CniError) as info:
        added(delegate(fake, netconf()))
    assert info.value.code == 999
    assert "exit code 2" in info.value.msg
    assert info.value.details == "panic: runtime error"


def test_long_stderr_is_cut(tmp_path: Path) -> None:
    fake = FakePlugin(tmp_path, mode="garbage", stderr="e" * 10_000, exit=1)
    with pytest.raises(CniError) as info:
        added(delegate(fake, netconf()))
    assert info.value.details == "e" * 2000


def test_success_with_garbage_is_code_6(tmp_path: Path) -> None:
    fake = FakePlugin(tmp_path, mode="garbage", stdout="not json", exit=0)
    with pytest.raises(CniError) as info:
        added(delegate(fake, netconf()))
    assert info.value.code == 6
    assert info.value.details == "not json"


def test_success_with_a_bad_result_is_code_6_naming_the_plugin(tmp_path: Path) -> None:
    fake = FakePlugin(tmp_path, mode="garbage", stdout='{"cniVersion": "1.0.0", "ips": 5}', exit=0)
    with pytest.raises(CniError) as info:
        added(delegate(fake, netconf()))
    assert info.value.code == 6
    assert "'host-local'" in info.value.msg


def test_success_with_no_output_on_add_is_code_6(tmp_path: Path) -> None:
    fake = FakePlugin(tmp_path, mode="garbage", stdout="", exit=0)
    with pytest.raises(CniError) as info:
        added(delegate(fake, netconf()))
    assert info.value.code == 6


def test_hanging_plugin_is_code_11(tmp_path: Path) -> None:
    fake = FakePlugin(tmp_path, mode="hang")
    with pytest.raises(CniError) as info:
        added(delegate(fake, netconf(), timeout_s=0.5))
    assert info.value.code == 11
    assert "timed out" in info.value.msg
    assert "0.5s" in info.value.details


def test_a_hanging_plugin_is_killed_with_the_children_it_started(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    pid_file = tmp_path / "helper.pid"
    hanging = bin_dir / "host-local"
    hanging.write_text(f"#!/bin/sh\nsleep 600 &\necho $! > {pid_file}\nwait\n")
    hanging.chmod(0o755)
    plugin = DelegatedPlugin("host-local", netconf(), {}, (str(bin_dir),), timeout_s=0.5)
    with pytest.raises(CniError) as info:
        added(plugin)
    assert info.value.code == 11
    helper = int(pid_file.read_text())
    # SIGKILL is sent to the whole group; the helper, not our child, dies on its own time.
    deadline = time.monotonic() + 10
    while is_running(helper) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not is_running(helper)


def is_running(pid: int) -> bool:
    """Alive and not a zombie (nothing may reap an orphan where PID 1 is not an init)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_plugin_that_cannot_be_executed_is_code_5(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    broken = bin_dir / "host-local"
    broken.write_text("#!/nonexistent/interpreter\n")
    broken.chmod(0o755)
    plugin = DelegatedPlugin("host-local", netconf(), {}, (str(bin_dir),))
    with pytest.raises(CniError) as info:
        added(plugin)
    assert info.value.code == 5
    assert str(broken) in info.value.details


# --- ADD alongside the caller's work (DelegatedPlugin.adding) ---------------------------------


def test_the_plugin_runs_while_the_block_does(tmp_path: Path) -> None:
    """Started before the block: its call is logged while the block still runs."""
    fake = FakePlugin(tmp_path)
    deadline = time.monotonic() + 10
    with delegate(fake, netconf()).adding() as allocation:
        while fake.commands() != ["ADD"] and time.monotonic() < deadline:
            time.sleep(0.005)
        assert fake.commands() == ["ADD"]
    assert allocation.result.ips[0].address == "10.56.217.132/24"


def test_a_block_that_fails_has_the_address_released(tmp_path: Path) -> None:
    fake = FakePlugin(tmp_path)
    allocation = delegate(fake, netconf()).adding()
    with pytest.raises(RuntimeError, match="the port"), allocation:
        raise RuntimeError("the port could not be made")
    allocation.release()
    assert fake.commands() == ["ADD", "DEL"]


def test_the_plugins_error_ends_the_block_and_nothing_is_released(tmp_path: Path) -> None:
    fake = FakePlugin(tmp_path, mode="error", error={"code": 11, "msg": "no IP addresses available"})
    allocation = delegate(fake, netconf()).adding()
    done = []
    with pytest.raises(CniError) as info, allocation:
        done.append("the block's work")
    assert info.value.code == 11 and done == ["the block's work"]
    allocation.release()
    assert fake.commands() == ["ADD"]


def test_the_blocks_error_wins_over_the_plugins(tmp_path: Path) -> None:
    fake = FakePlugin(tmp_path, mode="error", error={"code": 11, "msg": "no IP addresses available"})
    allocation = delegate(fake, netconf()).adding()
    with pytest.raises(RuntimeError), allocation:
        raise RuntimeError("the record could not be written")
    allocation.release()
    assert fake.commands() == ["ADD"]


def test_check_runs_alongside_a_block_whose_error_wins(tmp_path: Path) -> None:
    """CHECK's way: IPAM checks while the plugin looks at VPP; a problem found there is the
    one reported, IPAM's only when there is none."""
    fake = FakePlugin(tmp_path, mode="error", error={"code": 7, "msg": "not reserved"})
    plugin = delegate(fake, netconf())
    with pytest.raises(RuntimeError, match="no port"), plugin.started("CHECK"):
        raise RuntimeError("no port")
    with pytest.raises(CniError, match="not reserved"), plugin.started("CHECK"):
        pass
    assert fake.commands() == ["CHECK", "CHECK"]


def test_a_config_larger_than_a_pipe_reaches_the_plugin_whole(tmp_path: Path) -> None:
    """The pipe takes 64 KiB at once: the rest is written as the plugin reads."""
    fake = FakePlugin(tmp_path)
    config = netconf() | {"padding": "x" * (1 << 20)}
    added(delegate(fake, config))
    assert fake.stdins()[0]["padding"] == config["padding"]


def test_without_pidfd_open_the_exit_is_waited_for_all_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kernel or seccomp profile without pidfd_open: Popen's own wait serves."""

    def refused(pid: int, flags: int = 0) -> int:
        raise OSError(errno.ENOSYS, "pidfd_open")

    monkeypatch.setattr(os, "pidfd_open", refused)
    fake = FakePlugin(tmp_path)
    assert added(delegate(fake, netconf())).ips[0].address == "10.56.217.132/24"


def test_a_plugin_that_closes_its_output_but_does_not_exit_is_killed(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    lingering = bin_dir / "host-local"
    lingering.write_text(f"#!{sys.executable}\nimport os, time\nos.close(1)\nos.close(2)\ntime.sleep(600)\n")
    lingering.chmod(0o755)
    plugin = DelegatedPlugin("host-local", netconf(), {}, (str(bin_dir),), timeout_s=0.5)
    began = time.monotonic()
    with pytest.raises(CniError) as info:
        added(plugin)
    assert info.value.code == 11
    assert time.monotonic() - began < 10


# --- find_plugin -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "plugin_type", ["../host-local", "a/b", "/usr/lib/cni/host-local", "..", ".", "", "-x"]
)
def test_find_plugin_rejects_paths(tmp_path: Path, plugin_type: str) -> None:
    with pytest.raises(CniError) as info:
        find_plugin(plugin_type, (str(tmp_path),))
    assert info.value.code == 7
    assert repr(plugin_type) in info.value.details


def test_find_plugin_not_found_is_code_7(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    with pytest.raises(CniError) as info:
        find_plugin("host-local", (str(a), str(b)))
    assert info.value.code == 7
    assert "'host-local'" in info.value.msg
    assert info.value.details == f"{a}{os.pathsep}{b}"


def test_find_plugin_empty_cni_path_is_code_4() -> None:
    with pytest.raises(CniError) as info:
        find_plugin("host-local", ())
    assert info.value.code == 4


def test_find_plugin_skips_non_executables_and_directories(tmp_path: Path) -> None:
    first, second, third = tmp_path / "1", tmp_path / "2", tmp_path / "3"
    for directory in (first, second, third):
        directory.mkdir()
    (first / "host-local").write_text("not executable")
    (first / "host-local").chmod(0o644)
    (second / "host-local").mkdir()
    (third / "host-local").write_text("#!/bin/sh\n")
    (third / "host-local").chmod(0o755)
    assert find_plugin("host-local", (str(first), str(second), str(third))) == str(third / "host-local")


def test_find_plugin_takes_the_first_match(tmp_path: Path) -> None:
    first, second = tmp_path / "1", tmp_path / "2"
    for directory in (first, second):
        directory.mkdir()
        (directory / "static").write_text("#!/bin/sh\n")
        (directory / "static").chmod(stat.S_IRWXU)
    assert find_plugin("static", (str(second), str(first))) == str(second / "static")


def test_plugin_type_with_slash_is_rejected_before_running(tmp_path: Path) -> None:
    fake = FakePlugin(tmp_path)
    plugin = DelegatedPlugin("../bin/host-local", netconf(), environ(fake), (str(fake.bin_dir / "x"),))
    with pytest.raises(CniError) as info:
        added(plugin)
    assert info.value.code == 7
    assert fake.calls() == []


def test_missing_plugin_on_add_is_code_7(tmp_path: Path) -> None:
    plugin = DelegatedPlugin("host-local", netconf(), {}, (str(tmp_path),))
    with pytest.raises(CniError) as info:
        added(plugin)
    assert info.value.code == 7
