"""The plugin under a real libcni runtime: podman (CNI network backend) runs a container
on a bridge network plus a vhostuser network, then removes it.

Everything podman keeps lives in a temporary directory: its own containers.conf
(CONTAINERS_CONF), network config dir, storage (--root, --runroot, vfs), tmpdir
and a cgroup parent of its own; the bridge's device is deleted at the end. What
podman cannot move is libcni's result cache (/var/lib/cni/results): the test
checks that its entries come and go with the container. The container's rootfs
is a directory holding busybox-static.

The plugin finds this node's policy through VHOSTUSER_VPP_NODE_CONFIG, set in
containers.conf's `[engine] env` rather than in podman's environment: a DEL may
come from the `podman container cleanup` that conmon starts when the container
exits, and conmon passes that process only PATH, HOME and CONTAINERS_CONF. With
the variable in podman's environment alone, about every other `podman rm` left
the port behind (the cleanup's DEL was refused under the default policy, and
podman went on as if the network were gone).

Skipped, with podman's own error, only where podman cannot run a container at all.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.cni_calls import read_calls, write_launcher
from tests.integration.conftest import CNI_BIN_DIR, DIRECT_PLUGIN, NETWORK, VppNode, host_local_reservations

RUNC = "/usr/sbin/runc"
BUSYBOX = "/bin/busybox"
BRIDGE_NETWORK = "vhu-bridge"
BRIDGE_SUBNET = "10.88.213.0/24"
LIBCNI_CACHE = Path("/var/lib/cni/results")
PACKAGES = "apt-get install podman runc busybox-static"


def _is_static(path: str) -> bool:
    """An ELF executable without a PT_INTERP program header needs no loader in the rootfs."""
    with open(path, "rb") as f:
        header = f.read(64)
        if header[:4] != b"\x7fELF" or header[4] != 2:  # 64-bit ELF only
            return False
        order = "<" if header[5] == 1 else ">"
        (phoff,) = struct.unpack_from(order + "Q", header, 32)
        phentsize, phnum = struct.unpack_from(order + "HH", header, 54)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return all(struct.unpack_from(order + "I", table, i * phentsize)[0] != 3 for i in range(phnum))


def _wait_for_exit(pid: int, timeout: float) -> None:
    """Waits for a process that is not our child (a pidfd becomes readable when it exits)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        assert poller.poll(timeout * 1000), f"process {pid} still running after {timeout} s"
    finally:
        os.close(fd)


