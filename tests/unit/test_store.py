"""Tests for vhostuser_vpp.store: file formats, names, atomic writes, locks and scans."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from vhostuser_vpp.store import atomic, lock, node_files
from vhostuser_vpp.store.attachment import Attachment, StoreError
from vhostuser_vpp.store.lock import ContainerLock, LockTimeout, container_lock
from vhostuser_vpp.store.records import (
    PHASE_PENDING,
    PHASE_READY,
    RECORD_SCHEMA,
    IpConf,
    PortRecord,
    socket_access,
    socket_access_settings,
)
from vhostuser_vpp.store.scan import iter_records

CID = "4d578250ad8d760c0722be78badb4b4b6d57fed8f95dea23aaa0065aa8657b29"
CID2 = "65bc360690b648458b7cbad34f8f274b6028973e82a284353d9c3ca63e1ad35e"
TOOL = "/path/to/vhost-user-net-plugin/tests/vpp-config.py"

# Verbatim from the original plugin's README (`cat 4d578250ad8d-net1-ip4.conf`), plus our newline.
README_IP4_CONF = (
    "{\n"
    '        "ipAddr": "10.56.217.132/32",\n'
    '        "macAddr": "e2:52:b5:7b:58:ad",\n'
    '        "gateway": "10.56.217.1",\n'
    '        "gwMac": "02:fe:fc:89:49:d8"\n'
    "}\n"
)
# Verbatim from the original plugin's README (`cat 4d578250ad8d-net1.json`), plus our newline.
README_RECORD = (
    "{\n"
    '    "vhostname": "VirtualEthernet0/0/0",\n'
    '    "vhostmac": "02:fe:fc:89:49:d8",\n'
    '    "ifname": "net1",\n'
    '    "ifmac": "e2:52:b5:7b:58:ad",\n'
    f'    "vhost_tool": "{TOOL}"\n'
    "}\n"
)
ORIGINAL_KEYS = ["vhostname", "vhostmac", "ifname", "ifmac", "vhost_tool"]


def readme_record() -> PortRecord:
    return PortRecord(
        vhostname="VirtualEthernet0/0/0",
        vhostmac="02:fe:fc:89:49:d8",
        ifname="net1",
        ifmac="e2:52:b5:7b:58:ad",
        vhost_tool=TOOL,
    )


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


# --- records -----------------------------------------------------------------------------------


def test_ip4_conf_matches_the_original_byte_for_byte() -> None:
    conf = IpConf(
        ip_addr="10.56.217.132/32",
        mac_addr="e2:52:b5:7b:58:ad",
        gateway="10.56.217.1",
        gw_mac="02:fe:fc:89:49:d8",
    )
    assert conf.render() == README_IP4_CONF.encode()


def test_ip4_conf_escapes_like_json() -> None:
    rendered = IpConf(ip_addr='a"b', mac_addr="\\", gateway="", gw_mac="é").render()
    assert json.loads(rendered) == {"ipAddr": 'a"b', "macAddr": "\\", "gateway": "", "gwMac": "é"}


def test_record_starts_with_the_original_keys_byte_for_byte() -> None:
    rendered = readme_record().render().decode()
    # The original's five lines, the last one now followed by a comma and our keys.
    original_head = README_RECORD.removesuffix("\n}\n") + ",\n"
    assert rendered.startswith(original_head)
    assert rendered.endswith("\n}\n")
    assert list(json.loads(rendered))[:5] == ORIGINAL_KEYS


def test_record_renders_every_key_in_order() -> None:
    record = PortRecord(
        vhostname="VirtualEthernet0/0/1",
        vhostmac="02:fe:00:00:00:01",
        ifname="net1",
        ifmac="02:00:00:00:00:02",
        vhost_tool="",
        phase=PHASE_PENDING,
        container_id=CID,
        network="vhostuser-network",
        network_id='{"ipam": {"type": "host-local"}, "name": "vhostuser-network"}',
        backend="vpp",
        socket_path=f"/var/lib/cni/vhostuser/{CID}/4d578250ad8d-net1",
        socket_mode="server",
        socket_access={"mode": "0660", "uid": -1, "gid": 4321},
        ip_addr="10.56.217.132",
        ip_addrs=("10.56.217.132", "fd00:56::84"),
        tag="vhostuser-vpp:abc",
        port={"sw_if_index": 3},
        result={"cniVersion": "1.1.0"},
        pod={"namespace": "team-a", "name": "dpdk-0"},
    )
    rendered = record.render()
    doc = json.loads(rendered)
    assert list(doc) == [
        *ORIGINAL_KEYS,
        "schema",
        "phase",
        "containerID",
        "network",
        "networkID",
        "backend",
        "socketPath",
        "socketMode",
        "socketAccess",
        "ipAddr",
        "ipAddrs",
        "tag",
        "hostRoute",
        "port",
        "result",
        "pod",
    ]
    assert doc["schema"] == RECORD_SCHEMA
    assert doc["containerID"] == CID
    assert doc["port"] == {"sw_if_index": 3}
    assert doc["ipAddrs"] == ["10.56.217.132", "fd00:56::84"]
    assert rendered == (json.dumps(doc, indent=4) + "\n").encode()
    assert PortRecord.parse(rendered) == record


def test_pod_ips_of_records_before_ipv6_are_their_one_address() -> None:
    assert PortRecord(ip_addr="10.56.217.132").pod_ips == ("10.56.217.132",)
    assert PortRecord().pod_ips == ()
    assert PortRecord(ip_addr="", ip_addrs=("fd00:56::84",)).pod_ips == ("fd00:56::84",)


@pytest.mark.parametrize("value", ['"10.0.0.1"', "[1]", '{"a": 1}'])
def test_record_with_malformed_addresses_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="ipAddrs"):
        PortRecord.parse(f'{{"ipAddrs": {value}}}'.encode())


def test_record_with_only_the_original_five_keys_parses() -> None:
    record = PortRecord.parse(README_RECORD.encode())
    assert record == readme_record()
    assert record.schema == RECORD_SCHEMA
    assert record.phase == PHASE_READY
    assert record.socket_mode == "server"
    assert record.container_id == ""
    assert record.port == {}
    assert record.result == {}


@pytest.mark.parametrize(("mode", "ids"), [("0660", (1234, 4321)), (None, (-1, 4321)), ("0600", (-1, -1))])
def test_socket_access_reads_back_as_written(mode: str | None, ids: tuple[int, int]) -> None:
    written = json.loads(json.dumps(socket_access(mode, ids)))
    assert socket_access_settings(written) == (mode, ids)


def test_socket_access_left_alone_is_not_recorded() -> None:
    assert socket_access(None, (-1, -1)) == {}


@pytest.mark.parametrize("access", [{"mode": "0660", "uid": "root"}, {"gid": None}, {"uid": [1]}])
def test_unreadable_socket_access_is_a_value_error(access: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="socketAccess"):
        socket_access_settings(access)


def test_record_ignores_unknown_keys() -> None:
    doc = json.loads(README_RECORD)
    doc["fromTheFuture"] = {"x": 1}
    # Names of tuple methods are keys like any other, not the record's fields.
    doc["count"], doc["index"], doc["_replace"] = 3, "x", None
    assert PortRecord.parse(json.dumps(doc).encode()) == readme_record()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{",
        b"[]",
        b'"record"',
        b"\xff\xfe",
        b'{"vhostname": 5}',
        b'{"port": []}',
        b'{"result": "x"}',
        b'{"schema": "1"}',
        b'{"phase": null}',
    ],
)
def test_corrupt_record_is_a_store_error(tmp_path: Path, data: bytes) -> None:
    att = Attachment(str(tmp_path), CID, "net1")
    with att.open_dir(create=True) as fd:
        assert fd is not None
        (Path(att.container_dir) / att.record_name).write_bytes(data)
        with pytest.raises(StoreError) as info:
            att.read_record()
    assert info.value.msg == "the port record is corrupt"
    assert att.record_name in info.value.details


def test_the_record_is_read_from_state_only_root_writes(tmp_path: Path) -> None:
    att = Attachment(str(tmp_path), CID, "net1")
    with att.open_dir(create=True) as fd:
        assert fd is not None
        assert att.read_record() is None
        att.write_record(fd, readme_record())
        assert att.read_record() == readme_record()
    assert mode_of(Path(att.container_dir) / att.record_name) == 0o600
    assert att.state_path == f"{tmp_path}/.state/{CID}/net1.json"
    assert mode_of(Path(att.state_path)) == 0o600
    assert mode_of(tmp_path / ".state") == mode_of(Path(att.state_dir)) == 0o700
    # What the pod writes into its copy changes nothing.
    (Path(att.container_dir) / att.record_name).write_text('{"vhostname": "uplink0", "tag": ""}')
    assert att.read_record() == readme_record()


def test_the_pods_copy_is_written_once_the_record_is_ready(tmp_path: Path) -> None:
    att = Attachment(str(tmp_path), CID, "net1")
    with att.open_dir(create=True) as fd:
        assert fd is not None
        att.write_record(fd, readme_record()._replace(phase=PHASE_PENDING))
        assert not (Path(att.container_dir) / att.record_name).exists()
        assert att.read_record() == readme_record()._replace(phase=PHASE_PENDING)
        att.write_record(fd, readme_record())
    assert (Path(att.container_dir) / att.record_name).read_bytes() == readme_record().render()


def test_a_record_only_in_the_pod_directory_is_taken_over_as_far_as_it_cannot_mislead(
    tmp_path: Path,
) -> None:
    container = tmp_path / CID
    container.mkdir()
    forged = {
        "vhostname": "VirtualEthernet0/0/0",
        "ifname": "net7",
        "backend": "vpp",
        "tag": "",
        "socketPath": "/etc/passwd",
        "hostRoute": "eth0",
        "socketAccess": {"mode": "0666", "uid": 0, "gid": 0},
        "networkID": "someone else's",
        "ipAddr": "10.56.217.131",
        "port": {"sw_if_index": 1, "mode": "l3"},
    }
    (container / "4d578250ad8d-net1.json").write_text(json.dumps(forged))
    att = Attachment(str(tmp_path), CID, "net1")
    record = att.read_record()
    assert record is not None and not record.confirmed
    assert (record.ifname, record.tag, record.socket_path) == (
        "net1",
        f"cni:{CID[:12]}:net1",
        att.socket_path,
    )
    assert (record.host_route, dict(record.socket_access), record.network_id) == ("", {}, "")
    assert dict(record.port) == {"mode": "l3"}
    assert (record.vhostname, record.ip_addr) == ("VirtualEthernet0/0/0", "10.56.217.131")
    # Moved into .state once: the pod's later edits are not read.
    assert Path(att.state_path).is_file()
    (container / "4d578250ad8d-net1.json").write_text(json.dumps({**forged, "ipAddr": "10.0.0.1"}))
    assert att.read_record() == record


def test_original_plugin_files_are_read(tmp_path: Path) -> None:
    container = tmp_path / CID
    container.mkdir()
    (container / "4d578250ad8d-net1.json").write_text(README_RECORD)
    att = Attachment(str(tmp_path), CID, "net1")
    record = att.read_record()
    assert record is not None
    assert (
        record._replace(vhost_tool=TOOL, schema=1, tag="", socket_path="", container_id="") == readme_record()
    )


# --- attachment names and files ----------------------------------------------------------------


def test_attachment_names_are_the_originals() -> None:
    att = Attachment("/var/lib/cni/vhostuser", CID, "net1")
    assert att.container_dir == f"/var/lib/cni/vhostuser/{CID}"
    assert att.prefix == "4d578250ad8d-net1"
    assert att.socket_name == "4d578250ad8d-net1"
    assert att.ip4_conf_name == "4d578250ad8d-net1-ip4.conf"
    assert att.record_name == "4d578250ad8d-net1.json"
    assert att.socket_path == f"/var/lib/cni/vhostuser/{CID}/4d578250ad8d-net1"
    assert att.ip_conf_name(6) == "4d578250ad8d-net1-ip6.conf"
    assert att.file_names() == (
        "4d578250ad8d-net1",
        "4d578250ad8d-net1-ip4.conf",
        "4d578250ad8d-net1-ip6.conf",
        "4d578250ad8d-net1.json",
    )


def test_short_container_id_is_used_whole() -> None:
    att = Attachment("/x", "abc", "eth0")
    assert att.prefix == "abc-eth0"
    assert att.socket_path == "/x/abc/abc-eth0"


def write_all(att: Attachment, fd: int) -> None:
    att.write_ip_conf(fd, 4, IpConf("10.0.0.2/32", "02:00:00:00:00:01", "10.0.0.1", "02:00:00:00:00:02"))
    att.write_ip_conf(fd, 6, IpConf("fd00::2/128", "02:00:00:00:00:01", "fd00::1", "02:00:00:00:00:02"))
    att.write_record(fd, PortRecord(ifname=att.ifname))
    (Path(att.container_dir) / att.socket_name).write_text("")  # stands in for the socket


def test_remove_files_of_net1_leaves_net10_alone(tmp_path: Path) -> None:
    net1 = Attachment(str(tmp_path), CID, "net1")
    net10 = Attachment(str(tmp_path), CID, "net10")
    with net1.open_dir(create=True) as fd:
        assert fd is not None
        write_all(net1, fd)
        write_all(net10, fd)
        net1.remove_files(fd)
        # Again: already gone is fine.
        net1.remove_files(fd)
    assert sorted(os.listdir(net1.container_dir)) == sorted(net10.file_names())
    assert not net1.remove_dir_if_empty()


def test_remove_files_removes_a_symlink_not_its_target(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    att = Attachment(str(tmp_path / "cni"), CID, "net1")
    (tmp_path / "cni").mkdir()
    with att.open_dir(create=True) as fd:
        assert fd is not None
        (Path(att.container_dir) / att.ip4_conf_name).symlink_to(victim)
        att.remove_ip_confs(fd)
    assert victim.read_text() == "keep me"
    assert os.listdir(att.container_dir) == []


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A unix socket path must fit 107 bytes; pytest's tmp_path can come close on its own."""
    path = Path(tempfile.mkdtemp(prefix="st", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _bound_socket(path: str) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.close()


def test_socket_access_is_set_on_the_socket(short_tmp: Path) -> None:
    att = Attachment(str(short_tmp), CID, "net1")
    with att.open_dir(create=True) as fd:
        assert fd is not None
        _bound_socket(att.socket_path)
        att.set_socket_access(fd, "0660", (1234, 4321))
    st = os.lstat(att.socket_path)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o660, 1234, 4321)


def test_socket_access_refuses_a_mode_that_is_not_octal(short_tmp: Path) -> None:
    att = Attachment(str(short_tmp), CID, "net1")
    with att.open_dir(create=True) as fd:
        assert fd is not None
        _bound_socket(att.socket_path)
        before = os.lstat(att.socket_path)
        with pytest.raises(StoreError, match="not an octal socket mode"):
            att.set_socket_access(fd, "rw-rw----", (1234, 4321))
    after = os.lstat(att.socket_path)
    assert (after.st_mode, after.st_uid) == (before.st_mode, before.st_uid)


@pytest.mark.parametrize("planted", ["symlink", "file"])
def test_socket_access_never_changes_anything_but_a_socket(short_tmp: Path, planted: str) -> None:
    victim = short_tmp / "victim"
    victim.write_text("keep me")
    victim.chmod(0o600)
    att = Attachment(str(short_tmp), CID, "net1")
    with att.open_dir(create=True) as fd:
        assert fd is not None
        if planted == "symlink":
            os.symlink(victim, att.socket_path)
        else:
            Path(att.socket_path).write_text("not a socket")
        with pytest.raises(StoreError, match="no socket"):
            att.set_socket_access(fd, "0666", (1234, 4321))
    st = os.stat(victim)
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o600, os.getuid())


