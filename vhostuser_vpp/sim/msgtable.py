"""The `name_crc -> id` table the emulator hands out in `sockclnt_create_reply`.

Clients must look every id up in this table (VPP assigns them at start, depending on the
plugins loaded), so the emulator can pose as another release (that release's CRCs, so a
client with mismatching definitions drops the message, as vpp_papi does), leave messages
out (to test fallbacks such as create_vhost_user_if without _v2) and shift ids (to catch
clients that hard-code them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from vhostuser_vpp.sim.profile_data import RELEASE_LACKS, VPP_2606_MESSAGE_IDS, release_crcs

# memclnt's handshake ids are fixed by the socket transport; everything else may move.
SOCKCLNT_CREATE_ID = 15
SOCKCLNT_CREATE_REPLY_ID = 16
FIXED_IDS = {"sockclnt_create": SOCKCLNT_CREATE_ID, "sockclnt_create_reply": SOCKCLNT_CREATE_REPLY_ID}
# Without these no client can connect, ping or disconnect: refusing to omit them avoids
# building an emulator that only tests itself.
ESSENTIAL = frozenset(
    {
        "sockclnt_create",
        "sockclnt_create_reply",
        "sockclnt_delete",
        "sockclnt_delete_reply",
        "control_ping",
        "control_ping_reply",
    }
)
DEFAULT_PROFILE = "26.06"
# keeps every id a u16 and clear of the fixed handshake ids
MAX_ID_OFFSET = 60000


def known_profiles() -> list[str]:
    return sorted(RELEASE_LACKS)


def normalise_profile(profile: str) -> str:
    release = profile.removeprefix("v").removesuffix("-release")
    if release not in RELEASE_LACKS:
        raise ValueError(f"unknown VPP profile {profile!r}; known: {', '.join(known_profiles())}")
    return release


@dataclass(frozen=True)
class MessageTable:
    release: str
    ids: dict[str, int]
    crcs: dict[str, str]

    @property
    def names_by_id(self) -> dict[int, str]:
        return {msg_id: name for name, msg_id in self.ids.items()}

    def entries(self) -> list[tuple[int, str]]:
        """(id, name_crc) pairs in id order, as VPP lists them."""
        return sorted((msg_id, f"{name}_{self.crcs[name][2:]}") for name, msg_id in self.ids.items())

    def __contains__(self, name: object) -> bool:
        return name in self.ids


def build_table(
    defined: dict[str, str],
    replies: dict[str, str],
    profile: str = DEFAULT_PROFILE,
    omit: Iterable[str] = (),
    id_offset: int = 0,
) -> MessageTable:
    """Table for the messages we define (name -> our CRC) as `profile` would advertise them.

    `replies` maps requests to their reply so that omitting a request also drops its reply,
    like a VPP built without that message.
    """
    release = normalise_profile(profile)
    if not 0 <= id_offset <= MAX_ID_OFFSET:
        raise ValueError(f"id offset must be between 0 and {MAX_ID_OFFSET}")
    advertised = release_crcs(release)
    omitted = set(omit)
    unknown = omitted - set(defined)
    if unknown:
        raise ValueError(f"cannot omit unknown messages: {', '.join(sorted(unknown))}")
    essential = omitted & ESSENTIAL
    if essential:
        raise ValueError(f"cannot omit messages every client needs: {', '.join(sorted(essential))}")
    omitted |= {replies[name] for name in omitted if name in replies}
    ids: dict[str, int] = {}
    crcs: dict[str, str] = {}
    next_free = max(VPP_2606_MESSAGE_IDS.values()) + 1
    for name in sorted(defined):
        if name in omitted or name not in advertised:
            continue
        if name in FIXED_IDS:
            ids[name] = FIXED_IDS[name]
        elif name in VPP_2606_MESSAGE_IDS:
            ids[name] = VPP_2606_MESSAGE_IDS[name] + id_offset
        else:
            ids[name] = next_free + id_offset
            next_free += 1
        crcs[name] = advertised[name]
    return MessageTable(release=release, ids=ids, crcs=crcs)
