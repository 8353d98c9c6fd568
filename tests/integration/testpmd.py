"""A DPDK pod for the dataplane tests: Debian's dpdk-testpmd on a pod's vhost-user socket.

testpmd runs interactively: commands go to its stdin and the answer is read up to the next
`testpmd> ` prompt, so every step waits for testpmd itself, never for a fixed time. Each pod
has its own `--file-prefix` and 128 MB of hugepages; `hugepages()` reserves 512 pages of
2 MB and mounts hugetlbfs for the run, and gives both back afterwards.
"""

from __future__ import annotations

import os
import re
import selectors
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.integration.conftest import VppNode

TESTPMD = shutil.which("dpdk-testpmd") or "/usr/bin/dpdk-testpmd"
PROMPT = "testpmd> "
HUGEPAGES = 512
NR_HUGEPAGES = Path("/proc/sys/vm/nr_hugepages")
HUGETLBFS = Path("/dev/hugepages")
COMMAND_TIMEOUT_S = 30.0


def missing() -> str:
    """Why this machine cannot run a DPDK pod, or "" when it can."""
    if not os.access(TESTPMD, os.X_OK):
        return f"{TESTPMD} not found (Debian's dpdk-dev package; `make dataplane` installs it)"
    if os.geteuid() != 0:
        return "dpdk-testpmd needs root for hugepages"
    return ""


@contextmanager
def hugepages() -> Iterator[None]:
    before = int(NR_HUGEPAGES.read_text())
    if before < HUGEPAGES:
        NR_HUGEPAGES.write_text(str(HUGEPAGES))
    mounted = False
    if not os.path.ismount(HUGETLBFS):
        HUGETLBFS.mkdir(exist_ok=True)
        subprocess.run(["mount", "-t", "hugetlbfs", "nodev", str(HUGETLBFS)], check=True, timeout=30)
        mounted = True
    try:
        yield
    finally:
        if mounted:
            subprocess.run(["umount", str(HUGETLBFS)], check=False, timeout=30)
        if before < HUGEPAGES:
            NR_HUGEPAGES.write_text(str(before))


class Testpmd:
    __test__ = False  # not a test class, though named like one
    """One pod's DPDK app; `server=True` makes it create the socket (VPP in client mode)."""

    _count = 0

    def __init__(self, socket_path: str, mac: str, *args: str, server: bool = False) -> None:
        Testpmd._count += 1
        vdev = f"virtio_user0,path={socket_path},mac={mac}" + (",server=1" if server else "")
        # stdbuf: testpmd's printf output would sit in a pipe's buffer while the prompt,
        # written unbuffered, came first.
        argv = [
            "stdbuf",
            "-o0",
            TESTPMD,
            "-l",
            "0-1",
            "--no-pci",
            f"--file-prefix=vhu{os.getpid()}p{Testpmd._count}",
            "-m",
            "128",
            "--single-file-segments",
            f"--vdev={vdev}",
            "--",
            "-i",
            *args,
        ]
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self.output = ""
        self._read = 0  # how much of `output` earlier commands consumed
        self._selector = selectors.DefaultSelector()
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        self._selector.register(self.proc.stdout, selectors.EVENT_READ)
        self._read_to_prompt()

    def __enter__(self) -> Testpmd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def command(self, line: str) -> str:
        """Runs one testpmd command; its output up to the next prompt."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        return self._read_to_prompt()

    def _read_to_prompt(self) -> str:
        deadline = time.monotonic() + COMMAND_TIMEOUT_S
        assert self.proc.stdout is not None
        while PROMPT not in self.output[self._read :]:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise RuntimeError(f"testpmd gave no prompt: {self.output[-2000:]}")
            if self._selector.select(timeout=left):
                chunk = self.proc.stdout.read()
                if chunk:
                    self.output += chunk.decode(errors="replace")
        end = self.output.index(PROMPT, self._read)
        answer = self.output[self._read : end]
        self._read = end + len(PROMPT)
        return answer

    def port_stats(self) -> dict[str, int]:
        """RX/TX packet counters of the pod's port."""
        text = self.command("show port stats 0")
        return {
            key: int(value) for key, value in re.findall(r"(RX-packets|TX-packets|RX-missed): +(\d+)", text)
        }

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.command("stop")
                assert self.proc.stdin is not None
                self.proc.stdin.write(b"quit\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=COMMAND_TIMEOUT_S)
            except (RuntimeError, OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=COMMAND_TIMEOUT_S)
        self._selector.close()


class Pod:
    """What ADD told the pod: its socket, MAC, address and gateway MAC, and VPP's index."""

    def __init__(self, vpp: VppNode, config: dict[str, Any], cid: str, pod: str = "") -> None:
        """`pod`: namespace/name, passed in CNI_ARGS as kubelet's runtime would."""
        self.cid = cid
        env = {}
        if pod:
            namespace, name = pod.split("/")
            env["CNI_ARGS"] = f"IgnoreUnknown=1;K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={name}"
        self.result = vpp.node.run("ADD", config, cid, extra_env=env).assert_ok()
        self.socket = f"{vpp.node.cni_dir}/{cid}/{cid[:12]}-net1"
        self.mac = self.result["interfaces"][0]["mac"]
        self.ip = self.result["ips"][0]["address"].split("/")[0]
        port = vpp.probe.ports(str(vpp.node.cni_dir))[self.socket]
        self.index = int(port.sw_if_index)
        self.name = str(vpp.probe.interface(self.index).interface_name)
        self.gw_mac = str(vpp.probe.interface(self.index).l2_address)


@contextmanager
def pod_to_pod(
    vpp: VppNode, sender: Pod, receiver: Pod, peer: str, packets: int
) -> Iterator[tuple[Testpmd, Testpmd]]:
    """(receiver's testpmd in rxonly, sender's in txonly to the receiver's IP at MAC `peer`),
    both started, once `packets` have reached the receiver; still sending inside the block."""
    from tests.integration.conftest import wait_for

    with (
        Testpmd(receiver.socket, receiver.mac, "--forward-mode=rxonly") as sink,
        Testpmd(
            sender.socket,
            sender.mac,
            "--forward-mode=txonly",
            f"--tx-ip={sender.ip},{receiver.ip}",
            f"--eth-peer=0,{peer}",
        ) as source,
    ):
        sink.command("start")
        wait_for(lambda: vpp.probe.link_up(receiver.index), "the receiving pod attaches")
        source.command("start")
        wait_for(lambda: sink.port_stats()["RX-packets"] >= packets, f"{packets} packets reach the receiver")
        yield sink, source


def ping(vpp: VppNode, ip: str, count: int = 5) -> int:
    """Replies to `vppctl ping` from VPP (source: the gateway address it lends the port)."""
    text = vpp.vppctl("ping", ip, "repeat", str(count), "interval", "0.2")
    match = re.search(r"(\d+) sent, (\d+) received", text)
    assert match, text
    return int(match.group(2))
