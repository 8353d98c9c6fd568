"""Per-container locks: ADD, DEL and CHECK of one container never interleave.

Lock files live in `<cniDir>/.locks/` (mode 0700), out of the per-container
directories that pods mount, so a pod cannot hold its own lock and block DEL.
DEL removes the lock file while holding it; a waiter that then wins a lock on
the unlinked file notices (the inode at the path changed) and tries again.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Callable, Iterator

LOCK_DIR_NAME = ".locks"
DEFAULT_TIMEOUT_S = 60.0
_POLL_START_S = 0.005
_POLL_MAX_S = 0.1


def node_setup_lock_path(cni_dir: str) -> str:
    """The lock held while creating node-wide VPP objects (the gateway loopback)."""
    return os.path.join(cni_dir, LOCK_DIR_NAME, "vpp-setup.lock")


class LockTimeout(Exception):
    pass


@contextlib.contextmanager
def file_lock(path: str) -> Iterator[None]:
    """An exclusive flock on `path` (made 0600 if missing), waited for without a bound: held
    only around a few VPP calls that make or remove node-wide objects."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _open_lock_dir(cni_dir: str) -> int:
    path = os.path.join(cni_dir, LOCK_DIR_NAME)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)


@contextlib.contextmanager
def container_lock(
    cni_dir: str,
    container_id: str,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    gone: Callable[[], bool] | None = None,
) -> Iterator[ContainerLock]:
    """Held for the block. `gone`, asked on the way out whatever happened: whether nothing of
    the container is left, in which case its lock file goes too (a DEL, a failed ADD, a
    CHECK of an unknown container leave no lock behind)."""
    lock = ContainerLock(cni_dir, container_id)
    lock.acquire(timeout_s)
    try:
        yield lock
    finally:
        try:
            if gone is not None and gone():
                lock.remove()
        finally:
            lock.release()


class ContainerLock:
    def __init__(self, cni_dir: str, container_id: str) -> None:
        self.cni_dir = cni_dir
        self.name = f"{container_id}.lock"
        self._dir_fd = -1
        self._fd = -1

    def acquire(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        delay = _POLL_START_S
        self._dir_fd = _open_lock_dir(self.cni_dir)
        while True:
            fd = os.open(
                self.name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=self._dir_fd
            )
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    os.close(self._dir_fd)
                    raise LockTimeout(f"{self.name} held by another plugin for {timeout_s:g}s") from exc
                time.sleep(delay)
                delay = min(delay * 2, _POLL_MAX_S)
                continue
            if self._still_linked(fd):
                self._fd = fd
                return
            os.close(fd)

    def _still_linked(self, fd: int) -> bool:
        try:
            on_disk = os.stat(self.name, dir_fd=self._dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)

    def remove(self) -> None:
        """Unlink the lock file while still holding it (the container is gone)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.name, dir_fd=self._dir_fd)

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._dir_fd >= 0:
            os.close(self._dir_fd)
            self._dir_fd = -1
