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
import select
import signal
import subprocess
import time
from collections.abc import Mapping
from types import TracebackType
from typing import IO, Any, Self, cast

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

    def adding(self) -> Allocation:
        """ADD, started now (see `Call`: its work overlaps the caller's; docs/benchmarks.md)."""
        return Allocation(self, "ADD", self._spawn("ADD", self._config_at(self._version), {}))

    def started(
        self, command: str, overrides: Mapping[str, str] | None = None, prev_result: Result | None = None
    ) -> Call:
        """`command`, running from now on (DEL, CHECK)."""
        config = self._config_at(self._version, prev_result)
        return Call(self, command, self._spawn(command, config, overrides or {}), overrides, prev_result)

    def delete(self, overrides: Mapping[str, str] | None = None) -> None:
        self.started("DEL", overrides).answer()

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

    def _answer_negotiating(
        self,
        command: str,
        child: _Child,
        overrides: Mapping[str, str] | None = None,
        prev_result: Result | None = None,
    ) -> Any:
        try:
            return self._answer(command, child)
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
        return self._answer(command, self._spawn(command, config, overrides))

    def _spawn(self, command: str, config: dict[str, Any], overrides: Mapping[str, str]) -> _Child:
        env = dict(self.environ)
        env.update(overrides)
        env["CNI_COMMAND"] = command
        env[DELEGATED_ENV] = "1"
        log.debug("exec %s %s", self.path, command)
        try:
            return _Child(self.path, env, json.dumps(config).encode(), self.timeout_s)
        except OSError as exc:
            raise CniError(
                CniCode.IO_FAILURE, f"cannot run plugin {self.plugin_type!r}", f"{self.path}: {exc}"
            ) from exc

    def _answer(self, command: str, child: _Child) -> Any:
        """The child's JSON answer (None for an empty one), once it has exited."""
        try:
            returncode, stdout, raw_stderr = child.finish()
        except TimeoutError as exc:
            raise CniError(
                CniCode.TRY_AGAIN_LATER,
                f"plugin {self.plugin_type!r} {command} timed out",
                f"no answer after {self.timeout_s:g}s; killed it and its children",
            ) from exc
        stderr = raw_stderr.decode(errors="replace").strip()
        if stderr:
            log.info("plugin %s %s stderr: %s", self.plugin_type, command, stderr[:_STDERR_QUOTE_LIMIT])
        if returncode != 0:
            raise self._error_from(command, stdout, stderr, returncode)
        if not stdout.strip():
            return None
        try:
            return json.loads(stdout)
        except ValueError as exc:
            raise CniError(
                CniCode.DECODE_FAILURE,
                f"plugin {self.plugin_type!r} {command} printed something that is not JSON",
                stdout.decode(errors="replace")[:_STDERR_QUOTE_LIMIT],
            ) from exc

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


class Call:
    """A command of a delegated plugin, running (DelegatedPlugin.started): its `answer()`
    waits for it. As a context manager it is collected when the block ends, so that the
    block's work overlaps the plugin's run; its error is raised there unless the block
    raised one of its own (that one is the failure to report)."""

    def __init__(
        self,
        plugin: DelegatedPlugin,
        command: str,
        child: _Child,
        overrides: Mapping[str, str] | None = None,
        prev_result: Result | None = None,
    ) -> None:
        self._plugin = plugin
        self._command = command
        self._child = child
        self._overrides = overrides
        self._prev_result = prev_result

    def answer(self) -> Any:
        """Its JSON answer once it exits (run again at an older version where it refuses
        ours); its error as a CniError."""
        plugin = self._plugin
        return plugin._answer_negotiating(self._command, self._child, self._overrides, self._prev_result)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self._keep(self.answer())
        except CniError:
            if exc_type is None:
                raise

    def _keep(self, answer: Any) -> None:
        """What of the answer is kept: nothing, for commands that answer nothing."""


class Allocation(Call):
    """IPAM's ADD (DelegatedPlugin.adding). `release()` gives back what it allocated, and
    nothing when it allocated nothing, so a caller registers it as an undo before the
    block."""

    _result: Result | None = None

    @property
    def result(self) -> Result:
        if self._result is None:
            raise RuntimeError("IPAM's ADD gave no result (collected when its block ends)")
        return self._result

    def release(self) -> None:
        if self._result is not None:
            self._plugin.delete()

    def _keep(self, answer: Any) -> None:
        self._result = Result.from_json(answer, source=f"plugin {self._plugin.plugin_type!r}")


