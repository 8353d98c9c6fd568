"""Tests for examples/vpp-config.py, the reference vhost_tool.

The tool runs as a subprocess, as the plugin runs it, against a fake vppctl
that answers from outputs recorded on a real VPP 26.06 (copied verbatim into
data/vppctl/vpp-26.06-cli.txt) and logs every argv it receives.
"""

import json
import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "examples" / "vpp-config.py"
RECORDING = Path(__file__).parent / "data" / "vppctl" / "vpp-26.06-cli.txt"

# The arguments the recording was made with, so recorded answers fit.
SOCKET = (
    "/var/lib/cni/vhostuser/4d578250ad8d760c0722be78badb4b4b6d57fed8f95dea23aaa0065aa8657b29"
    "/4d578250ad8d-net1"
)
IFNAME = "VirtualEthernet0/0/0"
POD_IP = "10.56.217.131"
POD_MAC = "e2:52:b5:7b:58:ad"
HW_MAC = "02:fe:76:51:af:24"

CREATE = f"create vhost-user socket {SOCKET} server"
UP = f"set interface state {IFNAME} up"
# Not in the recording: the same command as UP, which prints nothing.
DOWN = f"set interface state {IFNAME} down"
UNNUMBERED = f"set interface unnumbered {IFNAME} use loop0"
ROUTE_ADD = f"ip route add {POD_IP}/32 via {POD_IP} {IFNAME}"
NEIGHBOR_ADD = f"set ip neighbor static {IFNAME} {POD_IP} {POD_MAC}"
NEIGHBORS = "show ip neighbors"
FIB = f"show ip fib {POD_IP}/32"
ROUTE_DEL = f"ip route del {POD_IP}/32 via {POD_IP} {IFNAME}"
NEIGHBOR_DEL = f"set ip neighbor del {IFNAME} {POD_IP} {POD_MAC}"
DELETE = f"delete vhost-user {IFNAME}"

FAKE_VPPCTL = """\
#!{python}
import json, os, sys, threading
argv = sys.argv[1:]
with open(os.environ["FAKE_VPPCTL_LOG"], "a") as log:
    log.write(json.dumps(argv) + "\\n")
with open(os.environ["FAKE_VPPCTL_SCENARIO"]) as f:
    scenario = json.load(f)
words = argv[2:] if argv[:1] == ["-s"] else argv
answer = scenario.get(" ".join(words))
if answer is None:
    sys.stderr.write("fake vppctl: no answer for %r\\n" % words)
    sys.exit(97)
if answer["hang"]:
    threading.Event().wait()
sys.stdout.write(answer["stdout"])
sys.stderr.write(answer["stderr"])
sys.exit(answer["exit"])
"""


@dataclass(frozen=True)
class Answer:
    """What the fake vppctl prints and exits with for one command."""

    stdout: str = ""
    exit: int = 0
    stderr: str = ""
    hang: bool = False


def load_recording() -> dict[str, list[Answer]]:
    """Parse the recording's blocks: '$ vppctl ARGS', output lines, '[exit N]'."""
    answers: dict[str, list[Answer]] = {}
    command: str | None = None
    output: list[str] = []
    # Split on LF only: the recorded lines end in CRLF and the CR is kept.
    for line in RECORDING.read_bytes().decode().split("\n"):
        if line.startswith("$ vppctl "):
            command, output = line.removeprefix("$ vppctl "), []
        elif command is not None and line.startswith("[exit "):
            stdout = "".join(f"{out}\n" for out in output)
            answers.setdefault(command, []).append(Answer(stdout, int(line[6:-1])))
            command = None
        elif command is not None:
            output.append(line)
    return answers


RECORDED = load_recording()


def recorded(command: str, nth: int = 0) -> Answer:
    """The nth answer a real VPP gave to ``command`` in the recording."""
    return RECORDED[command][nth]


