"""Names and paths the plugin, its backends and the operator CLI agree on.

Kept free of imports so that the CLI can use them without loading pydantic.
"""

from __future__ import annotations

DEFAULT_CNI_DIR = "/var/lib/cni/vhostuser"
DEFAULT_API_SOCKET = "/run/vpp/api.sock"
DEFAULT_STATS_SOCKET = "/run/vpp/stats.sock"
