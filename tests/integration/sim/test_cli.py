"""`vhostuser-vpp sim` and `python -m vhostuser_vpp.sim` as an operator runs them."""

from __future__ import annotations

import select
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from vpp_papi import VPPApiClient

from vhostuser_vpp.vpp.api_files import api_json_paths

CLI = str(Path(sys.executable).parent / "vhostuser-vpp")
READY_TIMEOUT = 20


def start(command: list[str]) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    readable, _, _ = select.select([process.stderr], [], [], READY_TIMEOUT)
    if not readable:
        process.kill()
        process.wait()
        pytest.fail(f"no readiness line within {READY_TIMEOUT}s")
    line = process.stderr.readline()  # the readiness line is written and flushed whole
    assert "ready on" in line, f"no readiness line, got {line!r}"
    return process


@pytest.mark.parametrize(
    "launcher",
    [[CLI, "sim"], [sys.executable, "-m", "vhostuser_vpp.sim"]],
    ids=["vhostuser-vpp-sim", "python-m"],
)
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serves_then_stops_cleanly(launcher: list[str], stop_signal: int, short_dir: Path) -> None:
    path = short_dir / "api.sock"
    process = start([*launcher, "--socket", str(path), "--fail", "show_version:-7:1"])
    try:
        client = VPPApiClient(apifiles=api_json_paths(), server_address=str(path))
        client.connect("cli-test")
        assert client.api.show_version().retval == -7
        assert client.api.show_version().version == "26.06-release"
        client.disconnect()
        process.send_signal(stop_signal)
        assert process.wait(timeout=READY_TIMEOUT) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    with socket.socket(socket.AF_UNIX) as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(str(path))  # the file stays, refusing, as a stopped VPP leaves it


def test_help_says_no_packets_move() -> None:
    out = subprocess.run([CLI, "sim", "--help"], capture_output=True, text=True, check=True).stdout
    assert "no packets move" in out
    assert "--profile" in out and "--omit" in out


def test_bad_profile_is_refused(short_dir: Path) -> None:
    done = subprocess.run(
        [CLI, "sim", "--socket", str(short_dir / "s"), "--profile", "1.0"],
        capture_output=True,
        text=True,
        timeout=READY_TIMEOUT,
        check=False,
    )
    assert done.returncode == 2 and "unknown VPP profile" in done.stderr
