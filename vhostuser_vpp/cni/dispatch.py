"""The skel of a CNI plugin: everything between the runtime and the verb handlers.

It reads CNI_COMMAND, the rest of the environment and the config on stdin,
checks the config's version against what we speak and what the command needs,
calls one handler, and prints exactly one JSON document: the result, or the
spec's error object. I/O is injected so tests drive it with a dict and buffers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import IO, Any, NamedTuple

from vhostuser_vpp.cni import versions
from vhostuser_vpp.cni.env import CmdArgs, read_cmd_args, read_command
from vhostuser_vpp.cni.errors import CniCode, CniError
from vhostuser_vpp.cni.results import Result

log = logging.getLogger(__name__)

# The original plugin's configs carry no cniVersion. We read them as 0.3.0, the
# oldest result shape we speak: libcni stamps a result with its own cniVersion,
# so a runtime can read it.
VERSION_WHEN_MISSING = "0.3.0"


class Handlers(NamedTuple):
    """One function per verb; only ADD returns a result."""

    add: Callable[[CmdArgs], Result]
    delete: Callable[[CmdArgs], None]
    check: Callable[[CmdArgs], None]
    status: Callable[[CmdArgs], None]
    gc: Callable[[CmdArgs], None]


class Dispatcher:
    def __init__(
        self,
        environ: Mapping[str, str],
        stdin: IO[bytes],
        stdout: IO[str],
        stderr: IO[str],
        about: str = "",
        executable: str = "",
    ) -> None:
        self.environ = environ
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.about = about
        self.executable = executable

    def run(self, handlers: Handlers) -> int:
        """Returns the process exit code: 0, or 1 after printing an error."""
        version = versions.LATEST
        try:
            if not self.environ.get("CNI_COMMAND") and self.about:
                print(self.about, file=self.stderr)
                print(
                    f"CNI protocol versions supported: {', '.join(versions.SUPPORTED_VERSIONS)}",
                    file=self.stderr,
                )
                return 0
            command = read_command(self.environ)
            if command == "VERSION":
                self._print(self._version_info())
                return 0
            config = self._read_config()
            self._check_supported(config["cniVersion"])
            version = config["cniVersion"]
            self._check_command_allowed(command, version)
            args = read_cmd_args(command, self.environ, config, self.executable)
            result = self._call(handlers, args)
            if result is not None:
                self._print(result.to_json(version))
            return 0
        except CniError as err:
            log.error("%s", err)
            self._print(err.to_json(version))
            return 1
        except Exception as exc:
            log.debug("unexpected failure", exc_info=True)
            log.error("internal error: %s: %s", type(exc).__name__, exc)
            self._print(
                CniError(CniCode.INTERNAL, f"internal error: {type(exc).__name__}", str(exc)).to_json(version)
            )
            return 1

    def _call(self, handlers: Handlers, args: CmdArgs) -> Result | None:
        match args.command:
            case "ADD":
                return handlers.add(args)
            case "DEL":
                handlers.delete(args)
            case "CHECK":
                handlers.check(args)
            case "STATUS":
                handlers.status(args)
            case "GC":
                handlers.gc(args)
        return None

    def _version_info(self) -> dict[str, Any]:
        return {"cniVersion": versions.LATEST, "supportedVersions": list(versions.SUPPORTED_VERSIONS)}

    def _read_config(self) -> dict[str, Any]:
        raw = self.stdin.read()
        try:
            config = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise CniError(
                CniCode.DECODE_FAILURE, "network config on stdin is not valid JSON", str(exc)
            ) from exc
        if not isinstance(config, dict):
            raise CniError(CniCode.DECODE_FAILURE, "network config on stdin is not a JSON object")
        version = config.get("cniVersion")
        if version is None or version == "":
            config["cniVersion"] = VERSION_WHEN_MISSING
        elif not isinstance(version, str):
            raise CniError(CniCode.INVALID_CONFIG, "cniVersion must be a string", repr(version))
        return config

    def _check_supported(self, version: str) -> None:
        if version not in versions.SUPPORTED_VERSIONS:
            raise CniError(
                CniCode.INCOMPATIBLE_VERSION,
                "incompatible CNI versions",
                f"config is {version!r}, plugin supports {list(versions.SUPPORTED_VERSIONS)}",
            )

    def _check_command_allowed(self, command: str, version: str) -> None:
        minimum = versions.MIN_VERSION_FOR_COMMAND.get(command)
        if minimum is not None and not versions.at_least(version, minimum):
            raise CniError(
                CniCode.INCOMPATIBLE_VERSION,
                f"config version does not allow {command}",
                f"config is {version}, {command} needs {minimum} or later",
            )

    def _print(self, doc: dict[str, Any]) -> None:
        self.stdout.write(json.dumps(doc, indent=2) + "\n")
        self.stdout.flush()
