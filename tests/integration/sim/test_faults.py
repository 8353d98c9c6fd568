"""Injected failures reach a vpp_papi client the way a misbehaving VPP's would."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.sim.conftest import ClientFactory
from vhostuser_vpp.sim import Emulator


def test_fail_once_then_recover(emulator: Emulator, papi: Any, short_dir: Path) -> None:
    emulator.faults.fail("create_vhost_user_if_v2", retval=-1, times=1)
    failed = papi.api.create_vhost_user_if_v2(is_server=True, sock_filename=str(short_dir / "p"))
    assert (failed.retval, failed.sw_if_index) == (-1, 0xFFFFFFFF)
    assert emulator.ports() == [] and not (short_dir / "p").exists()
    ok = papi.api.create_vhost_user_if_v2(is_server=True, sock_filename=str(short_dir / "p"))
    assert (ok.retval, ok.sw_if_index) == (0, 1)


def test_fail_every_time_until_cleared(emulator: Emulator, papi: Any) -> None:
    emulator.faults.fail("show_version", retval=-9, times=None)
    assert [papi.api.show_version().retval for _ in range(3)] == [-9, -9, -9]
    emulator.faults.clear()
    assert papi.api.show_version().retval == 0


def test_delay_holds_only_that_answer(emulator: Emulator, papi: Any) -> None:
    emulator.faults.delay("show_version", 0.3, times=1)
    began = time.monotonic()
    assert papi.api.show_version().retval == 0
    assert time.monotonic() - began >= 0.3


def test_delay_beyond_read_timeout(emulator: Emulator, connect: ClientFactory) -> None:
    papi = connect(read_timeout=0.2)
    emulator.faults.delay("control_ping", 1.0, times=1)
    with pytest.raises(papi.VPPIOError):
        papi.api.control_ping()


def test_ignored_message_times_out(emulator: Emulator, connect: ClientFactory) -> None:
    papi = connect(read_timeout=0.2)
    emulator.faults.ignore("show_version")
    with pytest.raises(papi.VPPIOError):
        papi.api.show_version()


def test_drop_connection_after(emulator: Emulator, papi: Any, connect: ClientFactory) -> None:
    emulator.faults.drop_connection_after(2)
    assert papi.api.control_ping().retval == 0
    assert papi.api.show_version().retval == 0
    with pytest.raises(papi.VPPIOError):
        papi.api.control_ping()
    assert connect("again").api.control_ping().retval == 0


def test_unknown_message_gets_an_answer(emulator: Emulator, papi: Any) -> None:
    unused_id = max(emulator.table.ids.values()) + 1
    context = 4242
    papi.transport.write(
        bytes.fromhex(f"{unused_id:04x}") + (0).to_bytes(4, "big") + context.to_bytes(4, "big")
    )
    reply = papi.read_blocking(timeout=5)
    assert type(reply).__name__ == "control_ping_reply"
    assert (reply.context, reply.retval) == (context, -9)
