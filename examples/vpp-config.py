#!/usr/bin/env python3
"""Reference ``vhost.vhost_tool`` for vhostuser-vpp: configures VPP through ``vppctl``.

The plugin's normal backend talks to VPP's binary API.  Sites without it can
name an external tool in ``vhost.vhost_tool``; this is the reference one.  It is
built against the CLI of VPP 26.06 as recorded on a real VPP, and it only
accepts output shapes seen there: anything else is reported as an error rather
than guessed at.

Protocol (machine-readable result on stdout, diagnostics on stderr)::

    vpp-config.py create <socket-path>
        Create a vhost-user interface in server mode listening at <socket-path>
        (absolute, at most 107 bytes, no whitespace or shell metacharacters)
        and set it admin up.  Prints the interface name, e.g.
        ``VirtualEthernet0/0/0``.  If admin up fails the interface is deleted
        again, so a failed create leaves nothing behind.
    vpp-config.py getmac <ifname>
        Prints the interface's MAC, e.g. ``02:fe:76:51:af:24``.
    vpp-config.py config <ifname> <pod-ip>[/32] <pod-mac>
        Make <ifname> unnumbered to the gateway loopback, route <pod-ip>/32 via
        it and add a static neighbour <pod-ip> -> <pod-mac> on it.  Prints
        nothing.  On failure the caller is expected to run ``delete``.
    vpp-config.py delete <ifname>
        Remove the routes and neighbours that point at <ifname>, set it down and
        delete it.  Prints nothing.  An interface that is already gone is
        success.  Routes go first because VPP keeps a /32 whose interface was
        deleted, pointing at an index the next interface will reuse.  What to
        remove is read from VPP (``show ip neighbors``, then ``show ip fib``
        per neighbour), so a /32 whose neighbour is already gone is not found.

<ifname> must look like ``VirtualEthernet<n>/<n>/<n>``.

Environment:
    VPPCTL                    vppctl executable (default: ``vppctl`` on PATH)
    VPP_CLI_SOCKET            VPP CLI socket, passed as ``vppctl -s PATH``
                              (default: vppctl's own default)
    VPPCTL_TIMEOUT            seconds to wait for each vppctl run (default 5; the
                              plugin's tool_timeout bounds the whole run)
    VPP_CONFIG_UNNUMBERED_TO  interface ``config`` borrows its address from
                              (default ``loop0``, the node's gateway loopback)

Exit status:
    0  success (for ``delete``, also: the interface was already gone)
    1  VPP or vppctl failed: error text, unexpected output, non-zero exit,
       timeout, or vppctl could not be run
    2  invalid arguments or environment; nothing was run
"""

import argparse
import ipaddress
import math
import os
import posixpath
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass

PROG = "vpp-config"
DEFAULT_TIMEOUT = 5.0
DEFAULT_LOOPBACK = "loop0"
# sun_path holds 108 bytes including the NUL; VPP silently cuts longer paths,
# leaving a socket the pod's frontend can never find.
MAX_SOCKET_PATH_BYTES = 107

IFNAME_RE = re.compile(r"VirtualEthernet[0-9]+/[0-9]+/[0-9]+")
MAC_RE = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}")
# vppctl joins its arguments with spaces, so every argument must be one CLI
# token: these character sets exclude whitespace, quotes and shell syntax.
SOCKET_PATH_RE = re.compile(r"/[A-Za-z0-9._+,:=@/-]*")
LOOPBACK_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9._/-]*")
# How VPP reports a failed command, e.g. "show: unknown input `tap'" or
# "create vhost-user: vhost_user_create_if returned -79".
ERROR_LINE_RE = re.compile(r"[a-z][a-z0-9 _-]*: .+")

CREATE_RETVAL_RE = re.compile(r"create vhost-user: vhost_user_create_if returned (-?[0-9]+)")
CREATE_RETVAL_HINTS = {
    -79: "an interface already uses this socket path",
    -12: "cannot bind the socket; does its directory exist?",
}
HW_HEADER = ["Name", "Idx", "Link", "Hardware"]
HW_MAC_RE = re.compile(r"\s+Ethernet address ([0-9a-f]{2}(?::[0-9a-f]{2}){5})")
NEIGHBOR_HEADER = ["Age", "IP", "Flags", "Ethernet", "Interface"]
NEIGHBOR_ROW_RE = re.compile(
    r"\s*\S+\s+(?P<ip>\S+)\s+[A-Z]*\s+(?P<mac>[0-9a-f]{2}(?::[0-9a-f]{2}){5})\s+(?P<itf>\S+)"
)
FIB_ENTRY_RE = re.compile(r"(?P<prefix>\S+) fib:[0-9]+ index:[0-9]+ locks:[0-9]+")
FIB_SOURCE_RE = re.compile(r"  (?P<source>\S+) refs:[0-9]+ .*")
FIB_PATH_HOP_RE = re.compile(r"\s+(?P<nh>[0-9.]+) (?P<itf>\S+)")
FIB_FORWARDING_RE = re.compile(r" forwarding: ")


