"""`python -m vhostuser_vpp.sim --socket PATH`: the same as `vhostuser-vpp sim`."""

from __future__ import annotations

import argparse
import sys

from vhostuser_vpp.cli import sim


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vhostuser_vpp.sim", description="Run the VPP binary-API emulator."
    )
    sim.add_arguments(parser)
    return sim.run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
