"""The operator's view of one node: the plugin's records on disk joined with VPP's ports.

Every operator subcommand starts here. A record and a VPP port belong together when the
port has the record's socket path and its ownership tag (`cni:<cid12>:<ifname>`), the
same test the plugin's DEL uses; the VirtualEthernet name is only shown, never trusted,
because VPP hands a freed name and sw_if_index to the next port. Records of the `tool`
backend match by socket path alone, since `vhost_tool` does not tag its ports.

The join (`join`) and the feature decoding (`decode_features`) are pure, so they are
tested without VPP; VPP's side comes from `vpp.ops` (`build_view`), the flags and the
connection from `cli.session`.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vhostuser_vpp.store.attachment import Attachment
from vhostuser_vpp.store.records import PHASE_PENDING, PortRecord
from vhostuser_vpp.store.scan import iter_records
from vhostuser_vpp.tags import MANUAL_TAG_PREFIX, ownership_tag, parse_owner_tag
from vhostuser_vpp.vpp.api_files import API_JSON_DIR
from vhostuser_vpp.vpp.ops import Vpp, VppPort

STATUS_OK = "ok"
STATUS_MISSING = "missing in VPP"
STATUS_ORPHAN = "orphan in VPP"
STATUS_STALE = "stale files"
STATUS_MANUAL = "manual"
STATUS_UNMANAGED = "not cni"
PROBLEM_STATUSES = frozenset({STATUS_MISSING, STATUS_ORPHAN, STATUS_STALE})

_FEATURE_ENUMS = {"virtio_net_features_first_32": 0, "virtio_net_features_last_32": 32}


# -- the node's side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalRecord:
    """One attachment's trusted record (`record_path`, in `.state`) and the pod's files."""

    container_id: str
    ifname: str
    record: PortRecord
    record_path: str
    # The pod's -ip4.conf / -ip6.conf, for the families of its addresses.
    ip_conf_paths: tuple[str, ...]
    socket_path: str
    socket_present: bool

    @property
    def owner_tag(self) -> str:
        return self.record.tag or ownership_tag(self.container_id, self.ifname)


def load_records(cni_dir: str) -> list[LocalRecord]:
    found = []
    for entry in iter_records(cni_dir):
        attachment = Attachment(cni_dir, entry.container_id, entry.ifname)
        found.append(
            LocalRecord(
                container_id=entry.container_id,
                ifname=entry.ifname,
                record=entry.record,
                record_path=attachment.state_path,
                ip_conf_paths=tuple(
                    os.path.join(attachment.container_dir, name)
                    for name in attachment.ip_conf_names_of(entry.record)
                ),
                socket_path=attachment.socket_path,
                socket_present=is_socket(attachment.socket_path),
            )
        )
    return found


def is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.lstat(path).st_mode)
    except OSError:
        return False


# -- the join ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PortRow:
    """One attachment or VPP port, with what is wrong with it (`status`)."""

    status: str
    container_id: str  # the full ID from a record; the tag's 12 characters for an orphan
    ifname: str
    local: LocalRecord | None
    port: VppPort | None

    @property
    def problem(self) -> bool:
        return self.status in PROBLEM_STATUSES

    def summary(self) -> dict[str, Any]:
        """The row as the JSON of `ports` and `show` carries it."""
        record, port = (self.local.record if self.local else None), self.port
        return {
            "pod": (record.pod_name or None) if record else None,
            "pod_uid": record.pod.get("uid") if record else None,
            "container_id": self.container_id,
            "ifname": self.ifname,
            "status": self.status,
            "network": record.network if record else None,
            "backend": record.backend if record else None,
            "phase": record.phase if record else None,
            "interface": port.name if port else (record.vhostname or None if record else None),
            "sw_if_index": port.sw_if_index if port else None,
            "tag": port.tag if port else None,
            "socket": self.local.socket_path if self.local else (port.socket_path if port else None),
            "socket_present": self.local.socket_present if self.local else None,
            "admin_up": port.admin_up if port else None,
            "link_up": port.link_up if port else None,
            "frontend_connected": port.frontend_connected if port else None,
            "num_regions": port.num_regions if port else None,
            "sock_errno": port.sock_errno if port else None,
            # The first address (the only one before IPv6), and all of them.
            "pod_ip": record.pod_ips[0] if record and record.pod_ips else None,
            "pod_ips": list(record.pod_ips) if record else [],
            "pod_mac": (record.ifmac or None) if record else None,
            "gateway_mac": (record.vhostmac or None) if record and record.vhostmac else _mac(port),
        }


def _mac(port: VppPort | None) -> str | None:
    return port.mac if port else None


def join(records: Iterable[LocalRecord], ports: Iterable[VppPort]) -> list[PortRow]:
    """Every record with the port it owns, then every port no record owns."""
    unclaimed = list(ports)
    rows = []
    for local in records:
        port = next((p for p in unclaimed if _owns(local, p)), None)
        if port is not None:
            unclaimed.remove(port)
        rows.append(PortRow(_record_status(local, port), local.container_id, local.ifname, local, port))
    for port in unclaimed:
        owner = parse_owner_tag(port.tag)
        if owner is not None:
            rows.append(PortRow(STATUS_ORPHAN, owner[0], owner[1], None, port))
        else:
            status = STATUS_MANUAL if port.tag.startswith(MANUAL_TAG_PREFIX) else STATUS_UNMANAGED
            rows.append(PortRow(status, "", "", None, port))
    return sorted(rows, key=lambda r: (r.container_id, r.ifname, r.port.sw_if_index if r.port else -1))


def _owns(local: LocalRecord, port: VppPort) -> bool:
    if port.socket_path != local.socket_path:
        return False
    return local.record.backend == "tool" or port.tag == local.owner_tag


def _record_status(local: LocalRecord, port: VppPort | None) -> str:
    if local.record.phase == PHASE_PENDING:
        return STATUS_STALE  # an ADD that died halfway (or is running right now)
    if port is None:
        return STATUS_MISSING
    if not local.socket_present and local.record.socket_mode == "server":
        return STATUS_STALE  # VPP made the socket; in client mode the pod's app makes it
    return STATUS_OK


def owned_rows(rows: Iterable[PortRow], include_all: bool) -> list[PortRow]:
    """Rows of the plugin's attachments and `cni:` ports; with `include_all`, every port."""
    return [r for r in rows if include_all or r.status not in (STATUS_MANUAL, STATUS_UNMANAGED)]


