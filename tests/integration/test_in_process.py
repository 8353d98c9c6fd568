"""The plugin's logic without the CNI process around it (the way to a resident daemon).

`vhostuser_vpp.plugin.main.serve` is what the executable runs once per process; here one
process serves several requests in a row, against the emulator (or a real VPP) and the
real host-local, and must leave nothing behind between them: no log handler, no log
context, no VPP connection, the same answers as the executable gives. The node agent
serves several at once, on threads, with VPP connections from its pool: each request's
log lines still reach its own stderr and logFile only.
"""

from __future__ import annotations

import io
import json
import logging
from concurrent.futures import ThreadPoolExecutor

from tests.integration.conftest import VppNode, new_container_id
from vhostuser_vpp.logs import ROOT
from vhostuser_vpp.plugin.main import serve
from vhostuser_vpp.vpp import pool


def _serve(
    vpp: VppNode, command: str, cid: str, config: dict[str, object], stderr: io.StringIO | None = None
) -> tuple[int, str]:
    env = vpp.node.env(command, cid, "net1", "/var/run/netns/pod")
    out = io.StringIO()
    code = serve(env, io.BytesIO(json.dumps(config).encode()), out, stderr or io.StringIO(), "")
    return code, out.getvalue()


def test_one_process_serves_add_and_del_for_several_pods(vpp: VppNode) -> None:
    node = vpp.node
    config = {**node.vpp_config(), "logFile": str(node.log_dir / "plugin.log"), "logLevel": "info"}
    node.log_dir.mkdir()
    handlers_before = list(logging.getLogger(ROOT).handlers)
    cids = [new_container_id() for _ in range(3)]

    for cid in cids:
        code, out = _serve(vpp, "ADD", cid, config)
        assert code == 0, out
        assert json.loads(out)["interfaces"][0]["name"] == "net1"
        assert logging.getLogger(ROOT).handlers == handlers_before
    assert len(vpp.probe.ports(str(node.cni_dir))) == 3
    assert len(node.reservations()) == 3

    for cid in cids:
        code, out = _serve(vpp, "DEL", cid, config)
        assert (code, out) == (0, "")
    assert vpp.probe.ports(str(node.cni_dir)) == {}
    assert node.reservations() == {}
    assert node.files() == set()

    # Each request logged under its own container, none under another's.
    lines = (node.log_dir / "plugin.log").read_text().splitlines()
    for cid in cids:
        assert sum(f"cid={cid[:12]}" in line for line in lines) >= 2


def test_an_error_is_answered_and_the_next_request_is_not_affected(vpp: VppNode) -> None:
    node = vpp.node
    cid = new_container_id()
    bad = node.vpp_config(mode="l2")  # l2 without a bridge domain
    code, out = _serve(vpp, "ADD", cid, bad)
    assert code == 1
    assert json.loads(out)["code"] == 7

    code, out = _serve(vpp, "ADD", cid, node.vpp_config())
    assert code == 0, out
    code, out = _serve(vpp, "DEL", cid, node.vpp_config())
    assert code == 0, out
    assert node.snapshot() == (set(), {}, {})


def test_requests_served_at_once_keep_their_logs_apart(vpp: VppNode) -> None:
    """Eight ADDs, then eight DELs, at once on threads sharing a connection pool, each with
    a logFile of its own that must hold its lines and no other request's."""
    node = vpp.node
    node.log_dir.mkdir()
    cids = [new_container_id() for _ in range(8)]

    def config(i: int) -> dict[str, object]:
        return {**node.vpp_config(), "logFile": str(node.log_dir / f"{i}.log"), "logLevel": "debug"}

    connections = pool.ClientPool()
    pool.install(connections)
    try:
        with ThreadPoolExecutor(max_workers=8) as threads:
            errs = [io.StringIO() for _ in cids]
            added = list(threads.map(lambda i: _serve(vpp, "ADD", cids[i], config(i), errs[i]), range(8)))
            assert [code for code, _ in added] == [0] * 8, added
            assert connections.idle(node.api_socket) >= 1, "the connections went back to the pool"
            deleted = list(threads.map(lambda i: _serve(vpp, "DEL", cids[i], config(i), errs[i]), range(8)))
            assert deleted == [(0, "")] * 8
    finally:
        pool.install(None)
        connections.close()
    assert vpp.probe.ports(str(node.cni_dir)) == {}
    for i, cid in enumerate(cids):
        lines = (node.log_dir / f"{i}.log").read_text().splitlines()
        assert lines and all(f"cid={cid[:12]}" in line for line in lines), (i, lines[:3])
        assert all(f"cid={cid[:12]}" in line for line in errs[i].getvalue().splitlines())
