"""vpp_papi's decoded replies as plain data, so that answers from two VPPs compare with ==."""

from __future__ import annotations

import enum
from typing import Any


def plain(value: Any) -> Any:
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items() if k != "_0"}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return int(value.value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)
