"""SUN read counters kept in the panel store, and the reader policy of a ``sun`` site."""

from __future__ import annotations

from typing import Final

from drivers.ntag424 import SunKeys, SunPolicy
from panel.config import SiteConfig
from panel.store import PanelStore

PREFIX: Final = "sun_counter:"


class StoreCounters:
    """The highest accepted read counter per tag, in the store's small durable values.

    The NFC reader's thread calls it; the store serialises its calls. A counter
    only ever goes up: an older message can never become acceptable again.
    """

    def __init__(self, store: PanelStore) -> None:
        self._store = store

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


def sun_policy(config: SiteConfig, store: PanelStore) -> SunPolicy | None:
    """What the reader checks when ``[nfc] tags = "sun"``; None in ``uid`` mode."""
    nfc = config.nfc
    if not nfc.sun:
        return None
    if nfc.meta_key is None or nfc.file_key is None:
        raise ValueError("sun mode without its keys")  # the config loader refuses this first
    tags = frozenset(tag for user in config.users for tag in user.tags)
    return SunPolicy(SunKeys(nfc.meta_key, nfc.file_key), tags, StoreCounters(store))
