"""Protocol version 2: the messages of version 1 under a header that carries session epochs.

Version 2 changes the frame header only (docs/protocol.md §1 and §5): each frame
names its sender's epoch (drawn at random when the sender's store is created)
and the epoch of the receiver it is meant for, and the nonce includes the
sender's epoch. So a store that is lost or replaced never reuses a nonce, a
receiver can tell a new store from a replay, and frames made for a store that
is gone are refused. The message table is version 1's plus ``Resume`` (type 9)
and, since revision 2.1, ``TagCounters`` (type 10).
"""

from __future__ import annotations

from typing import Final

from construct import Int16ub, Int32ub, PrefixedArray, Struct

from protocol import v1
from protocol.messages import Resume, TagCounters
from protocol.schema import CompiledStruct, LengthPrefixed, MessageSpec

VERSION: Final = 2
RESUME_SCHEMA: Final = Struct("last_seq" / Int32ub)
TAG_COUNTERS_SCHEMA: Final = Struct(
    "counters"
    / PrefixedArray(Int16ub, Struct("tag" / LengthPrefixed(1, text=True), "counter" / Int32ub)),
)
TABLE: Final[dict[int, MessageSpec]] = {
    **v1.TABLE,
    9: MessageSpec(
        9,
        Resume,
        CompiledStruct(RESUME_SCHEMA),
        lambda m: {"last_seq": m.last_seq},
        lambda c: Resume(last_seq=c["last_seq"]),
        False,
        True,
    ),
    10: MessageSpec(
        10,
        TagCounters,
        CompiledStruct(TAG_COUNTERS_SCHEMA),
        lambda m: {"counters": [{"tag": t, "counter": c} for t, c in m.counters]},
        lambda c: TagCounters(tuple((e["tag"], e["counter"]) for e in c["counters"])),
        True,
        True,
    ),
}
