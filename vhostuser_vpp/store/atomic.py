"""Atomic file writes inside one directory, never following a symlink.

A pod (and a crashed plugin) must only ever see a whole file or none: write a
temporary file, fsync it, rename it over the target, fsync the directory. All
operations are relative to an open directory descriptor, so a symlink planted
where a file or the directory should be cannot redirect a write as root.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable


def write_file(
    dir_fd: int,
    name: str,
    data: bytes,
    mode: int = 0o644,
    *,
    owner: tuple[int, int] | None = None,
    check: Callable[[str], None] | None = None,
    replace: bool = True,
) -> bool:
    """Writes `name` whole. `check(tmp_name)` may inspect (or run) the finished temporary
    file and raise to keep the old one. With `replace=False` an existing file is never
    replaced, even one that appears meanwhile (the file is linked into place, which
    fails where rename would overwrite); returns False then."""
    tmp = f".{name}.{os.urandom(4).hex()}.tmp"  # not `secrets`: it loads OpenSSL
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
    os.fsync(dir_fd)
    return True


def read_file(dir_fd: int, name: str, limit: int = 1 << 20) -> bytes:
    """Reads a regular file; refuses symlinks and anything larger than `limit`."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
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
