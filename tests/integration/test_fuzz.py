"""Hostile input to the real executable: whatever a runtime or a tenant's NAD sends, the
plugin answers with one CNI JSON document, never a traceback, writes nothing outside
cniDir (and IPAM's data dir), and never starts a shell."""

from __future__ import annotations

import json
import stat
import string
import subprocess
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.conftest import PLUGIN, Node, new_container_id

ID_CHARS = string.ascii_letters + string.digits + "._-/:\\ \n\0$;`'\"*?"
json_scalars = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats() | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3),
    max_leaves=8,
)

KNOWN_KEYS = [
    "cniVersion",
    "name",
    "type",
    "if0name",
    "vhost",
    "ipam",
    "cniDir",
    "logFile",
    "logLevel",
    "runtimeConfig",
    "prevResult",
]
VHOST_KEYS = [
    "vhost_tool",
    "backend",
    "api_socket",
    "mode",
    "bridge_domain",
    "socket_mode",
    "socket_dir_mode",
    "host_route",
    "port_mac",
]


def _paths() -> st.SearchStrategy[str]:
    return st.sampled_from(
        ["/", "/etc", "/tmp", "../../etc/passwd", "/bin/sh", "relative", "/proc/self/fd/1", ""]
    )


@st.composite
def configs(draw: st.DrawFn, node: Node) -> dict[str, Any]:
    config = node.config(draw(st.sampled_from(["0.3.1", "0.4.0", "1.0.0", "1.1.0", "9.9.9", ""])))
    for key in draw(st.lists(st.sampled_from(KNOWN_KEYS), max_size=4)):
        config[key] = draw(json_values | _paths())
    if isinstance(config.get("vhost"), dict):
        for key in draw(st.lists(st.sampled_from(VHOST_KEYS), max_size=3)):
            config["vhost"][key] = draw(json_values | _paths())
    return config


def _tree(root: Path, skip: set[Path]) -> dict[str, tuple[int, int]]:
    found = {}
    for path in root.rglob("*"):
        if any(path == s or s in path.parents for s in skip):
            continue
        st_ = path.lstat()
        found[str(path)] = (st_.st_mode, st_.st_size)
    return found


def _shell_trap(directory: Path) -> Path:
    """`sh` and `bash` that leave a mark if anything ever runs them from PATH."""
    marker = directory / "shell-was-run"
    directory.mkdir(exist_ok=True)
    for name in ("sh", "bash", "dash"):
        trap = directory / name
        trap.write_text(f'#!/bin/dash\necho "$0 $*" >> {marker}\nexit 0\n')
        trap.chmod(stat.S_IRWXU)
    return marker


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_hostile_input_always_gets_one_cni_answer(node: Node, data: st.DataObject) -> None:
    trap_dir = node.root / "trap"
    marker = _shell_trap(trap_dir)
    command = data.draw(st.sampled_from(["ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION", "FOO", ""]))
    as_bytes = data.draw(st.booleans())
    stdin = (
        data.draw(st.binary(max_size=200))
        if as_bytes
        else json.dumps(data.draw(configs(node)), allow_nan=True).encode()
    )
    env = node.env(command, new_container_id(), "net1", "/var/run/netns/pod")
    env["PATH"] = f"{trap_dir}:{env['PATH']}"
    for var in data.draw(
        st.lists(
            st.sampled_from(["CNI_CONTAINERID", "CNI_IFNAME", "CNI_ARGS", "CNI_NETNS", "CNI_PATH"]),
            max_size=2,
        )
    ):
        env[var] = data.draw(st.text(ID_CHARS, max_size=70)).replace("\0", "")
    before = _tree(node.root, {node.cni_dir, node.ipam_dir, trap_dir, node.state_file})

    proc = subprocess.run([PLUGIN], input=stdin, env=env, capture_output=True, timeout=60, check=False)

    out = proc.stdout.decode()
    assert "Traceback" not in out + proc.stderr.decode()
    if out.strip():
        doc = json.loads(out)
        assert isinstance(doc, dict)
        if proc.returncode != 0:
            assert isinstance(doc["code"], int) and doc["msg"]
    else:
        assert proc.returncode == 0 and command in ("DEL", "CHECK", "STATUS", "GC", "")
    assert _tree(node.root, {node.cni_dir, node.ipam_dir, trap_dir, node.state_file}) == before
    assert not marker.exists(), marker.read_text() if marker.exists() else ""
    if proc.returncode == 0 and command == "ADD":
        node.run("DEL", json.loads(stdin), env["CNI_CONTAINERID"], ifname=env["CNI_IFNAME"])
