"""The suite's real VPP in a podman container, laid out as deploy/ci/compose.yaml runs it.

`VHOSTUSER_TEST_VPP_CONTAINER=1` (make test's third run) makes the real VPP the tests use a
container rather than a process: the same build (tests/vpp_instance.py's `find_build`),
packed into an image built here from local files, and started from compose.yaml's own `vpp`
service (command, privileges, volumes) with deploy/ci/startup.conf bind-mounted unchanged,
so what the repository ships is what runs. Compose's two containers become one container
and this host: the host's mount namespace plays the `tests` container, so compose's named
volumes map to host directories:
- `shared-tmp` (at /tmp in both of compose's containers) is the host's /tmp, where every
  test makes the directories it gives VPP socket paths in (the nodes' cniDirs);
- `vpp-run` (VPP's /run/vpp: API, CLI and stats sockets) is the instance's own run
  directory, so concurrent runs never share a socket and nothing touches the host's
  /run/vpp. The API socket's path differs on the two sides, which is fine: a client
  connects to the path it sees. A vhost-user socket's path does not: the plugin names it
  and VPP binds it, so it must be the same path in both mount namespaces; the tests that
  pass here prove compose's mounts give that.
`--network host` stands for compose's `network_mode: service:vpp` (the tests share VPP's
network namespace). Unix sockets are found by path, not through a network namespace, so
the API and vhost-user sockets would work without it; it is what a node runs (VPP's tap
to the host, `vhost.host_route`, is a host link).

The image is FROM scratch: the build's `vpp` and `vppctl` at /usr/bin, the two plugins
startup.conf enables where FD.io's packages put plugins (VPP's default plugin path,
/usr/lib/x86_64-linux-gnu/vpp_plugins, which startup.conf relies on), and every library
`ldd` says they load, the loader included: the build's own below /usr/lib (its `$ORIGIN/../lib`
rpath), the system's at their own paths. Its tag carries a hash of those files, so it is
built once (about 1 s) and reused while the build is unchanged.

Podman keeps its images and containers in a store of its own (STORE, vfs driver, its own
containers.conf with what Debian's podman 4.3 needs here: no default ulimits, cgroupfs),
never the host's default store. Each container is named after this process and labelled
with its pid; a session removes its containers at the end, and the first use in a later
session removes those whose session died without doing so.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import yaml

from tests.vpp_instance import REPO, STOP_TIMEOUT_S, VppBuild, VppInstance

COMPOSE_FILE = REPO / "deploy" / "ci" / "compose.yaml"
IMAGE = "localhost/vhostuser-vpp-ci-vpp"
STORE = Path("/var/tmp/vhostuser-vpp-podman")
OWNER_LABEL = "vhostuser-vpp.test-pid"
# deploy/ci/startup.conf enables these and no other plugin.
PLUGINS = ("vhost_plugin.so", "ping_plugin.so")
PLUGIN_DIR = "/usr/lib/x86_64-linux-gnu/vpp_plugins"
# Where compose's volumes are on this host (see the module's docstring); `vpp-run` is
# each instance's run directory.
RUN_VOLUME = "vpp-run"
HOST_VOLUMES = {"shared-tmp": Path("/tmp")}
# The sockets deploy/ci/startup.conf names, in VPP's mount namespace.
API_SOCKET = "/run/vpp/api.sock"
CLI_SOCKET = "/run/vpp/cli.sock"
STATS_SOCKET = "/run/vpp/stats.sock"
PODMAN_TIMEOUT_S = 120.0
CONTAINERS_CONF_TEXT = """\
[containers]
default_ulimits = []
log_driver = "k8s-file"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
"""
BUSYBOX = "/bin/busybox"


class PodmanUnusable(Exception):
    """Podman cannot run a container on this machine at all (not installed, no runtime,
    no cgroups, ...): the containerised run is skipped, VHOSTUSER_TEST_REQUIRE_VPP or not."""


class Podman:
    """The podman CLI on STORE: its own root, runroot, tmpdir, containers.conf and HOME."""

    def __init__(self, base: Path = STORE) -> None:
        self.base = base
        self.executable = shutil.which("podman") or "podman"
        self.runtime = shutil.which("runc") or "/usr/sbin/runc"

    def set_up(self) -> None:
        for name in ("root", "runroot", "tmp", "home"):
            (self.base / name).mkdir(parents=True, exist_ok=True)
        conf = self.base / "containers.conf"
        if not conf.exists() or conf.read_text() != CONTAINERS_CONF_TEXT:
            # Renamed into place: a concurrent session's podman never reads half a file.
            staged = conf.with_name(f".containers.conf.{os.getpid()}")
            staged.write_text(CONTAINERS_CONF_TEXT)
            staged.replace(conf)

    def __call__(self, *args: str, timeout: float = PODMAN_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        argv = [self.executable, "--root", str(self.base / "root"), "--runroot", str(self.base / "runroot")]
        argv += ["--tmpdir", str(self.base / "tmp"), "--storage-driver", "vfs", "--runtime", self.runtime]
        argv += ["--cgroup-manager", "cgroupfs", "--events-backend", "file", *args]
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.base / "home"),
            "CONTAINERS_CONF": str(self.base / "containers.conf"),
        }
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)

    def ok(self, *args: str, timeout: float = PODMAN_TIMEOUT_S) -> str:
        proc = self(*args, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args)}: rc={proc.returncode}\n{proc.stderr.strip()}")
        return proc.stdout

    def check_usable(self) -> None:
        """Raises PodmanUnusable, with podman's own error, unless podman can run a trivial
        container (a static busybox as the rootfs: no image, so nothing of ours can be
        what failed)."""
        if not os.access(self.executable, os.X_OK) or not os.access(self.runtime, os.X_OK):
            raise PodmanUnusable("podman or runc is not installed (make runtime)")
        if not os.access(BUSYBOX, os.X_OK):
            raise PodmanUnusable(f"{BUSYBOX} (busybox-static, make runtime) is needed to probe podman")
        self.set_up()
        with tempfile.TemporaryDirectory(prefix="vhu-probe-", dir=self.base / "tmp") as rootfs:
            (Path(rootfs) / "bin").mkdir()
            shutil.copy2(BUSYBOX, Path(rootfs) / "bin" / "true")
            probe = self("run", "--rm", "--network", "none", "--rootfs", rootfs, "/bin/true")
        if probe.returncode != 0:
            raise PodmanUnusable(
                f"podman cannot run a container here (rc={probe.returncode}): {probe.stderr.strip()}"
            )

    def remove_orphans(self) -> None:
        """Removes containers whose session (the pid in their label) is gone."""
        listed = self.ok("ps", "--all", "--filter", f"label={OWNER_LABEL}", "--format", "json")
        for container in json.loads(listed or "[]"):
            owner = int(container["Labels"][OWNER_LABEL])
            if not _alive(owner):
                self("rm", "--force", "--time", "0", container["Id"])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ComposeVpp(NamedTuple):
    """What compose.yaml's `vpp` service runs."""

    command: list[str]
    privileged: bool
    volumes: list[tuple[str, str, str]]  # (source: a path or a named volume, target, options)
    healthcheck: list[str]


