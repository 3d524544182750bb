"""Counters of everything the hub dropped or rejected, logged at most once per kind per minute."""

from __future__ import annotations

import logging
from collections.abc import Callable

_LOGGER = logging.getLogger(__name__)

LOG_EVERY_MS = 60_000


class Counters:
    """A dict of counts; ``drop`` also logs a warning, rate-limited per kind."""

    def __init__(self, now_ms: Callable[[], int]) -> None:
        self.counts: dict[str, int] = {}
        self._now_ms = now_ms
        self._logged: dict[str, int] = {}
        self._unlogged: dict[str, int] = {}

    def add(self, kind: str, n: int = 1) -> None:
        """Count something that went well (frames, events, publishes)."""
        self.counts[kind] = self.counts.get(kind, 0) + n

    def drop(self, kind: str, detail: str) -> None:
        """Count something dropped or rejected, and log it unless ``kind`` was logged lately."""
        self.add(kind)
        now = self._now_ms()
        last = self._logged.get(kind)
        if last is not None and now - last < LOG_EVERY_MS:
            self._unlogged[kind] = self._unlogged.get(kind, 0) + 1
            return
        self._logged[kind] = now
        hidden = self._unlogged.pop(kind, 0)
        if hidden:
            _LOGGER.warning(
                "dropped (%s): %s [%d more not logged, %d in all]",
                kind, detail, hidden, self.counts[kind],
            )  # fmt: skip
        else:
            _LOGGER.warning("dropped (%s): %s [%d in all]", kind, detail, self.counts[kind])

    def get(self, kind: str) -> int:
        """The count of ``kind`` (0 when never counted)."""
        return self.counts.get(kind, 0)