def test_socket_swapped_for_a_symlink_after_the_check_is_still_the_one_changed(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone who can write to the directory replaces the socket with a symlink just
    after it was checked: the change still lands on the socket, never on the target."""
    victim = short_tmp / "victim"
    victim.write_text("keep me")
    victim.chmod(0o600)
    att = Attachment(str(short_tmp), CID, "net1")
    real_is_sock = stat.S_ISSOCK

    def check_then_swap(mode: int) -> bool:
        answer = real_is_sock(mode)
        os.unlink(att.socket_path)
        os.symlink(victim, att.socket_path)
        return answer

    with att.open_dir(create=True) as fd:
        assert fd is not None
        _bound_socket(att.socket_path)
        monkeypatch.setattr(stat, "S_ISSOCK", check_then_swap)
        att.set_socket_access(fd, "0660", (1234, 4321))
    st = os.stat(victim)
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o600, os.getuid())


def test_remove_dir_if_empty(tmp_path: Path) -> None:
    att = Attachment(str(tmp_path), CID, "net1")
    assert att.remove_dir_if_empty()  # not there: fine
    with att.open_dir(create=True) as fd:
        assert fd is not None
    assert att.remove_dir_if_empty()
    assert not os.path.exists(att.container_dir)


def test_open_dir_creates_a_private_directory(tmp_path: Path) -> None:
    att = Attachment(str(tmp_path), CID, "net1")
    with att.open_dir(create=True) as fd:
        assert fd is not None
        assert stat.S_ISDIR(os.fstat(fd).st_mode)
    assert mode_of(Path(att.container_dir)) == 0o700


def test_open_dir_without_create_yields_none(tmp_path: Path) -> None:
    att = Attachment(str(tmp_path), CID, "net1")
    with att.open_dir(create=False) as fd:
        assert fd is None
    assert not os.path.exists(att.container_dir)


@pytest.mark.parametrize("dangling", [False, True])
def test_open_dir_refuses_a_symlink_in_place_of_the_container_dir(tmp_path: Path, dangling: bool) -> None:
    cni = tmp_path / "cni"
    cni.mkdir()
    elsewhere = tmp_path / "elsewhere"
    if not dangling:
        elsewhere.mkdir()
    (cni / CID).symlink_to(elsewhere)
    att = Attachment(str(cni), CID, "net1")
    # ADD (create=True) fails on it ...
    with pytest.raises(StoreError) as info, att.open_dir(create=True) as fd:
        assert fd is not None
        att.write_record(fd, readme_record())
    assert "symlink" in info.value.msg
    # ... DEL, CHECK and GC (create=False) see no attachment there.
    with att.open_dir(create=False) as fd:
        assert fd is None
    assert not dangling or not elsewhere.exists()
    assert dangling or os.listdir(elsewhere) == []
    assert (cni / CID).is_symlink()


def test_open_dir_refuses_a_file_in_place_of_the_container_dir(tmp_path: Path) -> None:
    (tmp_path / CID).write_text("")
    att = Attachment(str(tmp_path), CID, "net1")
    with pytest.raises(StoreError), att.open_dir(create=True):
        pass


def test_read_record_refuses_a_symlinked_record(tmp_path: Path) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text(README_RECORD)
    att = Attachment(str(tmp_path / "cni"), CID, "net1")
    (tmp_path / "cni").mkdir()
    with att.open_dir(create=True) as fd:
        assert fd is not None
        (Path(att.container_dir) / att.record_name).symlink_to(secret)
        with pytest.raises(StoreError) as info:
            att.read_record()
    assert info.value.msg == "cannot read the port record"


# --- atomic writes -----------------------------------------------------------------------------


@pytest.fixture
def dir_fd(tmp_path: Path) -> Iterator[int]:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    yield fd
    os.close(fd)


def test_write_file_writes_with_mode(tmp_path: Path, dir_fd: int) -> None:
    atomic.write_file(dir_fd, "a.conf", b"one", mode=0o600)
    assert (tmp_path / "a.conf").read_bytes() == b"one"
    assert mode_of(tmp_path / "a.conf") == 0o600
    atomic.write_file(dir_fd, "a.conf", b"two", mode=0o644)
    assert (tmp_path / "a.conf").read_bytes() == b"two"
    assert mode_of(tmp_path / "a.conf") == 0o644
    assert os.listdir(tmp_path) == ["a.conf"]


def test_write_file_leaves_no_temp_file_when_the_rename_fails(tmp_path: Path, dir_fd: int) -> None:
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "child").write_text("")
    with pytest.raises(OSError):
        atomic.write_file(dir_fd, "target", b"data")
    assert os.listdir(tmp_path) == ["target"]
    assert os.listdir(tmp_path / "target") == ["child"]


def test_write_file_leaves_no_temp_file_when_the_write_fails(
    tmp_path: Path, dir_fd: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.conf").write_bytes(b"old")

    def no_space(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError, match="No space"):
        atomic.write_file(dir_fd, "a.conf", b"new")
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["a.conf"]
    assert (tmp_path / "a.conf").read_bytes() == b"old"


def test_write_file_never_writes_through_a_symlink(tmp_path: Path, dir_fd: int) -> None:
    victim = tmp_path.parent / f"{tmp_path.name}-victim"
    victim.write_bytes(b"precious")
    try:
        (tmp_path / "a.conf").symlink_to(victim)
        atomic.write_file(dir_fd, "a.conf", b"new")
        assert victim.read_bytes() == b"precious"
        assert not (tmp_path / "a.conf").is_symlink()
        assert (tmp_path / "a.conf").read_bytes() == b"new"
    finally:
        victim.unlink()


def test_read_file_refuses_symlinks_and_big_files(tmp_path: Path, dir_fd: int) -> None:
    (tmp_path / "real").write_bytes(b"x" * 11)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert atomic.read_file(dir_fd, "real") == b"x" * 11
    with pytest.raises(OSError):
        atomic.read_file(dir_fd, "link")
    with pytest.raises(ValueError, match="larger than 10 bytes"):
        atomic.read_file(dir_fd, "real", limit=10)
    assert atomic.read_file(dir_fd, "real", limit=11) == b"x" * 11


def test_remove_file(tmp_path: Path, dir_fd: int) -> None:
    (tmp_path / "f").write_text("")
    assert atomic.remove_file(dir_fd, "f") is True
    assert atomic.remove_file(dir_fd, "f") is False


# --- container locks ---------------------------------------------------------------------------


def lock_path(cni: Path, container_id: str = CID) -> Path:
    return cni / lock.LOCK_DIR_NAME / f"{container_id}.lock"


def test_lock_lives_in_a_private_lock_dir(tmp_path: Path) -> None:
    with container_lock(str(tmp_path), CID):
        assert lock_path(tmp_path).is_file()
    assert mode_of(tmp_path / ".locks") == 0o700
    assert os.listdir(tmp_path) == [".locks"]


def test_held_lock_times_out_others(tmp_path: Path) -> None:
    with container_lock(str(tmp_path), CID):
        with pytest.raises(LockTimeout):
            ContainerLock(str(tmp_path), CID).acquire(0)
        # Another container's lock is independent.
        with container_lock(str(tmp_path), CID2, timeout_s=0):
            pass
    with container_lock(str(tmp_path), CID, timeout_s=0):
        pass


class Waiter:
    """Makes the lock's retry loop observable: its first back-off signals that the
    lock was busy, and waits (without a timer) until the test lets it go on."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.blocked = threading.Event()
        self.go_on = threading.Event()
        monkeypatch.setattr(lock, "time", SimpleNamespace(monotonic=time.monotonic, sleep=self._sleep))

    def _sleep(self, _delay: float) -> None:
        self.blocked.set()
        assert self.go_on.wait(10)


def run_in_thread(target: object) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def wrapper() -> None:
        try:
            target()  # type: ignore[operator]
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=wrapper)
    thread.start()
    return thread, errors