def compose_vpp() -> ComposeVpp:
    service = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["vpp"]
    volumes = []
    for spec in service["volumes"]:
        source, target, *options = spec.split(":")
        if source.startswith("."):
            source = str((COMPOSE_FILE.parent / source).resolve())
        volumes.append((source, target, ",".join(options)))
    return ComposeVpp(
        service["command"], bool(service.get("privileged")), volumes, service["healthcheck"]["test"]
    )


def _ldd(binary: Path) -> Iterator[Path]:
    """The libraries the loader maps for `binary`, and the loader itself."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, timeout=30, check=True).stdout
    for line in out.splitlines():
        if "not found" in line:
            raise RuntimeError(f"{binary}: {line.strip()}")
        path = line.split("=>")[-1].split("(")[0].strip()
        if path.startswith("/"):
            yield Path(os.path.normpath(path))  # the name the loader asks for, without `bin/..`


def image_files(build: VppBuild) -> dict[str, Path]:
    """The image's files (path in the image -> file on this host)."""
    prefix = Path(os.path.normpath(build.vpp.parent.parent))
    files = {"/usr/bin/vpp": build.vpp, "/usr/bin/vppctl": build.vppctl}
    files |= {f"{PLUGIN_DIR}/{name}": build.plugin_dir / name for name in PLUGINS}
    for binary in list(files.values()):
        for lib in _ldd(binary):
            # The build's own libraries go where its rpath ($ORIGIN/../lib) finds them from
            # /usr/bin; the system's stay where the loader looks for them.
            inside = "/usr/" + str(lib.relative_to(prefix)) if lib.is_relative_to(prefix) else str(lib)
            files[inside] = lib
    return files


