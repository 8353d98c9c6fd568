"""`python -m vhostuser_vpp.sim --socket PATH`: the same as `vhostuser-vpp sim`."""

from __future__ import annotations

import argparse
import sys

from vhostuser_vpp.sim import command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vhostuser_vpp.sim", description="Run the VPP binary-API emulator."
    )
    command.add_arguments(parser)
    return command.run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
