"""What the `vhostuser` executable loads on every pod's start-up (issue: performance).

The budget is set by `make bench` (docs/benchmarks.md); these tests keep the heavy
modules found there from creeping back onto the path, and check that the API
definitions a run loads cover every message its mode may send.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from vhostuser_vpp.vpp import ops as vpp
from vhostuser_vpp.vpp.api_files import api_json_files, api_json_paths

# Everything the plugin process can import on ADD, DEL, CHECK, STATUS and GC.
COLD_PATH = (
    "vhostuser_vpp.plugin.main",
    "vhostuser_vpp.backends.vpp",
    "vhostuser_vpp.backends.tool",
    "vhostuser_vpp.vpp.client",
)

# module -> why it must stay off the cold path (measured cost on a 2-core machine).
KEPT_OFF = {
    "pydantic.main": "BaseModel and schema generation: 55-75 ms; config uses pydantic_core",
    "dataclasses": "about 0.5 ms per frozen dataclass, 14 ms for the cold path's types",
    "pyroute2": "netlink, loaded only when vhost.host_route is set",
    "hashlib": "OpenSSL, pulled in by `secrets`: 3 ms",
    "tabulate": "the CLI's tables",
    "argparse": "the CLI's parser",
}


def test_the_cold_path_keeps_heavy_modules_off() -> None:
    code = (
        "import json, sys\n"
        + "".join(f"import {module}\n" for module in COLD_PATH)
        + "print(json.dumps(sorted(sys.modules)))\n"
    )
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, timeout=60)
    loaded = set(json.loads(child.stdout))
    assert COLD_PATH[0] in loaded
    present = {module: why for module, why in KEPT_OFF.items() if module in loaded}
    assert not present, f"modules on the plugin's cold path: {present}"


def _defined_messages(modules: tuple[str, ...]) -> set[str]:
    names: set[str] = set()
    for path in api_json_paths(modules):
        with open(path) as f:
            names.update(message[0] for message in json.load(f)["messages"])
    return names


@pytest.mark.parametrize("mode", sorted(vpp.MESSAGES_BY_MODE))
def test_a_mode_loads_the_definitions_of_every_message_it_may_send(mode: str) -> None:
    may_send = {
        "control_ping",
        "show_version",
        *vpp.COMMON_MESSAGES,
        *vpp.MESSAGES_BY_MODE[mode],
        *vpp.CREATE_VARIANTS,
        *(vpp.LOOPBACK_MESSAGES if mode == "l3" else ()),
        *(vpp.BRIDGE_DOMAIN_ADD_DEL_VARIANTS if mode == "l2" else ()),
    }
    defined = _defined_messages(vpp.COMMON_API_MODULES + vpp.API_MODULES_BY_MODE[mode])
    assert may_send - defined == set()
    replies = {f"{m}_reply" for m in may_send if not m.endswith("_dump")}
    details = {m.removesuffix("_dump") + "_details" for m in may_send if m.endswith("_dump")}
    assert (replies | details) - defined == set()


def test_a_mode_loads_fewer_definitions_than_there_are() -> None:
    everything = _defined_messages(tuple(path.name.split(".")[0] for path in api_json_files()))
    for modules in vpp.API_MODULES_BY_MODE.values():
        assert len(_defined_messages(vpp.COMMON_API_MODULES + modules)) < len(everything)
