"""The manifests under deploy/ are only ever applied to a cluster, never run here, so
these checks stand in for `kubectl apply`: they parse, carry the fields Kubernetes
requires, agree with each other, and hold what the plugin and DPDK need."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from vhostuser_vpp.config import parse_netconf

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
YAML_FILES = sorted(
    [*DEPLOY.glob("*.yaml"), *DEPLOY.glob("ci/*.yaml"), *REPO.glob(".github/workflows/*.yml")]
)
MANIFESTS = sorted(DEPLOY.glob("*.yaml"))
NAD_ANNOTATION = "k8s.v1.cni.cncf.io/networks"
SOCKET_PATH_LIMIT = 107
CONTAINER_ID_LENGTH = 64


def load(name: str) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d is not None]
    assert docs, f"{name} holds no document"
    return docs


def one(name: str, kind: str) -> dict[str, Any]:
    docs = [d for d in load(name) if d["kind"] == kind]
    assert len(docs) == 1, f"{name}: {len(docs)} {kind}s"
    return docs[0]


def nads() -> dict[tuple[str, str], dict[str, Any]]:
    """(namespace, name) -> the NAD's decoded config, over every manifest."""
    found = {}
    for path in MANIFESTS:
        for doc in load(path.name):
            if doc["kind"] == "NetworkAttachmentDefinition":
                meta = doc["metadata"]
                found[(meta.get("namespace", "default"), meta["name"])] = json.loads(doc["spec"]["config"])
    return found


def test_the_expected_files_are_there() -> None:
    names = {p.relative_to(REPO).as_posix() for p in YAML_FILES}
    expected = {"daemonset.yaml", "nad-l3.yaml", "nad-l2.yaml", "pod-dpdk.yaml", "ci/compose.yaml"}
    assert {f"deploy/{n}" for n in expected} | {".github/workflows/real-vpp.yml"} <= names


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_yaml_file_parses(path: Path) -> None:
    docs = list(yaml.safe_load_all(path.read_text()))
    assert docs and all(isinstance(d, dict) for d in docs)


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_manifest_has_apiversion_kind_and_metadata(path: Path) -> None:
    for doc in load(path.name):
        assert isinstance(doc.get("apiVersion"), str) and doc["apiVersion"], path.name
        assert isinstance(doc.get("kind"), str) and doc["kind"], path.name
        assert isinstance(doc.get("metadata", {}).get("name"), str), path.name


