"""`vhostuser-vpp agent`: the node agent in the foreground (systemd or a DaemonSet runs it).

Logs JSON lines on stderr; serves metrics and health where the node policy's
`agent_listen` says, and the shim's CNI requests on its `agent_socket`; stops cleanly on
SIGTERM or SIGINT (the CNI socket first, then the requests in flight are finished).
"""

from __future__ import annotations

import argparse

from vhostuser_vpp.cli import output, session
from vhostuser_vpp.defaults import DEFAULT_CNI_DIR


def add_arguments(parser: argparse.ArgumentParser) -> None:
    session.add_vpp_arguments(parser)
    session.add_stats_argument(parser)
    parser.add_argument(
        "--cni-dir",
        action="append",
        metavar="DIR",
        help=f"a cniDir whose records to keep in VPP; repeat for several (default {DEFAULT_CNI_DIR})",
    )
    parser.add_argument(
        "--interval", type=float, default=30.0, metavar="SECONDS", help="reconcile period (30)"
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="how long something no pod owns must stay so before it is removed (120)",
    )
    parser.add_argument(
        "--poll", type=float, default=0.5, metavar="SECONDS", help="how often VPP is pinged (0.5)"
    )


def run(args: argparse.Namespace) -> int:
    import os
    import signal
    import threading

    from vhostuser_vpp import logs
    from vhostuser_vpp.agent.cni_socket import CniSocket
    from vhostuser_vpp.agent.metrics import Endpoint, Metrics
    from vhostuser_vpp.agent.node import Agent, AgentConfig
    from vhostuser_vpp.cni.errors import CniError
    from vhostuser_vpp.nodeconf import load_policy
    from vhostuser_vpp.plugin import main as plugin_main  # noqa: F401  (paid here, not by a pod)
    from vhostuser_vpp.vpp import pool

    logs.configure_json_stderr()
    try:
        policy = load_policy(os.environ)
    except CniError as err:
        output.error("agent", str(err))
        return output.EXIT_PROBLEMS
    config = AgentConfig(
        api_socket=args.api_socket,
        cni_dirs=tuple(args.cni_dir or [DEFAULT_CNI_DIR]),
        interval_s=args.interval,
        grace_s=args.grace,
        poll_s=args.poll,
        call_timeout_s=args.timeout,
    )
    metrics = Metrics()
    metrics.count_ports(config.cni_dirs, args.stats_socket)
    agent = Agent(config, metrics)
    try:
        endpoint = Endpoint(policy.agent_listen, metrics, agent.health)
    except OSError as err:
        output.error("agent", f"cannot listen on {policy.agent_listen}: {err}")
        return output.EXIT_PROBLEMS
    cni_socket = None
    if policy.agent_socket:
        try:
            cni_socket = CniSocket(policy.agent_socket, metrics)
        except OSError as err:
            endpoint.stop()
            output.error("agent", f"cannot serve CNI requests on {policy.agent_socket}: {err}")
            return output.EXIT_PROBLEMS
    connections = pool.ClientPool()
    pool.install(connections)
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    endpoint.start()
    if cni_socket is not None:
        cni_socket.start()
    try:
        agent.run(stop)
    finally:
        if cni_socket is not None:
            cni_socket.stop()
        pool.install(None)
        connections.close()
        endpoint.stop()
    return output.EXIT_OK
