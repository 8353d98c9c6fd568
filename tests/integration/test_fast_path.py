"""The fast path: the `vhostuser` shim hands each request to the node agent.

What a runtime sees must not depend on the path: the same requests through the plugin
run directly and through shim + agent give the same exit codes and the same stdout, byte
for byte, and the same log lines on stderr. And no request may fail because the agent is
away, slow, older, or dies mid-request: the shim then serves it itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import (
    DIRECT_PLUGIN,
    CniRun,
    Node,
    ShimAgent,
    VppNode,
    new_container_id,
    wait_for,
)
from tests.integration.vpp_probe import VppProbe
from vhostuser_vpp.agent import wire
from vhostuser_vpp.sim import Emulator, Faults
from vhostuser_vpp.sim.faults import Decision

POD_MAC = "02:00:00:00:5e:01"
# The same container ID on both paths, so that every path and message is the same.
CID = "fa57" * 16


@pytest.fixture
def shim() -> Iterator[ShimAgent]:
    root = Path(tempfile.mkdtemp(prefix="vhs", dir="/tmp"))
    agent = ShimAgent(root)
    try:
        agent.start()
        yield agent
        agent.stop()
    finally:
        if agent.proc is not None:
            agent.proc.kill()
        shutil.rmtree(root, ignore_errors=True)


# -- the same answers on both paths -------------------------------------------------------------

Step = Callable[[Node, str, list[CniRun]], CniRun]


def _cases(node: Node) -> list[tuple[str, Step]]:
    """Requests a runtime may send, in order, each a function of the node, the plugin to
    run and the answers so far: a lifecycle in three spec versions and both modes, then
    every kind of refusal the protocol, the environment and the policy give."""
    l3 = node.vpp_config()
    l2 = node.vpp_config("0.4.0", mode="l2", bridge_domain=3)
    old = node.vpp_config("0.3.1")
    for config in (l3, l2, old):
        config["runtimeConfig"] = {"mac": POD_MAC}  # else each ADD picks one at random

    def run(command: str, config: Any = None, cid: str = "", **kw: Any) -> Step:
        return lambda n, plugin, _: n.run(command, config, cid, plugin=plugin, **kw)

    def check(n: Node, plugin: str, runs: list[CniRun]) -> CniRun:
        return n.run("CHECK", {**l3, "prevResult": runs[1].doc}, CID, plugin=plugin)

    return [
        ("VERSION", run("VERSION", l3)),
        ("ADD l3 1.0.0", run("ADD", l3, CID)),
        ("CHECK", check),
        ("ADD again: the saved result", run("ADD", l3, CID)),
        ("ADD of another network", run("ADD", {**l3, "name": "other-net"}, CID)),
        ("STATUS", run("STATUS", node.vpp_config("1.1.0"))),
        ("ADD l3 0.3.1 net2", run("ADD", old, CID, ifname="net2")),
        ("ADD l2 0.4.0 net3", run("ADD", l2, CID, ifname="net3")),
        ("DEL net3", run("DEL", l2, CID, ifname="net3")),
        ("DEL net2", run("DEL", old, CID, ifname="net2")),
        ("DEL", run("DEL", l3, CID)),
        ("DEL again", run("DEL", l3, CID)),
        ("CHECK of nothing", check),
        ("GC", run("GC", {**node.vpp_config("1.1.0"), "cni.dev/valid-attachments": []})),
        ("not JSON", run("ADD", None, CID, stdin=b"{not json")),
        ("unknown cniVersion", run("ADD", {**l3, "cniVersion": "9.9.9"}, CID)),
        ("no container ID", run("ADD", l3, "")),
        ("bad ifname", run("ADD", l3, CID, ifname="a/b")),
        ("no CNI_PATH", run("ADD", l3, CID, drop_env=("CNI_PATH",))),
        ("cniDir refused", run("ADD", {**l3, "cniDir": "/var/tmp/elsewhere"}, CID)),
        ("API socket refused", run("ADD", node.vpp_config(api_socket="/run/other.sock"), CID)),
        ("tool refused", run("ADD", node.config(vhost={"backend": "tool", "vhost_tool": "/bin/true"}), CID)),
        ("unknown command", run("BOGUS", l3, CID)),
    ]


_LOG_PREFIX = re.compile(r"^\S+Z pid=\d+ ", re.MULTILINE)


def _answers(node: Node, plugin: str) -> list[tuple[str, int, str, str]]:
    runs: list[CniRun] = []
    for _, step in _cases(node):
        runs.append(step(node, plugin, runs))
    return [
        (name, run.code, run.stdout, _LOG_PREFIX.sub("", run.stderr))
        for (name, _), run in zip(_cases(node), runs, strict=True)
    ]


def test_both_paths_answer_byte_for_byte_alike(vpp: VppNode, shim: ShimAgent) -> None:
    node = vpp.node
    direct = _answers(node, DIRECT_PLUGIN)
    assert vpp.probe.ports(str(node.cni_dir)) == {}
    shutil.rmtree(node.cni_dir)
    shutil.rmtree(node.ipam_dir)
    through_agent = _answers(node, shim.plugin)
    for left, right in zip(direct, through_agent, strict=True):
        assert left == right, f"{left[0]}: the paths differ"
    assert direct[1][1] == 0 and direct[2][1] == 0, "ADD and CHECK succeeded"
    assert '"code": 7' in direct[-3][2], "the policy refused the API socket"
    metrics = shim.metrics()
    assert 'vhostuser_vpp_agent_cni_requests_total{command="ADD",result="ok"} 4.0' in metrics
    assert 'vhostuser_vpp_agent_cni_requests_total{command="other",result="error"} 1.0' in metrics


# -- the shim serves when the agent cannot --------------------------------------------------------


def test_without_an_agent_the_shim_serves_itself(vpp: VppNode, shim: ShimAgent) -> None:
    node = vpp.node
    shim.stop()
    cid = new_container_id()
    result = node.run("ADD", node.vpp_config(), cid, plugin=shim.plugin).assert_ok()
    node.run("CHECK", {**node.vpp_config(), "prevResult": result}, cid, plugin=shim.plugin).assert_ok()
    node.run("DEL", node.vpp_config(), cid, plugin=shim.plugin).assert_ok()
    assert vpp.probe.ports(str(node.cni_dir)) == {}
    assert node.reservations() == {}


@contextlib.contextmanager
def fake_agent(path: str, behave: Callable[[socket.socket], None]) -> Iterator[list[bytes]]:
    """A server at the shim's socket that reads the request and then `behave`s; yields
    what it received."""
    received: list[bytes] = []
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)
    done = threading.Event()

    def loop() -> None:
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                with contextlib.suppress(OSError, wire.ProtocolError):
                    received.append(b"".join(wire.read_request(conn)))
                    behave(conn)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        done.set()
        server.shutdown(socket.SHUT_RDWR)
        server.close()
        thread.join(timeout=10)
        os.unlink(path)


def _accept_then_vanish(conn: socket.socket) -> None:
    conn.sendall(wire.ACCEPTED)


def _decline_another_version(conn: socket.socket) -> None:
    conn.sendall(wire.DECLINED + b"protocol\n")


def _never_accept(conn: socket.socket) -> None:
    wire.read_exactly(conn, 1)  # until the shim gives up and closes


def _answer_in_another_protocol(conn: socket.socket) -> None:
    conn.sendall(b"vhostuser-vpp cni/2 accepted\n")


@pytest.mark.parametrize(
    "behave", [_accept_then_vanish, _decline_another_version, _never_accept, _answer_in_another_protocol]
)
def test_an_agent_that_does_not_answer_leaves_the_request_to_the_shim(
    node: Node, shim: ShimAgent, behave: Callable[[socket.socket], None]
) -> None:
    """An agent that dies after `accepted`, an older or newer one, one that hangs: the shim
    serves every request, ADD and DEL alike, and it reached the fake agent first."""
    shim.stop()
    cid = new_container_id()
    with fake_agent(str(shim.socket), behave) as received:
        node.run("ADD", node.config(), cid, plugin=shim.plugin).assert_ok()
        node.run("DEL", node.config(), cid, plugin=shim.plugin).assert_ok()
    assert len(received) == 2
    assert b"CNI_COMMAND=ADD" in received[0] and b"CNI_COMMAND=DEL" in received[1]
    assert node.snapshot() == (set(), {}, {})


def test_the_shim_talks_to_no_socket_but_roots(node: Node, shim: ShimAgent) -> None:
    """A socket another user listens on gets nothing: not the config, not the environment."""
    shim.stop()
    listener = subprocess.Popen(
        [
            "python3",
            "-c",
            "import os, socket, sys\n"
            "s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o666)\n"
            "os.setgid(65534); os.setuid(65534); s.listen(4); print('ready', flush=True)\n"
            "c, _ = s.accept(); c.settimeout(5); print(len(c.recv(100)), flush=True)\n",
            str(shim.socket),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert listener.stdout is not None and listener.stdout.readline() == "ready\n"
        cid = new_container_id()
        node.run("ADD", node.config(), cid, plugin=shim.plugin).assert_ok()
        assert listener.stdout.readline() == "0\n", "the shim hung up without sending anything"
        node.run("DEL", node.config(), cid, plugin=DIRECT_PLUGIN).assert_ok()
    finally:
        listener.kill()
        listener.wait()
        shim.socket.unlink()


# -- the agent serves only what a direct run would ------------------------------------------------


def test_the_agent_declines_a_peer_that_is_not_root(shim: ShimAgent) -> None:
    shim.root.chmod(0o755)
    shim.socket.chmod(0o666)  # as a mistake would leave it
    peer = subprocess.run(
        [
            "python3",
            "-c",
            "import os, socket, sys\n"
            "os.setgid(65534); os.setuid(65534)\n"
            "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
            "s.sendall(bytes.fromhex(sys.argv[2])); print(s.makefile('rb').readline().decode(), end='')\n",
            str(shim.socket),
            wire.encode_request([b"CNI_COMMAND=STATUS"], b"", b"/bin/true").hex(),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert peer.stdout == "declined peer uid 65534 is not root\n"


def test_the_agent_leaves_a_shim_in_another_network_namespace_to_itself(
    node: Node, shim: ShimAgent, netns: str
) -> None:
    """Host routes and every path a request names must be the shim's host's."""
    cid = new_container_id()
    node.run("ADD", node.config(), cid, plugin=shim.plugin, netns_exec=netns).assert_ok()
    node.run("DEL", node.config(), cid, plugin=shim.plugin, netns_exec=netns).assert_ok()
    declined = [line for line in shim.log.read_text().splitlines() if '"declined"' in line]
    assert len(declined) == 2 and all("another net namespace" in line for line in declined)
    assert node.snapshot() == (set(), {}, {})


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"vhs{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], timeout=10, check=False)


# -- the same locks; in-flight requests finish ------------------------------------------------------


def _threads_in_flock(pid: int) -> int:
    """How many of the process's threads sit in flock(2) (x86_64: syscall 73)."""
    count = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            fields = (task / "syscall").read_text().split()
            count += bool(fields) and fields[0] == "73"
    return count


