"""The operator CLI's pure parts: feature decoding, the join of records with VPP's ports,
and how `show` picks a port."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from vhostuser_vpp import tags
from vhostuser_vpp.cli import vppview
from vhostuser_vpp.cli.vppview import (
    STATUS_MANUAL,
    STATUS_MISSING,
    STATUS_OK,
    STATUS_ORPHAN,
    STATUS_STALE,
    STATUS_UNMANAGED,
    LocalRecord,
)
from vhostuser_vpp.store.records import PHASE_PENDING, PortRecord
from vhostuser_vpp.vpp.api_files import API_JSON_DIR
from vhostuser_vpp.vpp.ops import VppPort

CNI_DIR = "/var/lib/cni/vhostuser"
CID_A = "4d578250ad8d760c0722be78badb4b4b6d57fed8f95dea23aaa0065aa8657b29"
CID_B = "65bc360690b648458b7cbad34f8f274b6028973e82a284353d9c3ca63e1ad35e"


def socket_of(cid: str, ifname: str = "net1") -> str:
    return f"{CNI_DIR}/{cid}/{cid[:12]}-{ifname}"


def local(cid: str, ifname: str = "net1", **record: Any) -> LocalRecord:
    fields: dict[str, Any] = {
        "ifname": ifname,
        "container_id": cid,
        "backend": "vpp",
        "socket_path": socket_of(cid, ifname),
        "tag": f"cni:{cid[:12]}:{ifname}",
        "ip_addr": "10.56.217.131",
        **record,
    }
    return LocalRecord(
        container_id=cid,
        ifname=ifname,
        record=PortRecord(**fields),
        record_path=socket_of(cid, ifname) + ".json",
        ip_conf_paths=(socket_of(cid, ifname) + "-ip4.conf",),
        socket_path=str(fields["socket_path"]) or socket_of(cid, ifname),
        socket_present=True,
    )


def port(index: int, socket_path: str, tag: str) -> VppPort:
    return VppPort(
        sw_if_index=index,
        name=f"VirtualEthernet0/0/{index - 1}",
        tag=tag,
        mac="02:fe:00:00:00:01",
        admin_up=True,
        link_up=False,
        link_mtu=9000,
        socket_path=socket_path,
        is_server=True,
        num_regions=0,
        sock_errno=0,
        virtio_net_hdr_sz=0,
        features_first_32=0,
        features_last_32=0,
    )


def statuses(rows: list[vppview.PortRow]) -> dict[tuple[str, str], str]:
    return {(r.container_id, r.ifname or (r.port.name if r.port else "")): r.status for r in rows}


# -- features ----------------------------------------------------------------------------------


def test_features_are_named_after_vpps_enums_without_their_prefix() -> None:
    assert vppview.decode_features(0x8000, 0) == ["MRG_RXBUF"]
    assert vppview.decode_features(0, 1) == ["VERSION_1"], "bit 0 of the last 32 is feature bit 32"


def test_features_come_lowest_bit_first_and_unknown_bits_keep_their_number() -> None:
    first = (1 << 30) | (1 << 28) | (1 << 15) | (1 << 3)
    assert vppview.decode_features(first, 1 << 5) == [
        "bit3",
        "MRG_RXBUF",
        "INDIRECT_DESC",
        "PROTOCOL_FEATURES",
        "bit37",
    ]


def test_every_enum_value_in_the_api_json_decodes_to_its_own_name() -> None:
    doc = json.loads((Path(API_JSON_DIR) / "virtio_types.api.json").read_text())
    for enum in doc["enums"]:
        last = enum[0].endswith("last_32")
        for name, value in (item for item in enum[1:] if isinstance(item, list)):
            decoded = vppview.decode_features(0, value) if last else vppview.decode_features(value, 0)
            assert decoded == [name.split("_API_", 1)[1]], name


def test_no_features_is_an_empty_list() -> None:
    assert vppview.decode_features(0, 0) == []


# -- the join ----------------------------------------------------------------------------------


def test_a_record_and_its_tagged_port_on_its_socket_are_ok() -> None:
    rows = vppview.join([local(CID_A)], [port(1, socket_of(CID_A), f"cni:{CID_A[:12]}:net1")])
    [row] = rows
    assert row.status == STATUS_OK and row.port is not None and row.port.sw_if_index == 1
    assert not row.problem


def test_a_record_without_a_port_is_missing_and_a_tagged_port_without_record_an_orphan() -> None:
    rows = vppview.join([local(CID_A)], [port(2, socket_of(CID_B), f"cni:{CID_B[:12]}:net1")])
    assert statuses(rows) == {(CID_A, "net1"): STATUS_MISSING, (CID_B[:12], "net1"): STATUS_ORPHAN}
    assert all(r.problem for r in rows)


def test_a_port_on_the_records_socket_with_another_tag_is_not_the_records() -> None:
    """VPP reuses names and indexes; only tag and socket together prove ownership."""
    rows = vppview.join([local(CID_A)], [port(1, socket_of(CID_A), f"cni:{CID_B[:12]}:net1")])
    assert statuses(rows) == {(CID_A, "net1"): STATUS_MISSING, (CID_B[:12], "net1"): STATUS_ORPHAN}


def test_the_tag_of_a_record_without_one_is_derived_from_its_container_and_ifname() -> None:
    rows = vppview.join([local(CID_A, tag="")], [port(1, socket_of(CID_A), f"cni:{CID_A[:12]}:net1")])
    assert statuses(rows) == {(CID_A, "net1"): STATUS_OK}


def test_tool_backend_records_match_by_socket_alone() -> None:
    rows = vppview.join([local(CID_A, backend="tool", tag="")], [port(1, socket_of(CID_A), "")])
    assert statuses(rows) == {(CID_A, "net1"): STATUS_OK}


def test_pending_records_and_missing_sockets_are_stale_files() -> None:
    pending = local(CID_A, phase=PHASE_PENDING)
    no_socket = replace(local(CID_B), socket_present=False)
    ports = [
        port(1, socket_of(CID_A), f"cni:{CID_A[:12]}:net1"),
        port(2, socket_of(CID_B), f"cni:{CID_B[:12]}:net1"),
    ]
    rows = vppview.join([pending, no_socket], ports)
    assert statuses(rows) == {(CID_A, "net1"): STATUS_STALE, (CID_B, "net1"): STATUS_STALE}


def test_a_client_mode_socket_is_the_apps_to_make() -> None:
    client = replace(local(CID_A, socket_mode="client"), socket_present=False)
    rows = vppview.join([client], [port(1, socket_of(CID_A), f"cni:{CID_A[:12]}:net1")])
    assert statuses(rows) == {(CID_A, "net1"): STATUS_OK}


def test_ports_without_the_cni_tag_are_listed_only_with_all() -> None:
    manual = port(3, "/tmp/manual.sock", "cni-manual:try")
    foreign = port(4, "/tmp/qemu.sock", "")
    gateway = port(5, "/tmp/x.sock", "cni-gw:loop0")
    rows = vppview.join([local(CID_A)], [manual, foreign, gateway])
    assert {r.port.sw_if_index: r.status for r in rows if r.port} == {
        3: STATUS_MANUAL,
        4: STATUS_UNMANAGED,
        5: STATUS_UNMANAGED,
    }
    assert not any(r.problem for r in rows if r.port)
    assert [r.status for r in vppview.owned_rows(rows, include_all=False)] == [STATUS_MISSING]
    assert len(vppview.owned_rows(rows, include_all=True)) == 4


def test_two_interfaces_of_one_pod_each_find_their_own_port() -> None:
    records = [local(CID_A, "net1"), local(CID_A, "net10")]
    ports = [
        port(7, socket_of(CID_A, "net10"), f"cni:{CID_A[:12]}:net10"),
        port(6, socket_of(CID_A, "net1"), f"cni:{CID_A[:12]}:net1"),
    ]
    rows = vppview.join(records, ports)
    assert {r.ifname: r.port.sw_if_index for r in rows if r.port} == {"net1": 6, "net10": 7}
    assert all(r.status == STATUS_OK for r in rows)


def test_summary_carries_the_full_container_id_and_the_pods_addresses() -> None:
    [row] = vppview.join(
        [local(CID_A, ifmac="e2:52:b5:7b:58:ad", vhostmac="02:fe:fc:89:49:d8")],
        [port(1, socket_of(CID_A), f"cni:{CID_A[:12]}:net1")],
    )
    summary = row.summary()
    assert summary["container_id"] == CID_A
    assert (summary["pod_ip"], summary["pod_mac"], summary["gateway_mac"]) == (
        "10.56.217.131",
        "e2:52:b5:7b:58:ad",
        "02:fe:fc:89:49:d8",
    )
    assert summary["sw_if_index"] == 1 and summary["frontend_connected"] is False


@pytest.mark.parametrize(
    ("tag", "owner"),
    [
        ("cni:4d578250ad8d:net1", ("4d578250ad8d", "net1")),
        ("cni:4d578250ad8d", ("4d578250ad8d", "")),
        ("cni-manual:x", None),
        ("cni-gw:loop0", None),
        ("", None),
    ],
)
def test_owner_tags(tag: str, owner: tuple[str, str] | None) -> None:
    assert tags.parse_owner_tag(tag) == owner


def test_records_on_disk_are_loaded_with_their_files(tmp_path: Path) -> None:
    record = local(CID_A).record
    directory = tmp_path / CID_A
    directory.mkdir()
    (directory / f"{CID_A[:12]}-net1.json").write_bytes(record._replace(socket_path="").render())
    [found] = vppview.load_records(str(tmp_path))
    assert found.socket_path == str(directory / f"{CID_A[:12]}-net1")
    assert not found.socket_present
    assert found.ip_conf_paths == (str(directory / f"{CID_A[:12]}-net1-ip4.conf"),)
    assert found.owner_tag == f"cni:{CID_A[:12]}:net1"


# -- show's choice -----------------------------------------------------------------------------


def view() -> list[vppview.PortRow]:
    pod = {"namespace": "team-a", "name": "dpdk-0", "uid": "5c1a0e3e-4b1e-4c1e-9f1e-000000000001"}
    return vppview.join(
        [local(CID_A, pod=pod), local(CID_A, "net2", pod=pod), local(CID_B, pod={**pod, "namespace": "b"})],
        [
            port(1, socket_of(CID_A), f"cni:{CID_A[:12]}:net1"),
            port(9, "/elsewhere", "cni:abcdef012345:net1"),
        ],
    )


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("VirtualEthernet0/0/0", [(CID_A, "net1")]),
        ("65bc", [(CID_B, "net1")]),
        (CID_B, [(CID_B, "net1")]),
        ("4d578250", [(CID_A, "net1"), (CID_A, "net2")]),
        ("net2", [(CID_A, "net2")]),
        ("net1", [(CID_A, "net1"), (CID_B, "net1"), ("abcdef012345", "net1")]),
        ("abcdef012345" + "9" * 52, [("abcdef012345", "net1")]),
        ("VirtualEthernet0/0/", []),
        ("zzz", []),
        ("team-a/dpdk-0", [(CID_A, "net1"), (CID_A, "net2")]),
        ("b/dpdk-0", [(CID_B, "net1")]),
        ("dpdk-0", [(CID_A, "net1"), (CID_A, "net2"), (CID_B, "net1")]),
        ("team-a/dpdk", []),
        ("team-a", []),
    ],
)
def test_a_target_is_a_pod_an_interface_name_ifname_or_container_prefix(
    target: str, expected: list[tuple[str, str]]
) -> None:
    assert [(r.container_id, r.ifname) for r in vppview.find(view(), target)] == expected
