"""An emulated VPP 26.06 binary API, for tests and demos.

It listens on a unix API socket and answers, message for message, like VPP does for every
message the plugin uses, so a plain `vpp_papi.VPPApiClient` connects to it unchanged. It
models interfaces, vhost-user ports (with real unix sockets), routes, neighbours, bridge
domains and interface events, and can fail on purpose (`faults`). It is not a dataplane:
no packets move.
"""

from __future__ import annotations

from vhostuser_vpp.sim.faults import Faults
from vhostuser_vpp.sim.server import Emulator, PortView

__all__ = ["Emulator", "Faults", "PortView"]
