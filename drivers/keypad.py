"""The keypad wire (docs/keypad.md "On the wire") and what every keypad driver offers."""

from __future__ import annotations

import re
from dataclasses import dataclass

from drivers.base import Driver

KEY_BYTES = frozenset(b"0123456789*#ABCDP")
"""One ASCII byte per key, panel-bound (CONTRACT §4)."""

DISPLAY_WIDTH = 80
"""Longest display text sent (one line on the wire); the keypad wraps or scrolls it."""

_BEEP_KIND = re.compile(r"[a-z0-9_]{1,16}")
BEEP_KINDS = ("key", "ok", "error", "entry", "exit", "alarm", "chime", "off")
"""The beep kinds the panel uses; the wire accepts any ``[a-z0-9_]{1,16}`` token."""


def display_line(text: str) -> bytes:
    """``D:<text>\\n``: printable ASCII only (others become ``?``), at most DISPLAY_WIDTH chars."""
    clean = "".join(ch if " " <= ch <= "~" else "?" for ch in text[:DISPLAY_WIDTH])
    return b"D:" + clean.encode("ascii") + b"\n"


def beep_line(kind: str) -> bytes:
    """``B:<kind>\\n``; raises ValueError for a kind that is not a short lower-case token."""
    if not _BEEP_KIND.fullmatch(kind):
        raise ValueError(f"beep kind must match [a-z0-9_]{{1,16}}: {kind!r}")
    return b"B:" + kind.encode("ascii") + b"\n"


@dataclass
class KeypadStats:
    """Counters of one keypad driver; key values are never recorded."""

    bytes_in: int = 0
    keys: int = 0
    noise: int = 0
    reports: int = 0
    lines_out: int = 0
    dropped_out: int = 0


class KeypadDriver(Driver):
    """A keypad: yields KeyPressed (and DeviceLost/DeviceBack); shows text and beeps."""

    def __init__(self, device: str = "keypad") -> None:
        super().__init__(device)
        self.stats = KeypadStats()

    async def display(self, text: str) -> None:
        """Show ``text`` on the keypad's display (dropped while the keypad is lost)."""
        raise NotImplementedError

    async def beep(self, kind: str) -> None:
        """Sound a beep of ``kind`` (see BEEP_KINDS)."""
        raise NotImplementedError
