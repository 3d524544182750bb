"""Sequence numbers, the replay window, peers, key rotation and clock skew."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import (
    AuthenticationFailed,
    ClockSkew,
    ProtocolError,
    Replay,
    SequenceExhausted,
    UnknownKey,
    WrongPeer,
)
from protocol.frame import MAX_SEQ, Direction, Header, seal_frame
from protocol.messages import Ack, Event, EventType, Heartbeat, Method
from protocol.session import Receiver, ReplayWindow, Sender

K0 = bytes(range(32))
K1 = bytes(range(100, 132))
UP = Direction.PANEL_TO_HUB
DOWN = Direction.HUB_TO_PANEL
NOW = 1_795_000_000_000


def beat(n: int) -> Heartbeat:
    return Heartbeat(time_ms=NOW + n, last_seq=n)


def pair(**receiver: object) -> tuple[Sender, Receiver]:
    return Sender("p1", UP, K0), Receiver("p1", UP, {0: K0}, **receiver)  # type: ignore[arg-type]


def test_frames_are_numbered_and_accepted_once() -> None:
    sender, receiver = pair()
    frames = [sender.seal(beat(i), NOW + i) for i in range(5)]
    assert sender.next_seq == 6
    for i, frame in enumerate(frames):
        got = receiver.open(frame)
        assert (got.header.seq, got.message) == (i + 1, beat(i))
        assert got.header.timestamp_ms == NOW + i
    assert receiver.highest_seq == 5
    for frame in frames:
        with pytest.raises(Replay, match="already"):
            receiver.open(frame)


def test_out_of_order_within_the_window_is_accepted_once() -> None:
    sender, receiver = pair(window=8)
    frames = [sender.seal(beat(i), NOW) for i in range(20)]
    order = [9, 3, 4, 8, 5, 2, 6, 7]  # seqs 10, 4, 5, 9, 6, 3, 7, 8: all within 8 of 10
    for i in order:
        receiver.open(frames[i])
    for i in order:
        with pytest.raises(Replay):
            receiver.open(frames[i])
    # Seq 2 is now 8 below the highest (10): outside the window.
    with pytest.raises(Replay, match="below the replay window"):
        receiver.open(frames[1])
    # A jump far ahead moves the window past everything older.
    receiver.open(frames[19])
    for i in (10, 11):
        with pytest.raises(Replay, match="below"):
            receiver.open(frames[i])
    receiver.open(frames[18])
    receiver.open(frames[12])
    assert receiver.highest_seq == 20


def test_a_forged_frame_does_not_use_up_its_seq() -> None:
    sender, receiver = pair()
    genuine = sender.seal(beat(1), NOW)
    forged = bytearray(genuine)
    forged[-1] ^= 0x01
    with pytest.raises(AuthenticationFailed):
        receiver.open(bytes(forged))
    assert receiver.highest_seq == 0
    assert receiver.open(genuine).message == beat(1)


def test_restored_state_continues_without_reuse_or_replay() -> None:
    sender, receiver = pair()
    sent = [sender.seal(beat(i), NOW) for i in range(10)]
    for frame in sent[:6]:
        receiver.open(frame)
    # The caller persisted next_seq = 11 and highest_seq = 6; both sides restart.
    sender2 = Sender("p1", UP, K0, next_seq=sender.next_seq)
    receiver2 = Receiver("p1", UP, {0: K0}, highest_seq=receiver.highest_seq)
    for frame in sent[:6]:
        with pytest.raises(Replay):
            receiver2.open(frame)
    # Anything at or below the restored highest seq counts as seen, even if it never arrived.
    for frame in sent[6:]:
        receiver2.open(frame)
    assert receiver2.open(sender2.seal(beat(99), NOW)).header.seq == 11


def test_reserved_blocks_leave_a_gap_that_is_accepted() -> None:
    sender, receiver = pair()
    receiver.open(sender.seal(beat(1), NOW))
    restarted = Sender("p1", UP, K0, next_seq=1001)  # a block of 1000 was reserved
    assert receiver.open(restarted.seal(beat(2), NOW)).header.seq == 1001


def test_frames_for_another_panel_or_direction_are_refused() -> None:
    receiver = Receiver("p1", UP, {0: K0})
    other_panel = Sender("p2", UP, K0).seal(beat(1), NOW)
    with pytest.raises(WrongPeer, match="p2"):
        receiver.open(other_panel)
    # The hub's own frames reflected back at it (same key, same panel id).
    reflected = Sender("p1", DOWN, K0).seal(Ack(1), NOW)
    with pytest.raises(WrongPeer):
        receiver.open(reflected)
    assert receiver.highest_seq == 0


def test_unknown_key_id_and_wrong_key_material() -> None:
    receiver = Receiver("p1", UP, {0: K0})
    with pytest.raises(UnknownKey):
        receiver.open(Sender("p1", UP, K1, key_id=1).seal(beat(1), NOW))
    with pytest.raises(AuthenticationFailed):
        receiver.open(Sender("p1", UP, K1, key_id=0).seal(beat(1), NOW))


def test_rotation_accepts_frames_in_flight_under_both_keys() -> None:
    sender, receiver = pair()
    old = [sender.seal(beat(i), NOW) for i in range(1, 6)]
    receiver.open(old[0])
    receiver.add_key(1, K1)
    sender.rotate(K1, 1)
    assert (sender.key_id, sender.next_seq) == (1, 1)
    new = [sender.seal(beat(i), NOW) for i in range(10, 13)]
    # New and old frames arrive interleaved: every one is accepted, once.
    for frame in (new[0], old[1], new[1], old[3], old[2], new[2], old[4]):
        receiver.open(frame)
    for frame in old + new:
        with pytest.raises(Replay):
            receiver.open(frame)
    assert receiver.highest_seqs == {0: 5, 1: 3}
    assert receiver.highest_seq == 3  # the current (newest) key's
    receiver.retire_key(0)
    assert receiver.key_ids == (1,)
    with pytest.raises(UnknownKey):
        receiver.open(Sender("p1", UP, K0, next_seq=6).seal(beat(1), NOW))


def test_rotation_survives_a_restart_mid_way() -> None:
    sender, receiver = pair()
    for i in range(3):
        receiver.open(sender.seal(beat(i), NOW))
    late_old = sender.seal(beat(3), NOW)
    receiver.add_key(1, K1)
    sender.rotate(K1, 1)
    receiver.open(sender.seal(beat(4), NOW))
    saved = receiver.highest_seqs
    with pytest.raises(ValueError, match="per key"):
        Receiver("p1", UP, {0: K0, 1: K1}, highest_seq=3)
    restored = Receiver("p1", UP, {0: K0, 1: K1}, highest_seq=saved)
    assert restored.open(late_old).header.key_id == 0
    assert restored.open(sender.seal(beat(5), NOW)).header.seq == 2
    with pytest.raises(Replay):
        restored.open(Sender("p1", UP, K0, next_seq=3).seal(beat(6), NOW))


def test_re_adding_a_key_keeps_its_window() -> None:
    sender, receiver = pair()
    frame = sender.seal(beat(1), NOW)
    receiver.open(frame)
    receiver.add_key(0, K0)
    with pytest.raises(Replay):
        receiver.open(frame)


def test_rotation_refuses_to_reuse_a_key_or_key_id() -> None:
    sender = Sender("p1", UP, K0)
    with pytest.raises(ValueError, match="key id"):
        sender.rotate(K1, 0)
    with pytest.raises(ValueError, match="current key"):
        sender.rotate(K0, 1)
    with pytest.raises(ValueError, match="32 bytes"):
        sender.rotate(K1[:16], 1)


def test_sequence_exhaustion_is_explicit_and_rotation_cures_it() -> None:
    sender = Sender("p1", UP, K0, next_seq=MAX_SEQ)
    receiver = Receiver("p1", UP, {0: K0}, highest_seq=MAX_SEQ - 1)
    assert receiver.open(sender.seal(beat(1), NOW)).header.seq == MAX_SEQ
    with pytest.raises(SequenceExhausted, match="rotate"):
        sender.seal(beat(2), NOW)
    assert sender.next_seq == MAX_SEQ + 1
    sender.rotate(K1, 1)
    receiver.add_key(1, K1)
    assert receiver.open(sender.seal(beat(2), NOW)).header.seq == 1


def test_failed_seal_does_not_use_a_seq() -> None:
    sender = Sender("p1", UP, K0)
    with pytest.raises(ProtocolError):
        sender.seal(Ack(1), NOW)  # hub -> panel only
    with pytest.raises(ProtocolError):
        sender.seal(beat(1), -1)
    assert sender.next_seq == 1


def test_clock_skew_is_not_checked_by_default() -> None:
    sender, receiver = pair()
    assert receiver.open(sender.seal(beat(1), 0)).header.timestamp_ms == 0
    assert receiver.open(sender.seal(beat(2), 2**63), now_ms=NOW).message == beat(2)


def test_clock_skew_window() -> None:
    sender, receiver = pair(max_skew_ms=(40_000, 20_000))
    receiver.open(sender.seal(beat(1), NOW - 40_000), now_ms=NOW)
    receiver.open(sender.seal(beat(2), NOW + 20_000), now_ms=NOW)
    late = sender.seal(beat(3), NOW - 40_001)
    with pytest.raises(ClockSkew):
        receiver.open(late, now_ms=NOW)
    with pytest.raises(ClockSkew):
        receiver.open(sender.seal(beat(4), NOW + 20_001), now_ms=NOW)
    with pytest.raises(ValueError, match="now_ms"):
        receiver.open(sender.seal(beat(5), NOW))


def test_receiver_opens_frames_sealed_by_seal_frame() -> None:
    receiver = Receiver("p1", DOWN, {4: K0})
    frame = seal_frame(K0, Header("p1", DOWN, 77, NOW, key_id=4), Ack(12))
    assert receiver.open(frame).message == Ack(12)


def test_constructor_checks() -> None:
    with pytest.raises(ValueError, match="panel id"):
        Sender("P 1", UP, K0)
    with pytest.raises(ValueError, match="next_seq"):
        Sender("p1", UP, K0, next_seq=0)
    with pytest.raises(ValueError, match="key id"):
        Sender("p1", UP, K0, key_id=256)
    with pytest.raises(ValueError):
        Sender("p1", 3, K0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="32 bytes"):
        Receiver("p1", UP, {0: b"short"})
    with pytest.raises(ValueError, match="highest seq"):
        Receiver("p1", UP, {0: K0}, highest_seq=MAX_SEQ + 1)


class WindowModel:
    """The replay rule stated plainly: new, above the restored highest seq, and less than
    ``size`` below the highest seen."""

    def __init__(self, size: int, restored: int) -> None:
        self.size = size
        self.restored = restored  # everything up to it counts as seen
        self.highest = restored
        self.seen: set[int] = set()

    def accept(self, seq: int) -> bool:
        if seq <= self.restored or seq in self.seen or seq <= self.highest - self.size:
            return False
        self.seen.add(seq)
        self.highest = max(self.highest, seq)
        return True


@given(
    size=st.integers(1, 130),
    start=st.integers(0, 1000),
    steps=st.lists(st.integers(-140, 140), max_size=300),
)
def test_replay_window_matches_the_model(size: int, start: int, steps: list[int]) -> None:
    window = ReplayWindow(size, start)
    model = WindowModel(size, start)
    for step in steps:
        seq = max(0, window.highest + step)
        try:
            window.check(seq)
            window.record(seq)
            accepted = True
        except Replay:
            accepted = False
        assert accepted == model.accept(seq), (seq, window.highest)
        assert window.highest == model.highest


def test_long_random_run_delivers_every_frame_exactly_once() -> None:
    # A lossy, reordering, duplicating link: what arrives in the window gets through once.
    rng = random.Random(7)
    sender, receiver = pair(window=64)
    event = Event(1, NOW, EventType.ARMED, Method.APP, "3407", "CL")
    frames = [sender.seal(event, NOW) for _ in range(3000)]
    # Each frame twice, reordered in blocks of 32 (so every frame stays in the window).
    arrivals = [f for pair_ in zip(frames, frames, strict=True) for f in pair_]
    for i in range(0, len(arrivals), 32):
        block = arrivals[i : i + 32]
        rng.shuffle(block)
        arrivals[i : i + 32] = block
    arrivals += rng.sample(frames, 500)  # late duplicates, long after
    accepted: list[int] = []
    for frame in arrivals:
        try:
            accepted.append(receiver.open(frame).header.seq)
        except Replay:
            continue
    assert sorted(accepted) == list(range(1, 3001))
    assert accepted != sorted(accepted)


def test_damaged_and_random_frames_raise_only_protocol_errors() -> None:
    rng = random.Random(99)
    sender = Sender("p1", UP, K0)
    receiver = Receiver("p1", UP, {0: K0, 1: K1}, window=16)
    good = [sender.seal(beat(i), NOW) for i in range(200)]
    accepted = 0
    for i in range(20_000):
        frame = bytearray(rng.choice(good))
        if i % 3 == 0:
            frame[rng.randrange(len(frame))] ^= 1 << rng.randrange(8)
        elif i % 3 == 1:
            frame = frame[: rng.randrange(len(frame))]
        else:
            frame = bytearray(rng.randbytes(rng.randrange(64)))
        try:
            receiver.open(bytes(frame))
        except ProtocolError:
            continue
        accepted += 1
    assert accepted == 0
    # The genuine frames still open (the newest ones, within the window), once.
    for genuine in good[-16:]:
        receiver.open(genuine)


# ---- epochs (protocol v2): a lost or replaced store, told from a replay ----

HUB_EPOCH, OLD_STORE, NEW_STORE = 0x0B0B, 0x01D, 0x2E2


def test_only_frames_bound_to_the_receivers_epoch_open() -> None:
    from protocol.errors import StaleEpoch

    receiver = Receiver("p1", Direction.PANEL_TO_HUB, {0: K0}, local_epoch=HUB_EPOCH)
    unbound = Sender("p1", Direction.PANEL_TO_HUB, K0, epoch=OLD_STORE)
    with pytest.raises(StaleEpoch) as caught:
        receiver.open(unbound.seal(beat(1), 1))
    assert caught.value.header.epoch == OLD_STORE  # authentic: the sender may be told
    assert receiver.peer_epoch is None  # nothing learnt from an unbound frame
    bound = Sender("p1", Direction.PANEL_TO_HUB, K0, epoch=OLD_STORE, peer_epoch=HUB_EPOCH)
    assert receiver.open(bound.seal(beat(2), 2)).new_epoch
    assert receiver.peer_epoch == OLD_STORE
    assert not receiver.open(bound.seal(beat(3), 3)).new_epoch
    # A forged frame never gets that far: the tag is checked first.
    forged = Sender("p1", Direction.PANEL_TO_HUB, K1, epoch=1, peer_epoch=7)
    with pytest.raises(AuthenticationFailed):
        receiver.open(forged.seal(beat(4), 4))


def test_a_new_store_is_adopted_and_the_old_one_refused_for_good() -> None:
    from protocol.errors import RetiredEpoch

    receiver = Receiver("p1", Direction.PANEL_TO_HUB, {0: K0}, local_epoch=HUB_EPOCH)
    old = Sender("p1", Direction.PANEL_TO_HUB, K0, epoch=OLD_STORE, peer_epoch=HUB_EPOCH)
    captured = [old.seal(beat(i), i) for i in range(1, 200)]
    for frame in captured:
        receiver.open(frame)
    # The new store starts again at frame seq 1: not a replay, a new epoch.
    new = Sender("p1", Direction.PANEL_TO_HUB, K0, epoch=NEW_STORE, peer_epoch=HUB_EPOCH)
    first = new.seal(beat(1), 1)
    assert receiver.open(first).new_epoch
    assert receiver.retired == {OLD_STORE}
    for frame in captured:  # and the old store's frames are replays, for good
        with pytest.raises(RetiredEpoch):
            receiver.open(frame)
    with pytest.raises(Replay):
        receiver.open(first)
    # Restored from what the caller persisted, it still refuses them.
    again = Receiver(
        "p1", Direction.PANEL_TO_HUB, {0: K0}, highest_seq=receiver.highest_seq,
        local_epoch=HUB_EPOCH, peer_epoch=receiver.peer_epoch, retired=receiver.retired,
    )  # fmt: skip
    with pytest.raises(RetiredEpoch):
        again.open(captured[-1])
    assert not again.open(new.seal(beat(2), 2)).new_epoch


def test_the_same_seq_in_two_epochs_never_shares_a_nonce() -> None:
    from protocol.frame import TAG_SIZE, nonce

    nonces = {nonce(d, s, e) for d in Direction for s in (1, MAX_SEQ) for e in (0, 1, 2**56 - 1)}
    assert len(nonces) == 12
    one = Sender("p1", Direction.PANEL_TO_HUB, K0, epoch=OLD_STORE).seal(beat(1), 1)
    two = Sender("p1", Direction.PANEL_TO_HUB, K0, epoch=NEW_STORE).seal(beat(1), 1)
    assert one[-TAG_SIZE:] != two[-TAG_SIZE:]
