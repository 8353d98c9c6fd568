"""Tests for vhostuser_vpp.cni.versions: version parsing, comparison and negotiation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vhostuser_vpp.cni import versions
from vhostuser_vpp.cni.versions import SUPPORTED_VERSIONS, at_least, highest_common, is_legacy_result, parse

# What Debian's host-local (containernetworking-plugins 1.1.x) answers to VERSION.
DEBIAN_HOST_LOCAL = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"]


def test_supported_versions_are_exactly_the_five_we_speak() -> None:
    assert SUPPORTED_VERSIONS == ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
    assert versions.LATEST == "1.1.0"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.3.0", (0, 3, 0)),
        ("0.3.1", (0, 3, 1)),
        ("1.0.0", (1, 0, 0)),
        ("1.1.0", (1, 1, 0)),
        ("10.20.30", (10, 20, 30)),
    ],
)
def test_parse_valid(text: str, expected: tuple[int, int, int]) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1",
        "1.0",
        "1.0.0.0",
        "v1.0.0",
        "1.0.0-rc1",
        " 1.0.0",
        "1.0.0 ",
        "1..0",
        "a.b.c",
        "1.0.x",
        "-1.0.0",
    ],
)
def test_parse_invalid_raises_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="invalid version"):
        parse(text)


def test_parse_rejects_trailing_newline() -> None:
    with pytest.raises(ValueError):
        parse("1.0.0\n")


def test_parse_orders_numerically_not_lexically() -> None:
    assert parse("0.10.0") > parse("0.9.0")
    assert at_least("0.10.0", "0.9.0")


@pytest.mark.parametrize(
    ("version", "minimum", "expected"),
    [
        ("0.4.0", "0.4.0", True),
        ("1.0.0", "0.4.0", True),
        ("0.3.1", "0.4.0", False),
        ("1.0.0", "1.1.0", False),
        ("1.1.0", "1.1.0", True),
        ("0.3.0", "0.3.1", False),
    ],
)
def test_at_least(version: str, minimum: str, expected: bool) -> None:
    assert at_least(version, minimum) is expected


def test_at_least_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        at_least("1.0", "0.4.0")


@pytest.mark.parametrize(
    ("version", "legacy"),
    [("0.3.0", True), ("0.3.1", True), ("0.4.0", True), ("1.0.0", False), ("1.1.0", False)],
)
def test_is_legacy_result(version: str, legacy: bool) -> None:
    assert is_legacy_result(version) is legacy


def test_min_version_for_command() -> None:
    assert versions.MIN_VERSION_FOR_COMMAND == {"CHECK": "0.4.0", "STATUS": "1.1.0", "GC": "1.1.0"}


@pytest.mark.parametrize(
    ("theirs", "ceiling", "expected"),
    [
        (DEBIAN_HOST_LOCAL, "1.1.0", "1.0.0"),
        (DEBIAN_HOST_LOCAL, "1.0.0", "1.0.0"),
        (DEBIAN_HOST_LOCAL, "0.4.0", "0.4.0"),
        (DEBIAN_HOST_LOCAL, "0.3.1", "0.3.1"),
        (list(SUPPORTED_VERSIONS), "1.1.0", "1.1.0"),
        (["0.3.0"], "1.1.0", "0.3.0"),
        # Listed out of order by the other side: the highest still wins.
        (["1.0.0", "0.3.0", "0.4.0"], "1.1.0", "1.0.0"),
        # Versions only they speak never count.
        (["0.1.0", "0.2.0", "2.0.0"], "1.1.0", None),
        ([], "1.1.0", None),
        # Nothing at or below the ceiling.
        (["1.0.0", "1.1.0"], "0.4.0", None),
    ],
)
def test_highest_common(theirs: list[str], ceiling: str, expected: str | None) -> None:
    assert highest_common(SUPPORTED_VERSIONS, theirs, ceiling) == expected


def test_highest_common_ignores_garbage_in_theirs() -> None:
    assert highest_common(SUPPORTED_VERSIONS, ["nonsense", "", "0.4.0"], "1.1.0") == "0.4.0"


@given(
    theirs=st.lists(st.sampled_from([*SUPPORTED_VERSIONS, "0.1.0", "0.2.0", "1.2.0", "2.0.0"])),
    ceiling=st.sampled_from(SUPPORTED_VERSIONS),
)
def test_highest_common_property(theirs: list[str], ceiling: str) -> None:
    common = highest_common(SUPPORTED_VERSIONS, theirs, ceiling)
    candidates = [v for v in SUPPORTED_VERSIONS if v in theirs and parse(v) <= parse(ceiling)]
    if not candidates:
        assert common is None
    else:
        assert common in candidates
        assert all(parse(common) >= parse(v) for v in candidates)