@dataclass
class Podman:
    """A podman whose state, config and networks all live under `base`."""

    base: Path
    bridge: str = field(default_factory=lambda: f"vhubr{secrets.token_hex(4)}")
    cgroup_parent: str = field(default_factory=lambda: f"/vhupod-{secrets.token_hex(6)}")
    containers: list[str] = field(default_factory=list)
    had_libcni_cache: bool = field(default_factory=LIBCNI_CACHE.exists)

    @property
    def rootfs(self) -> Path:
        return self.base / "rootfs"

    @property
    def net_dir(self) -> Path:
        return self.base / "net"

    @property
    def plugin_dir(self) -> Path:
        return self.base / "bin"

    @property
    def bridge_ipam_dir(self) -> Path:
        return self.base / "bridge-ipam"

    @property
    def calls_file(self) -> Path:
        return self.base / "cni-calls.jsonl"

    def set_up(self) -> None:
        for name in ("root", "runroot", "tmp", "home", "net", "bin", "bridge-ipam"):
            (self.base / name).mkdir()
        for name in ("bin", "proc", "sys", "dev", "etc", "tmp"):
            (self.rootfs / name).mkdir(parents=True)
        shutil.copy2(BUSYBOX, self.rootfs / "bin" / "busybox")
        for applet in ("sh", "sleep", "cat", "true"):
            (self.rootfs / "bin" / applet).symlink_to("busybox")
        # The plugin as a runtime finds it (an executable named after its type in a CNI
        # dir), recording each call.
        write_launcher(self.plugin_dir / "vhostuser", self.calls_file, DIRECT_PLUGIN)
        self.configure({})
        # No address on the bridge (isGateway false), so no host route and no clash
        # with whatever else uses 10.88/16 on this machine.
        self.write_network(
            BRIDGE_NETWORK,
            {
                "type": "bridge",
                "bridge": self.bridge,
                "isGateway": False,
                "ipMasq": False,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": BRIDGE_SUBNET}]],
                    "dataDir": str(self.bridge_ipam_dir),
                },
            },
        )

    def configure(self, engine_env: Mapping[str, str]) -> None:
        """containers.conf; `engine_env` reaches every podman process, conmon's cleanups too."""
        (self.base / "containers.conf").write_text(
            "[containers]\n"
            "default_ulimits = []\n"
            'log_driver = "k8s-file"\n'
            "[network]\n"
            'network_backend = "cni"\n'
            f"cni_plugin_dirs = {json.dumps([str(self.plugin_dir), CNI_BIN_DIR])}\n"
            f"network_config_dir = {json.dumps(str(self.net_dir))}\n"
            "[engine]\n"
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
            f"env = {json.dumps([f'{k}={v}' for k, v in engine_env.items()])}\n"
        )

    def write_network(self, name: str, plugin: dict[str, Any]) -> None:
        conflist = {"cniVersion": "1.0.0", "name": name, "plugins": [plugin]}
        (self.net_dir / f"{name}.conflist").write_text(json.dumps(conflist, indent=2))

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        argv = [
            "podman",
            "--root",
            str(self.base / "root"),
            "--runroot",
            str(self.base / "runroot"),
            "--tmpdir",
            str(self.base / "tmp"),
            "--storage-driver",
            "vfs",
            "--runtime",
            RUNC,
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
            *args,
        ]
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.base / "home"),
            "CONTAINERS_CONF": str(self.base / "containers.conf"),
        }
        return subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=timeout, check=False, cwd=self.base
        )

    def ok(self, *args: str) -> str:
        proc = self(*args)
        assert proc.returncode == 0, f"podman {' '.join(args)}: rc={proc.returncode}\n{proc.stderr}"
        return proc.stdout

    def run_args(self) -> list[str]:
        """`podman run` options every container here gets: the rootfs, and runc's cgroups
        under a parent of our own (conmon stays where podman is)."""
        return ["--cgroups", "no-conmon", "--cgroup-parent", self.cgroup_parent, "--rootfs", str(self.rootfs)]

    def libcni_cache(self, container_id: str) -> dict[str, Any]:
        """libcni's cached attachments of a container: file name -> entry."""
        if not LIBCNI_CACHE.is_dir():
            return {}
        return {
            p.name: json.loads(p.read_text()) for p in LIBCNI_CACHE.iterdir() if f"-{container_id}-" in p.name
        }

    def tear_down(self) -> None:
        self("rm", "--all", "--force", "--time", "0")
        # conmon and the `podman container cleanup` it starts outlive `podman rm`; let them
        # finish before their directories go.
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit() and int(proc.name) != os.getpid():
                try:
                    cmdline = (proc / "cmdline").read_bytes()
                except OSError:
                    continue
                if str(self.base).encode() in cmdline:
                    _wait_for_exit(int(proc.name), timeout=60)
        for line in reversed(Path("/proc/self/mounts").read_text().splitlines()):
            mount_point = line.split()[1]
            if mount_point.startswith(f"{self.base}/"):
                subprocess.run(["umount", "-l", mount_point], timeout=30, check=False, capture_output=True)
        cgroup_root = Path("/sys/fs/cgroup")
        for hierarchy in (cgroup_root, *(p for p in cgroup_root.iterdir() if p.is_dir())):
            parent = hierarchy / self.cgroup_parent.lstrip("/")
            if parent.is_dir():
                for child in sorted((p for p in parent.rglob("*") if p.is_dir()), reverse=True):
                    child.rmdir()
                parent.rmdir()
        if Path("/sys/class/net", self.bridge).exists():
            subprocess.run(["ip", "link", "del", self.bridge], timeout=30, check=True)
        for container_id in self.containers:  # what a failed DEL left in libcni's cache
            for name in self.libcni_cache(container_id):
                (LIBCNI_CACHE / name).unlink(missing_ok=True)
        if not self.had_libcni_cache:
            for directory in (LIBCNI_CACHE, LIBCNI_CACHE.parent):
                try:
                    directory.rmdir()
                except OSError:
                    break  # not empty: someone else's use of it
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def podman() -> Iterator[Podman]:
    missing = [tool for tool in ("podman", RUNC, BUSYBOX) if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} ({PACKAGES})")
    if not _is_static(BUSYBOX):
        pytest.skip(f"{BUSYBOX} is not statically linked ({PACKAGES})")
    tool = Podman(Path(tempfile.mkdtemp(prefix="vhupod", dir="/tmp")))
    try:
        tool.set_up()
        probe = tool("run", "--rm", "--network", "none", *tool.run_args(), "/bin/true")
        if probe.returncode != 0:
            pytest.skip(f"podman cannot run a container here (rc={probe.returncode}): {probe.stderr.strip()}")
        yield tool
    finally:
        tool.tear_down()


