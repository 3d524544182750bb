"""One panel's link security at the hub: its receiver, its sender and their persisted seqs.

Key ids (docs/link.md): a key's id is derived from the key itself (1-255), so
both ends agree without configuring ids and a rotation needs no extra setting;
id 0 means "the sender's current key" for senders that never rotate. Replay
windows are persisted per (key, key id) and sender seqs per key, so that a
seq is never reused under one key, whatever id the header names.
"""

from __future__ import annotations

import logging
from typing import Final

from hub.store import HubStore
from protocol.frame import Direction
from protocol.keys import fingerprint
from protocol.keys import key_id as _key_id
from protocol.messages import Message
from protocol.session import Received, Receiver, Sender

_LOGGER = logging.getLogger(__name__)

SEQ_BLOCK: Final = 1000
CURRENT_KEY_ID: Final = 0


def derived_key_id(key: bytes) -> int:
    """The id (1-255) both ends give ``key`` (``protocol.keys.key_id``)."""
    return _key_id(key)


class PanelSecurity:
    """Opens one panel's frames and seals the hub's frames to it."""

    def __init__(
        self, panel_id: str, key: bytes, previous_key: bytes | None, store: HubStore
    ) -> None:
        self.panel_id = panel_id
        self._store = store
        # key id -> key; the current key last (the Receiver treats the last as current).
        keys: dict[int, bytes] = {}
        if previous_key is not None:
            keys[derived_key_id(previous_key)] = previous_key
        keys[derived_key_id(key)] = key
        keys[CURRENT_KEY_ID] = key
        self._keys = keys
        self._current = key
        highest = {kid: store.rx_highest(panel_id, fingerprint(k), kid) for kid, k in keys.items()}
        self.receiver = Receiver(panel_id, Direction.PANEL_TO_HUB, keys, highest_seq=highest)
        # The hub answers under the key and id the panel used last.
        self._tx_key_id = CURRENT_KEY_ID
        self._tx_next: dict[str, int] = {}
        self._tx_reserved: dict[str, int] = {}

    def open(self, frame: bytes) -> Received:
        """Verify a frame from the panel (raises ``ProtocolError``)."""
        received = self.receiver.open(frame)
        self._tx_key_id = received.header.key_id
        return received

    def persist_rx(self) -> None:
        """Write the replay windows' highest seqs (inside the caller's transaction)."""
        for key_id, highest in self.receiver.highest_seqs.items():
            if highest:
                key = self._keys[key_id]
                self._store.set_rx_highest(self.panel_id, fingerprint(key), key_id, highest)

    def seal(self, message: Message, now_ms: int) -> bytes:
        """A frame to the panel, under the key it used last, with a never-reused seq."""
        key_id = self._tx_key_id
        key = self._keys.get(key_id, self._current)
        fp = fingerprint(key)
        if fp not in self._tx_next:
            reserved = self._store.tx_reserved(self.panel_id, fp)
            self._tx_next[fp] = reserved + 1
            self._tx_reserved[fp] = reserved
        seq = self._tx_next[fp]
        if seq > self._tx_reserved[fp]:
            upto = seq + SEQ_BLOCK - 1
            self._store.reserve_tx(self.panel_id, fp, upto)
            self._tx_reserved[fp] = upto
        frame = Sender(
            self.panel_id, Direction.HUB_TO_PANEL, key, next_seq=seq, key_id=key_id
        ).seal(message, now_ms)
        self._tx_next[fp] = seq + 1
        return frame
