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
from protocol.errors import StaleEpoch
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
        self,
        panel_id: str,
        key: bytes,
        previous_key: bytes | None,
        store: HubStore,
        *,
        max_skew_ms: int | None = None,
    ) -> None:
        self.panel_id = panel_id
        self._store = store
        self.epoch = store.own_epoch()
        # key id -> key; the current key last (the Receiver treats the last as current).
        keys: dict[int, bytes] = {}
        if previous_key is not None:
            keys[derived_key_id(previous_key)] = previous_key
        keys[derived_key_id(key)] = key
        keys[CURRENT_KEY_ID] = key
        self._keys = keys
        self._current = key
        highest = {kid: store.rx_highest(panel_id, fingerprint(k), kid) for kid, k in keys.items()}
        current, retired, self.resume_after = store.panel_epochs(panel_id)
        self.receiver = Receiver(
            panel_id,
            Direction.PANEL_TO_HUB,
            keys,
            highest_seq=highest,
            local_epoch=self.epoch,
            peer_epoch=current,
            retired=retired,
            max_skew_ms=None if max_skew_ms is None else (max_skew_ms, max_skew_ms),
        )
        # The hub answers under the key and id the panel used last.
        self._tx_key_id = CURRENT_KEY_ID
        self._tx_next: dict[str, int] = {}
        self._tx_reserved: dict[str, int] = {}

    def open(self, frame: bytes, now_ms: int | None = None) -> Received:
        """Verify a frame from the panel (raises ``ProtocolError``)."""
        try:
            received = self.receiver.open(frame, now_ms)
        except StaleEpoch as exc:  # authentic: the answer goes under the key it used
            self._tx_key_id = exc.header.key_id  # type: ignore[attr-defined]
            raise
        self._tx_key_id = received.header.key_id
        return received

    def persist_rx(self) -> None:
        """Write the replay windows' highest seqs (inside the caller's transaction)."""
        for key_id, highest in self.receiver.highest_seqs.items():
            if highest:
                key = self._keys[key_id]
                self._store.set_rx_highest(self.panel_id, fingerprint(key), key_id, highest)

    def seal(self, message: Message, now_ms: int, peer_epoch: int | None = None) -> bytes:
        """A frame to the panel, under the key it used last, with a never-reused seq.

        It is bound to the panel's current epoch, or to ``peer_epoch`` when given (an
        answer to a frame from a store the hub does not know yet).
        """
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
        if peer_epoch is None:
            peer_epoch = self.receiver.peer_epoch or 0
        frame = Sender(
            self.panel_id, Direction.HUB_TO_PANEL, key, next_seq=seq, key_id=key_id,
            epoch=self.epoch, peer_epoch=peer_epoch,
        ).seal(message, now_ms)  # fmt: skip
        self._tx_next[fp] = seq + 1
        return frame
