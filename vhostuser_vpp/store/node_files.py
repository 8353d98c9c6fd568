"""Files the plugin keeps outside any one container's directory.

`get-prefix.sh` sits in cniDir, as with the original plugin: a pod that mounts
its vhostuser directory runs it to learn its container ID (the directory name
that holds its socket). The device-info file is the Network Plumbing WG's way
of telling Multus, and through the network-status annotation the pod, where
the socket is.
"""

from __future__ import annotations

import contextlib
import json
import os

from vhostuser_vpp.store import atomic
from vhostuser_vpp.store.attachment import StoreError

GET_PREFIX_NAME = "get-prefix.sh"
DEVICE_INFO_VERSION = "1.1.0"

# Inside the pod: a mounted vhostuser directory holds the pod's own directory
# (named after its container ID). Prefer that; else find a 64-hex ID in the
# mount table or the cgroup path, as the original script did.
GET_PREFIX_SCRIPT = """\
#!/bin/sh
# Prints this container's ID: the name of its directory under the vhostuser mount.
# Installed by the vhostuser CNI plugin (vhostuser-vpp).
here=$(cd "$(dirname "$0")" && pwd)
count=0
for d in "$here"/*/; do
    [ -d "$d" ] || continue
    count=$((count + 1))
    only=$(basename "$d")
done
if [ "$count" -eq 1 ]; then
    echo "$only"
    exit 0
fi
for f in /proc/self/mountinfo /proc/self/cgroup; do
    id=$(grep -o '[0-9a-f]\\{64\\}' "$f" 2>/dev/null | while read -r cand; do
        if [ -d "$here/$cand" ]; then echo "$cand"; break; fi
    done)
    if [ -n "$id" ]; then
        echo "$id"
        exit 0
    fi
done
echo "get-prefix.sh: cannot tell which directory under $here is this container's" >&2
exit 1
"""


def ensure_cni_dir(cni_dir: str) -> None:
    try:
        os.makedirs(cni_dir, mode=0o755, exist_ok=True)
    except OSError as exc:
        raise StoreError("cannot create cniDir", f"{cni_dir}: {exc}") from exc


def ensure_get_prefix(cni_dir: str) -> None:
    """Writes the script once; an existing copy (perhaps the original's) is left alone."""
    if os.path.lexists(os.path.join(cni_dir, GET_PREFIX_NAME)):
        return
    try:
        fd = os.open(cni_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            atomic.write_file(fd, GET_PREFIX_NAME, GET_PREFIX_SCRIPT.encode(), mode=0o755)
        finally:
            os.close(fd)
    except OSError as exc:
        raise StoreError("cannot write get-prefix.sh", f"{cni_dir}: {exc}") from exc


def device_info(socket_path: str, vpp_is_server: bool) -> bytes:
    # The spec's mode is the container's view: "client" when the host (VPP) made the socket.
    doc = {
        "type": "vhost-user",
        "version": DEVICE_INFO_VERSION,
        "vhost-user": {"mode": "client" if vpp_is_server else "server", "path": socket_path},
    }
    return (json.dumps(doc, indent=2) + "\n").encode()


def write_device_info(path: str, content: bytes) -> None:
    directory, name = os.path.split(path)
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            atomic.write_file(fd, name, content)
        finally:
            os.close(fd)
    except OSError as exc:
        raise StoreError("cannot write the device-info file", f"{path}: {exc}") from exc


def remove_device_info(path: str) -> None:
    directory, name = os.path.split(path)
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            atomic.remove_file(fd, name)
        finally:
            os.close(fd)
