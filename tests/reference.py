"""VPP facts the tests compare against, kept in the repository (tests/data/).

Copied from a real VPP 26.06's definitions and observations: the modules' `.api.json`, the
message table VPP returned on connect, a recorded wire transcript and the CRC of every
message per release. Tests read them from here, so they run in any clone; only a VPP
binary, when a test needs one, comes from outside (tests/vpp_instance.py).
"""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
VPP_26_06 = DATA / "vpp-26.06"
CRC_MATRIX = DATA / "crc-matrix.tsv"
TRANSCRIPT = VPP_26_06 / "transcript.json"
MESSAGE_TABLE = VPP_26_06 / "message-table.json"


def full_api_json_paths() -> list[str]:
    """Every module VPP 26.06 defines that the tests may use (more than the product ships:
    a test also deletes loopbacks, dumps addresses, runs CLI commands)."""
    return sorted(str(p) for p in VPP_26_06.glob("*.api.json"))
