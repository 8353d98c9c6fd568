"""How the operator subcommands print: tables for people, JSON for scripts, errors on stderr.

stdout carries only the command's answer (a table or one JSON document), so that
`vhostuser-vpp ports -o json | jq` never sees a warning. tabulate is imported when
something is printed, keeping `vhostuser-vpp --help` cheap.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

# Exit codes shared by every operator subcommand (argparse itself exits 2 on usage errors).
EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_VPP_UNREACHABLE = 3


def add_output_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o", "--output", choices=("table", "json"), default="table", help="table (default) or json"
    )


def wants_json(args: argparse.Namespace) -> bool:
    return bool(args.output == "json")


def print_json(doc: Any) -> None:
    print(json.dumps(doc, indent=2))


def print_json_line(doc: Any) -> None:
    """One document a line, flushed: for commands that print until interrupted (`top`)."""
    print(json.dumps(doc, separators=(",", ":")), flush=True)


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> None:
    """`columns` is (key, header) pairs; a missing or None value prints as `-`."""
    from tabulate import tabulate

    body = [[_cell(row.get(key)) for key, _ in columns] for row in rows]
    print(tabulate(body, headers=[header for _, header in columns], tablefmt="simple", disable_numparse=True))


def print_fields(title: str, fields: Sequence[tuple[str, Any]]) -> None:
    """One section of a detail view: a title line, then `name  value` lines."""
    from tabulate import tabulate

    print(f"{title}:")
    body = [[name, _cell(value)] for name, value in fields]
    print(textwrap.indent(tabulate(body, tablefmt="plain", disable_numparse=True), "  "))


def error(command: str, message: str) -> None:
    print(f"vhostuser-vpp {command}: {message}", file=sys.stderr)


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value) or "-"
    return str(value)