def containerfile(build: VppBuild, command: list[str]) -> str:
    return (
        "FROM scratch\n"
        "COPY rootfs/ /\n"
        "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin\n"
        f"LABEL org.opencontainers.image.version={build.label.removeprefix('vpp-')}\n"
        f"CMD {json.dumps(command)}\n"
    )


def build_image(podman: Podman, build: VppBuild, command: list[str]) -> str:
    """The image's tag, built unless an image of these very files exists."""
    files = image_files(build)
    recipe = containerfile(build, command)
    digest = hashlib.sha256(recipe.encode())
    for inside, host in sorted(files.items()):
        digest.update(f"{inside}\0{host.stat().st_mode & 0o777:o}\0".encode())
        digest.update(host.read_bytes())
    tag = f"{IMAGE}:{build.label.removeprefix('vpp-')}-{digest.hexdigest()[:12]}"
    if podman("image", "exists", tag).returncode == 0:
        return tag
    with tempfile.TemporaryDirectory(prefix="vhu-image-", dir=podman.base / "tmp") as context:
        for inside, host in files.items():
            dest = Path(context) / "rootfs" / inside.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(host, dest)  # follows symlinks: the image gets the file, by the name asked for
        (Path(context) / "Containerfile").write_text(recipe)
        podman.ok("build", "--quiet", "--tag", tag, context, timeout=300)
    return tag


