"""The shim's protocol with the node agent (vhostuser_vpp/agent/wire.py), byte by byte."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from vhostuser_vpp.agent import wire
from vhostuser_vpp.cli.install import SHIM_PYTHONS


def _pair() -> tuple[socket.socket, socket.socket]:
    left, right = socket.socketpair()
    left.settimeout(5)
    right.settimeout(5)
    return left, right


def test_a_request_arrives_whole() -> None:
    shim, agent = _pair()
    environ = [b"CNI_COMMAND=ADD", b"CNI_ARGS=A=1;B=2", b"EMPTY=", b"BYTES=\xff\xfe"]
    stdin = b'{"cniVersion": "1.0.0"}' * 1000
    shim.sendall(wire.encode_request(environ, stdin, b"/opt/cni/bin/vhostuser"))
    env, body, executable = wire.read_request(agent)
    assert wire.decode_environment(env) == [
        (b"CNI_COMMAND", b"ADD"),
        (b"CNI_ARGS", b"A=1;B=2"),
        (b"EMPTY", b""),
        (b"BYTES", b"\xff\xfe"),
    ]
    assert (body, executable) == (stdin, b"/opt/cni/bin/vhostuser")


def test_an_answer_arrives_whole_with_its_exit_code() -> None:
    agent, shim = _pair()
    agent.sendall(wire.ACCEPTED + wire.encode_answer(1, b'{"code": 7}\n', b"warning\n"))
    assert wire.read_line(shim) == wire.ACCEPTED
    assert wire.read_answer(shim) == (1, b'{"code": 7}\n', b"warning\n")


def test_another_version_is_a_protocol_error() -> None:
    shim, agent = _pair()
    shim.sendall(b"vhostuser-vpp cni/2\n" + bytes(12))
    with pytest.raises(wire.ProtocolError, match="not this protocol version"):
        wire.read_request(agent)


def test_a_size_above_the_bound_is_refused_before_reading() -> None:
    shim, agent = _pair()
    shim.sendall(wire.HELLO + (wire.MAX_ENVIRONMENT + 1).to_bytes(4, "big"))
    with pytest.raises(wire.ProtocolError, match="announced"):
        wire.read_request(agent)


def test_a_peer_that_goes_away_mid_message_is_a_protocol_error() -> None:
    shim, agent = _pair()
    shim.sendall(wire.HELLO + (100).to_bytes(4, "big") + b"short")
    shim.close()
    with pytest.raises(wire.ProtocolError, match="closed"):
        wire.read_request(agent)


def test_an_environment_entry_without_a_key_is_refused() -> None:
    with pytest.raises(wire.ProtocolError):
        wire.decode_environment(b"A=1\0=2")


@pytest.mark.parametrize(
    "python", sorted({sys.executable, *(p for p in SHIM_PYTHONS if os.access(p, os.X_OK))})
)
def test_the_shim_imports_only_what_is_built_in(python: str) -> None:
    """Without `site`, modules built into the interpreter cost next to nothing (and
    `_socket`, one small shared object). Any other adds to every pod's start-up: `typing`,
    `socket`, `json`, even `__future__` 1-15 ms; `os`, though frozen, ~1 ms of the shim's ~8."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); before = set(sys.modules)\n"
        "import vhostuser_vpp.agent.shim\n"
        "print(' '.join(m for m in set(sys.modules) - before if not m.startswith('vhostuser_vpp')"
        " and m not in sys.builtin_module_names))\n"
    )
    repo = str(Path(wire.__file__).resolve().parents[2])
    run = subprocess.run(
        [python, "-IS", "-c", code, repo], capture_output=True, text=True, timeout=30, check=True
    )
    assert set(run.stdout.split()) <= {"_socket"}  # built in, or a small shared object