def test_daemonset_mounts_exactly_its_volumes_and_the_host_paths_it_needs() -> None:
    ds = one("daemonset.yaml", "DaemonSet")
    assert ds["apiVersion"] == "apps/v1"
    assert ds["metadata"]["namespace"] == "kube-system"
    spec = ds["spec"]
    template = spec["template"]
    assert spec["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    pod = template["spec"]
    assert {"operator": "Exists"} in pod["tolerations"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounted = set()
    for container in pod["containers"]:
        assert container["resources"]["requests"] and container["resources"]["limits"]
        for mount in container["volumeMounts"]:
            assert mount["name"] in volumes, f"{mount['name']} is mounted but not a volume"
            mounted.add(mount["name"])
    assert mounted == set(volumes), f"volumes never mounted: {set(volumes) - mounted}"
    host_paths = {v["hostPath"]["path"] for v in volumes.values() if "hostPath" in v}
    assert {"/opt/cni/bin", "/var/lib/cni/vhostuser", "/run/vpp", "/etc/cni"} <= host_paths


def test_daemonset_env_points_at_its_mounts() -> None:
    """The entrypoint writes where these variables say; each must lie on a mount."""
    pod = one("daemonset.yaml", "DaemonSet")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    mount_paths = [m["mountPath"] for m in container["volumeMounts"]]
    env = {e["name"]: e["value"] for e in container["env"]}
    for name in ("CNI_BIN_DIR", "CNI_DIR", "HOST_RUNTIME_DIR"):
        assert env[name] in mount_paths, name
    assert any(env["NODE_CONFIG"].startswith(path + "/") for path in mount_paths)


@pytest.mark.parametrize("name", ["nad-l3.yaml", "nad-l2.yaml"])
def test_nad_config_is_a_valid_multus_ready_network(name: str) -> None:
    nad = one(name, "NetworkAttachmentDefinition")
    assert nad["apiVersion"] == "k8s.cni.cncf.io/v1"
    config = json.loads(nad["spec"]["config"])
    assert "plugins" not in config, "a NAD's config is one plugin config here"
    assert config["cniVersion"] == "1.0.0"
    assert config["type"] == "vhostuser"
    assert config["name"] == nad["metadata"]["name"]
    assert config["capabilities"] == {"CNIDeviceInfoFile": True}
    assert config["ipam"]["type"] == "host-local"
    netconf = parse_netconf({"cniVersion": "1.0.0", **config})
    expected_mode = "l3" if name == "nad-l3.yaml" else "l2"
    assert netconf.vhost.mode == expected_mode
    if expected_mode == "l2":
        assert netconf.vhost.bridge_domain is not None


def _dpdk_pod() -> dict[str, Any]:
    return one("pod-dpdk.yaml", "Pod")


def _attachments(pod: dict[str, Any]) -> list[dict[str, str]]:
    """The networks annotation in either of its forms: a JSON list, or `ns/name@ifname,...`."""
    value = pod["metadata"]["annotations"][NAD_ANNOTATION].strip()
    if value.startswith("["):
        parsed: list[dict[str, str]] = json.loads(value)
        return parsed
    found = []
    for item in value.split(","):
        ref, _, ifname = item.strip().partition("@")
        namespace, _, nad = ref.rpartition("/")
        found.append({"name": nad, "namespace": namespace, "interface": ifname})
    return found


def test_pod_annotation_names_an_existing_nad_with_a_short_interface() -> None:
    pod = _dpdk_pod()
    namespace = pod["metadata"].get("namespace", "default")
    attachments = _attachments(pod)
    assert attachments
    known = nads()
    cni_dir = "/var/lib/cni/vhostuser"
    for attachment in attachments:
        key = (attachment.get("namespace") or namespace, attachment["name"])
        assert key in known, f"{key} is not defined in deploy/"
        ifname = attachment.get("interface", "")
        assert ifname, "name the interface: the runtime's default (net1...) may not be what the app reads"
        socket = f"{cni_dir}/{'0' * CONTAINER_ID_LENGTH}/{'0' * 12}-{ifname}"
        assert len(socket.encode()) <= SOCKET_PATH_LIMIT, socket
        assert ifname in _script(pod), "the app must open the socket of the interface it asked for"


def _container(pod: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = pod["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _script(pod: dict[str, Any]) -> str:
    container = _container(pod)
    return " ".join([*container.get("command", []), *container.get("args", [])])


def test_pod_has_hugepages_and_ipc_lock() -> None:
    pod = _dpdk_pod()
    container = _container(pod)
    resources = container["resources"]
    assert "hugepages-2Mi" in resources["limits"]
    assert resources["requests"].get("hugepages-2Mi") == resources["limits"]["hugepages-2Mi"]
    assert "IPC_LOCK" in container["securityContext"]["capabilities"]["add"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    hugepage_volumes = [n for n, v in volumes.items() if v.get("emptyDir", {}).get("medium") == "HugePages"]
    assert hugepage_volumes
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert all(name in mounts for name in hugepage_volumes)
    assert set(mounts) <= set(volumes)


def test_pod_mounts_the_socket_directory_read_only_at_its_host_path() -> None:
    pod = _dpdk_pod()
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = [m for m in _container(pod)["volumeMounts"] if "hostPath" in volumes[m["name"]]]
    assert len(mounts) == 1
    (mount,) = mounts
    assert mount.get("readOnly") is True
    assert mount["mountPath"] == volumes[mount["name"]]["hostPath"]["path"] == "/var/lib/cni/vhostuser"


def test_pod_runs_testpmd_the_way_virtio_user_needs() -> None:
    script = _script(_dpdk_pod())
    assert "get-prefix.sh" in script
    assert "-ip4.conf" in script
    assert "--vdev=" in script and "virtio_user0,path=" in script and ",mac=" in script
    assert "--single-file-segments" in script
    assert "--file-prefix=" in script
