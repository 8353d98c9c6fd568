"""What can go wrong between us and VPP, named so callers can decide what to do.

    VppError
     +-- VppUnavailable       no socket, refused, no reply in time, connection lost
     +-- VppIncompatible      a needed message is missing or has another CRC
     +-- VppApiError          VPP answered with a non-zero retval
     +-- SocketInUse          a vhost-user port exists on that socket already (-79)

vpp_papi raises its own exceptions for transport faults and none for a
non-zero retval; `client.VppClient` maps the former and checks the latter.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path
from typing import Any

_ERRORS_TSV = Path(__file__).with_name("api_errors.tsv")


class VppError(Exception):
    pass


class VppUnavailable(VppError):
    pass


class VppIncompatible(VppError):
    pass


class VppApiError(VppError):
    """`reply` is kept: some refusals carry data (-79 names the existing interface)."""

    def __init__(self, message: str, retval: int, reply: Any = None) -> None:
        self.message = message
        self.retval = retval
        self.reply = reply
        super().__init__(f"{message} returned {retval} ({error_name(retval)})")


class SocketInUse(VppError):
    def __init__(self, socket_path: str, sw_if_index: int) -> None:
        self.socket_path = socket_path
        self.sw_if_index = sw_if_index
        super().__init__(f"VPP already has a port on {socket_path} (sw_if_index {sw_if_index})")


@functools.cache
def _error_table() -> dict[int, tuple[str, str]]:
    """VPP 26.06's VNET_API_ERROR_* codes; read only when an error is reported."""
    table: dict[int, tuple[str, str]] = {}
    with _ERRORS_TSV.open(newline="") as f:
        for row in csv.reader((line for line in f if not line.startswith("#")), delimiter="\t"):
            if len(row) == 3 and row[0].lstrip("-").isdigit():
                table[int(row[0])] = (row[1], row[2])
    return table


def error_name(retval: int) -> str:
    name, text = _error_table().get(retval, ("", ""))
    return f"{name.removeprefix('VNET_API_ERROR_')}: {text}" if name else "unknown error"
