"""An emulated VPP per test, and vpp_papi clients connected to it.

Sockets live in a short directory under /tmp rather than in pytest's tmp_path: a unix
socket path must fit in 107 bytes, and tmp_path alone can come close to that.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from vpp_papi import VPPApiClient

from vhostuser_vpp.sim import Emulator
from vhostuser_vpp.vpp.api_files import api_json_paths


@pytest.fixture
def short_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="vs-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def api_socket(short_dir: Path) -> str:
    return str(short_dir / "api.sock")


@pytest.fixture
def emulator(api_socket: str) -> Iterator[Emulator]:
    with Emulator.start(api_socket) as emu:
        yield emu


ClientFactory = Callable[..., Any]


@pytest.fixture
def connect(api_socket: str) -> Iterator[ClientFactory]:
    """connect(name="test", read_timeout=5) -> a connected VPPApiClient, disconnected at teardown."""
    clients: list[Any] = []

    def factory(name: str = "test", read_timeout: float = 5) -> Any:
        client = VPPApiClient(apifiles=api_json_paths(), server_address=api_socket, read_timeout=read_timeout)
        client.connect(name)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        if client.transport.connected:
            client.disconnect()


@pytest.fixture
def papi(emulator: Emulator, connect: ClientFactory) -> Any:
    """One connected client on a fresh emulator."""
    return connect()
