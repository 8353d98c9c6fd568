"""`vhostuser-vpp install` / `uninstall` as a DaemonSet or an operator runs them: the
installed CLI against a temporary CNI bin dir, and the launcher it writes run the way
a container runtime runs a plugin."""

from __future__ import annotations

import ast
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from vhostuser_vpp.cli.install import MARKER
from vhostuser_vpp.cni.versions import SUPPORTED_VERSIONS
from vhostuser_vpp.nodeconf import NodePolicy, load_policy

VENV_BIN = Path(sys.executable).parent
CLI = str(VENV_BIN / "vhostuser-vpp")


def _interpreters(launcher: str) -> tuple[str, str]:
    """(the shim's interpreter, the plugin's), after checking the launcher's form:
    `#!<interpreter> -IS`, and a last line `main(<agent socket>, <plugin interpreter>)`."""
    lines = launcher.splitlines()
    assert lines[0].startswith("#!") and lines[0].endswith(" -IS"), lines[0]
    assert lines[-1].startswith("main("), lines[-1]
    return lines[0][2:-4], ast.literal_eval(lines[-1][4:])[1]


# The shim runs on the distribution's python3 where there is one; the plugin on the venv's.
SHIM_PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"


@dataclass
class Host:
    root: Path

    @property
    def bin_dir(self) -> Path:
        return self.root / "bin"

    @property
    def launcher(self) -> Path:
        return self.bin_dir / "vhostuser"

    @property
    def cni_dir(self) -> Path:
        return self.root / "cni"

    @property
    def node_config(self) -> Path:
        return self.root / "etc" / "vhostuser-vpp.json"

    def run(self, command: str, *extra: str, node_config: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [CLI, command, "--cni-bin-dir", str(self.bin_dir), "--cni-dir", str(self.cni_dir), *extra]
        if node_config:
            argv += ["--node-config", str(self.node_config)]
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)

    def leftovers(self) -> list[str]:
        """Temporary files an install or uninstall left behind, anywhere under the host."""
        return [str(p) for p in self.root.rglob(".*.tmp")]


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    h = Host(tmp_path)
    h.bin_dir.mkdir()
    yield h
    assert h.leftovers() == []


