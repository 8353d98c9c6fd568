"""`vhostuser-vpp version`: what is installed, for bug reports and node audits."""

from __future__ import annotations

import argparse
import json
import platform

from vhostuser_vpp import __version__
from vhostuser_vpp.cni.versions import SUPPORTED_VERSIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    info = {
        "version": __version__,
        "cniVersions": list(SUPPORTED_VERSIONS),
        "python": platform.python_version(),
    }
    if args.output == "json":
        print(json.dumps(info, indent=2))
    else:
        print(f"vhostuser-vpp {__version__}")
        print(f"CNI spec versions: {' '.join(SUPPORTED_VERSIONS)}")
        print(f"Python {info['python']}")
    return 0
