"""Tests for vhostuser_vpp.cni.dispatch: the plugin's skel, driven with a dict and buffers."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vhostuser_vpp.cni.dispatch import Dispatcher, Handlers
from vhostuser_vpp.cni.env import CmdArgs
from vhostuser_vpp.cni.errors import CniError
from vhostuser_vpp.cni.results import Interface, IPConfig, Result
from vhostuser_vpp.cni.versions import SUPPORTED_VERSIONS

CID = "4d578250ad8d760c0722be78badb4b4b6d57fed8f95dea23aaa0065aa8657b29"
ENV = {
    "CNI_CONTAINERID": CID,
    "CNI_NETNS": "/var/run/netns/cni-1",
    "CNI_IFNAME": "net1",
    "CNI_PATH": "/opt/cni/bin",
}
ABOUT = "vhostuser-vpp CNI plugin"


def config(version: str | None = "1.1.0", **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "vhostuser-network",
        "type": "vhostuser",
        "ipam": {"type": "host-local", "subnet": "10.56.217.0/24"},
    }
    if version is not None:
        doc["cniVersion"] = version
    doc.update(extra)
    return doc


def add_result() -> Result:
    return Result(
        cni_version="1.1.0",
        interfaces=[Interface(name="4d578250ad8d-net1", mac="02:fe:fc:89:49:d8", socket_path="/s/x")],
        ips=[IPConfig(address="10.56.217.132/24", gateway="10.56.217.1", interface=0)],
        routes=[{"dst": "0.0.0.0/0", "gw": "10.56.217.1", "mtu": 1400}],
    )


@dataclass
class Recorder:
    """Fake verb handlers: record each call; raise `fail` if set."""

    fail: BaseException | None = None
    calls: list[tuple[str, CmdArgs]] = field(default_factory=list)

    def _record(self, verb: str, args: CmdArgs) -> None:
        self.calls.append((verb, args))
        if self.fail is not None:
            raise self.fail

    def add(self, args: CmdArgs) -> Result:
        self._record("ADD", args)
        return add_result()

    def delete(self, args: CmdArgs) -> None:
        self._record("DEL", args)

    def check(self, args: CmdArgs) -> None:
        self._record("CHECK", args)

    def status(self, args: CmdArgs) -> None:
        self._record("STATUS", args)

    def gc(self, args: CmdArgs) -> None:
        self._record("GC", args)

    def handlers(self) -> Handlers:
        return Handlers(add=self.add, delete=self.delete, check=self.check, status=self.status, gc=self.gc)


@dataclass
class Outcome:
    rc: int
    stdout: str
    stderr: str
    recorder: Recorder

    @property
    def doc(self) -> Any:
        """The one JSON document on stdout (asserting there is exactly one)."""
        return only_document(self.stdout)


def only_document(text: str) -> Any:
    decoder = json.JSONDecoder()
    doc, end = decoder.raw_decode(text.lstrip())
    assert text.lstrip()[end:].strip() == "", f"more than one document on stdout: {text!r}"
    return doc


def run(
    command: str | None,
    stdin: bytes | dict[str, Any] | list[Any] = b"",
    env: dict[str, str] | None = None,
    fail: BaseException | None = None,
    about: str = ABOUT,
) -> Outcome:
    environ = dict(ENV if env is None else env)
    if command is not None:
        environ["CNI_COMMAND"] = command
    raw = stdin if isinstance(stdin, bytes) else json.dumps(stdin).encode()
    stdout, stderr = io.StringIO(), io.StringIO()
    recorder = Recorder(fail=fail)
    dispatcher = Dispatcher(environ=environ, stdin=io.BytesIO(raw), stdout=stdout, stderr=stderr, about=about)
    rc = dispatcher.run(recorder.handlers())
    return Outcome(rc, stdout.getvalue(), stderr.getvalue(), recorder)


def assert_error(outcome: Outcome, code: int) -> dict[str, Any]:
    assert outcome.rc == 1
    doc = outcome.doc
    assert isinstance(doc, dict)
    assert doc["code"] == code, doc
    assert isinstance(doc["msg"], str) and doc["msg"]
    assert set(doc) <= {"cniVersion", "code", "msg", "details"}
    assert outcome.recorder.calls == []
    return doc


# --- VERSION and the about text ----------------------------------------------------------------


def test_version() -> None:
    outcome = run("VERSION", stdin=b'{"cniVersion": "0.3.1"}')
    assert outcome.rc == 0
    assert outcome.doc == {
        "cniVersion": "1.1.0",
        "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"],
    }
    assert outcome.recorder.calls == []


def test_version_needs_neither_stdin_nor_environment() -> None:
    outcome = run("VERSION", stdin=b"", env={})
    assert outcome.rc == 0
    assert outcome.doc["supportedVersions"] == list(SUPPORTED_VERSIONS)


def test_about_text_without_cni_command() -> None:
    outcome = run(None, env={})
    assert outcome.rc == 0
    assert outcome.stdout == ""
    assert ABOUT in outcome.stderr
    assert "CNI protocol versions supported: 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0" in outcome.stderr
    assert outcome.recorder.calls == []


def test_no_command_and_no_about_text_is_code_4() -> None:
    outcome = run(None, env={}, about="")
    assert_error(outcome, 4)
    assert outcome.stderr == ""


@pytest.mark.parametrize("command", ["add", "UPDATE", "DELETE", " ADD"])
def test_unknown_command_is_code_4(command: str) -> None:
    doc = assert_error(run(command, stdin=config()), 4)
    assert repr(command) in doc["msg"]


# --- the config on stdin -----------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"", b"{", b"not json", b'{"cniVersion": "1.0.0",}', b"\xff\xfe\x00garbage"])
def test_malformed_json_is_code_6(raw: bytes) -> None:
    doc = assert_error(run("ADD", stdin=raw), 6)
    assert doc["msg"] == "network config on stdin is not valid JSON"


@pytest.mark.parametrize("raw", [b"[]", b'"1.0.0"', b"42", b"null", b"true"])
def test_non_object_is_code_6(raw: bytes) -> None:
    doc = assert_error(run("ADD", stdin=raw), 6)
    assert "not a JSON object" in doc["msg"]


@pytest.mark.parametrize("version", ["0.2.0", "0.1.0", "1.2.0", "2.0.0", "1.0", "latest"])
def test_unknown_cni_version_is_code_1_naming_it(version: str) -> None:
    doc = assert_error(run("ADD", stdin=config(version)), 1)
    assert repr(version) in doc["details"]
    for supported in SUPPORTED_VERSIONS:
        assert supported in doc["details"]


@pytest.mark.parametrize("version", [1, 1.0, ["1.0.0"], {"v": 1}, True])
def test_non_string_cni_version_is_code_7(version: Any) -> None:
    assert_error(run("ADD", stdin=config(None, cniVersion=version)), 7)


@pytest.mark.parametrize("missing", ["absent", "empty", "null"])
def test_missing_cni_version_is_read_as_0_3_0(missing: str) -> None:
    doc = config(None)
    if missing == "empty":
        doc["cniVersion"] = ""
    elif missing == "null":
        doc["cniVersion"] = None
    outcome = run("ADD", stdin=doc)
    assert outcome.rc == 0
    assert outcome.doc["cniVersion"] == "0.3.0"
    assert outcome.doc["ips"][0]["version"] == "4"
    ((verb, args),) = outcome.recorder.calls
    assert verb == "ADD"
    assert args.config["cniVersion"] == "0.3.0"
    assert args.config["ipam"] == {"type": "host-local", "subnet": "10.56.217.0/24"}


def test_original_readme_config_without_version_is_accepted_for_del() -> None:
    outcome = run("DEL", stdin=config(None, if0name="net0", vhost={"vhost_tool": "/path/to/vpp-config.py"}))
    assert outcome.rc == 0
    assert outcome.stdout == ""
    assert [verb for verb, _ in outcome.recorder.calls] == ["DEL"]


# --- commands and versions ---------------------------------------------------------------------


@pytest.mark.parametrize("version", ["0.3.0", "0.3.1"])
def test_check_before_0_4_0_is_code_1(version: str) -> None:
    doc = assert_error(run("CHECK", stdin=config(version)), 1)
    assert doc["cniVersion"] == version
    assert "CHECK" in doc["msg"]
    assert "0.4.0" in doc["details"]


@pytest.mark.parametrize("command", ["STATUS", "GC"])
@pytest.mark.parametrize("version", ["0.3.0", "0.3.1", "0.4.0", "1.0.0"])
def test_status_and_gc_before_1_1_0_are_code_1(command: str, version: str) -> None:
    doc = assert_error(run(command, stdin=config(version), env={"CNI_PATH": "/opt/cni/bin"}), 1)
    assert doc["cniVersion"] == version
    assert command in doc["msg"]
    assert "1.1.0" in doc["details"]


@pytest.mark.parametrize("command", ["STATUS", "GC"])
def test_status_and_gc_at_1_1_0_call_their_handler(command: str) -> None:
    outcome = run(command, stdin=config("1.1.0", cniDir="/x"), env={"CNI_PATH": "/opt/cni/bin"})
    assert outcome.rc == 0
    assert outcome.stdout == ""
    ((verb, args),) = outcome.recorder.calls
    assert verb == command
    assert args.container_id == ""
    assert args.config["cniDir"] == "/x"


@pytest.mark.parametrize("version", ["0.4.0", "1.0.0", "1.1.0"])
def test_check_prints_nothing(version: str) -> None:
    outcome = run("CHECK", stdin=config(version))
    assert outcome.rc == 0
    assert outcome.stdout == ""
    assert [verb for verb, _ in outcome.recorder.calls] == ["CHECK"]


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_del_prints_nothing(version: str) -> None:
    outcome = run("DEL", stdin=config(version), env=dict(ENV, CNI_NETNS=""))
    assert outcome.rc == 0
    assert outcome.stdout == ""
    ((verb, args),) = outcome.recorder.calls
    assert verb == "DEL"
    assert (args.container_id, args.ifname, args.netns) == (CID, "net1", "")


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_add_result_is_printed_in_the_config_version(version: str) -> None:
    outcome = run("ADD", stdin=config(version))
    assert outcome.rc == 0
    assert outcome.doc == add_result().to_json(version)
    assert outcome.doc["cniVersion"] == version
    ((verb, args),) = outcome.recorder.calls
    assert verb == "ADD"
    assert args.container_id == CID
    assert args.config == config(version)


def test_environment_errors_come_after_the_config_and_carry_its_version() -> None:
    env = dict(ENV)
    del env["CNI_IFNAME"]
    doc = assert_error(run("ADD", stdin=config("0.4.0"), env=env), 4)
    assert doc["cniVersion"] == "0.4.0"
    assert "CNI_IFNAME" in doc["msg"]


def test_missing_container_id_is_code_3() -> None:
    env = dict(ENV)
    del env["CNI_CONTAINERID"]
    assert_error(run("DEL", stdin=config("1.0.0"), env=env), 3)


# --- handler failures --------------------------------------------------------------------------


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
@pytest.mark.parametrize("command", ["ADD", "DEL"])
def test_handler_cni_error_is_printed_exactly(command: str, version: str) -> None:
    err = CniError(11, "VPP is not answering", "/run/vpp/api.sock: connection refused")
    outcome = run(command, stdin=config(version), fail=err)
    assert outcome.rc == 1
    assert outcome.doc == {
        "cniVersion": version,
        "code": 11,
        "msg": "VPP is not answering",
        "details": "/run/vpp/api.sock: connection refused",
    }
    assert [verb for verb, _ in outcome.recorder.calls] == [command]


def test_handler_cni_error_without_details_has_no_details_key() -> None:
    outcome = run("ADD", stdin=config("1.0.0"), fail=CniError(18, "no addresses left"))
    assert outcome.rc == 1
    assert outcome.doc == {"cniVersion": "1.0.0", "code": 18, "msg": "no addresses left"}


def test_handler_plain_exception_is_code_999_without_traceback() -> None:
    outcome = run("ADD", stdin=config("1.0.0"), fail=RuntimeError("boom at line 3"))
    assert outcome.rc == 1
    assert outcome.doc == {
        "cniVersion": "1.0.0",
        "code": 999,
        "msg": "internal error: RuntimeError",
        "details": "boom at line 3",
    }
    assert "Traceback" not in outcome.stdout
    assert "Traceback" not in outcome.stderr


def test_deeply_nested_config_is_code_6() -> None:
    raw = b'{"cniVersion": "1.0.0", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert_error(run("ADD", stdin=raw), 6)


# --- fuzzing -----------------------------------------------------------------------------------

_json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10)
_json = st.recursive(
    _json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
_configs = st.fixed_dictionaries(
    {},
    optional={
        "cniVersion": st.one_of(st.sampled_from([*SUPPORTED_VERSIONS, "0.2.0", "", "1.0"]), _json),
        "name": _json,
        "type": _json,
        "ipam": _json,
    },
).flatmap(lambda base: st.dictionaries(st.text(max_size=8), _json, max_size=3).map(lambda x: {**x, **base}))
_env_values = st.text(max_size=20) | st.sampled_from(["", "..", "a/b", "a=b;c", "x;y", "n" * 16])
_commands = st.sampled_from(["ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC", "", "add", "X"])


def _env_var(good: str) -> st.SearchStrategy[str]:
    """Mostly a valid value, so that the handlers are reached too, sometimes anything."""
    return st.one_of(st.just(good), st.just(good), _env_values)


# Every variable is there; an empty value is the same as a missing one.
_environs = st.fixed_dictionaries(
    {
        "CNI_CONTAINERID": _env_var(CID),
        "CNI_NETNS": _env_var("/var/run/netns/cni-1"),
        "CNI_IFNAME": _env_var("net1"),
        "CNI_PATH": _env_var("/opt/cni/bin"),
        "CNI_ARGS": _env_var("K8S_POD_NAME=p;K8S_POD_NAMESPACE=default"),
    },
)


def check_invariants(outcome: Outcome) -> None:
    assert outcome.rc in (0, 1)
    if outcome.rc == 1:
        doc = outcome.doc
        assert isinstance(doc, dict)
        assert isinstance(doc["code"], int) and not isinstance(doc["code"], bool)
        assert isinstance(doc["msg"], str)
        assert isinstance(doc["cniVersion"], str)
    elif outcome.stdout:
        assert isinstance(outcome.doc, dict)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    raw=st.binary(max_size=200),
    command=st.none() | _commands,
    environ=_environs,
    about=st.sampled_from(["", ABOUT]),
)
def test_fuzz_bytes_on_stdin(raw: bytes, command: str | None, environ: dict[str, str], about: str) -> None:
    check_invariants(run(command, stdin=raw, env=environ, about=about))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    doc=_configs,
    command=_commands,
    environ=_environs,
    fail=st.sampled_from([None, None, CniError(7, "bad", "x"), ValueError("x")]),
)
def test_fuzz_json_objects_on_stdin(
    doc: dict[str, Any], command: str, environ: dict[str, str], fail: BaseException | None
) -> None:
    outcome = run(command, stdin=doc, env=environ, fail=fail)
    check_invariants(outcome)
    if outcome.rc == 0 and outcome.stdout and command == "ADD":
        expected_version = doc.get("cniVersion") or "0.3.0"
        assert outcome.doc["cniVersion"] == expected_version
        assert outcome.doc == add_result().to_json(expected_version)