def test_the_agent_takes_the_node_lock_as_a_direct_run_does(vpp: VppNode, shim: ShimAgent) -> None:
    """A DEL through the agent leaving a bridge domain waits, on one of the agent's threads,
    for the node lock another plugin holds, with the domain untouched meanwhile."""
    import fcntl
    import platform

    if platform.machine() != "x86_64":
        pytest.skip("knows flock(2)'s syscall number on x86_64 only")
    node, probe = vpp.node, vpp.probe
    cid = new_container_id()
    config = node.vpp_config(mode="l2", bridge_domain=4242)
    node.run("ADD", config, cid, plugin=shim.plugin).assert_ok()
    assert shim.proc is not None
    fd = os.open(node.cni_dir / ".locks" / "vpp-setup.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        delete = subprocess.Popen(
            [shim.plugin],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=node.env("DEL", cid, "net1", "/var/run/netns/pod"),
        )
        assert delete.stdin is not None
        delete.stdin.write(json.dumps(config).encode())
        delete.stdin.close()
        pid = shim.proc.pid
        wait_for(lambda: _threads_in_flock(pid) == 1, "the agent's DEL waiting for the node lock")
        assert probe.bridge_domain(4242).n_sw_ifs == 1
    finally:
        os.close(fd)
    assert delete.wait(timeout=60) == 0
    assert probe.bridge_domain(4242) is None