def find(rows: Iterable[PortRow], target: str) -> list[PortRow]:
    """The rows a command's TARGET names: its pod (`namespace/name`, or the bare name), the
    pod's interface name (net1), VPP's interface name, or a container ID prefix (an
    orphan's ID is its tag's 12 characters, so a full ID matches too). Several rows may
    match; commands refuse to pick one (`cli.show`)."""
    found = []
    for row in rows:
        pod = row.local.record.pod_name if row.local else ""
        by_pod = bool(pod) and target in (pod, pod.split("/", 1)[1])
        by_name = row.port is not None and row.port.name == target
        by_ifname = bool(row.ifname) and row.ifname == target
        cid = row.container_id
        by_cid = bool(cid) and cid.startswith(target[: len(cid)])
        if by_pod or by_name or by_ifname or by_cid:
            found.append(row)
    return found


def build_view(vpp: Vpp, cni_dir: str) -> list[PortRow]:
    # VPP first: ADD writes its pending record before it creates the port, so a port seen
    # here has its record on disk by the time the records are read, and no running ADD's
    # port is mistaken for an orphan.
    ports = vpp.vhost_ports()
    return join(load_records(cni_dir), ports)


# -- decoding ----------------------------------------------------------------------------------


@functools.cache
def _feature_names() -> dict[int, str]:
    """Bit -> short name (VIRTIO_NET_F_API_MRG_RXBUF -> MRG_RXBUF), from VPP's own enums."""
    doc = json.loads((API_JSON_DIR / "virtio_types.api.json").read_text())
    names: dict[int, str] = {}
    for enum in doc["enums"]:
        offset = _FEATURE_ENUMS.get(enum[0])
        if offset is None:
            continue
        for item in enum[1:]:
            if isinstance(item, list):
                name, value = item
                names[offset + int(value).bit_length() - 1] = str(name).split("_API_", 1)[-1]
    return names


def decode_features(first_32: int, last_32: int) -> list[str]:
    """Negotiated virtio feature names, lowest bit first; unnamed bits as `bit<N>`."""
    bits = (last_32 << 32) | first_32
    names = _feature_names()
    return [names.get(bit, f"bit{bit}") for bit in range(64) if bits >> bit & 1]


def errno_text(value: int) -> str:
    if not value:
        return "0"
    return f"{value} ({errno.errorcode.get(value, 'unknown')})"
