"""`vhostuser-vpp doctor`: can this node serve the plugin? One line per check, with the fix.

For a new node, or a node where every ADD fails: it checks, in the order a pod's ADD
depends on them, VPP's API socket, the messages the backend needs (the backend's own
lists, so the two cannot disagree), the interface that lends pods their gateway
address, cniDir and the node policy that must allow it, and hugepages for the pods'
packet memory. Exit 1 when any check fails.
"""

from __future__ import annotations

import argparse
import glob
import os
import stat
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from vhostuser_vpp import tags
from vhostuser_vpp.cli import output, session, vppview
from vhostuser_vpp.vpp.client import VppClient
from vhostuser_vpp.vpp.errors import VppError, VppUnavailable
from vhostuser_vpp.vpp.ops import LOOPBACK_NAME_PREFIX, Vpp

COLUMNS = (("result", "RESULT"), ("check", "CHECK"), ("detail", "DETAIL"), ("fix", "FIX"))
# Per wiring mode: messages of which VPP must offer at least one (the newer is preferred).
_MESSAGES_FIX = "load VPP's vhost-user plugin and use VPP 22.10 to 26.06, whose messages this plugin speaks"


@dataclass(frozen=True)
class Check:
    check: str
    ok: bool
    detail: str
    fix: str = ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    session.add_vpp_arguments(parser)
    session.add_cni_dir_argument(parser)
    output.add_output_argument(parser)
    parser.add_argument(
        "--unnumbered-to",
        default="loop0",
        metavar="NAME",
        help="the VPP interface lending pods their gateway address (%(default)s)",
    )
    parser.add_argument("--bridge-domain", type=int, metavar="N", help="also check this bridge domain exists")
    parser.add_argument(
        "--host-root",
        default="/",
        metavar="DIR",
        help="where the host's /proc and /sys are, when run in a container with the host mounted (/)",
    )


def run(args: argparse.Namespace) -> int:
    checks = [*vpp_checks(args), *node_checks(args)]
    if output.wants_json(args):
        output.print_json({"ok": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]})
    else:
        rows = [{**asdict(c), "result": "PASS" if c.ok else "FAIL"} for c in checks]
        output.print_table(rows, COLUMNS)
    return output.EXIT_OK if all(c.ok for c in checks) else output.EXIT_PROBLEMS


# -- VPP ---------------------------------------------------------------------------------------


def vpp_checks(args: argparse.Namespace) -> list[Check]:
    path = args.api_socket
    if not os.path.exists(path):
        fix = f"start VPP with `socksvr {{ socket-name {path} }}` in startup.conf, or pass --api-socket"
        return [Check("API socket", False, f"no socket at {path}", fix)]
    if not vppview.is_socket(path):
        return [Check("API socket", False, f"{path} is not a unix socket", "point --api-socket at VPP's")]
    checks = [Check("API socket", True, path)]
    client = VppClient(path, args.timeout, args.timeout)
    try:
        client.connect()
    except VppUnavailable as err:
        fix = "is VPP running and answering? can this user open the socket?"
        return [*checks, Check("VPP connection", False, str(err), fix)]
    try:
        checks.append(Check("VPP connection", True, "connected"))
        checks.extend(_with_vpp(Vpp(client), args))
    except VppError as err:
        checks.append(Check("VPP answers", False, str(err), "look at VPP's log; is it overloaded?"))
    finally:
        client.close()
    return checks


def _with_vpp(vpp: Vpp, args: argparse.Namespace) -> Iterable[Check]:
    yield Check("VPP version", True, vpp.version())
    # Each mode as ADD checks it (`Vpp.missing_for`), the gateway loopback's messages with l3.
    yield _messages("API messages (all modes)", vpp.missing_for("none"))
    yield _messages("API messages (l3 mode)", vpp.missing_for("l3", create_loopback=True))
    yield _messages("API messages (l2 mode)", vpp.missing_for("l2"))
    yield _unnumbered_source(vpp, args.unnumbered_to)
    yield _gateway_loopbacks(vpp)
    if args.bridge_domain is not None:
        yield _bridge_domain(vpp, args.bridge_domain)


def _messages(name: str, missing: list[str]) -> Check:
    if missing:
        return Check(name, False, f"missing: {', '.join(missing)}", _MESSAGES_FIX)
    return Check(name, True, "all offered with matching CRCs")


