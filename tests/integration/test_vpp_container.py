"""The containerised VPP itself (tests/vpp_container.py): what deploy/ci/compose.yaml promises.

The lifecycle and dataplane tests that make test's third run points at this VPP prove that
ports, restarts and packets work through compose's mounts; these check the promises
themselves: the repository's startup.conf is what VPP runs, compose's health check works in
the image, and a socket the plugin names is one file seen from both mount namespaces.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests import vpp_targets
from tests.integration.conftest import VppNode, new_container_id
from tests.vpp_container import API_SOCKET, COMPOSE_FILE, ContainerVppInstance

pytestmark = [
    pytest.mark.container,
    pytest.mark.skipif(not vpp_targets.CONTAINER, reason="runs with VHOSTUSER_TEST_VPP_CONTAINER=1"),
]
STARTUP_CONF = COMPOSE_FILE.parent / "startup.conf"


def _container(vpp: VppNode) -> tuple[ContainerVppInstance, Path]:
    """The instance and VPP's root directory as seen from here (/proc/<pid>/root)."""
    assert isinstance(vpp.instance, ContainerVppInstance)
    assert vpp.instance.pid is not None
    return vpp.instance, Path(f"/proc/{vpp.instance.pid}/root")


def _same_file(a: Path, b: Path) -> bool:
    sa, sb = os.stat(a), os.stat(b)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def test_vpp_runs_the_repositorys_startup_conf_and_passes_composes_health_check(vpp: VppNode) -> None:
    instance, root = _container(vpp)
    assert (root / "etc/vpp/startup.conf").read_text() == STARTUP_CONF.read_text()
    plugins = vpp.vppctl("show", "plugins")
    assert "Plugin path is: /usr/lib/x86_64-linux-gnu/vpp_plugins" in plugins
    loaded = {line.split()[1] for line in plugins.splitlines() if line.strip()[:1].isdigit()}
    assert loaded == {"vhost_plugin.so", "ping_plugin.so"}
    health = instance.healthcheck()
    assert health.returncode == 0, health.stderr
    assert health.stdout.startswith("vpp v" + instance.build.label.removeprefix("vpp-")), health.stdout


def test_a_pods_socket_is_one_file_in_both_mount_namespaces(vpp: VppNode) -> None:
    """The plugin names the socket in the host's namespace, VPP binds it in its own: through
    compose's /tmp volume both names are the same file (and the API socket, at another path
    on each side, is one file too)."""
    instance, root = _container(vpp)
    assert _same_file(Path(instance.api_socket), root / API_SOCKET.lstrip("/"))
    config = vpp.node.vpp_config()
    cid = new_container_id()
    vpp.node.run("ADD", config, cid).assert_ok()
    socket = Path(f"{vpp.node.cni_dir}/{cid}/{cid[:12]}-net1")
    assert str(socket).startswith("/tmp/")
    [(path, port)] = vpp.probe.ports(str(vpp.node.cni_dir)).items()
    assert path == str(socket) and port.is_server
    assert stat.S_ISSOCK(os.stat(socket).st_mode)
    assert _same_file(socket, root / str(socket).lstrip("/"))
    vpp.node.run("DEL", config, cid).assert_ok()
    assert not socket.exists() and not (root / str(socket).lstrip("/")).exists()


def test_vpp_is_pid_1_in_its_container_before_and_after_a_restart(vpp: VppNode) -> None:
    """Its own pid namespace, as in compose or a Kubernetes pod: control_ping's vpe_pid
    cannot tell a restarted VPP from the one before (the node agent counts restarts by it)."""
    assert vpp.probe.papi.api.control_ping().vpe_pid == 1
    vpp.restart()
    assert vpp.probe.papi.api.control_ping().vpe_pid == 1
