"""The plugin under containerd's CRI plugin, driven as kubelet drives it: RunPodSandbox,
PodSandboxStatus, StopPodSandbox and RemovePodSandbox over the CRI v1 gRPC API.

containerd runs privately (tests/cri/containerd.py): its own socket, root, state, CNI
dirs, sandbox image. Its CNI conf_dir holds two networks, loaded in name order
(`max_conf_num = 2`): a bridge with host-local, eth0, which gives the pod its IP, then the
vhostuser network, eth1. containerd passes its environment to every plugin it runs, so
the node policy is found through VHOSTUSER_VPP_NODE_CONFIG in containerd's environment.
Each test starts its own containerd against its own node (emulator or real VPP), and
stops it and removes all it left afterwards. The plugin under test is the venv's
`vhostuser`, or with VHOSTUSER_TEST_VIA_AGENT=1 the shim served by the session's agent.

What containerd 1.6 asks of the plugin, as recorded by the launcher in its bin_dir: an
ADD for each RunPodSandbox; a DEL with the pod's netns for StopPodSandbox; another DEL,
with an empty CNI_NETNS and no prevResult, for RemovePodSandbox (it stops the sandbox
again); never CHECK, STATUS or GC. It refuses results of cniVersion 1.1.0.

Skipped, with containerd's own error, only where containerd cannot run a pod at all
(checked once with a host-network pod, which needs no CNI).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.cri.client import CriApi, CriClient, Pod, compile_api
from tests.cri.containerd import (
    BUSYBOX,
    CONTAINERD,
    CTR,
    LIBCNI_CACHE,
    RUNC,
    Containerd,
    ContainerdUnavailable,
)
from tests.integration.conftest import (
    CNI_BIN_DIR,
    NETWORK,
    PLUGIN,
    VHOSTUSER_VPP,
    VppNode,
    host_local_reservations,
    wait_for,
)

BRIDGE_NETWORK = "vhucri-bridge"
BRIDGE_SUBNET = "10.88.214.0/24"
PACKAGES = "make runtime: apt-get install containerd runc busybox-static"
POD_IFNAME = "eth1"  # the second network's interface
CONCURRENT_PODS = 4
CONTAINERD_TIMEOUT_S = 30.0

CHAIN_SUBNET = "10.88.215.0/24"

StartContainerd = Callable[..., Containerd]


@pytest.fixture(scope="session")
def cri_api() -> CriApi:
    return compile_api()


@pytest.fixture(scope="module")
def containerd_runs(cri_api: CriApi, request: pytest.FixtureRequest) -> None:
    """Whether containerd can run a pod here at all (a host-network one, no CNI); what it
    says it is (RuntimeService.Version) is shown once in the run's output."""
    missing = [tool for tool in (CONTAINERD, CTR, RUNC, BUSYBOX) if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} ({PACKAGES})")
    runtime = Containerd(Path(tempfile.mkdtemp(prefix="vhucri", dir="/tmp")), cri_api)
    try:
        runtime.set_up(CNI_BIN_DIR, PLUGIN)
        try:
            client = runtime.start({})
            sandbox_id = runtime.run_pod(Pod("probe", "default", str(uuid.uuid4()), host_network=True))
            client.stop_pod_sandbox(sandbox_id)
            client.remove_pod_sandbox(sandbox_id)
        except grpc.RpcError as exc:
            pytest.skip(f"containerd cannot run a pod here: {exc.details()}")
        except ContainerdUnavailable as exc:
            pytest.skip(f"containerd cannot run here: {exc}")
        version = client.version()
    finally:
        runtime.tear_down()
    # Past the output capture, so that the run's log says which containerd was tested.
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        name, api = f"{version.runtime_name} {version.runtime_version}", version.runtime_api_version
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"CRI runtime: {name} (CRI {api})")


