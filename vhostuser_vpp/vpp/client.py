"""One checked way to talk to VPP: connect, call, dump, close.

Every message goes through `call` or `dump`, which apply the call timeout,
turn vpp_papi's transport exceptions into `VppUnavailable` and a non-zero
`retval` into `VppApiError`. vpp_papi is imported on connect, not at import
time, so code paths that never reach VPP do not pay for it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from vhostuser_vpp.vpp.api_files import api_json_paths
from vhostuser_vpp.vpp.errors import VppApiError, VppIncompatible, VppUnavailable

log = logging.getLogger(__name__)

CLIENT_NAME = "vhostuser-cni"


class VppClient:
    def __init__(
        self,
        socket_path: str,
        connect_timeout: float,
        call_timeout: float,
        api_modules: Sequence[str] | None = None,
    ) -> None:
        """`api_modules`: the api_json modules to load (see `api_json_paths`); None loads all."""
        self.socket_path = socket_path
        self.connect_timeout = connect_timeout
        self.call_timeout = call_timeout
        self.api_modules = api_modules
        self._papi: Any = None
        # A call that timed out or lost its transport: replies may still be on their way,
        # so the connection is not lent to anyone else (vpp/pool.py).
        self.broken = False

    def connect(self) -> None:
        if not os.path.exists(self.socket_path):
            raise VppUnavailable(f"no VPP API socket at {self.socket_path} (is VPP running with socksvr?)")
        from vpp_papi import VPPApiClient

        from vhostuser_vpp.vpp.transport import CallerReadTransport

        papi = VPPApiClient(
            apifiles=api_json_paths(self.api_modules),
            use_socket=True,
            server_address=self.socket_path,
            read_timeout=self.connect_timeout,
            async_thread=False,
        )
        papi.transport = CallerReadTransport(papi, self.connect_timeout, self.socket_path)
        try:
            papi.connect(CLIENT_NAME)
        except (OSError, papi.VPPIOError) as exc:
            raise VppUnavailable(f"cannot connect to VPP at {self.socket_path}: {exc}") from exc
        except Exception as exc:
            raise VppUnavailable(
                f"VPP at {self.socket_path} did not complete the handshake: {exc!r}"
            ) from exc
        self._papi = papi
        log.debug("connected to VPP at %s", self.socket_path)

    @property
    def connected(self) -> bool:
        return self._papi is not None

    def close(self) -> None:
        papi, self._papi = self._papi, None
        if papi is not None:
            disconnect(papi)

    def offers(self, message: str) -> bool:
        """True when VPP has `message` with the CRC of our definition."""
        return hasattr(self._connected().api, message)

    def why_missing(self, message: str) -> str:
        papi = self._connected()
        ours = papi.messages.get(message)
        prefix = f"{message}_"
        theirs = [name for name in papi.transport.message_table if name.startswith(prefix)]
        if ours is not None and theirs:
            return f"{message} (VPP has {theirs[0]}, we speak {message}_{ours.crc[2:]})"
        return f"{message} (not offered)"

    def call(self, message: str, **fields: Any) -> Any:
        reply = self._send(message, fields)
        retval = getattr(reply, "retval", 0)
        if retval != 0:
            raise VppApiError(message, retval, reply)
        return reply

    def dump(self, message: str, **fields: Any) -> list[Any]:
        details: list[Any] = self._send(message, fields)
        return details

    def _send(self, message: str, fields: dict[str, Any]) -> Any:
        papi = self._connected()
        function = getattr(papi.api, message, None)
        if function is None:
            raise VppIncompatible(f"VPP does not offer {self.why_missing(message)}")
        log.debug("VPP %s %s", message, fields)
        try:
            return function(_timeout=self.call_timeout, **fields)
        except (OSError, papi.VPPIOError) as exc:
            self.broken = True
            raise VppUnavailable(
                f"VPP did not answer {message} within {self.call_timeout:g}s: {exc}"
            ) from exc

    def _connected(self) -> Any:
        if self._papi is None:
            raise VppUnavailable("not connected to VPP")
        return self._papi


def disconnect(papi: Any) -> None:
    """Ends a vpp_papi connection; a VPP already gone is no error."""
    try:
        papi.disconnect()
    except (OSError, papi.VPPIOError) as exc:
        log.debug("disconnect from VPP: %s", exc)
