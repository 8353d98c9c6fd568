"""`vhostuser-vpp install` / `uninstall`: put the `vhostuser` plugin where the runtime looks for it.

A container runtime executes `<CNI bin dir>/vhostuser` for every attachment, possibly
while we are replacing it. So the launcher is written to a unique temporary file in the
same directory, fsynced, tried once (`CNI_COMMAND=VERSION`), and only then renamed
over the old one: a runtime sees the old launcher or the new one, never half of one
and never one that cannot start.

The launcher is the shim (vhostuser_vpp/agent/shim.py), a few lines of Python. Its `#!`
line names the distribution's python3 (`SHIM_PYTHONS`: the shim needs the standard
library only, and that build starts fastest), else the interpreter running this command;
`-I` (isolated mode) keeps the runtime's environment (`PYTHONPATH`, `PYTHONHOME`) and the
CNI bin dir itself (a script's directory is normally put first on `sys.path`) from
changing what it imports, `-S` skips `site`. When the shim serves a request itself it
execs the interpreter running this command, with `-I`, so the plugin runs with exactly
the packages installed beside it. The launcher names that interpreter, the directory
this package was imported from and the node agent's CNI socket, `agent_socket` of the
node policy (`--node-config`, else the policy the plugin reads): a policy that moves the
socket needs a new install.

CNI bin dirs differ between distributions (/opt/cni/bin, /usr/libexec/cni,
/var/lib/cni/bin), so the directory is a required flag rather than a guess. Both
subcommands live here and take the same flags; `run` tells them apart by the
subcommand's name.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
import sys
from typing import TYPE_CHECKING

from vhostuser_vpp.cli import output
from vhostuser_vpp.defaults import DEFAULT_CNI_DIR
from vhostuser_vpp.store import atomic

if TYPE_CHECKING:
    from vhostuser_vpp.nodeconf import NodePolicy

LAUNCHER_NAME = "vhostuser"
# The second line of every launcher we write: how uninstall (and a later install)
# tells ours from another plugin's `vhostuser`, such as the original Go binary.
MARKER = "# vhostuser-vpp launcher: written by `vhostuser-vpp install`, removed by `uninstall`"
# Linux reads at most this many bytes of a `#!` line (BINPRM_BUF_SIZE since 5.1).
_SHEBANG_LIMIT = 255
_PROBE_TIMEOUT = 60.0


class InstallError(Exception):
    """A refusal or failure the operator can act on; printed as one line, exit 1."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cni-bin-dir",
        required=True,
        metavar="DIR",
        help="the runtime's CNI bin dir (/opt/cni/bin, /usr/libexec/cni, /var/lib/cni/bin, ...)",
    )
    parser.add_argument(
        "--cni-dir",
        default=DEFAULT_CNI_DIR,
        metavar="DIR",
        help="the plugin's cniDir: install writes get-prefix.sh there; uninstall leaves it",
    )
    parser.add_argument(
        "--node-config",
        metavar="PATH",
        help="node policy file: install writes the defaults there when it is missing; uninstall leaves it",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace (install) or remove (uninstall) a `vhostuser` that vhostuser-vpp did not install",
    )


def run(args: argparse.Namespace) -> int:
    command = str(args.command)
    try:
        if command == "uninstall":
            _uninstall(args)
        else:
            _install(args)
    except (InstallError, OSError) as exc:
        output.error(command, str(exc))
        return output.EXIT_PROBLEMS
    return output.EXIT_OK


def launcher_text(shim_python: str, plugin_python: str, package_root: str, agent_socket: str) -> str:
    return (
        f"#!{shim_python} -IS\n{MARKER}\nimport sys\n\nsys.path.insert(0, {package_root!r})\n"
        f"from vhostuser_vpp.agent.shim import main\n\nmain({agent_socket!r}, {plugin_python!r})\n"
    )


# Where a distribution keeps its python3; the first that runs and is 3.10 or later starts
# the shim.
SHIM_PYTHONS = ("/usr/bin/python3",)


