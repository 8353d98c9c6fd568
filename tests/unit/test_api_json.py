"""The project's api_json must be VPP 26.06's own definitions, only trimmed.

A field or CRC that differs from VPP's would make vpp_papi silently drop the message (CRC)
or garble it (layout), so every message and type is compared with the reference files
taken from a real VPP 26.06, and every message's CRC with the release CRC matrix.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.reference import CRC_MATRIX, VPP_26_06
from vhostuser_vpp.sim.profile_data import CRCS_26_06, RELEASE_LACKS, release_crcs
from vhostuser_vpp.vpp.api_files import API_JSON_DIR, REQUIRED_MODULES, api_json_files

KINDS = ("types", "enums", "enumflags", "unions")


def load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def ours() -> dict[str, dict[str, Any]]:
    return {path.name: load(path) for path in api_json_files()}


def by_name(items: list[Any]) -> dict[str, Any]:
    return {item[0]: item for item in items}


def test_files_present() -> None:
    names = {path.name for path in api_json_files()}
    for module in REQUIRED_MODULES:
        assert f"{module}.api.json" in names
    assert API_JSON_DIR.is_dir()


def test_every_service_names_defined_messages() -> None:
    for name, doc in ours().items():
        messages = {m[0] for m in doc["messages"]}
        for request, service in doc["services"].items():
            assert request in messages, (name, request)
            assert service["reply"] in messages, (name, service)
            assert set(service.get("events", [])) <= messages, (name, service)


@pytest.mark.parametrize("filename", sorted(p.name for p in api_json_files()))
def test_matches_reference(filename: str) -> None:
    mine = load(API_JSON_DIR / filename)
    reference = load(VPP_26_06 / filename)
    assert mine["module"] == reference["module"]
    assert mine["vl_api_version"] == reference["vl_api_version"]
    assert set(mine["imports"]) <= set(reference["imports"])
    ref_messages = by_name(reference["messages"])
    for message in mine["messages"]:
        assert message == ref_messages[message[0]], message[0]
    for kind in KINDS:
        ref_types = by_name(reference[kind])
        for item in mine[kind]:
            assert item == ref_types[item[0]], (kind, item[0])
    for alias, definition in mine["aliases"].items():
        assert definition == reference["aliases"][alias], alias
    for request, service in mine["services"].items():
        assert service == reference["services"][request], request


def test_crcs_in_release_matrix() -> None:
    rows = [
        line.rstrip("\n").split("\t")
        for line in CRC_MATRIX.read_text().splitlines()
        if not line.startswith("#")
    ]
    column = rows[0].index("v26.06")
    matrix = {row[1]: row[column] for row in rows[1:]}
    for doc in ours().values():
        for message in doc["messages"]:
            crc = message[-1]["crc"]
            assert matrix.get(message[0]) == crc, message[0]


@pytest.mark.parametrize("release", sorted(RELEASE_LACKS))
def test_emulator_release_profiles_match_the_matrix(release: str) -> None:
    """The emulator's per-release tables: the same CRCs as each release's .api files, and
    exactly the messages that release has."""
    rows = [
        line.rstrip("\n").split("\t")
        for line in CRC_MATRIX.read_text().splitlines()
        if not line.startswith("#")
    ]
    column = rows[0].index(f"v{release}")
    matrix = {row[1]: row[column] for row in rows[1:] if row[1] in CRCS_26_06 and row[column] != "-"}
    assert release_crcs(release) == matrix


def test_types_used_are_defined_in_the_same_file() -> None:
    """vppapigen makes each file self-contained; a trimmed file must stay loadable alone."""
    for name, doc in ours().items():
        defined = {item[0] for kind in KINDS for item in doc[kind]} | set(doc["aliases"])

        def check(fields: list[Any], owner: str, name: str = name, defined: set[str] = defined) -> None:
            for field in fields:
                if isinstance(field, list) and field[0].startswith("vl_api_"):
                    assert field[0][len("vl_api_") : -len("_t")] in defined, (name, owner, field)

        for kind in ("types", "unions"):
            for item in doc[kind]:
                check(item[1:], item[0])
        for message in doc["messages"]:
            check(message[1:], message[0])
