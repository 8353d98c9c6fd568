"""Which backend serves an attachment: chosen at ADD from `vhost.backend`, then kept.

DEL and CHECK use the backend recorded at ADD (and its tool path), not the
current config's choice, so an edited NAD cannot strand the ports it made.
"""

from __future__ import annotations

from collections.abc import Mapping

from vhostuser_vpp.backends.base import PortBackend
from vhostuser_vpp.backends.tool import ToolBackend
from vhostuser_vpp.cni.errors import CniCode, CniError
from vhostuser_vpp.config import VhostConf
from vhostuser_vpp.nodeconf import NodePolicy

BACKEND_VPP = "vpp"
BACKEND_TOOL = "tool"


def open_for_add(vhost: VhostConf, policy: NodePolicy, environ: Mapping[str, str]) -> PortBackend:
    if vhost.backend == BACKEND_VPP or (vhost.backend == "auto" and not vhost.vhost_tool):
        raise CniError(
            CniCode.INVALID_CONFIG,
            "no backend can serve this config",
            "the VPP binary-API backend is not part of this build yet; "
            "set vhost.vhost_tool (and allow it in the node config) to use the tool backend",
        )
    return open_tool(vhost.vhost_tool, vhost, policy, environ)


def open_recorded(
    backend: str, vhost_tool: str, vhost: VhostConf, policy: NodePolicy, environ: Mapping[str, str]
) -> PortBackend:
    """The backend an existing record names; records of the original plugin name only a tool."""
    if backend in ("", BACKEND_TOOL) and vhost_tool:
        return open_tool(vhost_tool, vhost, policy, environ)
    return open_for_add(vhost, policy, environ)


def open_tool(
    tool: str | None, vhost: VhostConf, policy: NodePolicy, environ: Mapping[str, str]
) -> ToolBackend:
    if not tool:
        raise CniError(CniCode.INVALID_CONFIG, "vhost.backend is 'tool' but vhost.vhost_tool is not set")
    policy.check_vhost_tool(tool)
    return ToolBackend(tool, vhost.tool_timeout, environ)
