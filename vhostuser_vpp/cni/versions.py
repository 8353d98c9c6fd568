"""CNI spec versions: which ones we speak, and which verbs each one allows."""

from __future__ import annotations

import re

SUPPORTED_VERSIONS: tuple[str, ...] = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
LATEST = SUPPORTED_VERSIONS[-1]

# The spec added CHECK in 0.4.0 and STATUS/GC in 1.1.0; a runtime that asks for
# them with an older config gets code 1 (incompatible), as libcni's skel does.
MIN_VERSION_FOR_COMMAND: dict[str, str] = {
    "CHECK": "0.4.0",
    "STATUS": "1.1.0",
    "GC": "1.1.0",
}

_SEMVER = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def parse(version: str) -> tuple[int, int, int]:
    """Turn "1.0.0" into (1, 0, 0); raises ValueError for anything else."""
    match = _SEMVER.fullmatch(version)
    if match is None:
        raise ValueError(f"invalid version {version!r}: want MAJOR.MINOR.PATCH")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def at_least(version: str, minimum: str) -> bool:
    return parse(version) >= parse(minimum)


def is_legacy_result(version: str) -> bool:
    """True for the 0.3.x/0.4.0 result shape (per-IP `version` field, `interface` index)."""
    return parse(version) < (1, 0, 0)


def highest_common(ours: tuple[str, ...], theirs: list[str], ceiling: str) -> str | None:
    """The highest version both sides speak, not above `ceiling` (the config's version)."""
    common = [v for v in ours if v in theirs and parse(v) <= parse(ceiling)]
    return max(common, key=parse) if common else None
