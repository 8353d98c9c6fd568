"""The pieces that let an agent request wait less: a pooled connection's liveness check
(vhostuser_vpp/vpp/transport.py) and steps run side by side (vhostuser_vpp/overlap.py)."""

from __future__ import annotations

import contextvars
import socket
import threading

import pytest

from vhostuser_vpp import overlap
from vhostuser_vpp.vpp.transport import CallerReadTransport


def _connected_transport() -> tuple[CallerReadTransport, socket.socket]:
    ours, vpps = socket.socketpair()
    transport = CallerReadTransport(parent=None, read_timeout=1.0, server_address="")
    transport.socket = ours
    transport.connected = True
    return transport, vpps


def test_an_idle_open_connection_is_quiet() -> None:
    transport, _vpp = _connected_transport()
    assert transport.quiet()


def test_a_connection_whose_vpp_went_away_is_not() -> None:
    """A VPP that exited or restarted closed its end: readable at once, no round trip."""
    transport, vpp = _connected_transport()
    vpp.close()
    assert not transport.quiet()


def test_a_connection_with_something_unread_is_not() -> None:
    transport, vpp = _connected_transport()
    vpp.sendall(b"\0" * 16)
    assert not transport.quiet()


def test_a_disconnected_transport_is_not() -> None:
    transport = CallerReadTransport(parent=None, read_timeout=1.0, server_address="")
    assert not transport.quiet()


def test_a_step_runs_beside_the_block_on_another_thread_in_the_callers_context() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="none")
    var.set("this request")
    started, seen = threading.Event(), []

    def step() -> None:
        seen.append((var.get(), threading.get_ident()))
        started.set()

    with overlap.alongside(step):
        assert started.wait(5), "the step ran while the block did"
    [(value, ident)] = seen
    assert value == "this request" and ident != threading.get_ident()


def test_the_block_end_waits_for_it_and_raises_its_error() -> None:
    done = threading.Event()

    def slow_then_fails() -> None:
        done.wait(5)
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"), overlap.alongside(slow_then_fails):
        done.set()


def test_a_failing_block_waits_for_it_and_keeps_its_own_error() -> None:
    release, finished = threading.Event(), []

    def step() -> None:
        release.wait(5)
        finished.append(True)
        raise OSError("disk full")

    with pytest.raises(ValueError, match="wiring failed"), overlap.alongside(step):
        release.set()
        raise ValueError("wiring failed")
    assert finished == [True]
