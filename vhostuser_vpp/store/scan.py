"""Every attachment's record in a cniDir: what GC, restore and the operator CLI start from.

Records come from `.state/<containerID>/<ifname>.json`, which only root writes. A pod
directory counts only for a container without a `.state` directory (made by an earlier
version or the Go plugin), and its records then as `Attachment.trusted_legacy` makes
them. Nothing here writes: the move into `.state` happens under the container's lock,
in `Attachment.read_record`.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from typing import NamedTuple

from vhostuser_vpp.store import atomic
from vhostuser_vpp.store.attachment import RECORD_SUFFIX, STATE_DIR_NAME, legacy_records
from vhostuser_vpp.store.records import PortRecord

log = logging.getLogger(__name__)


class FoundRecord(NamedTuple):
    container_id: str
    ifname: str
    record: PortRecord


def iter_records(cni_dir: str) -> Iterator[FoundRecord]:
    """Every parsable record, by container ID and ifname; symlinks and dot-entries are
    skipped, unreadable files logged."""
    found: dict[tuple[str, str], PortRecord] = {}
    with_state = set()
    for container_id, dir_fd in _subdirs(os.path.join(cni_dir, STATE_DIR_NAME)):
        with_state.add(container_id)
        for name in sorted(os.listdir(dir_fd)):
            if name.startswith(".") or not name.endswith(RECORD_SUFFIX):
                continue
            try:
                if not stat.S_ISREG(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                    continue
                record = PortRecord.parse(atomic.read_file(dir_fd, name))
            except (OSError, ValueError, TypeError) as exc:
                log.warning("skipping unreadable record %s/%s: %s", container_id, name, exc)
                continue
            found[(container_id, name.removesuffix(RECORD_SUFFIX))] = record
    for container_id, dir_fd in _subdirs(cni_dir):
        if container_id not in with_state:
            for ifname, record in legacy_records(cni_dir, container_id, dir_fd).items():
                found[(container_id, ifname)] = record
    for (container_id, ifname), record in sorted(found.items()):
        yield FoundRecord(container_id=container_id, ifname=ifname, record=record)


def _subdirs(top: str) -> Iterator[tuple[str, int]]:
    """(name, open descriptor) of each directory in `top`, never through a symlink."""
    try:
        entries = sorted(os.scandir(top), key=lambda e: e.name)
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            dir_fd = os.open(entry.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            log.warning("skipping %s: %s", entry.path, exc)
            continue
        try:
            yield entry.name, dir_fd
        finally:
            os.close(dir_fd)
