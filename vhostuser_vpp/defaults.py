"""Names and paths the plugin, its backends and the operator CLI agree on.

Kept free of imports so that the CLI can use them without loading pydantic.
"""

from __future__ import annotations

DEFAULT_CNI_DIR = "/var/lib/cni/vhostuser"
DEFAULT_API_SOCKET = "/run/vpp/api.sock"

# Every VPP interface the plugin makes carries `cni:<cid12>:<ifname>` (VPP tags hold
# 63 characters; a full 64-character container ID would not fit), so that DEL, GC and
# the CLI can tell the plugin's ports from everybody else's after any crash.
TAG_PREFIX = "cni"


def ownership_tag(container_id: str, ifname: str) -> str:
    return f"{TAG_PREFIX}:{container_id[:12]}:{ifname}"
