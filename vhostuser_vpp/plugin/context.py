"""What every verb starts from: the validated config, node policy and where files go."""

from __future__ import annotations

import logging
from typing import NamedTuple

from vhostuser_vpp import logs
from vhostuser_vpp.cni.env import CmdArgs
from vhostuser_vpp.cni.errors import CniCode, CniError
from vhostuser_vpp.cni.invoke import DELEGATED_ENV, DelegatedPlugin
from vhostuser_vpp.config import NetConf, parse_netconf
from vhostuser_vpp.nodeconf import NodePolicy, load_policy
from vhostuser_vpp.store.attachment import SOCKET_PATH_MAX, Attachment

log = logging.getLogger(__name__)


class Invocation(NamedTuple):
    args: CmdArgs
    conf: NetConf
    policy: NodePolicy
    ipam: DelegatedPlugin
    # False only for a DEL whose cniDir the policy refuses: ADD made nothing there.
    cni_dir_allowed: bool = True

    def attachment(self, container_id: str | None = None, ifname: str | None = None) -> Attachment:
        return Attachment(
            cni_dir=self.conf.cni_dir,
            container_id=container_id or self.args.container_id,
            ifname=ifname or self.args.ifname,
        )


def prepare(args: CmdArgs) -> Invocation:
    """The config and policy checked. For DEL a setting the policy refuses is not an error
    (ADD, refused for it, made nothing it could have undone): a refused logFile is not
    opened (stderr only), a refused cniDir leaves DEL only IPAM's release."""
    conf = parse_netconf(args.config)
    logs.set_context(args.command, args.container_id, args.ifname, conf.name)
    if args.environ.get(DELEGATED_ENV):
        raise CniError(
            CniCode.INVALID_CONFIG,
            "vhostuser was run as a delegate of itself",
            f"{DELEGATED_ENV} is set: a network config names it, or a plugin that runs it, as IPAM",
        )
    policy = load_policy(args.environ)
    lenient = args.command == "DEL"
    if conf.log_file:
        try:
            policy.check_log_file(conf.log_file)
            logs.add_file(conf.log_file, logs.level_named(conf.log_level))
        except CniError as err:
            if not lenient:
                raise
            log.warning("not logging to logFile: %s", err)
        except OSError as exc:
            log.warning("cannot open logFile %s: %s", conf.log_file, exc)
    if conf.type != "vhostuser":
        log.warning("config type is %r, running as vhostuser", conf.type)
    if conf.if0name and args.ifname and conf.if0name != args.ifname:
        # The runtime names the interface (CNI spec); if0name is the original's key and
        # a copied config often carries a stale one. Multus caches results per ifname,
        # and one NAD may be attached twice to a pod, so CNI_IFNAME must win.
        log.warning("if0name %r differs from CNI_IFNAME %r; using CNI_IFNAME", conf.if0name, args.ifname)
    cni_dir_allowed = True
    try:
        policy.check_cni_dir(conf.cni_dir)
    except CniError as err:
        if not lenient:
            raise
        log.warning("nothing of this attachment can be in cniDir: %s", err)
        cni_dir_allowed = False
    ipam = DelegatedPlugin(
        plugin_type=conf.ipam.type,
        config=args.config,
        environ=args.environ,
        search_path=args.path,
        own_executable=args.executable,
    )
    return Invocation(args=args, conf=conf, policy=policy, ipam=ipam, cni_dir_allowed=cni_dir_allowed)


def check_socket_path(attachment: Attachment) -> None:
    if not attachment.fits():
        length = len(attachment.socket_path.encode())
        raise CniError(
            CniCode.INVALID_CONFIG,
            "vhost-user socket path is too long for a unix socket",
            f"{attachment.socket_path} is {length} bytes, the kernel allows {SOCKET_PATH_MAX}; "
            "use a shorter cniDir or interface name",
        )
