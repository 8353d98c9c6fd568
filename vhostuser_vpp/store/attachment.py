"""One attachment's files: the pod's, and the record only root can write.

The pod's directory `<cniDir>/<containerID>/` holds `<cid12>-<ifname>{,-ip4.conf,-ip6.conf,.json}`,
the original plugin's names. It is mounted into the pod, which can write there, so
those files are output only: nothing read back from them decides what DEL, CHECK,
GC or restore deletes, chmods or runs. That is decided by the record in
`<cniDir>/.state/<containerID>/<ifname>.json` (directories 0700, never mounted;
".state" cannot be a container ID, which starts with a letter or digit). A record
found only in the pod's directory, written by an earlier version or by the Go
plugin, is taken as far as it cannot mislead (`trusted_legacy`) and moved into
`.state` once.

Files are matched by exact name, never by prefix: the original's prefix match made
DEL of net1 also delete net10's files. Every operation goes through a descriptor of
a directory opened with O_NOFOLLOW, so nothing is read, written or removed outside
cniDir.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
from collections.abc import Iterator
from typing import NamedTuple

from vhostuser_vpp import overlap
from vhostuser_vpp.addressing import family
from vhostuser_vpp.store import atomic
from vhostuser_vpp.store.records import PHASE_READY, UNCONFIRMED_SCHEMA, IpConf, PortRecord
from vhostuser_vpp.tags import CONTAINER_ID_PREFIX_LEN, ownership_tag

log = logging.getLogger(__name__)

# sizeof(sockaddr_un.sun_path) is 108 including the terminating NUL; VPP would
# silently bind a longer path cut to 107 bytes, where no frontend finds it.
SOCKET_PATH_MAX = 107
STATE_DIR_NAME = ".state"
RECORD_SUFFIX = ".json"


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
        return self.ip_conf_name(4)

    def ip_conf_name(self, version: int) -> str:
        """`<prefix>-ip4.conf` or `<prefix>-ip6.conf`."""
        return f"{self.prefix}-ip{version}.conf"

    @property
    def record_name(self) -> str:
        return f"{self.prefix}.json"

    @property
    def socket_path(self) -> str:
        return os.path.join(self.container_dir, self.socket_name)

    @property
    def state_dir(self) -> str:
        return os.path.join(self.cni_dir, STATE_DIR_NAME, self.container_id)

    @property
    def state_name(self) -> str:
        return f"{self.ifname}{RECORD_SUFFIX}"

    @property
    def state_path(self) -> str:
        return os.path.join(self.state_dir, self.state_name)

    def fits(self) -> bool:
        """Whether its socket path fits a unix socket address: ADD makes no other."""
        return len(self.socket_path.encode()) <= SOCKET_PATH_MAX

    def file_names(self) -> tuple[str, ...]:
        return (self.socket_name, *self.ip_conf_names(), self.record_name)

    def ip_conf_names(self) -> tuple[str, str]:
        return (self.ip_conf_name(4), self.ip_conf_name(6))

    def ip_conf_names_of(self, record: PortRecord) -> tuple[str, ...]:
        """The address files ADD wrote for the record's addresses: one per family they have."""
        return tuple(self.ip_conf_name(v) for v in sorted({family(ip) for ip in record.pod_ips}))

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

    def write_ip_conf(self, dir_fd: int, version: int, conf: IpConf, sync_dir: bool = True) -> None:
        self._write(dir_fd, self.ip_conf_name(version), conf.render(), sync_dir=sync_dir)

    def write_record(self, dir_fd: int, record: PortRecord, sync_dir: bool = True) -> None:
        """The trusted record; once it is ready, the pod's copy of it too (output only: the
        pending versions ADD writes on its way are for DEL and GC, which read `.state`), the
        two side by side: each waits for its own flush, in another directory.
        `sync_dir`: as `atomic.write_file`'s."""
        if record.phase != PHASE_READY:
            self._write_state(record, sync_dir)
            return
        with overlap.alongside(self._write, dir_fd, self.record_name, record.render(), 0o600, "", sync_dir):
            self._write_state(record, sync_dir)

    def read_record(self) -> PortRecord | None:
        """The trusted record, or None when there is none; a torn file is an error.

        A container without `.state/<containerID>` was made by an earlier version: its
        records in the pod's directory, all of them at once, are moved into `.state` as
        `trusted_legacy` makes them. From then on (and for every container this version
        made) the pod's directory is never read, so a pod cannot add a record later."""
        with self._state_dir_fd() as state_fd:
            if state_fd is not None:
                return _parse(state_fd, self.state_name, self.state_path)
        with self.open_dir(create=False) as dir_fd:
            if dir_fd is None:
                return None
            own = _parse(dir_fd, self.record_name, self.container_dir)
            legacy = legacy_records(self.cni_dir, self.container_id, dir_fd)
        if own is None:
            return None
        for ifname, record in legacy.items():
            log.warning("moving the record of %s from %s into %s", ifname, self.container_dir, self.state_dir)
            Attachment(self.cni_dir, self.container_id, ifname)._write_state(record)
        return legacy[self.ifname]

    def trusted_legacy(self, legacy: PortRecord) -> PortRecord:
        """A record from the pod's directory, which the pod may have written: what names a
        VPP object, a host path or a command comes from this attachment, not from the file.
        Kept: what only unwires this port (VPP finds it by the tag and socket path below),
        its address and MACs. Dropped: the tool to run (the config's, checked by the node
        policy, is used), the host route (its device and address would be the pod's
        choice), the socket access, and the index ADD routed through."""
        port = {k: v for k, v in legacy.port.items() if k != "sw_if_index"}
        return legacy._replace(
            container_id=self.container_id,
            ifname=self.ifname,
            socket_path=self.socket_path,
            tag=ownership_tag(self.container_id, self.ifname),
            vhost_tool="",
            host_route="",
            socket_access={},
            network_id="",
            schema=UNCONFIRMED_SCHEMA,
            port=port,
        )

    def gone(self) -> bool:
        """Whether nothing of this container is left on the node (neither directory): then
        its lock file may go too (`container_lock`'s `gone`)."""
        return not (os.path.lexists(self.container_dir) or os.path.lexists(self.state_dir))

    def remove_files(self, dir_fd: int | None) -> None:
        """The pod's files (with temporary files a killed write left), then the trusted
        record last, so that a DEL killed halfway still finds it. Removes all it can; one
        that cannot go does not keep the others."""
        problems = []
        if dir_fd is not None:
            problems += _remove_named(dir_fd, self.file_names())
        with self._state_dir_fd() as state_fd:
            if state_fd is not None:
                problems += _remove_named(state_fd, (self.state_name,))
        with contextlib.suppress(OSError):
            os.rmdir(self.state_dir)
        if problems:
            raise StoreError("cannot remove files", "; ".join(problems))

    def remove_ip_confs(self, dir_fd: int) -> None:
        """The pod's address files, which name an address IPAM has released."""
        for name in self.ip_conf_names():
            try:
                atomic.remove_file(dir_fd, name)
            except OSError as exc:
                raise StoreError("cannot remove a file", f"{name}: {exc}") from exc

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

    def _write(
        self, dir_fd: int, name: str, data: bytes, mode: int = 0o644, where: str = "", sync_dir: bool = True
    ) -> None:
        try:
            atomic.write_file(dir_fd, name, data, mode, sync_dir=sync_dir)
        except OSError as exc:
            raise StoreError(
                "cannot write a file", f"{os.path.join(where or self.container_dir, name)}: {exc}"
            ) from exc

    def _write_state(self, record: PortRecord, sync_dir: bool = True) -> None:
        """Into `.state/<containerID>`, root's alone: made 0700 where missing."""
        with self._state_dir_fd(create=True) as state_fd:
            if state_fd is None:
                raise StoreError("the state directory vanished", self.state_dir)
            self._write(
                state_fd,
                self.state_name,
                record.render(),
                mode=0o600,
                where=self.state_dir,
                sync_dir=sync_dir,
            )

    @contextlib.contextmanager
    def _state_dir_fd(self, create: bool = False) -> Iterator[int | None]:
        """`.state/<containerID>` (never through a symlink), or None where there is none;
        with `create`, made 0700 (and `.state` too) when missing."""
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(self.state_dir, flags)
        except FileNotFoundError:
            if not create:
                yield None
                return
            fd = self._make_state_dir(flags)
        except OSError as exc:
            raise StoreError("cannot open the state directory", f"{self.state_dir}: {exc}") from exc
        try:
            yield fd
        finally:
            os.close(fd)

    def _make_state_dir(self, flags: int) -> int:
        try:
            for path in (os.path.dirname(self.state_dir), self.state_dir):
                with contextlib.suppress(FileExistsError):
                    os.mkdir(path, 0o700)
            return os.open(self.state_dir, flags)
        except OSError as exc:
            raise StoreError("cannot create the state directory", f"{self.state_dir}: {exc}") from exc


