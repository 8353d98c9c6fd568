"""The CNI_* environment of one invocation, read and validated like libcni's skel.

Which variables a command needs is a table, not code; the container ID and the
interface name end up in file names under cniDir, so their checks are also what
keeps a hostile runtime input from escaping that directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from vhostuser_vpp.cni.errors import CniCode, CniError

COMMANDS = ("ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC")

# variable -> commands that require it (skel's reqForCmdEntry).
_REQUIRED_FOR: dict[str, frozenset[str]] = {
    "CNI_CONTAINERID": frozenset({"ADD", "DEL", "CHECK"}),
    "CNI_NETNS": frozenset({"ADD", "CHECK"}),
    "CNI_IFNAME": frozenset({"ADD", "DEL", "CHECK"}),
    "CNI_PATH": frozenset({"ADD", "DEL", "CHECK", "STATUS", "GC"}),
}

# The CNI spec's rule for container IDs and network names.
_ID_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$")
# NAME_MAX: the container ID is a directory name under cniDir.
MAX_CONTAINER_ID_LEN = 255
# IFNAMSIZ - 1: the kernel's limit, which the spec applies to every interface name.
MAX_IFNAME_LEN = 15


class CmdArgs(NamedTuple):
    """One invocation as the plugin sees it; `environ` is passed on to delegated plugins."""

    command: str
    container_id: str
    netns: str
    ifname: str
    path: tuple[str, ...]
    args: Mapping[str, str]
    config: dict[str, Any]
    environ: Mapping[str, str]
    # The file the runtime executed for this request (the shim's path when the node agent
    # serves it): a delegated plugin that is this file is the plugin itself.
    executable: str = ""

    def __repr__(self) -> str:
        # Never the config or the environment: either may carry credentials into a log.
        return f"CmdArgs({self.command} {self.container_id} {self.ifname} netns={self.netns!r})"


def validate_container_id(container_id: str) -> None:
    if not container_id:
        raise CniError(CniCode.UNKNOWN_CONTAINER, "missing containerID")
    if len(container_id) > MAX_CONTAINER_ID_LEN:
        raise CniError(
            CniCode.INVALID_ENV,
            "containerID is too long",
            f"{len(container_id)} characters, at most {MAX_CONTAINER_ID_LEN}",
        )
    if not _ID_PATTERN.fullmatch(container_id):
        raise CniError(CniCode.INVALID_ENV, "invalid characters in containerID", container_id)


def _undecodable(value: str) -> bool:
    """Bytes that were not UTF-8 reach Python as lone surrogates (os.environ's surrogateescape)."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return True
    return False


def validate_ifname(ifname: str) -> None:
    if not ifname:
        raise CniError(CniCode.INVALID_ENV, "interface name is empty")
    if not ifname.isprintable() or _undecodable(ifname):
        raise CniError(CniCode.INVALID_ENV, "interface name is not printable UTF-8", repr(ifname))
    if len(ifname.encode()) > MAX_IFNAME_LEN:
        raise CniError(
            CniCode.INVALID_ENV,
            "interface name is too long",
            f"{ifname!r} has {len(ifname.encode())} bytes, at most {MAX_IFNAME_LEN}",
        )
    if ifname in (".", ".."):
        raise CniError(CniCode.INVALID_ENV, "interface name is . or ..", ifname)
    if any(c in {"/", ":", "\0"} or c.isspace() for c in ifname):
        raise CniError(
            CniCode.INVALID_ENV,
            "interface name contains an invalid character ('/', ':', NUL or whitespace)",
            repr(ifname),
        )


def parse_cni_args(raw: str) -> dict[str, str]:
    """CNI_ARGS "K1=V1;K2=V2", keeping every key: unknown ones (K8S_POD_NAME...) are
    simply never read, which is libcni's IgnoreUnknown without the ceremony."""
    pairs: dict[str, str] = {}
    for item in raw.split(";"):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CniError(CniCode.INVALID_ENV, "invalid CNI_ARGS pair, want KEY=VALUE", item)
        pairs[key] = value
    return pairs


# CNI_ARGS keys kubelet's runtimes (containerd, CRI-O) and Multus pass -> the record's keys.
_POD_KEYS = {"K8S_POD_NAMESPACE": "namespace", "K8S_POD_NAME": "name", "K8S_POD_UID": "uid"}
# DNS-1123 subdomains (namespaces and pod names are at most that); a UID is a UUID.
_POD_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_POD_UID = re.compile(r"^[0-9a-fA-F-]{1,64}$")


def kubernetes_pod(args: Mapping[str, str]) -> dict[str, str]:
    """The pod's namespace, name and UID as the runtime gave them in CNI_ARGS, each kept
    only when it has Kubernetes' form: they are shown to operators (`ports`, metrics'
    labels), never acted on, so a malformed one is dropped rather than failing the ADD."""
    pod = {}
    for key, field in _POD_KEYS.items():
        value = args.get(key, "")
        if (_POD_UID if field == "uid" else _POD_NAME).fullmatch(value):
            pod[field] = value
    return pod


def read_command(environ: Mapping[str, str]) -> str:
    command = environ.get("CNI_COMMAND", "")
    if command not in COMMANDS:
        raise CniError(
            CniCode.INVALID_ENV,
            f"unknown CNI_COMMAND {command!r}",
            f"want one of {', '.join(COMMANDS)}",
        )
    return command


def read_cmd_args(
    command: str, environ: Mapping[str, str], config: dict[str, Any], executable: str = ""
) -> CmdArgs:
    missing = [var for var, cmds in _REQUIRED_FOR.items() if command in cmds and not environ.get(var)]
    if "CNI_CONTAINERID" in missing:
        raise CniError(CniCode.UNKNOWN_CONTAINER, "missing containerID", "CNI_CONTAINERID is not set")
    if missing:
        raise CniError(CniCode.INVALID_ENV, f"required environment variables missing: {', '.join(missing)}")
    container_id = environ.get("CNI_CONTAINERID", "")
    ifname = environ.get("CNI_IFNAME", "")
    if container_id:
        validate_container_id(container_id)
    if ifname:
        validate_ifname(ifname)
    return CmdArgs(
        command=command,
        container_id=container_id,
        netns=environ.get("CNI_NETNS", ""),
        ifname=ifname,
        path=tuple(p for p in environ.get("CNI_PATH", "").split(os.pathsep) if p),
        args=parse_cni_args(environ.get("CNI_ARGS", "")),
        config=config,
        environ=environ,
        executable=executable,
    )