def test_container_lock_serialises_two_holders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    waiter = Waiter(monkeypatch)
    order: list[str] = []

    def second() -> None:
        with container_lock(str(tmp_path), CID, timeout_s=30):
            order.append("B in")
        order.append("B out")

    with container_lock(str(tmp_path), CID):
        order.append("A in")
        thread, errors = run_in_thread(second)
        assert waiter.blocked.wait(10), "the second holder never found the lock busy"
        order.append("A out")
    waiter.go_on.set()
    thread.join(10)
    assert not thread.is_alive()
    assert errors == []
    assert order == ["A in", "A out", "B in", "B out"]


def test_remove_then_reacquire(tmp_path: Path) -> None:
    with container_lock(str(tmp_path), CID) as held:
        held.remove()
        assert not lock_path(tmp_path).exists()
        held.remove()  # twice is fine
    with container_lock(str(tmp_path), CID, timeout_s=0):
        assert lock_path(tmp_path).exists()


def test_waiter_on_a_removed_lock_file_locks_the_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    waiter = Waiter(monkeypatch)
    holding = threading.Event()
    let_go = threading.Event()

    def second() -> None:
        with container_lock(str(tmp_path), CID, timeout_s=30):
            holding.set()
            assert let_go.wait(10)

    with container_lock(str(tmp_path), CID) as held:
        thread, errors = run_in_thread(second)
        assert waiter.blocked.wait(10)
        held.remove()  # DEL: the container is gone
    waiter.go_on.set()
    try:
        assert holding.wait(10)
        # The second holder must hold the lock at the path, not the unlinked one.
        assert lock_path(tmp_path).exists()
        with pytest.raises(LockTimeout):
            ContainerLock(str(tmp_path), CID).acquire(0)
    finally:
        let_go.set()
        thread.join(10)
    assert errors == []


