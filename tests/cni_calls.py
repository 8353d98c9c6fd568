"""What a real runtime asks of the plugin: a launcher named after the plugin's type, put
where the runtime looks for plugins, that appends each call (`CNI_*`, the config's
cniVersion and prevResult) to a JSON-lines file, then executes the plugin under test with
the same environment and config. The containerd and podman tests read the record back.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

CALL_KEYS = ("CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS")


def write_launcher(launcher: Path, calls_file: Path, plugin: str) -> None:
    # The config is re-fed through a pipe: it is a few KiB, well within a pipe's buffer.
    launcher.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        "data = sys.stdin.buffer.read()\n"
        "conf = json.loads(data)\n"
        f"call = {{k: os.environ.get(k, '') for k in {CALL_KEYS!r}}}\n"
        "call.update(cniVersion=conf.get('cniVersion'), prevResult=conf.get('prevResult'))\n"
        f"fd = os.open({str(calls_file)!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)\n"
        "os.write(fd, (json.dumps(call) + '\\n').encode())\n"
        "os.close(fd)\n"
        "read, write = os.pipe()\n"
        "os.write(write, data)\n"
        "os.close(write)\n"
        "os.dup2(read, 0)\n"
        f"os.execv({plugin!r}, [{plugin!r}])\n"
    )
    launcher.chmod(0o755)


def read_calls(calls_file: Path) -> list[dict[str, Any]]:
    """The calls recorded, in order."""
    if not calls_file.exists():
        return []
    return [json.loads(line) for line in calls_file.read_text().splitlines()]