class ContainerVppInstance(VppInstance):
    """A VppInstance whose VPP is compose's `vpp` service in a podman container.

    The container is made once and started again for every restart, so a restart keeps
    the same paths, as a VPP restarted by its orchestrator does. `stop` is `podman stop`
    (SIGTERM, SIGKILL after STOP_TIMEOUT_S), `crash` is `podman kill --signal KILL`. The
    container's process is watched through a pidfd: `running` asks the kernel, not podman.
    """

    _containers = 0

    def __init__(self, build: VppBuild, podman: Podman, image: str, compose: ComposeVpp) -> None:
        super().__init__(build)
        ContainerVppInstance._containers += 1
        self.podman = podman
        self.image = image
        self.compose = compose
        self.name = f"vhu-vpp-{os.getpid()}-{ContainerVppInstance._containers}"
        self.api_socket = self.host_path(API_SOCKET)
        self.cli_socket = self.host_path(CLI_SOCKET)
        self.stats_socket = self.host_path(STATS_SOCKET)
        self._pidfd: int | None = None
        self._pid = 0
        self._created = False

    def volume_args(self) -> list[str]:
        """compose's volumes as bind mounts: named volumes at their host directories."""
        args = []
        for source, target, options in self.compose.volumes:
            # A named volume is one directory: `bind`, not podman's default `rbind`, so that
            # mounts others make below /tmp are not held in VPP's namespace.
            named = () if source.startswith("/") else ("bind",)
            mount = ",".join(filter(None, (options, *named)))
            args += ["--volume", f"{self._volume_source(source)}:{target}" + (f":{mount}" if mount else "")]
        return args

    def _volume_source(self, source: str) -> Path:
        if source.startswith("/"):
            return Path(source)
        if source == RUN_VOLUME:
            return self.run_dir
        if source in HOST_VOLUMES:
            return HOST_VOLUMES[source]
        raise RuntimeError(f"{COMPOSE_FILE}: volume {source!r} has no place on this host (vpp_container.py)")

    def host_path(self, inside: str) -> str:
        """Where a path in VPP's mount namespace is in ours, through compose's volumes."""
        for source, target, _ in self.compose.volumes:
            if inside == target or inside.startswith(target.rstrip("/") + "/"):
                return str(self._volume_source(source) / Path(inside).relative_to(target))
        raise RuntimeError(f"{inside} is on no volume of compose's vpp service: the tests cannot reach it")

    def _launch(self) -> None:
        if not self._created:
            create = ["create", "--name", self.name, "--label", f"{OWNER_LABEL}={os.getpid()}"]
            create += ["--network", "host", *self.volume_args()]
            if self.compose.privileged:
                create.append("--privileged")
            self.podman.ok(*create, self.image, *self.compose.command)
            self._created = True
        self.podman.ok("start", self.name)
        self._pid = int(self.podman.ok("inspect", "--format", "{{.State.Pid}}", self.name))
        try:
            self._pidfd = os.pidfd_open(self._pid) if self._pid > 0 else None
        except ProcessLookupError:  # VPP is gone already: _wait_ready says how it ended
            self._pidfd = None

    @property
    def running(self) -> bool:
        return self._pidfd is not None and not select.select([self._pidfd], [], [], 0)[0]

    @property
    def pid(self) -> int | None:
        """VPP's pid in the host's pid namespace."""
        return self._pid if self.running else None

    def exit_status(self) -> str:
        status = "{{.State.Status}}, exit code {{.State.ExitCode}}"
        return "container " + self.podman.ok("inspect", "--format", status, self.name).strip()

    def stop(self, crash: bool = False) -> None:
        pidfd, self._pidfd = self._pidfd, None
        if pidfd is None:
            return
        try:
            if not select.select([pidfd], [], [], 0)[0]:
                if crash:
                    self.podman.ok("kill", "--signal", "KILL", self.name)
                else:
                    self.podman.ok("stop", "--time", str(int(STOP_TIMEOUT_S)), self.name)
                if not select.select([pidfd], [], [], STOP_TIMEOUT_S)[0]:
                    raise RuntimeError(f"{self.name}: VPP still running after podman stopped it")
            # podman's view too, so that the next `podman start` finds it exited.
            self.podman.ok("wait", self.name)
        finally:
            os.close(pidfd)

    def close(self) -> None:
        try:
            self.stop()
        finally:
            if self._created:
                self.podman("rm", "--force", "--time", "0", self.name)
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def healthcheck(self) -> subprocess.CompletedProcess[str]:
        """compose's health check, run in the container as compose's engine would."""
        kind, *argv = self.compose.healthcheck
        if kind != "CMD":
            raise RuntimeError(f"{COMPOSE_FILE}: healthcheck {kind} needs a shell, which the image lacks")
        return self.podman("exec", self.name, *argv, timeout=30)

    def log_tail(self, lines: int = 20) -> str:
        """VPP's output, which compose leaves to the container log (startup.conf has no log file)."""
        if not self._created:
            return ""
        logs = self.podman("logs", "--tail", str(lines), self.name)
        return logs.stdout + logs.stderr


def start(build: VppBuild) -> ContainerVppInstance:
    """A started containerised VPP of `build`; PodmanUnusable when podman cannot run any
    container here, RuntimeError for anything else (the image, compose's file, VPP)."""
    podman = Podman()
    podman.check_usable()
    podman.remove_orphans()
    compose = compose_vpp()
    image = build_image(podman, build, compose.command)
    instance = ContainerVppInstance(build, podman, image, compose)
    try:
        instance.start()
    except BaseException:
        instance.close()
        raise
    return instance