def shim_python(fallback: str) -> str:
    for candidate in SHIM_PYTHONS:
        try:
            proc = subprocess.run(
                [candidate, "-IS", "-c", "import sys; sys.exit(sys.version_info < (3, 10))"],
                capture_output=True,
                timeout=_PROBE_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if proc.returncode == 0:
            return candidate
    return fallback


def package_root() -> str:
    """The directory holding the `vhostuser_vpp` package this command runs from."""
    import vhostuser_vpp

    return os.path.dirname(os.path.dirname(os.path.abspath(vhostuser_vpp.__file__)))


def is_ours(content: bytes) -> bool:
    return MARKER.encode() in content.splitlines()[:2]


def _install(args: argparse.Namespace) -> None:
    from vhostuser_vpp.store import node_files
    from vhostuser_vpp.store.attachment import StoreError

    bin_dir = _bin_dir(args.cni_bin_dir)
    for flag, path in (("--cni-dir", args.cni_dir), ("--node-config", args.node_config)):
        if path is not None and not os.path.isabs(path):
            raise InstallError(f"{flag} must be an absolute path: {path!r}")
    interpreter = sys.executable
    if not os.path.isabs(interpreter) or any(c.isspace() for c in interpreter):
        raise InstallError(f"cannot name this interpreter in a #! line: {interpreter!r}")
    if args.node_config:
        written = _create_node_config(args.node_config)
        print(f"node config {args.node_config}: {'written (defaults)' if written else 'already there, kept'}")
    agent_socket = _policy(args.node_config).agent_socket
    content = launcher_text(shim_python(interpreter), interpreter, package_root(), agent_socket).encode()
    if len(content.split(b"\n", 1)[0]) > _SHEBANG_LIMIT:
        raise InstallError(f"the interpreter path is too long for a #! line: {interpreter}")
    print(f"launcher {os.path.join(bin_dir, LAUNCHER_NAME)}: {_put_launcher(bin_dir, content, args.force)}")
    print(f"agent socket: {agent_socket or 'none (the fast path is off)'}")

    prefix = os.path.join(args.cni_dir, node_files.GET_PREFIX_NAME)
    kept = os.path.lexists(prefix)
    try:
        node_files.ensure_cni_dir(args.cni_dir)
        node_files.ensure_get_prefix(args.cni_dir)
    except StoreError as exc:
        raise InstallError(str(exc)) from exc
    print(f"get-prefix.sh {prefix}: {'already there, kept' if kept else 'written'}")


def _policy(node_config: str | None) -> NodePolicy:
    from vhostuser_vpp.cni.errors import CniError
    from vhostuser_vpp.nodeconf import PATH_ENV, load_policy

    environ = {PATH_ENV: node_config} if node_config else os.environ
    try:
        return load_policy(environ)
    except CniError as err:
        raise InstallError(str(err)) from err


def _uninstall(args: argparse.Namespace) -> None:
    bin_dir = _bin_dir(args.cni_bin_dir)
    target = os.path.join(bin_dir, LAUNCHER_NAME)
    dir_fd = os.open(bin_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        current = _read_current(dir_fd)
        if current is None:
            print(f"launcher {target}: not there, nothing to remove")
        elif is_ours(current) or args.force:
            os.unlink(LAUNCHER_NAME, dir_fd=dir_fd)
            os.fsync(dir_fd)
            print(f"launcher {target}: removed")
        else:
            raise InstallError(
                f"{target} was not installed by vhostuser-vpp; left alone (--force removes it)"
            )
    finally:
        os.close(dir_fd)
    kept = [args.cni_dir] + ([args.node_config] if args.node_config else [])
    print(f"left in place: {', '.join(kept)} (pods may still use their sockets and files)")


def _bin_dir(path: str) -> str:
    if not os.path.isabs(path):
        raise InstallError(f"--cni-bin-dir must be an absolute path: {path!r}")
    if not os.path.isdir(path):
        raise InstallError(f"{path} is not a directory; is it this node's CNI bin dir?")
    return path


def _read_current(dir_fd: int) -> bytes | None:
    """The current launcher's bytes; None when there is none. Anything but a regular
    file (a symlink, a directory) comes back as b"", which is never ours."""
    try:
        fd = os.open(LAUNCHER_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError:
        return b""  # ELOOP: a symlink
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""
        return os.read(fd, 64 * 1024)
    finally:
        os.close(fd)


def _put_launcher(bin_dir: str, content: bytes, force: bool) -> str:
    dir_fd = os.open(bin_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        current = _read_current(dir_fd)
        if current == content and stat.S_IMODE(os.stat(LAUNCHER_NAME, dir_fd=dir_fd).st_mode) == 0o755:
            return "unchanged"
        if current is not None and not is_ours(current) and not force:
            raise InstallError(
                f"{os.path.join(bin_dir, LAUNCHER_NAME)} was not installed by vhostuser-vpp "
                "(the original Go plugin?); --force replaces it"
            )
        atomic.write_file(
            dir_fd, LAUNCHER_NAME, content, mode=0o755, check=lambda tmp: _probe(os.path.join(bin_dir, tmp))
        )
    finally:
        os.close(dir_fd)
    if current is None:
        return "installed"
    return "updated" if is_ours(current) else "replaced a vhostuser not installed by vhostuser-vpp"


def _probe(path: str) -> None:
    """Runs the new launcher as a runtime would, with the VERSION verb, before it takes the
    old one's place: an interpreter without the package fails here, not in every pod's ADD."""
    try:
        proc = subprocess.run(
            [path],
            input=b'{"cniVersion": "1.0.0"}',
            env={"CNI_COMMAND": "VERSION", "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")},
            capture_output=True,
            timeout=_PROBE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"the new launcher does not run: {exc}") from exc
    try:
        versions = json.loads(proc.stdout)["supportedVersions"]
    except (ValueError, KeyError, TypeError):
        versions = None
    if proc.returncode != 0 or not isinstance(versions, list):
        # The last line of a traceback names the problem (e.g. ModuleNotFoundError).
        last = (proc.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise InstallError(f"the new launcher fails its VERSION check (exit {proc.returncode}): {last}")


def _create_node_config(path: str) -> bool:
    """Writes the default policy when `path` does not exist; False when it does. The file
    appears whole or not at all, and an existing one (even one that appears meanwhile)
    is never replaced: it is linked into place, which fails rather than overwrite."""
    from vhostuser_vpp.nodeconf import NodePolicy

    if os.path.lexists(path):
        return False
    doc = {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in NodePolicy()._asdict().items()
        if key != "source"
    }
    directory, name = os.path.split(os.path.abspath(path))
    os.makedirs(directory, mode=0o755, exist_ok=True)
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        # Root-owned: the plugin trusts no other policy.
        data = (json.dumps(doc, indent=2) + "\n").encode()
        return atomic.write_file(dir_fd, name, data, mode=0o644, owner=(0, 0), replace=False)
    finally:
        os.close(dir_fd)
