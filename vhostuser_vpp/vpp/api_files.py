"""Where the project's VPP API definitions live.

The plugin and the emulator must agree byte for byte with VPP, so both load the same
trimmed VPP 26.06 definitions from `api_json/` (see api_json/README.md). The directory is
package data reached through `vhostuser_vpp/api_json`, so the lookup is the same for a
source checkout, an editable install and a wheel.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

API_JSON_DIR: Path = Path(__file__).resolve().parent.parent / "api_json"

# vpp_papi refuses to start without the address-family enum from ip_types, and cannot
# connect at all without memclnt (sockclnt_create, control_ping, sockclnt_delete).
REQUIRED_MODULES: tuple[str, ...] = ("memclnt", "ip_types")


def api_json_files(directory: Path = API_JSON_DIR) -> list[Path]:
    """Every `*.api.json` file, sorted so that loading order never depends on the filesystem."""
    files = sorted(directory.glob("*.api.json"))
    if not files:
        raise FileNotFoundError(f"no *.api.json files in {directory}")
    return files


def api_json_paths(modules: Iterable[str] | None = None, directory: Path = API_JSON_DIR) -> list[str]:
    """Files as strings, the form `VPPApiClient(apifiles=...)` expects: every file, or only
    `modules` and those vpp_papi cannot start without. vpp_papi builds a class for every
    message and type it loads, so a CNI run asks only for the modules it calls (each file
    repeats the imported types it uses, so type-only modules are not needed)."""
    if modules is None:
        return [str(path) for path in api_json_files(directory)]
    return [str(directory / f"{module}.api.json") for module in dict.fromkeys((*REQUIRED_MODULES, *modules))]
