"""One attachment's files: `<cniDir>/<containerID>/<cid12>-<ifname>{,-ip4.conf,.json}`.

The names are the original plugin's. Files are matched by exact name, never by
prefix: the original's prefix match made DEL of net1 also delete net10's files.
Every operation goes through a descriptor of the container directory opened
with O_NOFOLLOW, so nothing is read, written or removed outside cniDir.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
from collections.abc import Iterator
from typing import NamedTuple

from vhostuser_vpp.store import atomic
from vhostuser_vpp.store.records import Ip4Conf, PortRecord

log = logging.getLogger(__name__)

# sizeof(sockaddr_un.sun_path) is 108 including the terminating NUL; VPP would
# silently bind a longer path cut to 107 bytes, where no frontend finds it.
SOCKET_PATH_MAX = 107
CONTAINER_ID_PREFIX_LEN = 12


class StoreError(Exception):
    def __init__(self, msg: str, details: str = "") -> None:
        super().__init__(f"{msg}: {details}" if details else msg)
        self.msg = msg
        self.details = details


class Attachment(NamedTuple):
    cni_dir: str
    container_id: str
    ifname: str

    @property
    def container_dir(self) -> str:
        return os.path.join(self.cni_dir, self.container_id)

    @property
    def prefix(self) -> str:
        return f"{self.container_id[:CONTAINER_ID_PREFIX_LEN]}-{self.ifname}"

    @property
    def socket_name(self) -> str:
        return self.prefix

    @property
    def ip4_conf_name(self) -> str:
        return f"{self.prefix}-ip4.conf"

    @property
    def record_name(self) -> str:
        return f"{self.prefix}.json"

    @property
    def socket_path(self) -> str:
        return os.path.join(self.container_dir, self.socket_name)

    def file_names(self) -> tuple[str, str, str]:
        return (self.socket_name, self.ip4_conf_name, self.record_name)

    @contextlib.contextmanager
    def open_dir(self, create: bool, mode: int = 0o700) -> Iterator[int | None]:
        """Yields a descriptor of the container directory, or None if it does not exist
        and `create` is false. A symlink in its place is never followed: ADD fails on it,
        the others see no attachment."""
        if create:
            try:
                os.mkdir(self.container_dir, mode)
            except FileExistsError:
                pass
            except OSError as exc:
                raise StoreError(
                    "cannot create the container directory", f"{self.container_dir}: {exc}"
                ) from exc
        try:
            fd = os.open(self.container_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            if create:
                raise StoreError("container directory vanished", self.container_dir) from None
            yield None
            return
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR) and not create:
                # Not ours (we only ever make real directories): nothing of this attachment exists.
                log.warning("%s is not a directory; ignoring it", self.container_dir)
                yield None
                return
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise StoreError(
                    "container directory is not a directory (symlink?)", self.container_dir
                ) from exc
            raise StoreError("cannot open the container directory", f"{self.container_dir}: {exc}") from exc
        try:
            yield fd
        finally:
            os.close(fd)

    def set_dir_access(self, dir_fd: int, mode: int, ids: tuple[int, int]) -> None:
        """`ids` is (uid, gid), -1 leaving either as it is."""
        try:
            if ids != (-1, -1):
                os.fchown(dir_fd, *ids)
            os.fchmod(dir_fd, mode)
        except OSError as exc:
            raise StoreError(
                "cannot set the container directory's access", f"{self.container_dir}: {exc}"
            ) from exc

    def set_socket_access(self, dir_fd: int, mode: str | None, ids: tuple[int, int]) -> None:
        """For the socket VPP (or the tool) made as root: `mode` an octal string (None: left
        as is), `ids` (uid, gid) with -1 for "left as is". Anything but a socket is refused.
        The socket is pinned with an O_PATH descriptor and changed through it, so whoever can
        write to the directory (its group, when the config allows that) cannot swap in a
        symlink and have root change another file."""
        try:
            bits = int(mode, 8) if mode is not None else None
        except ValueError as exc:
            raise StoreError("not an octal socket mode", repr(mode)) from exc
        try:
            fd = os.open(self.socket_name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        except OSError as exc:
            raise StoreError("VPP made no socket where expected", f"{self.socket_path}: {exc}") from exc
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                raise StoreError("VPP made no socket where expected", self.socket_path)
            pinned = f"/proc/self/fd/{fd}"
            if ids != (-1, -1):
                os.chown(pinned, *ids)
            if bits is not None:
                os.chmod(pinned, bits)
        except OSError as exc:
            raise StoreError("cannot set the socket's access", f"{self.socket_path}: {exc}") from exc
        finally:
            os.close(fd)

    def write_ip4_conf(self, dir_fd: int, conf: Ip4Conf) -> None:
        self._write(dir_fd, self.ip4_conf_name, conf.render())

    def write_record(self, dir_fd: int, record: PortRecord) -> None:
        self._write(dir_fd, self.record_name, record.render(), mode=0o600)

    def read_record(self, dir_fd: int) -> PortRecord | None:
        """The record, or None when there is none; a torn or foreign file is an error."""
        try:
            data = atomic.read_file(dir_fd, self.record_name)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError("cannot read the port record", f"{self.record_name}: {exc}") from exc
        try:
            return PortRecord.parse(data)
        except (ValueError, TypeError) as exc:
            raise StoreError("the port record is corrupt", f"{self.record_name}: {exc}") from exc

    def remove_files(self, dir_fd: int) -> None:
        """Removes all it can; one that cannot go does not keep the others."""
        problems = []
        for name in self.file_names():
            try:
                atomic.remove_file(dir_fd, name)
            except OSError as exc:
                problems.append(f"{name}: {exc}")
        if problems:
            raise StoreError("cannot remove files", "; ".join(problems))

    def remove_ip4_conf(self, dir_fd: int) -> None:
        try:
            atomic.remove_file(dir_fd, self.ip4_conf_name)
        except OSError as exc:
            raise StoreError("cannot remove a file", f"{self.ip4_conf_name}: {exc}") from exc

    def remove_dir_if_empty(self) -> bool:
        try:
            os.rmdir(self.container_dir)
        except FileNotFoundError:
            return True
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                return False
            raise StoreError("cannot remove the container directory", f"{self.container_dir}: {exc}") from exc
        return True

    def _write(self, dir_fd: int, name: str, data: bytes, mode: int = 0o644) -> None:
        try:
            atomic.write_file(dir_fd, name, data, mode)
        except OSError as exc:
            raise StoreError(
                "cannot write a file", f"{os.path.join(self.container_dir, name)}: {exc}"
            ) from exc
