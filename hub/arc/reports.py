"""What the centre receives for each event: SIA-DCS or ADM-CID data with zone and user numbers.

SIA-DCS data is ``#<account>|N[id<user>/]ri<area>/<SIA code><unit>``: ``id`` the
user number (when the event names a user), ``ri`` the area (always 1: a panel
is one area) and the unit the zone number for zone events, else the user number.
ADM-CID data is ``#<account>|<Q><EEE> <GG> <ZZZ>``: the Contact ID qualifier and
event code, the partition (01) and the zone or user number (three digits).
Names map to numbers through the ``[arc] users`` and ``zones`` tables; a name
not listed is number 0 (docs/arc.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from protocol.messages import Event

SIA_DCS: Final = "SIA-DCS"
ADM_CID: Final = "ADM-CID"
FORMATS: Final = (SIA_DCS, ADM_CID)
AREA: Final = 1
_SIA_CODE: Final = re.compile(r"[A-Z]{2}")
_CID: Final = re.compile(r"[136]\d{3}")


class UnreportableEvent(ValueError):
    """An event whose codes cannot be written in the chosen format."""


@dataclass(frozen=True, slots=True)
class Numbering:
    """User and zone names to the numbers the centre knows them by."""

    users: Mapping[str, int]
    zones: Mapping[str, int]

    def user(self, name: str | None) -> int:
        """The user's number (0 for none or unknown)."""
        return 0 if name is None else self.users.get(name, 0)

    def zone(self, name: str | None) -> int:
        """The zone's number (0 for none or unknown)."""
        return 0 if name is None else self.zones.get(name, 0)


def event_data(fmt: str, account: str, event: Event, numbering: Numbering) -> str:
    """The data block (without the brackets) reporting ``event`` in format ``fmt``."""
    user = numbering.user(event.user)
    unit = numbering.zone(event.zone) if event.zone is not None else user
    if fmt == SIA_DCS:
        if not _SIA_CODE.fullmatch(event.sia):
            raise UnreportableEvent(f"SIA code {event.sia!r} is not two capital letters")
        ident = f"id{user}/" if event.user is not None and user else ""
        return f"#{account}|N{ident}ri{AREA}/{event.sia}{unit:03d}"
    if fmt == ADM_CID:
        if not _CID.fullmatch(event.cid):
            raise UnreportableEvent(f"Contact ID {event.cid!r} is not qualifier + 3 digits")
        return f"#{account}|{event.cid[0]}{event.cid[1:]} {AREA:02d} {min(unit, 999):03d}"
    raise UnreportableEvent(f"unknown format {fmt!r}")
