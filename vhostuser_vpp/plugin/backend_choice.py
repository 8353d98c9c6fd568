"""Which backend serves an attachment: chosen at ADD from `vhost.backend`, then kept.

`auto` prefers VPP's binary API and falls back to `vhost.vhost_tool` when the API
socket does not answer or lacks what the config needs. DEL and CHECK use the
backend recorded at ADD (and its tool path and wiring), not the current config's
choice, so an edited NAD cannot strand the ports it made.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from vhostuser_vpp.backends.base import BackendError, PortBackend
from vhostuser_vpp.backends.tool import ToolBackend
from vhostuser_vpp.cni.errors import CniCode, CniError
from vhostuser_vpp.config import VhostConf
from vhostuser_vpp.nodeconf import NodePolicy
from vhostuser_vpp.plugin import errors

log = logging.getLogger(__name__)

BACKEND_VPP = "vpp"
BACKEND_TOOL = "tool"


def open_for_add(vhost: VhostConf, policy: NodePolicy, environ: Mapping[str, str]) -> PortBackend:
    if vhost.backend == BACKEND_TOOL:
        return open_tool(vhost.vhost_tool, vhost, policy, environ)
    try:
        return open_vpp(vhost, policy, vhost.mode)
    except CniError as vpp_error:
        if vhost.backend == BACKEND_VPP or not vhost.vhost_tool:
            if vhost.backend == "auto":
                vpp_error.details += "; no vhost.vhost_tool is configured to fall back to"
            raise
        log.warning("VPP binary API cannot serve (%s); falling back to vhost_tool", vpp_error)
        return open_tool(vhost.vhost_tool, vhost, policy, environ)


def open_recorded(
    backend: str,
    vhost_tool: str,
    port: Mapping[str, Any],
    vhost: VhostConf,
    policy: NodePolicy,
    environ: Mapping[str, str],
) -> PortBackend:
    """The backend an existing record names; records of the original plugin name only a tool."""
    if backend == BACKEND_VPP:
        return open_vpp(vhost, policy, str(port.get("mode", vhost.mode)))
    if vhost_tool:
        return open_tool(vhost_tool, vhost, policy, environ, check_options=False)
    return open_for_add(vhost, policy, environ)


def open_vpp(vhost: VhostConf, policy: NodePolicy, mode: str) -> PortBackend:
    from vhostuser_vpp.backends.vpp import VppBackend, VppOptions

    policy.check_api_socket(vhost.api_socket)
    options = VppOptions(
        api_socket=vhost.api_socket,
        connect_timeout=vhost.connect_timeout,
        call_timeout=vhost.call_timeout,
        mode=mode,
        unnumbered_to=vhost.unnumbered_to,
        create_loopback=vhost.create_loopback,
        bridge_domain=vhost.bridge_domain,
        enable_gso=vhost.enable_gso,
        enable_packed=vhost.enable_packed,
        enable_event_idx=vhost.enable_event_idx,
        disable_mrg_rxbuf=vhost.disable_mrg_rxbuf,
        disable_indirect_desc=vhost.disable_indirect_desc,
        port_mac=vhost.port_mac,
    )
    backend = VppBackend(options)
    try:
        backend.connect()
    except BackendError as err:
        backend.close()
        raise errors.from_backend(err, "VPP binary API") from err
    return backend


def open_tool(
    tool: str | None,
    vhost: VhostConf,
    policy: NodePolicy,
    environ: Mapping[str, str],
    check_options: bool = True,
) -> ToolBackend:
    if not tool:
        raise CniError(CniCode.INVALID_CONFIG, "vhost.backend is 'tool' but vhost.vhost_tool is not set")
    unsupported = vhost.tool_unsupported() if check_options else []
    if unsupported:
        raise CniError(
            CniCode.UNSUPPORTED_FIELD,
            "the vhost_tool backend cannot carry out these settings",
            ", ".join(unsupported),
        )
    policy.check_vhost_tool(tool)
    return ToolBackend(tool, vhost.tool_timeout, environ)