def _interfaces_in_container(podman: Podman, container: str) -> set[str]:
    """Network devices in the container's namespace, from its /proc/net/dev."""
    lines = podman.ok("exec", container, "/bin/cat", "/proc/net/dev").splitlines()[2:]
    return {line.split(":", 1)[0].strip() for line in lines}


def test_podman_runs_and_removes_a_container_with_a_vhostuser_network(podman: Podman, vpp: VppNode) -> None:
    node, probe = vpp.node, vpp.probe
    cni_dir = str(node.cni_dir)
    plugin = node.vpp_config("1.0.0")
    for key in ("cniVersion", "name", "if0name"):  # the conflist's, and CNI_IFNAME's
        plugin.pop(key)
    podman.write_network(NETWORK, plugin)
    podman.configure({"VHOSTUSER_VPP_NODE_CONFIG": str(node.node_config)})
    networks = json.loads(podman.ok("network", "ls", "--format", "json"))
    assert {BRIDGE_NETWORK, NETWORK} <= {n["name"] for n in networks}

    assert probe.state(cni_dir) == (set(), {}, {})
    assert node.snapshot() == (set(), {}, {})

    calls_before = len(read_calls(podman.calls_file))
    name = f"vhu-{secrets.token_hex(4)}"
    network_arg = f"{BRIDGE_NETWORK},{NETWORK}"
    run = podman(
        "run", "--detach", "--name", name, "--network", network_arg, *podman.run_args(), "/bin/sleep", "600"
    )
    try:
        assert run.returncode == 0, f"podman run: rc={run.returncode}\n{run.stderr}"
        cid = podman.ok("inspect", "--format", "{{.Id}}", name).strip()
        podman.containers.append(cid)
        assert cid == run.stdout.strip() and len(cid) == 64
        assert podman.ok("inspect", "--format", "{{.State.Status}}", name).strip() == "running"

        # Podman 4.3 hands out eth0/eth1 in map order, so either network may get either
        # name: the vhostuser attachment's is the one its record carries.
        [record_path] = (node.cni_dir / cid).glob(f"{cid[:12]}-*.json")
        ifname = record_path.name.removeprefix(f"{cid[:12]}-").removesuffix(".json")
        # The bridge's veth is the container's only netdev; the vhostuser attachment,
        # which has none, got the other name.
        in_container = _interfaces_in_container(podman, name)
        assert in_container - {"lo"} == {"eth0", "eth1"} - {ifname}, (in_container, ifname)
        bridge_ifname = ({"eth0", "eth1"} - {ifname}).pop()

        socket_path = f"{cni_dir}/{cid}/{cid[:12]}-{ifname}"
        assert len(socket_path) <= 107
        assert node.files() == node.attachment_files(cid, ifname)

        [(path, port)] = probe.ports(cni_dir).items()
        assert path == socket_path and port.is_server
        iface = probe.interface(port.sw_if_index)
        assert iface.tag == f"cni:{cid[:12]}:{ifname}"
        assert iface.flags & 1, "admin up"
        ip4 = json.loads((node.cni_dir / cid / f"{cid[:12]}-{ifname}-ip4.conf").read_text())
        assert ip4["ipAddr"] == "10.56.217.131/32"
        assert ip4["gwMac"] == str(iface.l2_address)
        assert probe.pod_routes() == {"10.56.217.131/32": port.sw_if_index}
        assert probe.pod_neighbors() == {"10.56.217.131": (port.sw_if_index, ip4["macAddr"])}

        record = json.loads(record_path.read_text())
        assert record["containerID"] == cid
        assert record["network"] == NETWORK
        assert record["phase"] == "ready"
        assert record["ifname"] == ifname
        assert record["vhostname"] == iface.interface_name

        assert host_local_reservations(node.ipam_dir, NETWORK) == {"10.56.217.131": [cid, ifname]}
        [(bridge_ip, owner)] = host_local_reservations(podman.bridge_ipam_dir, BRIDGE_NETWORK).items()
        assert bridge_ip.startswith("10.88.213.") and owner == [cid, bridge_ifname]
        inspected = json.loads(podman.ok("inspect", "--format", "{{json .NetworkSettings.Networks}}", name))
        assert set(inspected) == {BRIDGE_NETWORK, NETWORK}
        assert inspected[BRIDGE_NETWORK]["IPAddress"] == bridge_ip

        # What podman got back from the plugin, as libcni cached it for the DEL.
        cached = podman.libcni_cache(cid)
        assert set(cached) == {f"{BRIDGE_NETWORK}-{cid}-{bridge_ifname}", f"{NETWORK}-{cid}-{ifname}"}
        result = cached[f"{NETWORK}-{cid}-{ifname}"]["result"]
        assert result["cniVersion"] == "1.0.0"
        assert result["interfaces"] == [{"name": ifname, "mac": ip4["macAddr"]}]
        assert [ip["address"] for ip in result["ips"]] == ["10.56.217.131/24"]
    finally:
        removed = podman("rm", "--force", "--time", "0", name)
    assert removed.returncode == 0, f"podman rm: rc={removed.returncode}\n{removed.stderr}"
    assert "error" not in removed.stderr.lower(), removed.stderr

    assert podman.ok("ps", "--all", "--quiet") == ""
    # What podman 4.3 asked: VERSION (libcni checks the plugin's versions before each ADD
    # and DEL), one ADD, one DEL in the container's netns with the cached result, no CHECK.
    calls = read_calls(podman.calls_file)[calls_before:]
    commands = [c["CNI_COMMAND"] for c in calls]
    assert [c for c in commands if c != "VERSION"] == ["ADD", "DEL"], commands
    assert commands.index("VERSION") < commands.index("ADD")
    add, delete = (c for c in calls if c["CNI_COMMAND"] != "VERSION")
    assert (add["CNI_CONTAINERID"], add["CNI_IFNAME"], add["prevResult"]) == (cid, ifname, None)
    assert (delete["CNI_NETNS"], delete["prevResult"]) == (add["CNI_NETNS"], result)
    assert probe.state(cni_dir) == (set(), {}, {})
    assert node.files() == set()
    assert node.reservations() == {}
    assert host_local_reservations(podman.bridge_ipam_dir, BRIDGE_NETWORK) == {}
    assert podman.libcni_cache(cid) == {}