def test_release_is_idempotent(tmp_path: Path) -> None:
    held = ContainerLock(str(tmp_path), CID)
    held.acquire(0)
    held.release()
    held.release()
    with container_lock(str(tmp_path), CID, timeout_s=0):
        pass


# --- scanning cniDir ---------------------------------------------------------------------------


def test_iter_records_skips_what_it_must(tmp_path: Path) -> None:
    good = PortRecord(ifname="net1", container_id=CID).render()
    state = tmp_path / ".state"
    (state / CID).mkdir(parents=True)
    (state / CID / "net1.json").write_bytes(good)
    (state / CID / "net2.json").write_text("{corrupt")
    (state / CID / ".net4.json.12345678.tmp").write_bytes(good)
    (state / CID / "link.json").symlink_to(state / CID / "net1.json")
    (state / "aaaa-symlinked").symlink_to(state / CID)
    (tmp_path / CID).mkdir()
    (tmp_path / CID / "4d578250ad8d-net1.json").write_text('{"ipAddr": "10.9.9.9"}')
    (tmp_path / CID / "4d578250ad8d-net1-ip4.conf").write_text("{}")
    (tmp_path / CID / "4d578250ad8d-net3.json").write_text('{"ifname": 3}')
    (tmp_path / CID / "ffffffffffff-net5.json").write_bytes(good)
    (tmp_path / CID / ".hidden.json").write_bytes(good)
    (tmp_path / CID2).mkdir()
    (tmp_path / CID2 / "65bc360690b6-net1.json").write_text(README_RECORD)
    (tmp_path / ".locks").mkdir()
    (tmp_path / ".locks" / "x.json").write_bytes(good)
    (tmp_path / "get-prefix.sh").write_text("#!/bin/sh\n")
    (tmp_path / "top.json").write_bytes(good)

    found = list(iter_records(str(tmp_path)))
    assert [(f.container_id, f.ifname, f.record.confirmed) for f in found] == [
        (CID, "net1", True),
        (CID2, "net1", False),
    ]
    assert found[0].record == PortRecord(ifname="net1", container_id=CID), "the pod's copy is not read"
    assert found[1].record.vhostname == readme_record().vhostname