@pytest.fixture
def containerd(vpp: VppNode, cri_api: CriApi, containerd_runs: None) -> Iterator[StartContainerd]:
    """Starts a containerd whose second network is this node's vhostuser network at the
    given cniVersion; everything it made is gone when the test ends, before the `vpp`
    fixture checks VPP."""
    started: list[Containerd] = []

    def start(version: str, chained_after_a_bridge: bool = False) -> Containerd:
        runtime = Containerd(Path(tempfile.mkdtemp(prefix="vhucri", dir="/tmp")), cri_api)
        started.append(runtime)
        runtime.set_up(CNI_BIN_DIR, PLUGIN)
        runtime.write_network(
            "10-bridge.conflist", BRIDGE_NETWORK, [runtime.bridge_network(BRIDGE_SUBNET)], "1.0.0"
        )
        plugin = vpp.node.vpp_config(version)
        for key in ("cniVersion", "name", "if0name"):  # the conflist's, and CNI_IFNAME's
            plugin.pop(key)
        before = [runtime.bridge_network(CHAIN_SUBNET)] if chained_after_a_bridge else []
        runtime.write_network("20-vhostuser.conflist", NETWORK, [*before, plugin], version)
        client = runtime.start({"VHOSTUSER_VPP_NODE_CONFIG": str(vpp.node.node_config)})
        wait_for(
            lambda: client.conditions()["NetworkReady"][0],
            "containerd's CNI config loaded (NetworkReady)",
            timeout=CONTAINERD_TIMEOUT_S,
            detail=lambda: str(client.conditions()),
        )
        return runtime

    yield start
    for runtime in started:
        runtime.tear_down()


def _bridge_reservations(runtime: Containerd, network: str = BRIDGE_NETWORK) -> dict[str, list[str]]:
    """A bridge's host-local reservations (eth0's, or the chained network's): ip -> [sandbox
    ID, ifname]."""
    return host_local_reservations(runtime.bridge_ipam_dir, network)


def _cni_args(call: dict[str, Any]) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in call["CNI_ARGS"].split(";") if pair)


def _pod(name: str) -> Pod:
    return Pod(name, "vhu-test", str(uuid.uuid4()), labels={"app": "dpdk"})


def _cli_ports(vpp: VppNode) -> dict[str, dict[str, Any]]:
    """`vhostuser-vpp ports -o json` on this node: container ID -> row."""
    node = vpp.node
    argv = [VHOSTUSER_VPP, "ports", "-o", "json", "--api-socket", node.api_socket]
    argv += ["--cni-dir", str(node.cni_dir), "--stats-socket", node.stats_socket]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return {row["container_id"]: row for row in json.loads(proc.stdout)["ports"]}


def _assert_nothing_left(vpp: VppNode, runtime: Containerd, client: CriClient) -> None:
    assert client.list_pod_sandbox() == []
    assert vpp.probe.state(str(vpp.node.cni_dir)) == (set(), {}, {})
    assert vpp.node.files() == set()
    assert vpp.node.reservations() == {}
    assert _bridge_reservations(runtime) == {}
    for sandbox_id in runtime.sandboxes:
        assert runtime.libcni_cache(sandbox_id) == set()
    assert runtime.mounts() == []
    wait_for(lambda: not runtime.shims(), "the sandboxes' shims exited", timeout=CONTAINERD_TIMEOUT_S)
    assert [s for s in runtime.sandboxes if runtime.shim_socket(s).exists()] == []