def legacy_records(cni_dir: str, container_id: str, dir_fd: int) -> dict[str, PortRecord]:
    """ifname -> record, as `trusted_legacy` makes it, for each `<cid12>-<ifname>.json` in a
    pod's directory (open at `dir_fd`); unreadable ones are logged and left out."""
    prefix = f"{container_id[:CONTAINER_ID_PREFIX_LEN]}-"
    found = {}
    for name in sorted(os.listdir(dir_fd)):
        ifname = name.removeprefix(prefix).removesuffix(RECORD_SUFFIX)
        if f"{prefix}{ifname}{RECORD_SUFFIX}" != name or not ifname:
            continue
        try:
            if not stat.S_ISREG(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                continue
            record = _parse(dir_fd, name, os.path.join(cni_dir, container_id))
        except (OSError, StoreError) as exc:
            log.warning("skipping the record %s/%s: %s", container_id, name, exc)
            continue
        if record is not None:
            found[ifname] = Attachment(cni_dir, container_id, ifname).trusted_legacy(record)
    return found


def _parse(dir_fd: int, name: str, where: str) -> PortRecord | None:
    try:
        data = atomic.read_file(dir_fd, name)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError("cannot read the port record", f"{os.path.join(where, name)}: {exc}") from exc
    try:
        return PortRecord.parse(data)
    except (ValueError, TypeError) as exc:
        raise StoreError("the port record is corrupt", f"{os.path.join(where, name)}: {exc}") from exc


def _remove_named(dir_fd: int, names: tuple[str, ...]) -> list[str]:
    """Unlinks `names` and the temporary files `atomic.write_file` makes for them."""
    problems = []
    leftovers = [n for n in os.listdir(dir_fd) if atomic.is_temporary_of(n, names)]
    for name in (*names, *leftovers):
        try:
            atomic.remove_file(dir_fd, name)
        except OSError as exc:
            problems.append(f"{name}: {exc}")
    return problems
