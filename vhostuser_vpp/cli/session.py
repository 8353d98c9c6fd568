"""What every subcommand that talks to VPP shares: its flags, one connection, and the exit
codes for VPP's failures (3 unreachable, 1 refused), so that each subcommand's `run` is
only its own work on a connected `vpp.ops.Vpp`."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from vhostuser_vpp.cli import output
from vhostuser_vpp.defaults import DEFAULT_API_SOCKET, DEFAULT_CNI_DIR
from vhostuser_vpp.vpp.client import VppClient
from vhostuser_vpp.vpp.errors import VppError, VppUnavailable
from vhostuser_vpp.vpp.ops import Vpp

if TYPE_CHECKING:
    from vhostuser_vpp.vpp.stats import CounterSample

DEFAULT_TIMEOUT_S = 5.0


def add_vpp_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api-socket", default=DEFAULT_API_SOCKET, metavar="PATH", help="VPP's API socket (%(default)s)"
    )
    parser.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help="how long to wait for VPP to connect or answer one call (%(default)s)",
    )


def add_stats_argument(parser: argparse.ArgumentParser) -> None:
    from vhostuser_vpp.defaults import DEFAULT_STATS_SOCKET

    parser.add_argument(
        "--stats-socket",
        default=DEFAULT_STATS_SOCKET,
        metavar="PATH",
        help="VPP's stats segment socket, for packet counters (%(default)s)",
    )


def counters(command: str, args: argparse.Namespace) -> CounterSample | None:
    """Every interface's counters now; None, with a warning on stderr, when VPP's stats
    segment cannot be read (the rest of the command's answer still stands)."""
    from vhostuser_vpp.vpp.stats import Stats

    try:
        with Stats(args.stats_socket) as stats:
            return stats.sample()
    except VppUnavailable as err:
        output.error(command, f"no counters: {err}")
        return None


def add_cni_dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cni-dir", default=DEFAULT_CNI_DIR, metavar="DIR", help="the plugin's cniDir (%(default)s)"
    )


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


@contextlib.contextmanager
def vpp_session(args: argparse.Namespace) -> Iterator[Vpp]:
    client = VppClient(args.api_socket, args.timeout, args.timeout)
    client.connect()
    try:
        yield Vpp(client)
    finally:
        client.close()


def run_with_vpp(command: str, args: argparse.Namespace, body: Callable[[Vpp], int]) -> int:
    """Runs `body` connected to VPP; an unreachable VPP is exit 3, a refusal or an
    unreadable cniDir (not root?) exit 1."""
    try:
        with vpp_session(args) as vpp:
            return body(vpp)
    except VppUnavailable as err:
        output.error(command, str(err))
        return output.EXIT_VPP_UNREACHABLE
    except (VppError, OSError) as err:
        output.error(command, str(err))
        return output.EXIT_PROBLEMS
