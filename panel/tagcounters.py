"""SUN read counters kept in the panel store, and the reader policy of a ``sun`` site."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Final

from drivers.ntag424 import SunKeys, SunPolicy
from panel.config import SiteConfig
from panel.store import PanelStore

_LOGGER = logging.getLogger(__name__)

PREFIX: Final = "sun_counter:"
PENDING: Final = "sun_counters.pending"  # set: a new store waits for the hub's counters


class StoreCounters:
    """The highest accepted read counter per tag, in the store's small durable values.

    The NFC reader's thread calls it; the store serialises its calls. A counter
    only ever goes up: an older message can never become acceptable again. A new
    store of a panel that has a hub accepts no SUN read until the hub has sent the
    counters it holds (docs/link.md, "A store lost or replaced"); ``notify`` hears
    of every counter accepted, so the hub learns them.
    """

    def __init__(self, store: PanelStore, notify: Callable[[str, int], None] | None = None) -> None:
        self._store = store
        self._notify = notify

    def last_counter(self, uid: str) -> int | None:
        """The highest counter accepted for ``uid``, or None if none yet."""
        value = self._store.get_meta(PREFIX + uid.upper())
        return None if value is None else int(value)

    def accept_counter(self, uid: str, counter: int) -> None:
        """Record ``counter`` for ``uid`` (committed before the tap counts)."""
        last = self.last_counter(uid)
        if last is not None and counter <= last:
            raise ValueError(f"read counter {counter} for {uid} is not above {last}")
        self._store.set_meta(PREFIX + uid.upper(), str(counter))
        if self._notify is not None:
            try:  # the hub also learns it on the next connect: never fail the tap for this
                self._notify(uid.upper(), counter)
            except Exception as exc:
                _LOGGER.warning("read counter of %s not sent to the hub: %s", uid, exc)

    def synchronised(self) -> bool:
        """False while this (new) store waits for the counters the hub holds."""
        return not self._store.get_meta(PENDING)

    def await_hub(self) -> None:
        """This store is new: accept no SUN read until the hub's counters are in."""
        self._store.set_meta(PENDING, "1")

    def take_hub(self, counters: Iterable[tuple[str, int]]) -> None:
        """The hub's counters: keep the higher of ours and its for each tag, then accept reads."""
        for uid, counter in counters:
            last = self.last_counter(uid)
            if last is None or counter > last:
                self._store.set_meta(PREFIX + uid.upper(), str(counter))
        if not self.synchronised():
            self._store.set_meta(PENDING, "")

    def known(self, uids: Iterable[str]) -> list[tuple[str, int]]:
        """``(uid, counter)`` of those of ``uids`` that have a counter."""
        found = ((uid.upper(), self.last_counter(uid)) for uid in uids)
        return [(uid, counter) for uid, counter in found if counter is not None]


def sun_policy(config: SiteConfig, counters: StoreCounters) -> SunPolicy | None:
    """What the reader checks when ``[nfc] tags = "sun"``; None in ``uid`` mode."""
    nfc = config.nfc
    if not nfc.sun:
        return None
    if nfc.meta_key is None or nfc.file_key is None:
        raise ValueError("sun mode without its keys")  # the config loader refuses this first
    return SunPolicy(SunKeys(nfc.meta_key, nfc.file_key), site_tags(config), counters)


def site_tags(config: SiteConfig) -> frozenset[str]:
    """Every tag UID of the site's users."""
    return frozenset(tag for user in config.users for tag in user.tags)
