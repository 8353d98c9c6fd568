"""Walking cniDir for every attachment's record: what GC and the operator CLI start from."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from typing import NamedTuple

from vhostuser_vpp.store import atomic
from vhostuser_vpp.store.records import PortRecord

log = logging.getLogger(__name__)
RECORD_SUFFIX = ".json"


class FoundRecord(NamedTuple):
    container_id: str
    file_name: str
    record: PortRecord


def iter_records(cni_dir: str) -> Iterator[FoundRecord]:
    """Every parsable record; symlinks and dot-directories are skipped, unreadable files logged."""
    try:
        entries = sorted(os.scandir(cni_dir), key=lambda e: e.name)
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
            for name in sorted(os.listdir(dir_fd)):
                if not name.endswith(RECORD_SUFFIX) or name.startswith("."):
                    continue
                if not stat.S_ISREG(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                    continue
                try:
                    record = PortRecord.parse(atomic.read_file(dir_fd, name))
                except (OSError, ValueError, TypeError) as exc:
                    log.warning("skipping unreadable record %s/%s: %s", entry.path, name, exc)
                    continue
                yield FoundRecord(container_id=entry.name, file_name=name, record=record)
        finally:
            os.close(dir_fd)