class VppError(Exception):
    """VPP or vppctl failed; the message says which command and how."""


@dataclass(frozen=True)
class Neighbour:
    """One row of ``show ip neighbors``: what ``set ip neighbor del`` needs."""

    ip: ipaddress.IPv4Address
    mac: str
    interface: str


@dataclass(frozen=True)
class Vppctl:
    """How to reach VPP's CLI: the vppctl argv prefix and a per-run timeout."""

    prefix: tuple[str, ...]
    timeout: float

    def run(self, *words: str) -> list[str]:
        """Run one CLI command and return its output lines.

        vppctl ends lines with CRLF and pads them, so lines are right-stripped.
        Only failures vppctl itself notices are raised here; VPP's own errors
        come back as text with exit status 0 and are the caller's to judge.
        """
        command = " ".join(words)
        try:
            proc = subprocess.run(
                [*self.prefix, *words],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise VppError(f"`{command}`: vppctl timed out after {self.timeout:g}s") from None
        except OSError as err:
            raise VppError(f"cannot run {self.prefix[0]!r}: {err.strerror}") from None
        if proc.returncode != 0:
            detail = (proc.stderr.strip() or proc.stdout.strip()).replace("\n", " | ")
            raise VppError(f"`{command}`: vppctl exited {proc.returncode}: {detail}")
        return [line.rstrip() for line in proc.stdout.rstrip().splitlines()]

    def run_silent(self, *words: str) -> None:
        """Run a command that prints nothing on success; any output is a failure."""
        lines = self.run(*words)
        if lines:
            raise failure(" ".join(words), lines)


def failure(command: str, lines: list[str]) -> VppError:
    """Turn unexpected output into an error that quotes VPP's own words."""
    if lines and ERROR_LINE_RE.fullmatch(lines[0]):
        return VppError(f"`{command}` failed: {lines[0]}")
    return VppError(f"`{command}`: unrecognised vppctl output: {' | '.join(lines)!r}")


def create(vpp: Vppctl, socket_path: str) -> str:
    """Create a server-mode vhost-user port, set it up, return its name."""
    words = ("create", "vhost-user", "socket", socket_path, "server")
    lines = vpp.run(*words)
    if len(lines) != 1 or not IFNAME_RE.fullmatch(lines[0]):
        raise with_create_hint(failure(" ".join(words), lines), lines)
    ifname = lines[0]
    try:
        vpp.run_silent("set", "interface", "state", ifname, "up")
    except VppError as err:
        raise undo_create(vpp, ifname, err) from None
    return ifname


def with_create_hint(err: VppError, lines: list[str]) -> VppError:
    """Explain the retvals a CNI ADD actually meets; VPP prints only the number."""
    match = CREATE_RETVAL_RE.fullmatch(lines[0]) if lines else None
    hint = CREATE_RETVAL_HINTS.get(int(match.group(1))) if match else None
    return VppError(f"{err} ({hint})") if hint else err


def undo_create(vpp: Vppctl, ifname: str, err: VppError) -> VppError:
    """Delete a port whose setup failed: the caller never learns its name."""
    try:
        vpp.run_silent("delete", "vhost-user", ifname)
    except VppError as undo_err:
        return VppError(f"{err}; {ifname} is left behind: {undo_err}")
    return VppError(f"{err}; {ifname} was deleted again")


def get_mac(vpp: Vppctl, ifname: str) -> str:
    """Read the port's MAC from ``show hardware-interfaces``."""
    words = ("show", "hardware-interfaces", ifname)
    lines = vpp.run(*words)
    macs = [m.group(1) for line in lines[2:] if (m := HW_MAC_RE.fullmatch(line))]
    shape_ok = len(lines) >= 2 and lines[0].split() == HW_HEADER
    if not shape_ok or lines[1].split()[:1] != [ifname] or len(macs) != 1:
        raise failure(" ".join(words), lines)
    return macs[0]


def configure(vpp: Vppctl, ifname: str, ip: ipaddress.IPv4Address, mac: str, loopback: str) -> None:
    """Wire L3 to the pod: borrow the gateway address, /32 route, static neighbour."""
    vpp.run_silent("set", "interface", "unnumbered", ifname, "use", loopback)
    vpp.run_silent("ip", "route", "add", f"{ip}/32", "via", str(ip), ifname)
    vpp.run_silent("set", "ip", "neighbor", "static", ifname, str(ip), mac)


def delete(vpp: Vppctl, ifname: str) -> None:
    """Undo ``config`` and ``create``, reading from VPP what points at the port.

    ``config`` always adds a neighbour and a /32 for the same address, so the
    neighbour table tells which /32s to look up; the tool keeps no state.
    """
    neighbours = [n for n in list_neighbours(vpp) if n.interface == ifname]
    for neighbour in neighbours:
        prefix = f"{neighbour.ip}/32"
        for next_hop in cli_route_next_hops(vpp, prefix, ifname):
            vpp.run_silent("ip", "route", "del", prefix, "via", next_hop, ifname)
    for neighbour in neighbours:
        vpp.run_silent("set", "ip", "neighbor", "del", ifname, str(neighbour.ip), neighbour.mac)
    remove_interface(vpp, ifname)


def list_neighbours(vpp: Vppctl) -> list[Neighbour]:
    """Parse ``show ip neighbors`` (all interfaces, both families) into IPv4 rows.

    Other interfaces' IPv6 rows are legitimate, so they are parsed and skipped
    rather than rejected.  No output at all is taken as an empty table.
    """
    words = ("show", "ip", "neighbors")
    lines = vpp.run(*words)
    if not lines:
        return []
    rows = [NEIGHBOR_ROW_RE.fullmatch(line) for line in lines[1:]]
    if lines[0].split() != NEIGHBOR_HEADER or not all(rows):
        raise failure(" ".join(words), lines)
    neighbours = []
    for row in filter(None, rows):
        try:
            ip = ipaddress.ip_address(row["ip"])
        except ValueError:
            raise failure(" ".join(words), lines) from None
        if isinstance(ip, ipaddress.IPv4Address):
            neighbours.append(Neighbour(ip, row["mac"], row["itf"]))
    return neighbours


def cli_route_next_hops(vpp: Vppctl, prefix: str, ifname: str) -> list[str]:
    """Next hops of CLI-added paths of exactly ``prefix`` that go via ``ifname``.

    ``show ip fib`` answers with the longest match, so a different prefix in the
    entry line means there is no such route.  Only the ``CLI`` source is ours:
    the ``adjacency`` source comes from the neighbour and goes with it.
    """
    words = ("show", "ip", "fib", prefix)
    lines = vpp.run(*words)
    entry = FIB_ENTRY_RE.fullmatch(lines[1]) if len(lines) >= 2 else None
    if entry is None or not lines[0].startswith("ipv4-VRF:"):
        raise failure(" ".join(words), lines)
    if entry["prefix"] != prefix:
        return []
    next_hops: list[str] = []
    source = None
    for line in lines[2:]:
        if src := FIB_SOURCE_RE.fullmatch(line):
            source = src["source"]
        elif FIB_FORWARDING_RE.match(line):
            source = None
        elif source == "CLI" and (hop := FIB_PATH_HOP_RE.fullmatch(line)) and hop["itf"] == ifname:
            next_hops.append(hop["nh"])
    return next_hops


def remove_interface(vpp: Vppctl, ifname: str) -> None:
    """Set the port down and delete it; a port that is already gone is success.

    The recording shows only how ``delete vhost-user`` reports a missing
    interface, so a failed ``set ... down`` is held back until the delete has
    said whether the interface still existed.
    """
    try:
        vpp.run_silent("set", "interface", "state", ifname, "down")
        down_error = None
    except VppError as err:
        down_error = err
    words = ("delete", "vhost-user", ifname)
    lines = vpp.run(*words)
    if lines == [f"delete vhost-user: unknown input `{ifname}'"]:
        note(f"{ifname} does not exist (already deleted)")
    elif lines:
        raise failure(" ".join(words), lines)
    elif down_error:
        note(f"{ifname} deleted, but setting it down first failed: {down_error}")


def note(message: str) -> None:
    """Tell the operator something that is not a failure."""
    print(f"{PROG}: note: {message}", file=sys.stderr)


def interface_name(value: str) -> str:
    """argparse type: a vhost-user interface name as VPP prints it."""
    if not IFNAME_RE.fullmatch(value):
        raise argparse.ArgumentTypeError(f"not a VirtualEthernet<n>/<n>/<n> name: {value!r}")
    return value


def socket_path(value: str) -> str:
    """argparse type: a normalised absolute path VPP can bind without truncating."""
    if not SOCKET_PATH_RE.fullmatch(value) or posixpath.normpath(value) != value:
        raise argparse.ArgumentTypeError(f"not a normalised absolute path of [A-Za-z0-9._+,:=@/-]: {value!r}")
    if len(value.encode()) > MAX_SOCKET_PATH_BYTES:
        raise argparse.ArgumentTypeError(f"longer than {MAX_SOCKET_PATH_BYTES} bytes: {value!r}")
    return value


def pod_ip(value: str) -> ipaddress.IPv4Address:
    """argparse type: a unicast IPv4 address, optionally written as a /32."""
    address, slash, length = value.partition("/")
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        ip = None
    if ip is None or (slash and length != "32"):
        raise argparse.ArgumentTypeError(f"not an IPv4 address or /32: {value!r}")
    if ip.is_unspecified or ip.is_multicast or ip.is_loopback or ip.is_reserved:
        raise argparse.ArgumentTypeError(f"not a unicast pod address: {value!r}")
    return ip


def mac_address(value: str) -> str:
    """argparse type: a unicast MAC as aa:bb:cc:dd:ee:ff, returned lower-case."""
    mac = value.lower()
    if not MAC_RE.fullmatch(mac):
        raise argparse.ArgumentTypeError(f"not a MAC aa:bb:cc:dd:ee:ff: {value!r}")
    if int(mac[:2], 16) & 1:
        raise argparse.ArgumentTypeError(f"not a unicast MAC: {value!r}")
    return mac


def vppctl_from_env(env: Mapping[str, str]) -> Vppctl:
    """Build the vppctl invocation from the environment, rejecting bad settings."""
    binary = env.get("VPPCTL", "vppctl")
    if not binary:
        raise ValueError("VPPCTL is empty")
    socket = env.get("VPP_CLI_SOCKET")
    if socket is not None and not posixpath.isabs(socket):
        raise ValueError(f"VPP_CLI_SOCKET must be an absolute path: {socket!r}")
    raw_timeout = env.get("VPPCTL_TIMEOUT", str(DEFAULT_TIMEOUT))
    try:
        timeout = float(raw_timeout)
    except ValueError:
        timeout = math.nan
    if not (math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"VPPCTL_TIMEOUT must be a positive number: {raw_timeout!r}")
    prefix = (binary, "-s", socket) if socket is not None else (binary,)
    return Vppctl(prefix, timeout)


def loopback_from_env(env: Mapping[str, str]) -> str:
    """The interface ``config`` makes the port unnumbered to."""
    name = env.get("VPP_CONFIG_UNNUMBERED_TO", DEFAULT_LOOPBACK)
    if not LOOPBACK_NAME_RE.fullmatch(name):
        raise ValueError(f"VPP_CONFIG_UNNUMBERED_TO is not an interface name: {name!r}")
    return name


def build_parser() -> argparse.ArgumentParser:
    """The four subcommands of the vhost_tool protocol."""
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("create").add_argument("socket_path", type=socket_path)
    sub.add_parser("getmac").add_argument("ifname", type=interface_name)
    config = sub.add_parser("config")
    config.add_argument("ifname", type=interface_name)
    config.add_argument("pod_ip", type=pod_ip)
    config.add_argument("pod_mac", type=mac_address)
    sub.add_parser("delete").add_argument("ifname", type=interface_name)
    return parser


def dispatch(args: argparse.Namespace, vpp: Vppctl, loopback: str) -> str | None:
    """Run one subcommand; return what goes on stdout, if anything."""
    match args.command:
        case "create":
            return create(vpp, args.socket_path)
        case "getmac":
            return get_mac(vpp, args.ifname)
        case "config":
            configure(vpp, args.ifname, args.pod_ip, args.pod_mac, loopback)
        case "delete":
            delete(vpp, args.ifname)
    return None


def main() -> int:
    """Validate everything before touching VPP, then run the subcommand."""
    parser = build_parser()
    args = parser.parse_args()
    try:
        vpp = vppctl_from_env(os.environ)
        loopback = loopback_from_env(os.environ) if args.command == "config" else ""
    except ValueError as err:
        parser.error(str(err))
    try:
        output = dispatch(args, vpp, loopback)
    except VppError as err:
        print(f"{PROG} {args.command}: error: {err}", file=sys.stderr)
        return 1
    if output is not None:
        print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