def test_iter_records_of_a_missing_dir_is_empty(tmp_path: Path) -> None:
    assert list(iter_records(str(tmp_path / "absent"))) == []


# --- node files --------------------------------------------------------------------------------


@pytest.mark.parametrize(("vpp_is_server", "mode"), [(True, "client"), (False, "server")])
def test_device_info(vpp_is_server: bool, mode: str) -> None:
    path = f"/var/lib/cni/vhostuser/{CID}/4d578250ad8d-net1"
    content = node_files.device_info(path, vpp_is_server)
    assert content.endswith(b"}\n")
    assert json.loads(content) == {
        "type": "vhost-user",
        "version": "1.1.0",
        "vhost-user": {"mode": mode, "path": path},
    }
    assert list(json.loads(content)) == ["type", "version", "vhost-user"]


def test_write_and_remove_device_info(tmp_path: Path) -> None:
    path = tmp_path / "devinfo" / "cni" / "x.json"
    node_files.write_device_info(str(path), b"{}\n")
    assert path.read_bytes() == b"{}\n"
    node_files.write_device_info(str(path), b"[]\n")
    assert path.read_bytes() == b"[]\n"
    node_files.remove_device_info(str(path))
    assert not path.exists()
    node_files.remove_device_info(str(path))  # already gone
    node_files.remove_device_info(str(tmp_path / "nodir" / "x.json"))


