"""Entry point of `vhostuser-vpp`, the operator's tool for the ports on one node.

Each subcommand lives in its own module, listed in `SUBCOMMANDS`. Those modules keep
their heavy imports (vpp_papi, tabulate, the emulator) inside `run()`, so building
the parser stays cheap and `vhostuser-vpp version` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# subcommand -> (module that implements it, one-line help). Each module exposes
# `add_arguments(parser)` and `run(args) -> int`.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "version": ("vhostuser_vpp.cli.version", "print the version of the plugin and its CNI support"),
    "sim": ("vhostuser_vpp.sim.command", "run a VPP API emulator for tests and demos (no packets move)"),
    "ports": ("vhostuser_vpp.cli.ports", "list pod ports: the plugin's records joined with VPP's view"),
    "show": ("vhostuser_vpp.cli.show", "everything about one port: record, files, VPP state, route"),
    "top": ("vhostuser_vpp.cli.top", "packets/s and drops/s of every pod port, refreshed"),
    "trace": ("vhostuser_vpp.cli.trace", "the path through VPP of a pod's packets, to where they went"),
    "gc": ("vhostuser_vpp.cli.gc", "remove ports, records, routes and bridge domains no pod owns"),
    "doctor": ("vhostuser_vpp.cli.doctor", "check that this node can serve the plugin, with fixes"),
    "create": ("vhostuser_vpp.cli.create", "make a vhost-user port outside any pod, for manual tests"),
    "delete": ("vhostuser_vpp.cli.delete", "delete a port made with `create` (others need --force)"),
    "restore": (
        "vhostuser_vpp.cli.restore",
        "after a VPP restart, make the ports the records describe again",
    ),
    "agent": (
        "vhostuser_vpp.agent.command",
        "the node agent: restore ports after VPP restarts, collect leftovers",
    ),
    "install": ("vhostuser_vpp.cli.install", "put the vhostuser plugin into a CNI bin dir, atomically"),
    "uninstall": ("vhostuser_vpp.cli.install", "remove the vhostuser plugin installed by `install`"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vhostuser-vpp",
        description="Inspect and manage the vhost-user ports the vhostuser CNI plugin made on this node.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        module.add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    code: int = module.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
