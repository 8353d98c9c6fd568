"""Which backend serves an attachment: chosen at ADD from `vhost.backend`, then kept.

`auto` prefers VPP's binary API and falls back to `vhost.vhost_tool` when the API
socket does not answer or lacks what the config needs. DEL and CHECK use the
backend recorded at ADD (and its tool path and wiring), not the current config's
choice, so an edited NAD cannot strand the ports it made.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from vhostuser_vpp.backends.base import BackendError, PortBackend
from vhostuser_vpp.backends.tool import ToolBackend
from vhostuser_vpp.cni.errors import CniCode, CniError
from vhostuser_vpp.plugin import errors
from vhostuser_vpp.plugin.context import Invocation
from vhostuser_vpp.store.lock import node_setup_lock_path
from vhostuser_vpp.store.records import PortRecord

if TYPE_CHECKING:
    from vhostuser_vpp.backends.vpp import VppBackend
    from vhostuser_vpp.vpp.client import VppClient

log = logging.getLogger(__name__)

BACKEND_VPP = "vpp"
BACKEND_TOOL = "tool"


def open_for_add(inv: Invocation) -> PortBackend:
    vhost = inv.conf.vhost
    if vhost.backend == BACKEND_TOOL:
        return open_tool(inv, vhost.vhost_tool)
    try:
        return open_vpp(inv, vhost.mode)
    except CniError as vpp_error:
        if vhost.backend == BACKEND_VPP or not vhost.vhost_tool:
            if vhost.backend == "auto":
                vpp_error.details += "; no vhost.vhost_tool is configured to fall back to"
            raise
        log.warning("VPP binary API cannot serve (%s); falling back to vhost_tool", vpp_error)
        return open_tool(inv, vhost.vhost_tool)


def open_recorded(inv: Invocation, record: PortRecord) -> PortBackend:
    """The backend a record names. Records taken over from a pod's directory (the original
    plugin's among them) name no tool: the config's is run, as the node policy allows."""
    if record.backend == BACKEND_VPP:
        from vhostuser_vpp.backends.vpp import PortHandle

        return open_vpp(inv, PortHandle.from_json(record.port).mode or inv.conf.vhost.mode)
    tool = record.vhost_tool or inv.conf.vhost.vhost_tool
    if tool:
        return open_tool(inv, tool, check_options=False)
    return open_for_add(inv)


def open_vpp(inv: Invocation, mode: str) -> PortBackend:
    """Connected; through a connection the process's pool lends (the node agent's), if any."""
    from vhostuser_vpp.backends.vpp import VppBackend, VppOptions
    from vhostuser_vpp.vpp import pool
    from vhostuser_vpp.vpp.ops import VhostOptions

    vhost = inv.conf.vhost
    inv.policy.check_api_socket(vhost.api_socket)
    options = VppOptions(
        api_socket=vhost.api_socket,
        connect_timeout=vhost.connect_timeout,
        call_timeout=vhost.call_timeout,
        mode=mode,
        unnumbered_to=vhost.unnumbered_to,
        create_loopback=vhost.create_loopback,
        bridge_domain=vhost.bridge_domain,
        vhost=VhostOptions(**{name: getattr(vhost, name) for name in VhostOptions._fields}),
        setup_lock=node_setup_lock_path(inv.conf.cni_dir),
    )
    connections = pool.installed()
    if connections is None:
        backend = VppBackend(options)
    else:
        lent = connections.client(vhost.api_socket, vhost.connect_timeout, vhost.call_timeout)
        backend = VppBackend(options, lent, close_client=True)
    try:
        backend.connect()
    except BackendError as err:
        backend.close()
        raise errors.from_backend(err, "VPP binary API") from err
    return backend


def open_for_restore(
    record: PortRecord,
    api_socket: str,
    connect_timeout: float,
    call_timeout: float,
    setup_lock: str,
    client: VppClient,
) -> VppBackend:
    """A connected binary-API backend that makes the recorded port again as ADD made it:
    its options and wiring from the record's handle, the same MAC (so the pod's gwMac in its
    ip4.conf stays true). `restore` has no network config; the API socket is the operator's."""
    from vhostuser_vpp.backends.vpp import PortHandle, VppBackend, VppOptions

    handle = PortHandle.from_json(record.port, port_mac=record.vhostmac or None)
    backend = VppBackend(
        VppOptions(
            api_socket=api_socket,
            connect_timeout=connect_timeout,
            call_timeout=call_timeout,
            mode=handle.mode or "l3",
            unnumbered_to=handle.unnumbered_to or "loop0",
            create_loopback=handle.create_loopback,
            bridge_domain=handle.bridge_domain,
            vhost=handle.vhost,
            setup_lock=setup_lock,
        ),
        client,
    )
    try:
        backend.connect()
    except BackendError:
        backend.close()
        raise
    return backend


def open_tool(inv: Invocation, tool: str | None, check_options: bool = True) -> ToolBackend:
    vhost = inv.conf.vhost
    if not tool:
        raise CniError(CniCode.INVALID_CONFIG, "vhost.backend is 'tool' but vhost.vhost_tool is not set")
    unsupported = vhost.tool_unsupported() if check_options else []
    if unsupported:
        raise CniError(
            CniCode.UNSUPPORTED_FIELD,
            "the vhost_tool backend cannot carry out these settings",
            ", ".join(unsupported),
        )
    inv.policy.check_vhost_tool(tool)
    return ToolBackend(tool, vhost.tool_timeout, inv.args.environ)
