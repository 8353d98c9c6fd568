"""GC (spec 1.1.0): remove this network's attachments that the runtime no longer knows.

The runtime lists the attachments still valid in `cni.dev/valid-attachments`;
every record made through *this* network config (`network_identity`: its name and
IPAM section, so another tenant's network of the same name is not this one) that
is not among them is torn down like a DEL (port, IPAM address, files), including
records of ADDs that died halfway. Records of other networks, and those taken over
from an earlier version (which do not say which config made them), are never
touched. IPAM's own GC runs afterwards when the IPAM plugin speaks 1.1.0; with
older ones, the per-attachment IPAM DELs above are what frees their addresses.
"""

from __future__ import annotations

import logging
from typing import Any

from vhostuser_vpp.cni.env import CmdArgs
from vhostuser_vpp.cni.errors import CniCode, CniError
from vhostuser_vpp.plugin import errors
from vhostuser_vpp.plugin.context import prepare
from vhostuser_vpp.plugin.teardown import remove_attachment
from vhostuser_vpp.store.lock import LockTimeout, container_lock
from vhostuser_vpp.store.records import network_identity
from vhostuser_vpp.store.scan import iter_records

log = logging.getLogger(__name__)

VALID_ATTACHMENTS_KEYS = ("cni.dev/valid-attachments", "cni.dev/attachments")


def valid_attachments(config: dict[str, Any]) -> set[tuple[str, str]]:
    for key in VALID_ATTACHMENTS_KEYS:
        if key not in config:
            continue
        entries = config[key]
        if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get("containerID"), str) and isinstance(e.get("ifname"), str)
            for e in entries
        ):
            raise CniError(CniCode.INVALID_CONFIG, f"{key} must be a list of {{containerID, ifname}} objects")
        return {(e["containerID"], e["ifname"]) for e in entries}
    raise CniError(CniCode.INVALID_CONFIG, "GC needs cni.dev/valid-attachments in the config")


def run(args: CmdArgs) -> None:
    inv = prepare(args)
    keep = valid_attachments(args.config)
    failures: list[CniError] = []
    network_id = network_identity(args.config)
    stale = [
        found
        for found in iter_records(inv.conf.cni_dir)
        if found.record.network_id == network_id and (found.container_id, found.ifname) not in keep
    ]
    for found in stale:
        attachment = inv.attachment(found.container_id, found.ifname)
        log.info("GC: removing stale attachment %s/%s", found.container_id, found.ifname)
        ipam_env = {"CNI_CONTAINERID": found.container_id, "CNI_IFNAME": found.ifname}
        try:
            with container_lock(inv.conf.cni_dir, found.container_id, gone=attachment.gone):
                failures.extend(remove_attachment(inv, attachment, ipam_env))
        except LockTimeout as err:
            failures.append(errors.from_lock_timeout(err))
    if inv.ipam.supports("1.1.0"):
        try:
            inv.ipam.call("GC")
        except CniError as err:
            failures.append(err)
    if failures:
        raise errors.combine(failures, "GC")