def test_containerd_runs_stops_and_removes_a_pod_with_a_vhostuser_port(
    vpp: VppNode, containerd: StartContainerd
) -> None:
    node, probe = vpp.node, vpp.probe
    cni_dir = str(node.cni_dir)
    runtime = containerd("1.0.0")
    client = runtime.client
    assert client is not None
    version = client.version()
    assert (version.runtime_name, version.runtime_api_version) == ("containerd", "v1")
    assert client.conditions() == {"RuntimeReady": (True, ""), "NetworkReady": (True, "")}
    cni_config = json.loads(client.status(verbose=True).info["cniconfig"])
    assert [(n["Config"]["Name"], n["IFName"]) for n in cni_config["Networks"]] == [
        ("cni-loopback", "lo"),
        (BRIDGE_NETWORK, "eth0"),
        (NETWORK, POD_IFNAME),
    ]
    assert probe.state(cni_dir) == (set(), {}, {})

    pod = _pod("dpdk-0")
    sid = runtime.run_pod(pod)
    assert len(sid) == 64

    [add] = runtime.calls()
    assert add["CNI_COMMAND"] == "ADD" and add["CNI_CONTAINERID"] == sid
    assert add["CNI_IFNAME"] == POD_IFNAME
    netns = Path(add["CNI_NETNS"])
    assert netns.is_relative_to(runtime.base / "state") and netns.exists()
    assert (add["cniVersion"], add["prevResult"]) == ("1.0.0", None)
    args = _cni_args(add)
    assert {k: args.get(k) for k in ("K8S_POD_NAMESPACE", "K8S_POD_NAME", "K8S_POD_UID")} == {
        "K8S_POD_NAMESPACE": pod.namespace,
        "K8S_POD_NAME": pod.name,
        "K8S_POD_UID": pod.uid,
    }
    assert args["K8S_POD_INFRA_CONTAINER_ID"] == sid

    status = client.pod_sandbox_status(sid)
    assert status.state == client.api.pb.SANDBOX_READY
    assert (status.metadata.name, status.metadata.namespace, status.metadata.uid) == (
        pod.name,
        pod.namespace,
        pod.uid,
    )
    # The pod's IP is eth0's, the bridge network's; the vhostuser address is not listed.
    [(bridge_ip, owner)] = _bridge_reservations(runtime).items()
    assert owner == [sid, "eth0"]
    assert status.network.ip == bridge_ip
    assert list(status.network.additional_ips) == []

    socket_path = f"{cni_dir}/{sid}/{sid[:12]}-{POD_IFNAME}"
    [(path, port)] = probe.ports(cni_dir).items()
    assert path == socket_path and port.is_server
    iface = probe.interface(port.sw_if_index)
    assert iface.tag == f"cni:{sid[:12]}:{POD_IFNAME}"
    assert iface.flags & 1, "admin up"
    assert node.files() == node.attachment_files(sid, POD_IFNAME)
    assert {ip: owner.split() for ip, owner in node.reservations().items()} == {
        "10.56.217.131": [sid, POD_IFNAME]
    }
    record = json.loads(node.record(sid, POD_IFNAME).read_text())
    assert (record["containerID"], record["network"], record["phase"]) == (sid, NETWORK, "ready")
    assert record["pod"] == {"namespace": pod.namespace, "name": pod.name, "uid": pod.uid}
    row = _cli_ports(vpp)[sid]
    assert (row["pod"], row["ifname"], row["status"]) == (f"{pod.namespace}/{pod.name}", POD_IFNAME, "ok")
    assert row["pod_ip"] == "10.56.217.131"
    # What containerd got back from each network, cached by libcni for the DELs.
    assert {f"{BRIDGE_NETWORK}-{sid}-eth0", f"{NETWORK}-{sid}-{POD_IFNAME}"} <= runtime.libcni_cache(sid)
    result = json.loads((LIBCNI_CACHE / f"{NETWORK}-{sid}-{POD_IFNAME}").read_text())["result"]
    assert (result["cniVersion"], result["interfaces"][0]["name"]) == ("1.0.0", POD_IFNAME)
    assert [ip["address"] for ip in result["ips"]] == ["10.56.217.131/24"]

    client.stop_pod_sandbox(sid)
    assert client.pod_sandbox_status(sid).state == client.api.pb.SANDBOX_NOTREADY
    [_, stop_del] = runtime.calls()
    assert (stop_del["CNI_COMMAND"], stop_del["CNI_CONTAINERID"]) == ("DEL", sid)
    assert (stop_del["CNI_IFNAME"], stop_del["CNI_NETNS"]) == (POD_IFNAME, str(netns))
    assert stop_del["prevResult"] == result, "libcni passes the ADD's cached result"
    assert probe.state(cni_dir) == (set(), {}, {})
    assert node.files() == set()
    assert node.reservations() == {}
    assert _bridge_reservations(runtime) == {}
    assert not netns.exists()

    client.remove_pod_sandbox(sid)
    [_, _, remove_del] = runtime.calls()
    assert (remove_del["CNI_COMMAND"], remove_del["CNI_CONTAINERID"]) == ("DEL", sid)
    assert (remove_del["CNI_IFNAME"], remove_del["CNI_NETNS"]) == (POD_IFNAME, "")
    assert remove_del["prevResult"] is None, "the first DEL dropped libcni's cached result"
    _assert_nothing_left(vpp, runtime, client)