def test_write_device_info_failure_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError) as info:
        node_files.write_device_info(str(tmp_path / "file" / "x.json"), b"{}")
    assert info.value.msg == "cannot write the device-info file"


def test_ensure_get_prefix_writes_an_executable_script_once(tmp_path: Path) -> None:
    script = tmp_path / node_files.GET_PREFIX_NAME
    node_files.ensure_get_prefix(str(tmp_path))
    assert script.read_text() == node_files.GET_PREFIX_SCRIPT
    assert script.read_text().startswith("#!/bin/sh\n")
    assert mode_of(script) == 0o755
    inode = script.stat().st_ino
    node_files.ensure_get_prefix(str(tmp_path))
    assert script.stat().st_ino == inode
    assert os.listdir(tmp_path) == ["get-prefix.sh"]


def test_ensure_get_prefix_leaves_an_existing_one_alone(tmp_path: Path) -> None:
    script = tmp_path / "get-prefix.sh"
    script.write_text("#!/bin/sh\n# the original plugin's\n")
    script.chmod(0o700)
    node_files.ensure_get_prefix(str(tmp_path))
    assert script.read_text() == "#!/bin/sh\n# the original plugin's\n"
    assert mode_of(script) == 0o700


def test_ensure_get_prefix_leaves_a_symlink_alone(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("x")
    (tmp_path / "cni").mkdir()
    (tmp_path / "cni" / "get-prefix.sh").symlink_to(target)
    node_files.ensure_get_prefix(str(tmp_path / "cni"))
    assert target.read_text() == "x"
    assert (tmp_path / "cni" / "get-prefix.sh").is_symlink()


def test_ensure_cni_dir(tmp_path: Path) -> None:
    node_files.ensure_cni_dir(str(tmp_path / "a" / "b"))
    assert (tmp_path / "a" / "b").is_dir()
    node_files.ensure_cni_dir(str(tmp_path / "a" / "b"))
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError):
        node_files.ensure_cni_dir(str(tmp_path / "file" / "x"))
