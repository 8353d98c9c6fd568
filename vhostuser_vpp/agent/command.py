"""`vhostuser-vpp agent`: the node agent in the foreground (systemd or a DaemonSet runs it).

Logs JSON lines on stderr; serves metrics and health where the node policy's
`agent_listen` says; stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse

from vhostuser_vpp.cli import output, session
from vhostuser_vpp.defaults import DEFAULT_CNI_DIR


def add_arguments(parser: argparse.ArgumentParser) -> None:
    session.add_vpp_arguments(parser)
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
    from vhostuser_vpp.agent.metrics import Endpoint, Metrics
    from vhostuser_vpp.agent.node import Agent, AgentConfig
    from vhostuser_vpp.cni.errors import CniError
    from vhostuser_vpp.nodeconf import load_policy

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
    agent = Agent(config, metrics)
    try:
        endpoint = Endpoint(policy.agent_listen, metrics, agent.health)
    except OSError as err:
        output.error("agent", f"cannot listen on {policy.agent_listen}: {err}")
        return output.EXIT_PROBLEMS
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    endpoint.start()
    try:
        agent.run(stop)
    finally:
        endpoint.stop()
    return output.EXIT_OK
