"""The one error type the CNI layer prints, and the spec's error codes.

    Exception
     +-- CniError(code, msg, details)    printed as the spec's error JSON on stdout

Every failure leaves the plugin as a CniError: the dispatcher passes CniError
through untouched and wraps anything else as code 999, so a runtime can tell
"try again later" (11) from "your config is wrong" (7).
"""

from __future__ import annotations

import enum
from typing import Any


class CniCode(enum.IntEnum):
    INCOMPATIBLE_VERSION = 1
    UNSUPPORTED_FIELD = 2
    UNKNOWN_CONTAINER = 3
    INVALID_ENV = 4
    IO_FAILURE = 5
    DECODE_FAILURE = 6
    INVALID_CONFIG = 7
    TRY_AGAIN_LATER = 11
    PLUGIN_NOT_AVAILABLE = 50
    PLUGIN_NOT_AVAILABLE_LIMITED = 51
    INTERNAL = 999


class CniError(Exception):
    """A failure the runtime should see, with the spec's code and a message naming the problem."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code = int(code)
        self.msg = msg
        self.details = details

    def to_json(self, cni_version: str) -> dict[str, Any]:
        doc: dict[str, Any] = {"cniVersion": cni_version, "code": self.code, "msg": self.msg}
        if self.details:
            doc["details"] = self.details
        return doc

    def __str__(self) -> str:
        return f"{self.msg}: {self.details}" if self.details else self.msg

    def __repr__(self) -> str:
        return f"CniError({self.code}, {self.msg!r}, {self.details!r})"
