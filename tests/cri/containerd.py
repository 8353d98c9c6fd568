"""A containerd of the test's own, everything it keeps under one temporary directory.

Its config moves all it can there: the gRPC, ttrpc and debug sockets, root and state,
runc's root, the sandboxes' network namespaces (`netns_mounts_under_state_dir`), the CRI
plugin's CNI `bin_dir` and `conf_dir`. What cannot move is checked and cleaned instead:
the shims' sockets (`/run/containerd/s/<hash of our address>`, which each shim removes as
it exits), libcni's result cache (`/var/lib/cni/results`), the sandboxes' cgroups (under
a parent of our own) and the bridge device of the first network.

No registry is reachable, so the sandbox ("pause") image is an OCI archive made here from
busybox-static, with `sleep` as its entrypoint, imported with `ctr`. Without
`restrict_oom_score_adj` (which keeps the sandbox's oom_score_adj within containerd's
own), runc failed every sandbox here: "unable to start container process: can't get
final child's PID from pipe: EOF".

`bin_dir` holds the reference plugins the networks use (links into the system's CNI
dir) and tests/cni_calls.py's recording launcher for the plugin under test, so
`cni-calls.jsonl` is the record of what containerd calls.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import secrets
import shutil
import signal
import subprocess
import tarfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from tests.cni_calls import read_calls, write_launcher
from tests.cri.client import CriApi, CriClient, Pod

CONTAINERD = "containerd"
CTR = "ctr"
RUNC = "/usr/sbin/runc"
BUSYBOX = "/bin/busybox"
SANDBOX_IMAGE = "localhost/vhostuser-vpp-test/pause:1"
NAMESPACE = "k8s.io"  # the containerd namespace the CRI plugin works in
LIBCNI_CACHE = Path("/var/lib/cni/results")
SHIM_SOCKETS = Path("/run/containerd/s")
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0
CTR_TIMEOUT_S = 60.0
IP_TIMEOUT_S = 30.0
# Plugins of containerd 1.6 it would load by default and we do not use: `opt` makes
# /opt/containerd on the host; the snapshotters other than overlayfs (devmapper logs a
# warning that it is not configured).
DISABLED_PLUGINS = [
    "io.containerd.internal.v1.opt",
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.snapshotter.v1.zfs",
]


class ContainerdUnavailable(Exception):
    """containerd did not start serving CRI, or could not import the sandbox image; the
    message is containerd's (or ctr's) error."""


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes = b"", **attrs: Any) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    for key, value in attrs.items():
        setattr(info, key, value)
    tar.addfile(info, io.BytesIO(data) if data else None)


def _blob(archive: tarfile.TarFile, media_type: str, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    _tar_add(archive, f"blobs/sha256/{digest}", data)
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}


def write_sandbox_image(path: Path, name: str = SANDBOX_IMAGE) -> None:
    """An OCI image archive with one layer: busybox-static as /bin/busybox, `sleep` linked
    to it, and the empty directories runc mounts over; `sleep` is the entrypoint."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        for directory in ("bin", "dev", "etc", "proc", "sys", "tmp"):
            _tar_add(tar, directory, type=tarfile.DIRTYPE, mode=0o755)
        _tar_add(tar, "bin/busybox", Path(BUSYBOX).read_bytes(), mode=0o755)
        _tar_add(tar, "bin/sleep", type=tarfile.SYMTYPE, linkname="busybox", mode=0o777)
    with tarfile.open(path, mode="w") as archive:
        layer_desc = _blob(archive, "application/vnd.oci.image.layer.v1.tar", layer.getvalue())
        config = {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": ["/bin/sleep", "2147483647"]},
            "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]},
        }
        manifest_type = "application/vnd.oci.image.manifest.v1+json"
        manifest = {
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": _blob(archive, "application/vnd.oci.image.config.v1+json", json.dumps(config).encode()),
            "layers": [layer_desc],
        }
        manifest_desc = _blob(archive, manifest_type, json.dumps(manifest).encode())
        manifest_desc["annotations"] = {"io.containerd.image.name": name}
        index = {"schemaVersion": 2, "manifests": [manifest_desc]}
        _tar_add(archive, "index.json", json.dumps(index).encode())
        _tar_add(archive, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')


def _toml(value: Any) -> str:
    """A TOML value: strings, booleans, integers and lists of them are JSON's syntax too."""
    return json.dumps(value)


def _processes_mentioning(text: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if text.encode() in cmdline:
                pids.append(int(proc.name))
    return pids


def _poll(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    delay = 0.05
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
    return True


@dataclass
class Containerd:
    """One containerd under `base`, with the networks written by `write_network` in its
    CNI conf_dir (sorted by name: the first gets eth0, the second eth1)."""

    base: Path
    api: CriApi
    bridge: str = field(default_factory=lambda: f"vhucri{secrets.token_hex(4)}")
    cgroup_parent: str = field(default_factory=lambda: f"/vhucri-{secrets.token_hex(6)}")
    proc: subprocess.Popen[bytes] | None = None
    client: CriClient | None = None
    sandboxes: list[str] = field(default_factory=list)
    # Host directories containerd or libcni may make: those that were missing are removed
    # again when empty.
    host_dirs: dict[Path, bool] = field(
        default_factory=lambda: {
            p: p.exists() for p in (LIBCNI_CACHE, LIBCNI_CACHE.parent, SHIM_SOCKETS, SHIM_SOCKETS.parent)
        }
    )

    @property
    def socket(self) -> Path:
        return self.base / "containerd.sock"

    @property
    def bin_dir(self) -> Path:
        return self.base / "cni-bin"

    @property
    def conf_dir(self) -> Path:
        return self.base / "cni-conf"

    @property
    def bridge_ipam_dir(self) -> Path:
        return self.base / "bridge-ipam"

    @property
    def calls_file(self) -> Path:
        return self.base / "cni-calls.jsonl"

    @property
    def log(self) -> Path:
        return self.base / "containerd.log"

    def set_up(self, reference_plugins: str, plugin: str) -> None:
        """The directories, `bin_dir` (the reference plugins, and a launcher named
        `vhostuser` that records each call, then executes `plugin`), the image, the config."""
        for name in ("root", "state", "runc", "cni-bin", "cni-conf", "bridge-ipam", "pods"):
            (self.base / name).mkdir()
        for name in ("bridge", "host-local", "loopback"):
            (self.bin_dir / name).symlink_to(Path(reference_plugins, name))
        write_launcher(self.bin_dir / "vhostuser", self.calls_file, plugin)
        write_sandbox_image(self.base / "pause.tar")
        cri = '[plugins."io.containerd.grpc.v1.cri"'
        (self.base / "config.toml").write_text(
            "version = 2\n"
            f"root = {_toml(str(self.base / 'root'))}\n"
            f"state = {_toml(str(self.base / 'state'))}\n"
            f"disabled_plugins = {_toml(DISABLED_PLUGINS)}\n"
            f"[grpc]\naddress = {_toml(str(self.socket))}\n"
            f"[ttrpc]\naddress = {_toml(str(self.base / 'containerd.sock.ttrpc'))}\n"
            f"[debug]\naddress = {_toml(str(self.base / 'debug.sock'))}\n"
            "[metrics]\naddress = ''\n"
            f"{cri}]\n"
            f"sandbox_image = {_toml(SANDBOX_IMAGE)}\n"
            "restrict_oom_score_adj = true\n"
            "netns_mounts_under_state_dir = true\n"
            f"{cri}.cni]\n"
            f"bin_dir = {_toml(str(self.bin_dir))}\n"
            f"conf_dir = {_toml(str(self.conf_dir))}\n"
            "max_conf_num = 2\n"
            f"{cri}.containerd]\n"
            "snapshotter = 'overlayfs'\n"
            "default_runtime_name = 'runc'\n"
            f"{cri}.containerd.runtimes.runc]\n"
            "runtime_type = 'io.containerd.runc.v2'\n"
            f"{cri}.containerd.runtimes.runc.options]\n"
            f"BinaryName = {_toml(RUNC)}\n"
            f"Root = {_toml(str(self.base / 'runc'))}\n"
        )

    def bridge_network(self, subnet: str) -> dict[str, Any]:
        """eth0's plugin (and the chained network's first): a bridge of our own name without
        an address (no host route, so no clash with anything else in that subnet on this
        machine), host-local in our dir."""
        return {
            "type": "bridge",
            "bridge": self.bridge,
            "isGateway": False,
            "ipMasq": False,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": subnet}]],
                "dataDir": str(self.bridge_ipam_dir),
            },
        }

    def write_network(self, file_name: str, name: str, plugins: list[dict[str, Any]], version: str) -> None:
        conflist = {"cniVersion": version, "name": name, "plugins": plugins}
        (self.conf_dir / file_name).write_text(json.dumps(conflist, indent=2))

    def start(self, env: Mapping[str, str]) -> CriClient:
        """Starts containerd with `env` (which it passes on to every plugin it runs) and
        imports the sandbox image; raises ContainerdUnavailable with its log if it cannot."""
        environ = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", **env}
        argv = [CONTAINERD, "--config", str(self.base / "config.toml"), "--log-level", "info"]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, env=environ, stdout=log, stderr=log, cwd=self.base)
        self.client = CriClient(self.socket, self.api)
        if not _poll(self._serving, START_TIMEOUT_S):
            code = self.proc.poll()
            raise ContainerdUnavailable(
                f"containerd did not serve CRI within {START_TIMEOUT_S:g}s (exit code {code}):"
                f" {self.log_errors()}"
            )
        ctr = [CTR, "--address", str(self.socket), "--namespace", NAMESPACE, "images", "import"]
        imported = subprocess.run(
            [*ctr, str(self.base / "pause.tar")],
            check=False,
            capture_output=True,
            text=True,
            timeout=CTR_TIMEOUT_S,
        )
        if imported.returncode != 0:
            raise ContainerdUnavailable(f"ctr images import: {imported.stderr.strip()}")
        return self.client

    def _serving(self) -> bool:
        if self.proc is None or self.proc.poll() is not None or not self.socket.exists():
            return False
        assert self.client is not None
        try:
            self.client.version()
        except Exception:
            return False
        return True

    def log_errors(self) -> str:
        """containerd's error lines (its log is logfmt: level=error msg=...)."""
        if not self.log.exists():
            return "(no log)"
        lines = self.log.read_text(errors="replace").splitlines()
        errors = [line for line in lines if "level=error" in line or "level=fatal" in line]
        return "\n".join(errors[-5:] or lines[-5:])

    def run_pod(self, pod: Pod) -> str:
        """RunPodSandbox for `pod`; the sandbox is remembered for the clean-up."""
        assert self.client is not None
        config = pod.sandbox_config(self.api, self.base / "pods", self.cgroup_parent)
        sandbox_id = self.client.run_pod_sandbox(config)
        self.sandboxes.append(sandbox_id)
        return sandbox_id

    def calls(self) -> list[dict[str, Any]]:
        """What containerd asked the plugin under test, in order."""
        return read_calls(self.calls_file)

    def libcni_cache(self, sandbox_id: str) -> set[str]:
        """libcni's cached results of a sandbox's attachments (<network>-<id>-<ifname>)."""
        if not LIBCNI_CACHE.is_dir():
            return set()
        return {p.name for p in LIBCNI_CACHE.iterdir() if f"-{sandbox_id}-" in p.name}

    def shim_socket(self, sandbox_id: str) -> Path:
        """Where a sandbox's shim listens: containerd 1.6 names the socket after the sha256
        of `<containerd's address>/<namespace>/<id>`; the shim removes it when it exits."""
        digest = hashlib.sha256(f"{self.socket}/{NAMESPACE}/{sandbox_id}".encode()).hexdigest()
        return SHIM_SOCKETS / digest

    def mounts(self) -> list[str]:
        """Mount points under `base` (rootfs overlays, /dev/shm, netns), innermost last."""
        points = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
        return [p for p in points if p.startswith(f"{self.base}/")]

    def shims(self) -> list[int]:
        """The containerd-shim-runc-v2 processes serving our containerd."""
        return [
            pid
            for pid in _processes_mentioning(str(self.socket))
            if self.proc is None or pid != self.proc.pid
        ]

    def _stop(self) -> None:
        """containerd exits (SIGTERM); shims and sandboxes it leaves keep running."""
        proc, self.proc = self.proc, None
        if self.client is not None:
            self.client.close()
            self.client = None
        if proc is None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)

    def tear_down(self) -> None:
        """Removes every sandbox still there as kubelet would (stop, then remove), stops
        containerd, then whatever a failed test left: shims and their sockets, mounts,
        cgroups, the bridge, libcni's cache entries, the directory."""
        removed_all = self._remove_sandboxes()
        self._stop()
        # Shims exit once their sandbox is removed; those of sandboxes still there never do.
        if not removed_all or not _poll(lambda: not self.shims(), STOP_TIMEOUT_S):
            for pid in self.shims():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self._remove_cgroups()
        for mount_point in reversed(self.mounts()):
            subprocess.run(
                ["umount", "-l", mount_point], timeout=STOP_TIMEOUT_S, check=False, capture_output=True
            )
        if Path("/sys/class/net", self.bridge).exists():
            subprocess.run(["ip", "link", "del", self.bridge], timeout=IP_TIMEOUT_S, check=True)
        container_ids = {*self.sandboxes, *(call["CNI_CONTAINERID"] for call in self.calls())}
        for container_id in container_ids:
            self.shim_socket(container_id).unlink(missing_ok=True)
            for name in self.libcni_cache(container_id):
                (LIBCNI_CACHE / name).unlink(missing_ok=True)
        for directory, existed in self.host_dirs.items():
            if not existed:
                with contextlib.suppress(OSError):  # not empty: someone else's use of it
                    directory.rmdir()
        shutil.rmtree(self.base, ignore_errors=True)

    def _remove_sandboxes(self) -> bool:
        """Stops and removes every sandbox containerd has; False if it could not."""
        if self.client is None or self.proc is None or self.proc.poll() is not None:
            return False
        try:
            for sandbox in self.client.list_pod_sandbox():
                self.sandboxes.append(sandbox.id)
                self.client.stop_pod_sandbox(sandbox.id)
                self.client.remove_pod_sandbox(sandbox.id)
        except grpc.RpcError:
            return False
        return True

    def _remove_cgroups(self) -> None:
        """Our cgroup parent in every hierarchy, after killing what a failed test left in it."""
        root = Path("/sys/fs/cgroup")
        for hierarchy in (root, *(p for p in root.iterdir() if p.is_dir())):
            parent = hierarchy / self.cgroup_parent.lstrip("/")
            if not parent.is_dir():
                continue
            groups = sorted((p for p in parent.rglob("*") if p.is_dir()), reverse=True)
            for group in [*groups, parent]:
                procs = group / "cgroup.procs"
                for pid in procs.read_text().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
                _poll(functools.partial(_is_empty, procs), STOP_TIMEOUT_S)
                group.rmdir()


def _is_empty(procs: Path) -> bool:
    return not procs.read_text().strip()
