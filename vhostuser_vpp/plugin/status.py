"""STATUS (spec 1.1.0): could an ADD work right now?

Code 50 when the backend cannot serve. The IPAM plugin is asked too when it
speaks 1.1.0; Debian's host-local stops at 1.0.0 and answers STATUS with
"missing containerID", so with it only our own side is checked.
"""

from __future__ import annotations

import logging

from vhostuser_vpp.backends.base import BackendError
from vhostuser_vpp.cni.env import CmdArgs
from vhostuser_vpp.cni.errors import CniCode, CniError
from vhostuser_vpp.plugin import backend_choice
from vhostuser_vpp.plugin.context import prepare

log = logging.getLogger(__name__)


def run(args: CmdArgs) -> None:
    inv = prepare(args)
    try:
        backend = backend_choice.open_for_add(inv)
    except CniError as err:
        raise CniError(CniCode.PLUGIN_NOT_AVAILABLE, f"no backend available: {err.msg}", err.details) from err
    try:
        backend.status()
    except BackendError as err:
        raise CniError(
            CniCode.PLUGIN_NOT_AVAILABLE, f"{backend.name} backend: {err.msg}", err.details
        ) from err
    finally:
        backend.close()
    if inv.ipam.supports("1.1.0"):
        inv.ipam.call("STATUS")
    else:
        log.info("IPAM plugin %s does not speak 1.1.0; not asking its STATUS", inv.conf.ipam.type)
