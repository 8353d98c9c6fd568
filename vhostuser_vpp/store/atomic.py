"""Atomic file writes inside one directory, never following a symlink.

A pod (and a crashed plugin) must only ever see a whole file or none: write a
temporary file, fsync it, rename it over the target, fsync the directory. All
operations are relative to an open directory descriptor, so a symlink planted
where a file or the directory should be cannot redirect a write as root.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable

_TMP_SUFFIX = ".tmp"
_TMP_TAG_LEN = 8


def write_file(
    dir_fd: int,
    name: str,
    data: bytes,
    mode: int = 0o644,
    *,
    owner: tuple[int, int] | None = None,
    check: Callable[[str], None] | None = None,
    replace: bool = True,
    sync_dir: bool = True,
) -> bool:
    """Writes `name` whole. `check(tmp_name)` may inspect (or run) the finished temporary
    file and raise to keep the old one. With `replace=False` an existing file is never
    replaced, even one that appears meanwhile (the file is linked into place, which
    fails where rename would overwrite); returns False then. `sync_dir=False` leaves the
    directory's fsync to a write into it that follows in the same operation: the file is
    whole either way, only the rename's durability waits for that one."""
    tmp = f".{name}.{os.urandom(4).hex()}{_TMP_SUFFIX}"  # not `secrets`: it loads OpenSSL
    fd = os.open(
        tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd
    )
    try:
        try:
            os.fchmod(fd, mode)
            if owner is not None:
                os.fchown(fd, *owner)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if check is not None:
            check(tmp)
        if replace:
            os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        else:
            try:
                os.link(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
            except FileExistsError:
                return False
            finally:
                os.unlink(tmp, dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    if sync_dir:
        os.fsync(dir_fd)
    return True


def read_file(dir_fd: int, name: str, limit: int = 1 << 20) -> bytes:
    """Reads a regular file; refuses symlinks, anything larger than `limit` and anything not
    a regular file (opened without blocking: a FIFO planted there must not hang the reader)."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", name)
        data = os.read(fd, limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise ValueError(f"{name} is larger than {limit} bytes")
    return data


def remove_file(dir_fd: int, name: str) -> bool:
    """Unlinks `name` (a symlink itself, never its target); False when it was already gone."""
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    return True


def is_temporary_of(candidate: str, names: tuple[str, ...]) -> bool:
    """Whether `candidate` is a temporary file `write_file` made for one of `names`: left
    behind only when the writer was killed, and then nobody's but whoever removes `names`."""
    if not (candidate.startswith(".") and candidate.endswith(_TMP_SUFFIX)):
        return False
    stem = candidate[1 : -len(_TMP_SUFFIX)]
    target, dot, tag = stem.rpartition(".")
    return bool(dot) and len(tag) == _TMP_TAG_LEN and target in names
