"""DEL: succeeds however often it runs and whatever is already gone.

A failing DEL leaves a pod stuck Terminating, so DEL keeps going past errors,
always releases the IPAM address, and reports what failed all together. An
empty CNI_NETNS is fine: the port never lived in the pod's namespace.
"""

from __future__ import annotations

import logging

from vhostuser_vpp.cni.env import CmdArgs
from vhostuser_vpp.cni.errors import CniError
from vhostuser_vpp.plugin import errors
from vhostuser_vpp.plugin.context import prepare
from vhostuser_vpp.plugin.teardown import release_address, remove_attachment
from vhostuser_vpp.store import node_files
from vhostuser_vpp.store.attachment import StoreError
from vhostuser_vpp.store.lock import LockTimeout, container_lock

log = logging.getLogger(__name__)


def run(args: CmdArgs) -> None:
    inv = prepare(args)
    attachment = inv.attachment()
    failures: list[CniError] = []
    if not inv.cni_dir_allowed or not attachment.fits():
        # ADD refuses such a cniDir, and a container ID too long for a socket path under
        # it: nothing of ours can exist, but IPAM may still hold an address.
        failures.extend(release_address(inv))
    else:
        try:
            with container_lock(inv.conf.cni_dir, attachment.container_id, gone=attachment.gone):
                failures.extend(remove_attachment(inv, attachment))
        except FileNotFoundError:
            # No cniDir at all: nothing of ours exists, but IPAM may still hold an address.
            failures.extend(release_address(inv))
        except StoreError as err:
            failures.append(errors.from_store(err))
        except LockTimeout as err:
            failures.append(errors.from_lock_timeout(err))
    device_info_file = inv.conf.runtime_config.device_info_file
    if device_info_file:
        try:
            inv.policy.check_device_info_file(device_info_file)
        except CniError as err:
            log.warning("no device-info file to remove: %s", err)
        else:
            node_files.remove_device_info(device_info_file)
    if failures:
        raise errors.combine(failures, "DEL")
