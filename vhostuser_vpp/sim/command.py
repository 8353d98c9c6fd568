"""`vhostuser-vpp sim` (and `python -m vhostuser_vpp.sim`): run the VPP API emulator in
the foreground.

For demos and for testing the plugin where VPP cannot run. It answers VPP 26.06's binary
API on a unix socket; it does not forward packets. Stops cleanly on SIGTERM or SIGINT,
removing the vhost-user sockets it made and, as VPP does, leaving its API socket file
(refusing connections). It lives with the emulator, which the operator CLI only lists as
a subcommand: the CLI depends on the emulator, never the other way round.
"""

from __future__ import annotations

import argparse

EPILOG = (
    "The emulator answers VPP's binary API like VPP 26.06 (or the release given with "
    "--profile) for the messages this plugin uses, and creates real vhost-user sockets, "
    "but no packets move: it is a test and demo tool, not a dataplane."
)
READY_LINE = "vpp emulator ready on {path} (VPP {version})"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("--socket", required=True, metavar="PATH", help="API socket to listen on")
    parser.add_argument(
        "--profile", default="26.06", help="VPP release whose message CRCs to advertise (default 26.06)"
    )
    parser.add_argument(
        "--omit",
        nargs="+",
        action="extend",
        default=[],
        metavar="MSG",
        help="leave these messages out of the message table (their replies go too)",
    )
    parser.add_argument("--id-offset", type=int, default=0, metavar="N", help="shift message ids by N")
    parser.add_argument(
        "--fail",
        action="append",
        default=[],
        metavar="MSG[:RETVAL[:TIMES]]",
        help="answer MSG with RETVAL (default -1), TIMES times (default always)",
    )
    parser.add_argument(
        "--delay", action="append", default=[], metavar="MSG:SECONDS", help="hold answers to MSG"
    )
    parser.add_argument("--ignore", action="append", default=[], metavar="MSG", help="never answer MSG")
    parser.add_argument(
        "--drop-after",
        type=int,
        metavar="N",
        help="serve N requests, then drop the connection that sends the next one",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every client to stderr")


def run(args: argparse.Namespace) -> int:
    import logging
    import signal
    import sys
    import threading

    from vhostuser_vpp.sim import Emulator, Faults
    from vhostuser_vpp.sim.faults import parse_delay, parse_fail

    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    faults = Faults()
    try:
        for spec in args.fail:
            name, retval, times = parse_fail(spec)
            faults.fail(name, retval, times)
        for spec in args.delay:
            name, seconds = parse_delay(spec)
            faults.delay(name, seconds)
        for name in args.ignore:
            faults.ignore(name, times=None)
        if args.drop_after is not None:
            faults.drop_connection_after(args.drop_after)
        emulator = Emulator.start(
            args.socket, profile=args.profile, omit=args.omit, id_offset=args.id_offset, faults=faults
        )
    except (ValueError, OSError) as exc:
        print(f"vhostuser-vpp sim: {exc}", file=sys.stderr)
        return 2

    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    print(READY_LINE.format(path=args.socket, version=emulator.version), file=sys.stderr, flush=True)
    try:
        stop.wait()
    finally:
        emulator.stop()
    return 0
