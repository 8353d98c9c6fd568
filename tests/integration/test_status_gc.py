"""STATUS and GC (spec 1.1.0) with Debian's host-local, which itself stops at 1.0.0."""

from __future__ import annotations

import json
import os

from tests.integration.conftest import STATE_TOOL, Node, new_container_id


def test_status_is_ok_when_the_backend_can_serve(node: Node) -> None:
    assert node.run("STATUS", node.config("1.1.0"), container_id="", ifname="", netns="").assert_ok() is None


def test_status_is_code_50_when_the_tool_cannot_run(node: Node) -> None:
    os.chmod(STATE_TOOL, 0o644)
    try:
        run = node.run("STATUS", node.config("1.1.0"), container_id="", ifname="", netns="")
    finally:
        os.chmod(STATE_TOOL, 0o755)
    error = run.assert_error(50)
    assert "not an executable file" in error["msg"]


def test_status_needs_a_1_1_0_config(node: Node) -> None:
    node.run("STATUS", node.config("1.0.0"), container_id="", ifname="", netns="").assert_error(1)


def test_gc_removes_only_stale_attachments_of_this_network(node: Node) -> None:
    config = node.config("1.1.0")
    kept, stale = new_container_id(), new_container_id()
    node.run("ADD", config, kept).assert_ok()
    node.run("ADD", config, stale).assert_ok()
    other_network = {**node.config("1.1.0"), "name": "other-network"}
    other = new_container_id()
    node.run("ADD", other_network, other).assert_ok()

    gc_config = {**config, "cni.dev/valid-attachments": [{"containerID": kept, "ifname": "net1"}]}
    node.run("GC", gc_config, container_id="", ifname="", netns="").assert_ok()

    sockets = {port["socket"] for port in node.ports().values()}
    assert sockets == {f"{node.cni_dir}/{kept}/{kept[:12]}-net1", f"{node.cni_dir}/{other}/{other[:12]}-net1"}
    assert not (node.cni_dir / stale).exists()
    assert set(node.reservations().values()) == {f"{kept}\nnet1"}
    assert (node.ipam_dir / "other-network" / "10.56.217.131").read_text() == f"{other}\nnet1"
    node.run("DEL", config, kept).assert_ok()
    node.run("DEL", other_network, other).assert_ok()
    assert node.files() == set()


def test_gc_cleans_up_an_add_that_died_halfway(node: Node) -> None:
    config = node.config("1.1.0")
    cid = new_container_id()
    node.run("ADD", config, cid).assert_ok()
    record_path = node.record(cid)
    record = json.loads(record_path.read_text())
    record["phase"] = "pending"
    record_path.write_text(json.dumps(record))

    node.run(
        "GC", {**config, "cni.dev/valid-attachments": []}, container_id="", ifname="", netns=""
    ).assert_ok()
    assert node.snapshot() == (set(), {}, {})


def test_gc_without_valid_attachments_is_refused(node: Node) -> None:
    node.run("GC", node.config("1.1.0"), container_id="", ifname="", netns="").assert_error(7)
