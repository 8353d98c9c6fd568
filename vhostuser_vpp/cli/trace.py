"""`vhostuser-vpp trace TARGET`: the path through VPP of packets a pod sends, to where they
were sent or dropped.

VPP's packet tracer, through the API (`cli_inband`, as `vppctl` would): the trace is
cleared, armed at `vhost-user-input` for `--capture` packets (it cannot be armed for one
interface: every vhost-user port's packets are captured, and only the pod's are shown),
read until `--count` of the pod's packets are in or `--wait` passes, and cleared again
whatever happens, so no trace is left running. The pod's packets are those that came in
on its port, and those VPP sent out of it (traced from where they came in: what reached
the pod and how). Each is shown as the nodes it went through and its fate: the interface
it was sent out of, or the node and reason of its drop.
"""

from __future__ import annotations

import argparse
import re
import time
from typing import Any, NamedTuple

from vhostuser_vpp.cli import output, session, target
from vhostuser_vpp.vpp.ops import Vpp

INPUT_NODE = "vhost-user-input"
_POLL_S = 0.2
_RECORD = re.compile(r"^\d{2}:\d{2}:\d{2}:\d+: (\S+)$")
_PACKET = re.compile(r"^Packet (\d+)$")
_DROP_NODES = ("error-drop", "drop", "error-punt", "punt")


class TracedPacket(NamedTuple):
    number: int
    # (node, its detail lines) in the order the packet went through them
    records: list[tuple[str, list[str]]]

    @property
    def interface(self) -> str:
        """The interface it came in on: the input node's first detail line names it."""
        details = self.records[0][1] if self.records else []
        return details[0].split()[0] if details and details[0].split() else ""

    @property
    def path(self) -> list[str]:
        return [node for node, _ in self.records]

    @property
    def sent_out(self) -> str:
        """The interface VPP sent it out of ("" when dropped): its `<name>-output` node."""
        outputs = [n.removesuffix("-output") for n in self.path if n.endswith("-output")]
        return outputs[-1] if outputs and not self.dropped else ""

    @property
    def dropped(self) -> bool:
        return bool(self.records) and self.records[-1][0] in _DROP_NODES

    @property
    def fate(self) -> str:
        if not self.records:
            return "unknown"
        node, details = self.records[-1]
        if self.dropped:
            return f"dropped: {details[0] if details else node}"
        return f"sent out of {self.sent_out}" if self.sent_out else f"ended at {node}"

    def summary(self) -> dict[str, Any]:
        return {
            "packet": self.number,
            "interface": self.interface,
            "sent_out": self.sent_out or None,
            "path": self.path,
            "fate": self.fate,
            "trace": [{"node": node, "details": details} for node, details in self.records],
        }


def parse(text: str) -> list[TracedPacket]:
    """`show trace` output as packets (any number of threads)."""
    packets: list[TracedPacket] = []
    for line in text.splitlines():
        packet = _PACKET.match(line)
        record = _RECORD.match(line)
        if packet:
            packets.append(TracedPacket(int(packet.group(1)), []))
        elif record and packets:
            packets[-1].records.append((record.group(1), []))
        elif line.strip() and packets and packets[-1].records and not line.startswith("---"):
            packets[-1].records[-1][1].append(line.strip())
    return packets


def add_arguments(parser: argparse.ArgumentParser) -> None:
    target.add_argument(parser, "whose packets")
    parser.add_argument("--count", type=int, default=5, metavar="N", help="packets to show (5)")
    parser.add_argument(
        "--capture",
        type=int,
        default=500,
        metavar="N",
        help="packets VPP traces at most, from every vhost-user port (500)",
    )
    parser.add_argument(
        "--wait", type=float, default=10.0, metavar="SECONDS", help="how long to wait for packets (10)"
    )
    session.add_vpp_arguments(parser)
    session.add_cni_dir_argument(parser)
    output.add_output_argument(parser)


def run(args: argparse.Namespace) -> int:
    def body(vpp: Vpp) -> int:
        row = target.one("trace", args, vpp)
        if row is None:
            return output.EXIT_PROBLEMS
        if row.port is None:
            output.error("trace", f"{args.target!r} has no port in VPP ({row.status})")
            return output.EXIT_PROBLEMS
        name = row.port.name
        packets = capture(vpp, name, args.count, args.capture, args.wait)
        if output.wants_json(args):
            output.print_json({"interface": name, "packets": [p.summary() for p in packets]})
        else:
            print_packets(name, packets, args.wait)
        return output.EXIT_OK if packets else output.EXIT_PROBLEMS

    return session.run_with_vpp("trace", args, body)


def capture(vpp: Vpp, interface: str, count: int, limit: int, wait_s: float) -> list[TracedPacket]:
    vpp.cli("clear trace")
    try:
        vpp.cli(f"trace add {INPUT_NODE} {limit}")
        deadline = time.monotonic() + wait_s
        while True:
            traced = parse(vpp.cli(f"show trace max {limit}"))
            mine = [p for p in traced if interface in (p.interface, p.sent_out)]
            if len(mine) >= count or time.monotonic() >= deadline:
                return mine[:count]
            time.sleep(_POLL_S)
    finally:
        vpp.cli("clear trace")


def print_packets(interface: str, packets: list[TracedPacket], wait_s: float) -> None:
    if not packets:
        print(f"no packet came in on {interface} within {wait_s:g} s: is the pod's app sending?")
        return
    for packet in packets:
        print(f"packet {packet.number} from {packet.interface}: {' -> '.join(packet.path)}")
        print(f"  {packet.fate}")
        for node, details in packet.records:
            print(f"  {node}")
            for line in details:
                print(f"      {line}")
