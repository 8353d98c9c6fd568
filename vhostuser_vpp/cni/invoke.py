"""Running a delegated plugin (the IPAM plugin) the way libcni does.

The child gets our environment with CNI_COMMAND overridden and the network
config unchanged on stdin. One deviation, on purpose: when the child refuses
the config's cniVersion (code 1), we ask its VERSION and delegate again at the
highest version both speak, because Debian's host-local stops at 1.0.0 while
runtimes already send 1.1.0. That costs a second exec only on that path.

The plugin never delegates to itself (`ipam.type: "vhostuser"` would have GC and
STATUS recurse without end), and marks its children's environment so that it
refuses to run below itself through any other plugin too. A child that does not
answer in time is killed with its whole process group, grandchildren included.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import subprocess
from collections.abc import Mapping
from typing import Any

from vhostuser_vpp.cni import versions
from vhostuser_vpp.cni.errors import CniCode, CniError
from vhostuser_vpp.cni.results import Result

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 60.0
# Plugin types are file names looked up in CNI_PATH: never a path (CVE-2021-20206).
_PLUGIN_TYPE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$")
_STDERR_QUOTE_LIMIT = 2000
# Set in every delegated plugin's environment: a plugin run that finds it is our own child.
DELEGATED_ENV = "VHOSTUSER_VPP_DELEGATED"
OWN_TYPE = "vhostuser"
_REAP_TIMEOUT_S = 5.0


class SelfDelegation(CniError):
    """The config names this plugin as its own IPAM: nothing was ever allocated through it."""


def find_plugin(plugin_type: str, search_path: tuple[str, ...]) -> str:
    if not _PLUGIN_TYPE.fullmatch(plugin_type):
        raise CniError(CniCode.INVALID_CONFIG, "invalid plugin type, want a file name", repr(plugin_type))
    if not search_path:
        raise CniError(CniCode.INVALID_ENV, "CNI_PATH is empty", f"cannot find plugin {plugin_type!r}")
    for directory in search_path:
        candidate = os.path.join(directory, plugin_type)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise CniError(
        CniCode.INVALID_CONFIG,
        f"failed to find plugin {plugin_type!r} in CNI_PATH",
        os.pathsep.join(search_path),
    )


class DelegatedPlugin:
    """One delegated plugin for one invocation; remembers the version it agreed to speak."""

    def __init__(
        self,
        plugin_type: str,
        config: dict[str, Any],
        environ: Mapping[str, str],
        search_path: tuple[str, ...],
        timeout_s: float = DEFAULT_TIMEOUT_S,
        own_executable: str = "",
    ) -> None:
        """`own_executable`: the file the runtime ran for this request; a plugin found to be
        that file is this plugin again (under another name, a symlink)."""
        self.plugin_type = plugin_type
        self.own_executable = own_executable
        self.config = config
        self.environ = environ
        self.search_path = search_path
        self.timeout_s = timeout_s
        self._version = str(config.get("cniVersion", versions.LATEST))
        self._path: str | None = None

    @property
    def path(self) -> str:
        if self._path is None:
            found = find_plugin(self.plugin_type, self.search_path)
            if self.plugin_type == OWN_TYPE or _same_file(found, self.own_executable):
                raise SelfDelegation(
                    CniCode.INVALID_CONFIG,
                    "ipam.type names this plugin itself",
                    f"{self.plugin_type!r} is {found}; name an IPAM plugin such as host-local",
                )
            self._path = found
        return self._path

    def add(self) -> Result:
        doc = self._call_negotiating("ADD")
        return Result.from_json(doc, source=f"plugin {self.plugin_type!r}")

    def delete(self, overrides: Mapping[str, str] | None = None) -> None:
        self._call_negotiating("DEL", overrides)

    def check(self, prev_result: Result) -> None:
        self._call_negotiating("CHECK", prev_result=prev_result)

    def supports(self, version: str) -> bool:
        return version in self.supported_versions()

    def supported_versions(self) -> list[str]:
        doc = self._exec("VERSION", {"cniVersion": versions.LATEST}, {})
        supported = doc.get("supportedVersions") if isinstance(doc, dict) else None
        if not isinstance(supported, list):
            raise CniError(
                CniCode.DECODE_FAILURE,
                f"plugin {self.plugin_type!r} gave no supportedVersions",
                json.dumps(doc)[:_STDERR_QUOTE_LIMIT],
            )
        return [str(v) for v in supported]

    def call(self, command: str, overrides: Mapping[str, str] | None = None) -> Any:
        """One call at the negotiated version, for commands without a result (STATUS, GC)."""
        return self._exec(command, self._config_at(self._version), overrides or {})

    def _call_negotiating(
        self,
        command: str,
        overrides: Mapping[str, str] | None = None,
        prev_result: Result | None = None,
    ) -> Any:
        try:
            return self._exec(command, self._config_at(self._version, prev_result), overrides or {})
        except CniError as err:
            if err.code != CniCode.INCOMPATIBLE_VERSION:
                raise
            common = versions.highest_common(
                versions.SUPPORTED_VERSIONS, self.supported_versions(), self._version
            )
            if common is None or common == self._version:
                raise
            log.info("plugin %s does not speak %s, delegating at %s", self.plugin_type, self._version, common)
            self._version = common
            return self._exec(command, self._config_at(common, prev_result), overrides or {})

    def _config_at(self, version: str, prev_result: Result | None = None) -> dict[str, Any]:
        config = dict(self.config)
        config["cniVersion"] = version
        if prev_result is not None:
            config["prevResult"] = prev_result.to_json(version)
        return config

    def _exec(self, command: str, config: dict[str, Any], overrides: Mapping[str, str]) -> Any:
        env = dict(self.environ)
        env.update(overrides)
        env["CNI_COMMAND"] = command
        env[DELEGATED_ENV] = "1"
        log.debug("exec %s %s", self.path, command)
        proc = self._run(command, env, json.dumps(config).encode())
        stderr = proc.stderr.decode(errors="replace").strip()
        if stderr:
            log.info("plugin %s %s stderr: %s", self.plugin_type, command, stderr[:_STDERR_QUOTE_LIMIT])
        if proc.returncode != 0:
            raise self._error_from(command, proc.stdout, stderr, proc.returncode)
        if not proc.stdout.strip():
            return None
        try:
            return json.loads(proc.stdout)
        except ValueError as exc:
            raise CniError(
                CniCode.DECODE_FAILURE,
                f"plugin {self.plugin_type!r} {command} printed something that is not JSON",
                proc.stdout.decode(errors="replace")[:_STDERR_QUOTE_LIMIT],
            ) from exc

    def _run(self, command: str, env: dict[str, str], stdin: bytes) -> subprocess.CompletedProcess[bytes]:
        """The child in a session of its own, so that a timeout kills all it started."""
        try:
            child = subprocess.Popen(
                [self.path],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            raise CniError(
                CniCode.IO_FAILURE, f"cannot run plugin {self.plugin_type!r}", f"{self.path}: {exc}"
            ) from exc
        try:
            stdout, stderr = child.communicate(stdin, timeout=self.timeout_s)
        except subprocess.TimeoutExpired as exc:
            _kill_group(child)
            raise CniError(
                CniCode.TRY_AGAIN_LATER,
                f"plugin {self.plugin_type!r} {command} timed out",
                f"no answer after {self.timeout_s:g}s; killed it and its children",
            ) from exc
        return subprocess.CompletedProcess([self.path], child.returncode, stdout, stderr)

    def _error_from(self, command: str, stdout: bytes, stderr: str, returncode: int) -> CniError:
        """Keep the child's own code: a runtime must see host-local's 'no addresses left'
        or 'incompatible version' as such, not as a generic failure."""
        try:
            doc = json.loads(stdout)
            code = int(doc["code"])
            msg = str(doc.get("msg", ""))
            details = str(doc.get("details", ""))
        except (ValueError, KeyError, TypeError):
            return CniError(
                CniCode.INTERNAL,
                f"plugin {self.plugin_type!r} {command} failed with exit code {returncode}",
                (stderr or stdout.decode(errors="replace"))[:_STDERR_QUOTE_LIMIT],
            )
        return CniError(code, f"plugin {self.plugin_type!r} {command}: {msg}", details)


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    """SIGKILL to the child's process group, then reap it; a grandchild that left the group
    and holds the pipes open is not waited for beyond a bound."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    try:
        child.communicate(timeout=_REAP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        for pipe in (child.stdin, child.stdout, child.stderr):
            if pipe is not None:
                pipe.close()
        child.wait()


def _same_file(path: str, other: str) -> bool:
    try:
        return os.path.samefile(path, other)
    except OSError:
        return False