class FakeVpp:
    """A fake vppctl in tmp_path, its scenario, and a runner for the tool."""

    def __init__(self, tmp_path: Path) -> None:
        self.binary = tmp_path / "vppctl"
        self.binary.write_text(FAKE_VPPCTL.format(python=sys.executable))
        self.binary.chmod(self.binary.stat().st_mode | stat.S_IXUSR)
        self.scenario_path = tmp_path / "scenario.json"
        self.log = tmp_path / "vppctl.log"
        self.scenario: dict[str, Answer] = {}

    def answer(self, command: str, answer: Answer) -> None:
        """Make the fake reply ``answer`` to ``command``."""
        self.scenario[command] = answer

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """Run the tool like the plugin would, with extra environment ``env``."""
        self.scenario_path.write_text(json.dumps({cmd: vars(a) for cmd, a in self.scenario.items()}))
        base = {k: v for k, v in os.environ.items() if not k.startswith(("VPP", "FAKE_"))}
        base |= {
            "VPPCTL": str(self.binary),
            "FAKE_VPPCTL_LOG": str(self.log),
            "FAKE_VPPCTL_SCENARIO": str(self.scenario_path),
        }
        return subprocess.run(
            [sys.executable, str(TOOL), *args],
            env=base | env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    @property
    def calls(self) -> list[list[str]]:
        """Every argv the fake vppctl received, in order."""
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture
def vpp(tmp_path: Path) -> FakeVpp:
    return FakeVpp(tmp_path)


def argvs(*commands: str) -> list[list[str]]:
    """The argv lists vppctl receives for the given CLI commands."""
    return [command.split(" ") for command in commands]


def assert_failed(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """A failure: exit 1, nothing on stdout, a message naming the cause."""
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in result.stderr


def happy_delete(vpp: FakeVpp) -> None:
    """A port configured by ``config``, as the recording shows it."""
    for command in (NEIGHBORS, FIB, ROUTE_DEL, NEIGHBOR_DEL, DELETE):
        vpp.answer(command, recorded(command))
    vpp.answer(DOWN, Answer())


def test_fixture_is_the_real_recording() -> None:
    """The fixture keeps the recording's CRLF line ends, which the tool must handle."""
    assert recorded(CREATE) == Answer("VirtualEthernet0/0/0\r\n", 0)
    assert len(RECORDED[CREATE]) == 2
    assert recorded(DELETE, 1).stdout == f"delete vhost-user: unknown input `{IFNAME}'\r\n"


# --- create -----------------------------------------------------------------


def test_create_prints_interface_name_and_sets_it_up(vpp: FakeVpp) -> None:
    vpp.answer(CREATE, recorded(CREATE))
    vpp.answer(UP, recorded(UP))
    result = vpp.run("create", SOCKET)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{IFNAME}\n", "")
    assert vpp.calls == argvs(CREATE, UP)


def test_create_uses_cli_socket_from_env(vpp: FakeVpp) -> None:
    vpp.answer(CREATE, recorded(CREATE))
    vpp.answer(UP, recorded(UP))
    result = vpp.run("create", SOCKET, VPP_CLI_SOCKET="/run/vpp/cli-vpp1.sock")
    assert result.returncode == 0
    assert vpp.calls == [["-s", "/run/vpp/cli-vpp1.sock", *argv] for argv in argvs(CREATE, UP)]


@pytest.mark.parametrize(
    ("command", "nth", "explanation"),
    [
        (CREATE, 1, "already uses this socket path"),
        ("create vhost-user socket /var/lib/cni/vhostuser/missing/x server", 0, "directory"),
    ],
)
def test_create_reports_vpp_error_text(vpp: FakeVpp, command: str, nth: int, explanation: str) -> None:
    """vppctl exits 0 here; only the text says the create failed."""
    vpp.answer(command, recorded(command, nth))
    socket = command.split(" ")[3]
    result = vpp.run("create", socket)
    assert_failed(result, "vhost_user_create_if returned", explanation)
    assert vpp.calls == argvs(command)


def test_create_deletes_port_again_when_admin_up_fails(vpp: FakeVpp) -> None:
    vpp.answer(CREATE, recorded(CREATE))
    vpp.answer(UP, Answer(f"set interface state: unknown interface `{IFNAME} up'\r\n"))
    vpp.answer(DELETE, recorded(DELETE))
    result = vpp.run("create", SOCKET)
    assert_failed(result, "unknown interface", "deleted again")
    assert vpp.calls == argvs(CREATE, UP, DELETE)


def test_create_rejects_unrecognised_output(vpp: FakeVpp) -> None:
    """Output that only starts like an interface name is not trusted."""
    vpp.answer(CREATE, Answer("VirtualEthernet0/0/0\r\nVirtualEthernet0/0/1\r\n"))
    result = vpp.run("create", SOCKET)
    assert_failed(result, "unrecognised vppctl output")
    assert vpp.calls == argvs(CREATE)


# --- getmac -----------------------------------------------------------------


def test_getmac_parses_ethernet_address(vpp: FakeVpp) -> None:
    command = f"show hardware-interfaces {IFNAME}"
    vpp.answer(command, recorded(command))
    result = vpp.run("getmac", IFNAME)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{HW_MAC}\n", "")
    assert vpp.calls == argvs(command)


def test_getmac_rejects_output_without_ethernet_address(vpp: FakeVpp) -> None:
    """`show interface` looks similar but has no MAC: not a guessable shape."""
    vpp.answer(f"show hardware-interfaces {IFNAME}", recorded(f"show interface {IFNAME}"))
    assert_failed(vpp.run("getmac", IFNAME), "unrecognised vppctl output")


def test_getmac_rejects_another_interfaces_table(vpp: FakeVpp) -> None:
    stdout = recorded(f"show hardware-interfaces {IFNAME}").stdout
    vpp.answer("show hardware-interfaces VirtualEthernet0/0/7", Answer(stdout))
    assert_failed(vpp.run("getmac", "VirtualEthernet0/0/7"), "unrecognised vppctl output")


# --- config -----------------------------------------------------------------


@pytest.mark.parametrize("ip", [POD_IP, f"{POD_IP}/32"])
def test_config_runs_unnumbered_route_neighbour(vpp: FakeVpp, ip: str) -> None:
    for command in (UNNUMBERED, ROUTE_ADD, NEIGHBOR_ADD):
        vpp.answer(command, recorded(command))
    result = vpp.run("config", IFNAME, ip, POD_MAC.upper())
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert vpp.calls == argvs(UNNUMBERED, ROUTE_ADD, NEIGHBOR_ADD)


def test_config_loopback_from_env(vpp: FakeVpp) -> None:
    unnumbered = f"set interface unnumbered {IFNAME} use loop7"
    for command in (unnumbered, ROUTE_ADD, NEIGHBOR_ADD):
        vpp.answer(command, Answer())
    result = vpp.run("config", IFNAME, POD_IP, POD_MAC, VPP_CONFIG_UNNUMBERED_TO="loop7")
    assert result.returncode == 0, result.stderr
    assert vpp.calls[0] == unnumbered.split(" ")


def test_config_stops_at_first_error(vpp: FakeVpp) -> None:
    """The retired `set ip arp` answer: an error VPP reports with exit 0."""
    vpp.answer(UNNUMBERED, recorded(UNNUMBERED))
    arp = f"set ip arp {IFNAME} {POD_IP} {POD_MAC}"
    vpp.answer(ROUTE_ADD, recorded(arp))
    result = vpp.run("config", IFNAME, POD_IP, POD_MAC)
    assert_failed(result, f"`{ROUTE_ADD}` failed: set ip: unknown input")
    assert vpp.calls == argvs(UNNUMBERED, ROUTE_ADD)


# --- delete -----------------------------------------------------------------


def test_delete_removes_route_and_neighbour_before_interface(vpp: FakeVpp) -> None:
    happy_delete(vpp)
    result = vpp.run("delete", IFNAME)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert vpp.calls == argvs(NEIGHBORS, FIB, ROUTE_DEL, NEIGHBOR_DEL, DOWN, DELETE)


def test_delete_leaves_other_interfaces_neighbours_alone(vpp: FakeVpp) -> None:
    """The neighbour row moved to another port: nothing to remove for ours."""
    other = recorded(NEIGHBORS).stdout.replace(IFNAME, "VirtualEthernet0/0/1")
    vpp.answer(NEIGHBORS, Answer(other))
    vpp.answer(DOWN, Answer())
    vpp.answer(DELETE, recorded(DELETE))
    result = vpp.run("delete", IFNAME)
    assert result.returncode == 0, result.stderr
    assert vpp.calls == argvs(NEIGHBORS, DOWN, DELETE)


def test_delete_skips_route_lookup_when_fib_answers_with_covering_prefix(vpp: FakeVpp) -> None:
    """`show ip fib` returns the longest match; another prefix means no /32."""
    happy_delete(vpp)
    covering = recorded(FIB).stdout.replace(f"{POD_IP}/32 fib:0", "10.56.217.0/24 fib:0")
    vpp.answer(FIB, Answer(covering))
    result = vpp.run("delete", IFNAME)
    assert result.returncode == 0, result.stderr
    assert vpp.calls == argvs(NEIGHBORS, FIB, NEIGHBOR_DEL, DOWN, DELETE)


def test_delete_of_gone_interface_succeeds(vpp: FakeVpp) -> None:
    """Neighbours went with the port; `set ... down` and `delete` both fail."""
    vpp.answer(NEIGHBORS, Answer())
    vpp.answer(DOWN, Answer(f"set interface state: unknown interface `{IFNAME} down'\r\n"))
    vpp.answer(DELETE, recorded(DELETE, 1))
    result = vpp.run("delete", IFNAME)
    assert (result.returncode, result.stdout) == (0, "")
    assert "already deleted" in result.stderr
    assert vpp.calls == argvs(NEIGHBORS, DOWN, DELETE)


def test_delete_notes_failed_down_when_delete_worked(vpp: FakeVpp) -> None:
    happy_delete(vpp)
    vpp.answer(DOWN, Answer("set interface state: something odd\r\n"))
    result = vpp.run("delete", IFNAME)
    assert (result.returncode, result.stdout) == (0, "")
    assert "setting it down first failed" in result.stderr


def test_delete_fails_when_delete_reports_another_error(vpp: FakeVpp) -> None:
    happy_delete(vpp)
    vpp.answer(DELETE, recorded("show tap"))
    assert_failed(vpp.run("delete", IFNAME), f"`{DELETE}` failed: show: unknown input")


def test_delete_stops_before_interface_when_route_removal_fails(vpp: FakeVpp) -> None:
    """Deleting the port with its /32 still in the FIB would leave it stale."""
    happy_delete(vpp)
    vpp.answer(ROUTE_DEL, recorded("show tap"))
    assert_failed(vpp.run("delete", IFNAME), "failed")
    assert vpp.calls == argvs(NEIGHBORS, FIB, ROUTE_DEL)


@pytest.mark.parametrize(
    ("command", "stdout"),
    [
        (NEIGHBORS, "IP  Interface\r\n"),
        (NEIGHBORS, recorded(NEIGHBORS).stdout + "garbage\r\n"),
        (FIB, "no such table\r\n"),
    ],
)
def test_delete_rejects_unrecognised_show_output(vpp: FakeVpp, command: str, stdout: str) -> None:
    happy_delete(vpp)
    vpp.answer(command, Answer(stdout))
    assert_failed(vpp.run("delete", IFNAME), "unrecognised vppctl output")
    assert vpp.calls[-1] == command.split(" ")


# --- vppctl failures ---------------------------------------------------------


def test_vppctl_nonzero_exit_is_failure(vpp: FakeVpp) -> None:
    vpp.answer(CREATE, Answer(exit=1, stderr="connect: No such file or directory\n"))
    assert_failed(vpp.run("create", SOCKET), "exited 1", "No such file or directory")


def test_vppctl_timeout_is_failure(vpp: FakeVpp) -> None:
    vpp.answer(CREATE, Answer(hang=True))
    assert_failed(vpp.run("create", SOCKET, VPPCTL_TIMEOUT="0.5"), "timed out after 0.5s")


def test_missing_vppctl_is_failure(vpp: FakeVpp, tmp_path: Path) -> None:
    result = vpp.run("getmac", IFNAME, VPPCTL=str(tmp_path / "no-vppctl"))
    assert_failed(result, "cannot run", "no-vppctl")


# --- argument validation: nothing runs ---------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["frobnicate", IFNAME],
        ["create"],
        ["create", "relative/path.sock"],
        ["create", "/tmp/a b.sock"],
        ["create", "/tmp/a.sock server; reboot"],
        ["create", "/tmp/$(reboot).sock"],
        ["create", "/tmp/a.sock\nshow version"],
        ["create", "/tmp/../etc/a.sock"],
        ["create", "/tmp/dir/"],
        ["create", "/" + "a" * 107],
        ["getmac", "VirtualEthernet0/0/0 up"],
        ["getmac", "VirtualEthernet0/0/0;id"],
        ["getmac", "loop0"],
        ["getmac", "VirtualEthernet0/0/\u0661"],
        ["delete", "`reboot`"],
        ["delete", IFNAME, "extra"],
        ["config", IFNAME, POD_IP],
        ["config", IFNAME, "10.56.217.131/24", POD_MAC],
        ["config", IFNAME, "10.56.217.256", POD_MAC],
        ["config", IFNAME, "10.56.217.131 via", POD_MAC],
        ["config", IFNAME, "224.0.0.1", POD_MAC],
        ["config", IFNAME, "fd00::1", POD_MAC],
        ["config", IFNAME, POD_IP, "e2-52-b5-7b-58-ad"],
        ["config", IFNAME, POD_IP, "ff:ff:ff:ff:ff:ff"],
        ["config", IFNAME, POD_IP, f"{POD_MAC} extra"],
    ],
)
def test_invalid_arguments_run_nothing(vpp: FakeVpp, args: list[str]) -> None:
    result = vpp.run(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "error:" in result.stderr
    assert vpp.calls == []


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["config", IFNAME, POD_IP, POD_MAC], {"VPP_CONFIG_UNNUMBERED_TO": "loop0 del"}),
        (["config", IFNAME, POD_IP, POD_MAC], {"VPP_CONFIG_UNNUMBERED_TO": ""}),
        (["create", SOCKET], {"VPPCTL_TIMEOUT": "soon"}),
        (["create", SOCKET], {"VPPCTL_TIMEOUT": "0"}),
        (["create", SOCKET], {"VPPCTL_TIMEOUT": "inf"}),
        (["create", SOCKET], {"VPP_CLI_SOCKET": "cli.sock"}),
        (["create", SOCKET], {"VPPCTL": ""}),
    ],
)
def test_invalid_environment_runs_nothing(vpp: FakeVpp, args: list[str], env: dict[str, str]) -> None:
    result = vpp.run(*args, **env)
    assert result.returncode == 2
    assert result.stdout == ""
    assert next(iter(env)) in result.stderr
    assert vpp.calls == []


def test_permitted_punctuation_reaches_vppctl_intact(vpp: FakeVpp) -> None:
    """One argv element per CLI word: nothing is split, quoted or expanded."""
    path = "/run/vpp/pod=a,b:c@d+e_f-g.sock"
    vpp.answer(f"create vhost-user socket {path} server", Answer("VirtualEthernet0/0/3\r\n"))
    vpp.answer("set interface state VirtualEthernet0/0/3 up", Answer())
    result = vpp.run("create", path)
    assert result.stdout == "VirtualEthernet0/0/3\n"
    assert vpp.calls[0] == ["create", "vhost-user", "socket", path, "server"]


def test_tool_is_executable_script() -> None:
    assert os.access(TOOL, os.X_OK)
    assert TOOL.read_text().startswith("#!/usr/bin/env python3\n")