def test_containerd_runs_and_removes_pods_concurrently(vpp: VppNode, containerd: StartContainerd) -> None:
    node, probe = vpp.node, vpp.probe
    runtime = containerd("1.0.0")
    client = runtime.client
    assert client is not None
    pods = [_pod(f"dpdk-{i}") for i in range(CONCURRENT_PODS)]
    with ThreadPoolExecutor(CONCURRENT_PODS) as pool:
        sandbox_ids = list(pool.map(runtime.run_pod, pods))
    assert len(set(sandbox_ids)) == CONCURRENT_PODS

    calls = runtime.calls()
    assert sorted((c["CNI_COMMAND"], c["CNI_CONTAINERID"]) for c in calls) == sorted(
        ("ADD", sid) for sid in sandbox_ids
    )
    ports = probe.ports(str(node.cni_dir))
    assert set(ports) == {f"{node.cni_dir}/{sid}/{sid[:12]}-{POD_IFNAME}" for sid in sandbox_ids}
    assert len({port.sw_if_index for port in ports.values()}) == CONCURRENT_PODS
    owners = {tuple(owner.split()) for owner in node.reservations().values()}
    assert owners == {(sid, POD_IFNAME) for sid in sandbox_ids}
    bridge_ips = {owner[0]: ip for ip, owner in _bridge_reservations(runtime).items()}
    rows = _cli_ports(vpp)
    for pod, sid in zip(pods, sandbox_ids, strict=True):
        status = client.pod_sandbox_status(sid)
        assert status.state == client.api.pb.SANDBOX_READY
        assert status.network.ip == bridge_ips[sid]
        assert rows[sid]["pod"] == f"{pod.namespace}/{pod.name}"

    def stop_and_remove(sandbox_id: str) -> None:
        client.stop_pod_sandbox(sandbox_id)
        client.remove_pod_sandbox(sandbox_id)

    with ThreadPoolExecutor(CONCURRENT_PODS) as pool:
        list(pool.map(stop_and_remove, sandbox_ids))
    dels = [c for c in runtime.calls() if c["CNI_COMMAND"] == "DEL"]
    for sid in sandbox_ids:
        netns = sorted(c["CNI_NETNS"] for c in dels if c["CNI_CONTAINERID"] == sid)
        assert len(netns) == 2 and netns[0] == "" and netns[1], (sid, netns)
    assert {c["CNI_COMMAND"] for c in runtime.calls()} == {"ADD", "DEL"}
    _assert_nothing_left(vpp, runtime, client)


def test_containerd_refuses_a_1_1_0_result_and_deletes_what_add_made(
    vpp: VppNode, containerd: StartContainerd
) -> None:
    runtime = containerd("1.1.0")
    client = runtime.client
    assert client is not None
    with pytest.raises(grpc.RpcError) as refused:
        runtime.run_pod(_pod("dpdk-new"))
    details = refused.value.details() or ""
    # containerd's libcni reads results up to 1.0.0: the ADD succeeded, its result did not parse.
    assert 'plugin type="vhostuser" failed (add): unsupported CNI result version "1.1.0"' in details, details

    # RunPodSandbox's clean-up: one DEL, in the netns, with nothing cached to pass as prevResult.
    [add, rollback] = runtime.calls()
    assert (add["CNI_COMMAND"], add["CNI_IFNAME"], add["cniVersion"]) == ("ADD", POD_IFNAME, "1.1.0")
    assert (rollback["CNI_COMMAND"], rollback["CNI_CONTAINERID"]) == ("DEL", add["CNI_CONTAINERID"])
    assert (rollback["CNI_NETNS"], rollback["prevResult"]) == (add["CNI_NETNS"], None)
    runtime.sandboxes.append(add["CNI_CONTAINERID"])
    _assert_nothing_left(vpp, runtime, client)


def test_second_in_a_conflist_the_port_extends_the_bridges_result(
    vpp: VppNode, containerd: StartContainerd
) -> None:
    """The vhostuser network as a chain, a bridge first: libcni hands our ADD the bridge's
    result as prevResult, and what it caches (and containerd sees) is that result with our
    interface and address appended; both DELs run the chain backwards and leave nothing."""
    node = vpp.node
    runtime = containerd("1.0.0", chained_after_a_bridge=True)
    client = runtime.client
    assert client is not None
    sid = runtime.run_pod(_pod("dpdk-chained"))
    [add] = runtime.calls()
    prev = add["prevResult"]
    assert prev is not None, "libcni passed the bridge's result"
    assert [i["name"] for i in prev["interfaces"]][-1] == POD_IFNAME, "the bridge's veth in the pod"
    [(chain_ip, owner)] = _bridge_reservations(runtime, NETWORK).items()
    assert owner == [sid, POD_IFNAME]

    result = json.loads((LIBCNI_CACHE / f"{NETWORK}-{sid}-{POD_IFNAME}").read_text())["result"]
    ours = len(prev["interfaces"])
    assert result["interfaces"][:ours] == prev["interfaces"]
    assert result["interfaces"][ours]["name"] == POD_IFNAME
    assert result["interfaces"][ours]["mac"] != prev["interfaces"][-1].get("mac")
    assert [(ip["address"], ip["interface"]) for ip in result["ips"]] == [
        (f"{chain_ip}/24", ours - 1),
        ("10.56.217.131/24", ours),
    ]
    assert len(vpp.probe.ports(str(node.cni_dir))) == 1

    client.stop_pod_sandbox(sid)
    client.remove_pod_sandbox(sid)
    [_, stop_del, remove_del] = runtime.calls()
    assert stop_del["prevResult"] == result and remove_del["prevResult"] is None
    assert _bridge_reservations(runtime, NETWORK) == {}
    _assert_nothing_left(vpp, runtime, client)
