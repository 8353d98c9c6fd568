#!/usr/bin/env python3
"""A `vhost_tool` for tests and the demo: keeps a pretend VPP's ports in a JSON file.

It speaks the tool protocol (create/getmac/config/delete) and behaves like VPP
where the plugin can tell: `VirtualEthernet0/0/N` names with the lowest free N,
`02:fe:` MACs, a real listening socket file at the path, removed on delete.
No VPP is involved and no packet moves.

Environment (the plugin passes VHOST_TOOL_* variables through):
  VHOST_TOOL_STATE    the JSON state file (required)
  VHOST_TOOL_FAIL     a verb that fails with exit 1 and a message on stderr
  VHOST_TOOL_HANG     a verb that never answers (for timeout tests)
  VHOST_TOOL_GARBAGE  a verb that prints nonsense instead of its answer
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import socket
import sys
import threading
from typing import Any

_PREFIX = "VirtualEthernet0/0/"


def _load(fd: int) -> dict[str, Any]:
    os.lseek(fd, 0, os.SEEK_SET)
    data = b""
    while chunk := os.read(fd, 65536):
        data += chunk
    state: dict[str, Any] = json.loads(data) if data.strip() else {"ports": {}}
    return state


def _save(fd: int, state: dict[str, Any]) -> None:
    data = json.dumps(state, indent=2, sort_keys=True).encode()
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, data)


def _create(state: dict[str, Any], socket_path: str) -> str:
    ports: dict[str, Any] = state["ports"]
    if any(p["socket"] == socket_path for p in ports.values()):
        raise SystemExit(f"create vhost-user: vhost_user_create_if returned -79 for {socket_path}")
    if not os.path.isdir(os.path.dirname(socket_path)):
        raise SystemExit(f"create vhost-user: vhost_user_create_if returned -12 for {socket_path}")
    number = 0
    while f"{_PREFIX}{number}" in ports:
        number += 1
    name = f"{_PREFIX}{number}"
    if os.path.lexists(socket_path):
        os.unlink(socket_path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)
    listener.close()
    mac = "02:fe:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(4))
    ports[name] = {"socket": socket_path, "mac": mac, "up": True, "pod_ip": "", "pod_mac": ""}
    return name


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: state_vhost_tool.py create|getmac|config|delete ARGS", file=sys.stderr)
        return 2
    verb, args = argv[1], argv[2:]
    if os.environ.get("VHOST_TOOL_HANG") == verb:
        threading.Event().wait()
    if os.environ.get("VHOST_TOOL_FAIL") == verb:
        print(f"{verb}: injected failure", file=sys.stderr)
        return 1
    if os.environ.get("VHOST_TOOL_GARBAGE") == verb:
        print("this is not what you asked for\n<html>")
        return 0
    fd = os.open(os.environ["VHOST_TOOL_STATE"], os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        state = _load(fd)
        ports: dict[str, Any] = state["ports"]
        if verb == "create" and len(args) == 1:
            print(_create(state, args[0]))
        elif verb == "getmac" and len(args) == 1:
            if args[0] not in ports:
                print(f"getmac: unknown interface {args[0]}", file=sys.stderr)
                return 1
            print(ports[args[0]]["mac"])
        elif verb == "config" and len(args) == 3:
            if args[0] not in ports:
                print(f"config: unknown interface {args[0]}", file=sys.stderr)
                return 1
            ports[args[0]].update(pod_ip=args[1], pod_mac=args[2])
        elif verb == "delete" and len(args) == 1:
            port = ports.pop(args[0], None)
            if port is not None and os.path.lexists(port["socket"]):
                os.unlink(port["socket"])
        else:
            print(f"unknown command {argv[1:]}", file=sys.stderr)
            return 2
        _save(fd, state)
    finally:
        os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
