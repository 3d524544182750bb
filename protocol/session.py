"""Sequence numbers, epochs, replay window and key rotation on top of the frame layer.

A ``Sender`` numbers the frames of one panel in one direction; a ``Receiver``
accepts each authentic frame once. Sequence numbers count per key and epoch:
rotating the key starts again at 1, and the receiver keeps one replay window per
key id, so frames still in flight under the old key are accepted until it is
retired.

Epochs (protocol v2) tell a lost or replaced store from a replay. Each side draws
a random epoch when its store is created; every frame carries its sender's
epoch and the receiver's epoch as the sender knows it. A receiver with a
``local_epoch`` opens only frames bound to it (``StaleEpoch`` otherwise, which
it may answer so that the sender learns its epoch); a sender epoch it has seen
replaced is refused for good (``RetiredEpoch``); a new sender epoch, bound to
this receiver, is a new store of the sender: adopted, with fresh windows.

Neither class reads a clock or touches storage: the caller passes ``now_ms``
and persists ``Sender.next_seq``, ``Receiver.highest_seqs``, ``peer_epoch`` and
``retired``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from protocol.codec import decode_spec
from protocol.errors import (
    ClockSkew,
    Replay,
    RetiredEpoch,
    SequenceExhausted,
    StaleEpoch,
    UnknownKey,
    WrongPeer,
)
from protocol.frame import (
    KEY_SIZE,
    MAX_SEQ,
    Buffer,
    Direction,
    Header,
    check_panel_id,
    open_with,
    parse_header,
    seal_with,
)
from protocol.messages import Message

_LOGGER = logging.getLogger(__name__)

DEFAULT_WINDOW: Final = 64


def _check_key(key: bytes, key_id: int) -> ChaCha20Poly1305:
    if not 0 <= key_id <= 0xFF:
        raise ValueError(f"key id {key_id} not in 0..255")
    if len(key) != KEY_SIZE:
        raise ValueError(f"a panel key is {KEY_SIZE} bytes, not {len(key)}")
    return ChaCha20Poly1305(key)


@dataclass(frozen=True, slots=True)
class Received:
    """An authentic, fresh frame: its header and its message."""

    header: Header
    message: Message
    new_epoch: bool = False  # the first frame of a sender epoch this receiver did not know


class Sender:
    """Seals the frames of one panel in one direction, each with a fresh sequence number.

    Persist ``next_seq`` before sending what it numbers (or reserve a block
    ahead): reusing a seq under the same key would reuse a nonce.
    """

    def __init__(
        self,
        panel_id: str,
        direction: Direction,
        key: bytes,
        *,
        next_seq: int = 1,
        key_id: int = 0,
        epoch: int = 0,
        peer_epoch: int = 0,
    ) -> None:
        self.panel_id: Final = check_panel_id(panel_id)
        self.direction: Final = Direction(direction)
        if not 1 <= next_seq <= MAX_SEQ + 1:
            raise ValueError(f"next_seq {next_seq} not in 1..{MAX_SEQ + 1}")
        self.epoch: Final = epoch  # this sender's (its store's): part of every nonce
        self.peer_epoch = peer_epoch  # the receiver's, once known (0 until then)
        self._aead = _check_key(key, key_id)
        self._key = bytes(key)
        self._key_id = key_id
        self._next_seq = next_seq

    @property
    def next_seq(self) -> int:
        """The seq the next frame will carry."""
        return self._next_seq

    @property
    def key_id(self) -> int:
        """The id of the key frames are sealed with."""
        return self._key_id

    def seal(self, message: Message, now_ms: int) -> bytes:
        """The next frame, carrying ``message`` and timestamp ``now_ms``."""
        seq = self._next_seq
        if seq > MAX_SEQ:
            raise SequenceExhausted(
                f"panel {self.panel_id} has sent {MAX_SEQ} frames under key {self._key_id}: "
                "rotate the key"
            )
        frame = seal_with(
            self._aead, self.panel_id, self.direction, self._key_id, seq, now_ms, message,
            self.epoch, self.peer_epoch,
        )  # fmt: skip
        self._next_seq = seq + 1
        return frame

    def rotate(self, new_key: bytes, new_key_id: int, *, next_seq: int = 1) -> None:
        """Seal from now on with ``new_key`` under ``new_key_id``, numbering from ``next_seq``."""
        if new_key_id == self._key_id:
            raise ValueError(f"the new key needs a new key id (not {new_key_id})")
        if bytes(new_key) == self._key:
            raise ValueError("the new key is the current key: its sequence numbers would repeat")
        if not 1 <= next_seq <= MAX_SEQ + 1:
            raise ValueError(f"next_seq {next_seq} not in 1..{MAX_SEQ + 1}")
        self._aead = _check_key(new_key, new_key_id)
        self._key = bytes(new_key)
        self._key_id = new_key_id
        self._next_seq = next_seq
        _LOGGER.info("panel %s: sealing with key id %d", self.panel_id, new_key_id)


class ReplayWindow:
    """A sliding bitmap over sequence numbers: each seq is accepted at most once.

    Bit ``i`` of the bitmap stands for ``highest - i``; a seq more than ``size - 1``
    below the highest one is refused as too old. A restored window treats every
    seq up to ``highest`` as seen.
    """

    __slots__ = ("_bits", "_mask", "highest", "size")

    def __init__(self, size: int = DEFAULT_WINDOW, highest: int = 0) -> None:
        if size < 1:
            raise ValueError("the replay window holds at least one seq")
        if not 0 <= highest <= MAX_SEQ:
            raise ValueError(f"highest seq {highest} not in 0..{MAX_SEQ}")
        self.size: Final = size
        self.highest = highest
        self._mask: Final = (1 << size) - 1
        self._bits = self._mask

    def check(self, seq: int) -> None:
        """Raise ``Replay`` if ``seq`` was seen or is below the window."""
        offset = self.highest - seq
        if offset < 0:
            return
        if offset >= self.size:
            raise Replay(f"seq {seq} is below the replay window (highest {self.highest})")
        if self._bits >> offset & 1:
            raise Replay(f"seq {seq} was already accepted")

    def record(self, seq: int) -> None:
        """Mark ``seq`` as seen (after ``check`` and authentication)."""
        offset = self.highest - seq
        if offset < 0:
            self._bits = (self._bits << -offset | 1) & self._mask
            self.highest = seq
        else:
            self._bits |= 1 << offset


class Receiver:
    """Opens the frames of one panel in one direction: authentic, fresh, each at most once.

    ``keys`` maps key id -> key; the last one is the current key. ``highest_seq``
    restores the current key's window; during a rotation pass ``highest_seqs``
    (a mapping key id -> highest seq) so that no key's window is set too low.
    """

    def __init__(
        self,
        panel_id: str,
        direction: Direction,
        keys: Mapping[int, bytes],
        *,
        highest_seq: int | Mapping[int, int] = 0,
        window: int = DEFAULT_WINDOW,
        max_skew_ms: tuple[int, int] | None = None,
        local_epoch: int | None = None,
        peer_epoch: int | None = None,
        retired: Iterable[int] = (),
    ) -> None:
        self.panel_id: Final = check_panel_id(panel_id)
        self.direction: Final = Direction(direction)
        self.window: Final = window
        self.max_skew_ms: Final = max_skew_ms
        self.local_epoch: Final = local_epoch  # frames must be bound to it (None: not checked)
        self.peer_epoch = peer_epoch  # the sender's current epoch (None: not known yet)
        self._retired = set(retired)
        if isinstance(highest_seq, int):
            if len(keys) > 1 and highest_seq:
                raise ValueError("with several keys, give highest_seq per key id (a mapping)")
            highest = dict.fromkeys(keys, highest_seq)
        else:
            highest = dict(highest_seq)
        self._aeads: dict[int, ChaCha20Poly1305] = {}
        self._keys: dict[int, bytes] = {}
        self._windows: dict[int, ReplayWindow] = {}
        for key_id, key in keys.items():
            self.add_key(key_id, key, highest_seq=highest.get(key_id, 0))

    @property
    def key_ids(self) -> tuple[int, ...]:
        """The accepted key ids, the current (most recently added) last."""
        return tuple(self._keys)

    @property
    def highest_seq(self) -> int:
        """The highest seq accepted under the current key (0 if none or no key)."""
        if not self._windows:
            return 0
        return self._windows[next(reversed(self._windows))].highest

    @property
    def retired(self) -> frozenset[int]:
        """Sender epochs replaced by a newer one: never accepted again."""
        return frozenset(self._retired)

    @property
    def highest_seqs(self) -> dict[int, int]:
        """Key id -> highest seq accepted: what to persist during a rotation."""
        return {key_id: w.highest for key_id, w in self._windows.items()}

    def add_key(self, key_id: int, key: bytes, *, highest_seq: int = 0) -> None:
        """Accept frames under ``key_id`` too; it becomes the current key."""
        aead = _check_key(key, key_id)
        old = self._keys.pop(key_id, None)
        window = self._windows.pop(key_id, None)
        if old is None or old != bytes(key) or window is None:
            window = ReplayWindow(self.window, highest_seq)
        self._keys[key_id] = bytes(key)
        self._aeads[key_id] = aead
        self._windows[key_id] = window

    def retire_key(self, key_id: int) -> None:
        """Stop accepting frames under ``key_id`` (once the sender has moved on)."""
        self._keys.pop(key_id, None)
        self._aeads.pop(key_id, None)
        self._windows.pop(key_id, None)

    def open(self, frame: Buffer, now_ms: int | None = None) -> Received:
        """Verify ``frame``; raises a ``ProtocolError`` unless it is authentic and new.

        ``now_ms`` is needed only when the receiver checks clock skew.
        """
        header, header_len = parse_header(frame)
        if header.panel_id != self.panel_id:
            raise WrongPeer(f"frame for panel {header.panel_id}, this is {self.panel_id}")
        if header.direction != self.direction:
            raise WrongPeer(
                f"frame travels {header.direction.name}, expected {self.direction.name}"
            )
        aead = self._aeads.get(header.key_id)
        if aead is None:
            raise UnknownKey(f"panel {self.panel_id} has no key id {header.key_id}")
        if header.epoch in self._retired:
            raise RetiredEpoch(f"frame {header.seq} is from a replaced epoch {header.epoch:#x}")
        bound = self.local_epoch is None or header.peer_epoch == self.local_epoch
        # The first epoch met continues the restored windows; a change of epoch starts over.
        new = self.peer_epoch is not None and header.epoch != self.peer_epoch
        window = self._windows[header.key_id]
        seq = header.seq
        if bound and not new:
            window.check(seq)
        spec, payload = open_with(aead, header, header_len, frame)
        if not bound:
            raise StaleEpoch(
                f"frame {seq} is for epoch {header.peer_epoch:#x}, "
                f"this side is {self.local_epoch or 0:#x}",
                header,
            )
        if self.max_skew_ms is not None:
            self._check_skew(header, now_ms)
        message = decode_spec(spec, payload)
        first = self.peer_epoch is None
        if new or first:
            self._adopt(header.epoch)
            window = self._windows[header.key_id]
        window.record(seq)
        return Received(header, message, new_epoch=new or first)

    def _adopt(self, epoch: int) -> None:
        """A new store at the sender: its epoch replaces the current one, windows start over."""
        if self.peer_epoch is None:  # the first epoch met: the restored windows hold
            self.peer_epoch = epoch
            return
        self._retired.add(self.peer_epoch)
        _LOGGER.info("%s: sender epoch %#x replaces %#x", self.panel_id, epoch, self.peer_epoch)
        self.peer_epoch = epoch
        for key_id in self._windows:
            self._windows[key_id] = ReplayWindow(self.window)

    def _check_skew(self, header: Header, now_ms: int | None) -> None:
        if now_ms is None:
            raise ValueError("this receiver checks clock skew: pass now_ms")
        behind, ahead = self.max_skew_ms or (0, 0)
        skew = header.timestamp_ms - now_ms
        if not -behind <= skew <= ahead:
            raise ClockSkew(
                f"frame {header.seq} from {header.panel_id} is {skew} ms off "
                f"(accepted -{behind}..+{ahead})"
            )