class _HoldOn(Faults):
    """Holds the emulator at `message` until released: an ADD in flight, for as long as needed."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message
        self.reached = threading.Event()
        self.release = threading.Event()

    def decide(self, message: str) -> Decision:
        if message == self.message and not self.release.is_set():
            self.reached.set()
            self.release.wait(60)
        return super().decide(message)


def test_a_stopping_agent_finishes_what_it_accepted_and_takes_no_more(vpp: VppNode, shim: ShimAgent) -> None:
    vpp.need_emulator().stop()
    node = vpp.node
    faults = _HoldOn("ip_neighbor_add_del")
    with Emulator.start(node.api_socket, faults=faults), VppProbe(node.api_socket) as probe:
        config, first = node.vpp_config(), new_container_id()
        add = subprocess.Popen(
            [shim.plugin],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=node.env("ADD", first, "net1", "/var/run/netns/pod"),
        )
        assert add.stdin is not None and add.stdout is not None and shim.proc is not None
        add.stdin.write(json.dumps(config).encode())
        add.stdin.close()
        assert faults.reached.wait(timeout=60), "the ADD never got to the neighbour"
        shim.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: not shim.socket.exists(), "the agent closing its CNI socket")
        faults.release.set()
        assert add.wait(timeout=60) == 0
        result = json.loads(add.stdout.read())
        assert shim.proc.wait(timeout=60) == 0
        served = [line for line in shim.log.read_text().splitlines() if f"cid={first[:12]}" in line]
        assert served, "the agent, not the shim, served the ADD"
        second = new_container_id()
        node.run("ADD", config, second, plugin=shim.plugin).assert_ok()
        node.run("DEL", config, second, plugin=shim.plugin).assert_ok()
        node.run("DEL", {**config, "prevResult": result}, first).assert_ok()
        assert probe.ports(str(node.cni_dir)) == {}


def test_after_a_vpp_restart_the_agent_connects_again(vpp: VppNode, shim: ShimAgent) -> None:
    """The connection the agent kept from the first ADD is dead once VPP restarts: the
    next request gets a new one (a lent connection is checked for a closed end), not an error."""
    node = vpp.node
    first, second = new_container_id(), new_container_id()
    node.run("ADD", node.vpp_config(), first, plugin=shim.plugin).assert_ok()
    vpp.restart()
    node.run("DEL", node.vpp_config(), first, plugin=shim.plugin).assert_ok()
    node.run("ADD", node.vpp_config(), second, plugin=shim.plugin).assert_ok()
    node.run("DEL", node.vpp_config(), second, plugin=shim.plugin).assert_ok()
    metrics = shim.metrics()
    assert 'vhostuser_vpp_agent_cni_requests_total{command="ADD",result="ok"} 2.0' in metrics
    assert 'vhostuser_vpp_agent_cni_requests_total{command="DEL",result="ok"} 2.0' in metrics
