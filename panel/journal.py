"""The panel store as the process and the link use it: a failed write never stops the panel.

A full or failing disk must not silence an alarm. When a commit fails, its
snapshot and events are held in memory (the core has moved on; the store has
not) and the process goes on acting: siren, strobe, keypad. Every later commit
carries everything held, so the store receives the events in seq order, all at
once, as soon as it can be written again; ``retry`` tries again without new
input. Held events are offered to the link like stored ones, so an alarm still
reaches the hub while the disk is full. Acknowledgements that cannot be written
are kept in memory and written with the next successful commit (at worst, after
a restart, the hub sees those events again and acknowledges them as duplicates).

What is held is lost only if the process dies before the store is back.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence

from panel.machine import PanelSnapshot
from panel.store import PanelStore
from protocol.messages import Event

_LOGGER = logging.getLogger(__name__)

STORE_ERRORS = (sqlite3.Error, OSError)
"""What a failing disk raises out of SQLite (full, I/O error, read-only, gone)."""


class Journal:
    """Commits to a ``PanelStore``, holding in memory what cannot be written yet."""

    def __init__(self, store: PanelStore) -> None:
        self.store = store
        self.fault: str | None = None  # why the last write failed; None while all is written
        self.faults = 0  # writes that failed, since start
        self._held_snapshot: PanelSnapshot | None = None
        self._held_events: list[Event] = []
        self._acked = store.acked_upto  # may run ahead of the store's while writes fail

    # -- the process side -------------------------------------------------------------

    @property
    def holding(self) -> int:
        """How many events wait in memory for the store."""
        return len(self._held_events) if self._held_snapshot is not None else 0

    @property
    def dirty(self) -> bool:
        """Something (a snapshot, events or an ack) waits to be written."""
        return self._held_snapshot is not None or self._acked > self.store.acked_upto

    def commit(self, snapshot: PanelSnapshot, events: Sequence[Event]) -> bool:
        """Write ``snapshot`` and ``events`` after whatever is held; False if it failed (held)."""
        events = [*self._held_events, *events]
        try:
            self.store.commit(snapshot, events)
            if self._acked > self.store.acked_upto:
                self.store.ack(self._acked)
        except STORE_ERRORS as exc:
            self._held_snapshot, self._held_events = snapshot, events
            self.faults += 1
            if self.fault is None:
                _LOGGER.error(
                    "%s: cannot write the panel store (%s); %d event(s) held in memory",
                    self.store.path, exc, len(events),
                )  # fmt: skip
            self.fault = str(exc) or type(exc).__name__
            return False
        if self.fault is not None:
            _LOGGER.warning("%s: the panel store is written again", self.store.path)
        self._held_snapshot, self._held_events, self.fault = None, [], None
        return True

    def retry(self) -> bool:
        """Write what is held; True when nothing is held any more."""
        if self._held_snapshot is not None:
            return self.commit(self._held_snapshot, [])
        if self._acked > self.store.acked_upto:
            self._write_ack()
        return self.fault is None

    # -- the link side ----------------------------------------------------------------

    @property
    def acked_upto(self) -> int:
        """The newest seq the hub has acknowledged."""
        return self._acked

    def pending(self, limit: int = 100) -> list[Event]:
        """Events the hub has not acknowledged, stored or held, oldest first."""
        stored = [e for e in self.store.pending(limit) if e.seq > self._acked]
        if len(stored) >= limit or self._held_snapshot is None:
            return stored[:limit]
        top = stored[-1].seq if stored else self._acked
        held = [e for e in self._held_events if e.seq > top]
        return [*stored, *held][:limit]

    def ack(self, upto_seq: int) -> None:
        """The hub holds every event up to ``upto_seq``."""
        if upto_seq <= self._acked:
            return
        self._acked = upto_seq
        self._write_ack()

    def _write_ack(self) -> None:
        try:
            self.store.ack(self._acked)
        except STORE_ERRORS as exc:
            _LOGGER.debug("ack %d not written yet: %s", self._acked, exc)

    def rebased(self, acked_upto: int) -> None:
        """The store was renumbered; the hub holds everything up to ``acked_upto``."""
        self._acked = acked_upto

    def get_meta(self, key: str) -> str | None:
        """A small durable value (``PanelStore.get_meta``)."""
        return self.store.get_meta(key)

    def set_meta(self, key: str, value: str) -> None:
        """Store a small value durably; raises when the store cannot be written."""
        self.store.set_meta(key, value)