def _unnumbered_source(vpp: Vpp, name: str) -> Check:
    check = f"interface {name}"
    found = vpp.interface_named(name)
    fix = (
        f"create it with the pods' gateway address (vppctl: create loopback interface; set interface"
        f" ip address {name} GATEWAY/LEN; set interface state {name} up), or set vhost.create_loopback"
    )
    if found is None:
        return Check(check, False, f"VPP has no interface {name}", fix)
    addresses = vpp.addresses(found.sw_if_index)
    if not addresses:
        return Check(check, False, f"{name} has no IPv4 address", fix)
    return Check(check, True, f"{name} (sw_if_index {found.sw_if_index}) has {' '.join(addresses)}")


def _gateway_loopbacks(vpp: Vpp) -> Check:
    """Loopbacks the plugin made for `create_loopback` (tagged `cni-gw:<name>`) must hold
    their gateway address: one without is what a plugin killed while making it leaves."""
    check = "gateway loopbacks"
    ours = [
        i
        for i in vpp.interfaces_named_like(LOOPBACK_NAME_PREFIX)
        if i.tag.startswith(tags.GATEWAY_TAG_PREFIX)
    ]
    bare = [i.name for i in ours if not vpp.addresses(i.sw_if_index)]
    if bare:
        fix = "the next ADD for that name makes it again; or: vppctl delete loopback interface intfc NAME"
        return Check(check, False, f"without an address: {', '.join(bare)}", fix)
    return Check(check, True, f"{len(ours)} made by the plugin, each with its address")


def _bridge_domain(vpp: Vpp, bd_id: int) -> Check:
    check = f"bridge domain {bd_id}"
    bd = vpp.bridge_domain(bd_id)
    if bd is None:
        fix = f"the first L2 ADD creates it; to have it now: vppctl create bridge-domain {bd_id}"
        return Check(check, False, "VPP has no such bridge domain", fix)
    return Check(check, True, f"tag {bd.tag or '-'}, {len(bd.members)} member(s)")


# -- the node ----------------------------------------------------------------------------------


def node_checks(args: argparse.Namespace) -> list[Check]:
    return [_cni_dir(args.cni_dir), _node_policy(args.cni_dir, args.api_socket), _hugepages(args.host_root)]


def _cni_dir(path: str) -> Check:
    check = "cniDir"
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return Check(check, False, f"{path} does not exist", f"mkdir -m 0755 {path} (the first ADD makes it)")
    except OSError as err:
        return Check(check, False, f"{path}: {err}", "check the path and its parents")
    if not stat.S_ISDIR(st.st_mode):
        return Check(check, False, f"{path} is not a directory", "replace it with a real directory")
    if st.st_mode & stat.S_IWOTH:
        return Check(check, False, f"{path} is writable by others", f"chmod o-w {path}")
    return Check(check, True, f"{path} mode {stat.S_IMODE(st.st_mode):04o}")


def _node_policy(cni_dir: str, api_socket: str) -> Check:
    from vhostuser_vpp.cni.errors import CniError
    from vhostuser_vpp.nodeconf import DEFAULT_PATH, PATH_ENV, load_policy

    source = os.environ.get(PATH_ENV) or DEFAULT_PATH
    fix = (
        f"in {source} (root-owned, not writable by group or others): list {cni_dir} in "
        f"allowed_cni_dirs and {api_socket} in allowed_api_sockets"
    )
    try:
        policy = load_policy(os.environ)
        policy.check_cni_dir(cni_dir)
        policy.check_api_socket(api_socket)
    except CniError as err:
        return Check("node policy", False, str(err), fix)
    return Check("node policy", True, f"{policy.source} allows {cni_dir} and {api_socket}")


def _hugepages(host_root: str) -> Check:
    meminfo = os.path.join(host_root, "proc/meminfo")
    total = 0
    try:
        with open(meminfo) as f:
            for line in f:
                if line.startswith("HugePages_Total:"):
                    total = int(line.split()[1])
    except (OSError, ValueError, IndexError) as err:
        return Check("hugepages", False, f"cannot read {meminfo}: {err}", "run where /proc is the host's")
    pattern = os.path.join(host_root, "sys/kernel/mm/hugepages/hugepages-*/nr_hugepages")
    sizes = {}
    for path in sorted(glob.glob(pattern)):
        try:
            with open(path) as f:
                count = int(f.read().strip() or 0)
        except (OSError, ValueError):
            continue
        if count:
            sizes[os.path.basename(os.path.dirname(path)).removeprefix("hugepages-")] = count
    if total <= 0 and not sizes:
        fix = "reserve them: sysctl vm.nr_hugepages=1024 (or hugepages= on the kernel command line)"
        return Check("hugepages", False, "none reserved (HugePages_Total is 0)", fix)
    detail = ", ".join(f"{n} x {size}" for size, n in sizes.items()) or f"HugePages_Total {total}"
    return Check("hugepages", True, detail)