def run_launcher(path: Path) -> subprocess.CompletedProcess[str]:
    """As a runtime asks a plugin for its versions: CNI_COMMAND=VERSION, a config on stdin."""
    return subprocess.run(
        [str(path)],
        input='{"cniVersion": "1.0.0"}',
        env={"CNI_COMMAND": "VERSION", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_install_writes_a_working_launcher_get_prefix_and_the_default_policy(host: Host) -> None:
    proc = host.run("install")
    assert proc.returncode == 0, proc.stderr
    assert f"launcher {host.launcher}: installed" in proc.stdout

    st = host.launcher.stat()
    assert stat.S_IMODE(st.st_mode) == 0o755
    lines = host.launcher.read_text().splitlines()
    assert _interpreters(host.launcher.read_text()) == (SHIM_PYTHON, sys.executable)
    assert lines[1] == MARKER
    version = run_launcher(host.launcher)
    assert version.returncode == 0, version.stderr
    assert json.loads(version.stdout)["supportedVersions"] == list(SUPPORTED_VERSIONS)

    prefix = host.cni_dir / "get-prefix.sh"
    assert prefix.read_text().startswith("#!/bin/sh\n")
    assert os.access(prefix, os.X_OK)

    st = host.node_config.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o644, 0, 0)
    policy = load_policy({"VHOSTUSER_VPP_NODE_CONFIG": str(host.node_config)})
    assert policy == NodePolicy(source=str(host.node_config))


def test_install_again_changes_nothing(host: Host) -> None:
    assert host.run("install").returncode == 0
    before = host.launcher.stat()

    proc = host.run("install")

    assert proc.returncode == 0, proc.stderr
    assert f"launcher {host.launcher}: unchanged" in proc.stdout
    assert "get-prefix.sh" in proc.stdout and "already there, kept" in proc.stdout
    after = host.launcher.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_install_replaces_an_older_launcher_of_ours_by_rename(host: Host) -> None:
    host.launcher.write_text(f"#!/opt/old/python -I\n{MARKER}\nfrom vhostuser_vpp.plugin.main import main\n")
    old_inode = host.launcher.stat().st_ino

    proc = host.run("install")

    assert proc.returncode == 0, proc.stderr
    assert f"launcher {host.launcher}: updated" in proc.stdout
    # A new file took the old one's name: a runtime running the old one is not disturbed.
    assert host.launcher.stat().st_ino != old_inode
    assert _interpreters(host.launcher.read_text()) == (SHIM_PYTHON, sys.executable)


def test_an_existing_node_config_is_kept(host: Host) -> None:
    host.node_config.parent.mkdir()
    host.node_config.write_text('{"allowed_vhost_tools": ["/opt/cni/tools/vpp-config.py"]}\n')

    proc = host.run("install")

    assert proc.returncode == 0, proc.stderr
    assert "already there, kept" in proc.stdout
    assert json.loads(host.node_config.read_text()) == {
        "allowed_vhost_tools": ["/opt/cni/tools/vpp-config.py"]
    }


def test_without_node_config_flag_no_policy_is_written(host: Host) -> None:
    assert host.run("install", node_config=False).returncode == 0
    assert not host.node_config.parent.exists()


def test_a_foreign_vhostuser_is_neither_replaced_nor_removed_without_force(host: Host) -> None:
    foreign = b"\x7fELF the original Go plugin"
    host.launcher.write_bytes(foreign)

    install = host.run("install")
    uninstall = host.run("uninstall")

    assert install.returncode == 1
    assert "not installed by vhostuser-vpp" in install.stderr
    assert uninstall.returncode == 1
    assert "left alone" in uninstall.stderr
    assert host.launcher.read_bytes() == foreign

    forced = host.run("uninstall", "--force")
    assert forced.returncode == 0, forced.stderr
    assert not host.launcher.exists()


def test_install_force_replaces_a_foreign_vhostuser(host: Host) -> None:
    host.launcher.write_bytes(b"\x7fELF the original Go plugin")

    proc = host.run("install", "--force")

    assert proc.returncode == 0, proc.stderr
    assert "replaced" in proc.stdout
    assert run_launcher(host.launcher).returncode == 0


def test_uninstall_removes_ours_and_leaves_the_pods_files(host: Host) -> None:
    assert host.run("install").returncode == 0

    proc = host.run("uninstall")

    assert proc.returncode == 0, proc.stderr
    assert f"launcher {host.launcher}: removed" in proc.stdout
    assert "left in place" in proc.stdout
    assert not host.launcher.exists()
    assert (host.cni_dir / "get-prefix.sh").exists()
    assert host.node_config.exists()

    again = host.run("uninstall")
    assert again.returncode == 0, again.stderr
    assert "nothing to remove" in again.stdout


def test_a_missing_bin_dir_is_refused_not_created(host: Host) -> None:
    shutil.rmtree(host.bin_dir)

    proc = host.run("install")

    assert proc.returncode == 1
    assert "is not a directory" in proc.stderr
    assert not host.bin_dir.exists()


@pytest.mark.skipif(not os.access(SYSTEM_PYTHON, os.X_OK), reason=f"needs {SYSTEM_PYTHON}")
def test_a_launcher_that_cannot_start_never_replaces_the_working_one(host: Host) -> None:
    """The distribution's python3 finds the package's dependencies only through PYTHONPATH,
    which the launcher (isolated, -I) ignores: its VERSION check, which the shim always
    serves itself, fails, so the rename never happens."""
    assert host.run("install").returncode == 0
    working = host.launcher.read_bytes()
    script = (
        "import argparse, sys\n"
        "from vhostuser_vpp.cli import install\n"
        "sys.exit(install.run(argparse.Namespace(command='install', cni_bin_dir=sys.argv[1],"
        " cni_dir=sys.argv[2], node_config=None, force=False)))\n"
    )
    proc = subprocess.run(
        [SYSTEM_PYTHON, "-c", script, str(host.bin_dir), str(host.cni_dir)],
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert proc.returncode == 1, proc.stdout
    assert "fails its VERSION check" in proc.stderr
    assert "ModuleNotFoundError: No module named" in proc.stderr
    assert host.launcher.read_bytes() == working
