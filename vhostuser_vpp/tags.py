"""The tags the plugin puts on VPP objects, and how they are read back: the one vocabulary
DEL, gc, the CLI and the node agent tell our objects from everybody else's by.

Kept free of imports so that every command can use it without loading pydantic.

- `cni:<cid12>:<ifname>` on a pod's port. VPP tags hold 63 bytes (64 with the NUL), too
  few for a 64-character container ID, so 12 characters of it; the socket path, which
  holds the whole ID, tells two containers with the same 12 apart.
- `cni-manual:<name>` on a port made by `vhostuser-vpp create`, outside any pod.
- `cni-gw:<unnumbered_to>` on a loopback made for `vhost.create_loopback` (VPP names it
  loopN, N its choice, so the name the config asked for is in the tag).
- `cni-vhostuser` on a bridge domain the plugin made (a bridge domain's tag).
"""

from __future__ import annotations

TAG_MAX = 63
CONTAINER_ID_PREFIX_LEN = 12
OWNER_TAG_PREFIX = "cni:"
MANUAL_TAG_PREFIX = "cni-manual:"
GATEWAY_TAG_PREFIX = "cni-gw:"
BRIDGE_DOMAIN_TAG = "cni-vhostuser"


def ownership_tag(container_id: str, ifname: str) -> str:
    return f"{OWNER_TAG_PREFIX}{container_id[:CONTAINER_ID_PREFIX_LEN]}:{ifname}"


def parse_owner_tag(tag: str) -> tuple[str, str] | None:
    """(cid12, ifname) from `cni:<cid12>:<ifname>`, or None for any other tag."""
    if not tag.startswith(OWNER_TAG_PREFIX):
        return None
    cid12, sep, ifname = tag[len(OWNER_TAG_PREFIX) :].partition(":")
    return (cid12, ifname) if sep else (cid12, "")


def gateway_tag(unnumbered_to: str) -> str:
    return f"{GATEWAY_TAG_PREFIX}{unnumbered_to}"


def manual_tag(name: str) -> str:
    return f"{MANUAL_TAG_PREFIX}{name}"