class _Child:
    """A delegated plugin, started with its stdin given: the caller may do other work before
    `finish()` collects it. The child runs in a session of its own, so that a timeout
    kills all it started.

    `finish()` reads both pipes and then waits on a pidfd: `Popen.communicate` with a
    timeout polls for the exit in 1 ms sleeps, and a plugin is often still exiting when
    its pipes close (a third of host-local's runs here paid that millisecond)."""

    def __init__(self, path: str, env: dict[str, str], stdin: bytes, timeout_s: float) -> None:
        self._deadline = time.monotonic() + timeout_s
        self.proc = subprocess.Popen(
            [path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        # All three were asked for, so Popen made them; the checker cannot know that.
        self._stdin, self._stdout, self._stderr = (
            cast(IO[bytes], pipe) for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr)
        )
        self._unwritten = memoryview(stdin)
        self._feed()

    def _feed(self) -> None:
        """Writes what the pipe takes now without waiting; closes it once all is written."""
        fd = self._stdin.fileno()
        os.set_blocking(fd, False)
        try:
            while self._unwritten:
                self._unwritten = self._unwritten[os.write(fd, self._unwritten) :]
        except BlockingIOError:
            return
        except BrokenPipeError:  # the child does not read its stdin: what it prints decides
            self._unwritten = memoryview(b"")
        self._stdin.close()

    def finish(self) -> tuple[int, bytes, bytes]:
        """(exit code, stdout, stderr); TimeoutError, with the child's group killed, when it
        has not exited within its time."""
        try:
            stdout, stderr = self._drain()
            self._wait_for_exit()
        except TimeoutError:
            _kill_group(self.proc)
            raise
        return self.proc.returncode, stdout, stderr

    def _drain(self) -> tuple[bytes, bytes]:
        poller = select.poll()
        output: dict[int, list[bytes]] = {self._stdout.fileno(): [], self._stderr.fileno(): []}
        for fd in output:
            poller.register(fd, select.POLLIN)
        stdin_fd = -1 if self._stdin.closed else self._stdin.fileno()
        if stdin_fd >= 0:
            poller.register(stdin_fd, select.POLLOUT)
        open_fds = len(output) + (stdin_fd >= 0)
        while open_fds:
            for fd, _ in poller.poll(self._left_ms()):
                if fd == stdin_fd:
                    self._feed()
                    if self._stdin.closed:
                        poller.unregister(fd)
                        open_fds -= 1
                    continue
                chunk = os.read(fd, 1 << 16)
                if chunk:
                    output[fd].append(chunk)
                else:
                    poller.unregister(fd)
                    open_fds -= 1
        return b"".join(output[self._stdout.fileno()]), b"".join(output[self._stderr.fileno()])

    def _wait_for_exit(self) -> None:
        try:
            pidfd = os.pidfd_open(self.proc.pid)
        except OSError:  # a kernel or seccomp profile without pidfd_open: Popen's own wait
            try:
                self.proc.wait(self._left_ms() / 1000)
            except subprocess.TimeoutExpired as exc:
                raise TimeoutError from exc
        else:
            try:
                poller = select.poll()
                poller.register(pidfd, select.POLLIN)
                if not poller.poll(self._left_ms()):
                    raise TimeoutError
            finally:
                os.close(pidfd)
            self.proc.wait()  # exited: reaped at once
        for pipe in (self._stdin, self._stdout, self._stderr):
            pipe.close()

    def _left_ms(self) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return max(1, int(left * 1000))


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    """SIGKILL to the child's process group, then reap it. Our ends of its pipes are closed
    first: a grandchild that left the group and holds them open is not waited for."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    for pipe in (child.stdin, child.stdout, child.stderr):
        if pipe is not None:
            pipe.close()
    child.wait()


def _same_file(path: str, other: str) -> bool:
    try:
        return os.path.samefile(path, other)
    except OSError:
        return False
