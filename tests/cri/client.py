"""A CRI client that asks containerd what kubelet asks it, over the CRI v1 gRPC API.

The stubs are compiled from `api.proto` by `grpc_tools.protoc` into a temporary
directory and imported from there once a session (`compile_api`): generated code goes
stale against the definition it came from, and protoc takes a tenth of a second. Their
classes are dynamic, so this module hands them around as `Any`.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

PROTO = Path(__file__).with_name("api.proto")
PACKAGE = "cri_runtime_v1"  # the generated modules' package, named after the proto's
RPC_TIMEOUT_S = 60.0
PROTOC_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class CriApi:
    """The generated modules: `pb` the messages, `rpc` the service stubs."""

    pb: Any
    rpc: Any


def compile_api() -> CriApi:
    """Compiles `api.proto` and imports the result. The modules stay loaded once their
    files are gone, so the directory is removed at once."""
    with tempfile.TemporaryDirectory(prefix="vhucri-api") as out:
        package = Path(out, PACKAGE)
        package.mkdir()
        (package / "api.proto").write_bytes(PROTO.read_bytes())
        argv = [sys.executable, "-m", "grpc_tools.protoc", f"-I{out}", f"--python_out={out}"]
        argv += [f"--grpc_python_out={out}", str(package / "api.proto")]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=PROTOC_TIMEOUT_S, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"protoc failed (rc={proc.returncode}): {proc.stderr}")
        sys.path.insert(0, out)
        try:
            pb = importlib.import_module(f"{PACKAGE}.api_pb2")
            rpc = importlib.import_module(f"{PACKAGE}.api_pb2_grpc")
        finally:
            sys.path.remove(out)
    return CriApi(pb, rpc)


@dataclass
class Pod:
    """A Kubernetes pod as kubelet describes its sandbox to the runtime."""

    name: str
    namespace: str
    uid: str
    labels: dict[str, str] = field(default_factory=dict)
    host_network: bool = False
    attempt: int = 0

    def sandbox_config(self, api: CriApi, log_root: Path, cgroup_parent: str) -> Any:
        """The PodSandboxConfig kubelet would send (kuberuntime's generatePodSandboxConfig
        for a BestEffort pod without ports, on cgroupfs): the log directory kubelet makes
        before asking, the cluster DNS, its io.kubernetes.* labels and config annotations."""
        pb = api.pb
        log_directory = log_root / f"{self.namespace}_{self.name}_{self.uid}"
        log_directory.mkdir(parents=True, exist_ok=True)
        network = pb.NODE if self.host_network else pb.POD
        return pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(
                name=self.name, uid=self.uid, namespace=self.namespace, attempt=self.attempt
            ),
            hostname="" if self.host_network else self.name,  # the node's own, then
            log_directory=str(log_directory),
            dns_config=pb.DNSConfig(
                servers=["10.96.0.10"],
                searches=[f"{self.namespace}.svc.cluster.local", "svc.cluster.local", "cluster.local"],
                options=["ndots:5"],
            ),
            port_mappings=[],
            labels={
                **self.labels,
                "io.kubernetes.pod.name": self.name,
                "io.kubernetes.pod.namespace": self.namespace,
                "io.kubernetes.pod.uid": self.uid,
            },
            annotations={
                "kubernetes.io/config.source": "api",
                "kubernetes.io/config.seen": "2026-01-01T00:00:00.000000000Z",
            },
            linux=pb.LinuxPodSandboxConfig(
                cgroup_parent=f"{cgroup_parent}/besteffort/pod{self.uid}",
                security_context=pb.LinuxSandboxSecurityContext(
                    namespace_options=pb.NamespaceOption(network=network, pid=pb.CONTAINER, ipc=pb.POD),
                    seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.Unconfined),
                ),
            ),
        )


class CriClient:
    """RuntimeService calls on one channel (gRPC channels are safe to share between
    threads, as kubelet's pod workers share theirs)."""

    def __init__(self, socket: Path, api: CriApi) -> None:
        self.api = api
        self.channel = grpc.insecure_channel(f"unix://{socket}")
        self.runtime = api.rpc.RuntimeServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def version(self) -> Any:
        return self.runtime.Version(self.api.pb.VersionRequest(), timeout=RPC_TIMEOUT_S)

    def status(self, verbose: bool = False) -> Any:
        return self.runtime.Status(self.api.pb.StatusRequest(verbose=verbose), timeout=RPC_TIMEOUT_S)

    def conditions(self) -> dict[str, tuple[bool, str]]:
        """Status's conditions: type -> (status, message)."""
        return {c.type: (c.status, c.message) for c in self.status().status.conditions}

    def run_pod_sandbox(self, config: Any) -> str:
        request = self.api.pb.RunPodSandboxRequest(config=config)
        sandbox_id: str = self.runtime.RunPodSandbox(request, timeout=RPC_TIMEOUT_S).pod_sandbox_id
        return sandbox_id

    def pod_sandbox_status(self, sandbox_id: str) -> Any:
        request = self.api.pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id)
        return self.runtime.PodSandboxStatus(request, timeout=RPC_TIMEOUT_S).status

    def stop_pod_sandbox(self, sandbox_id: str) -> None:
        request = self.api.pb.StopPodSandboxRequest(pod_sandbox_id=sandbox_id)
        self.runtime.StopPodSandbox(request, timeout=RPC_TIMEOUT_S)

    def remove_pod_sandbox(self, sandbox_id: str) -> None:
        request = self.api.pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id)
        self.runtime.RemovePodSandbox(request, timeout=RPC_TIMEOUT_S)

    def list_pod_sandbox(self) -> list[Any]:
        request = self.api.pb.ListPodSandboxRequest()
        return list(self.runtime.ListPodSandbox(request, timeout=RPC_TIMEOUT_S).items)
