"""Media at the hub: listen-ins relayed live, clips reassembled once, resends dropped, quota."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hub.commands import Accepted, Rejected, parse_command
from hub.media import WEBM_MAGIC, MediaRejected, MediaRelay, Publish
from protocol.messages import Action, Command, MediaChunk, MediaKind, Via
from tests.test_hub_relay import Rig

AUDIO, CLIP = MediaKind.AUDIO, MediaKind.CLIP


def _piece(kind: MediaKind, index: int, data: bytes, *, last: bool = False) -> MediaChunk:
    return MediaChunk(kind, "p1-7", index, last, data)


def test_a_listen_in_is_relayed_piece_by_piece_then_ended() -> None:
    relay = MediaRelay()
    assert relay.take("p1", _piece(AUDIO, 0, WEBM_MAGIC + b"a"), 0) == [
        Publish(AUDIO, "p1-7", WEBM_MAGIC + b"a")
    ]
    assert relay.take("p1", _piece(AUDIO, 0, WEBM_MAGIC + b"a"), 1) == []  # a resend
    assert relay.take("p1", _piece(AUDIO, 2, b"c", last=True), 2) == []  # waits for piece 1
    assert relay.take("p1", _piece(AUDIO, 1, b"b"), 3) == [
        Publish(AUDIO, "p1-7", b"b"),
        Publish(AUDIO, "p1-7", b"c"),
        Publish(AUDIO, "p1-7", b""),
    ]
    assert relay.take("p1", _piece(AUDIO, 2, b"c", last=True), 4) == []  # resent after the end
    assert relay.held == 0


def test_a_clip_resent_after_a_link_drop_reaches_the_cloud_once_and_whole() -> None:
    relay = MediaRelay()
    body = WEBM_MAGIC + bytes(range(256)) * 600
    pieces = [body[i : i + 4096] for i in range(0, len(body), 4096)]
    chunks = [_piece(CLIP, i, p, last=i == len(pieces) - 1) for i, p in enumerate(pieces)]
    # The link drops after 10 pieces; the panel resends from 5 (those it had not seen acked).
    first = [p for c in chunks[:10] for p in relay.take("p1", c, 0)]
    assert first == []
    again = [p for c in chunks[5:] for p in relay.take("p1", c, 1)]
    assert b"".join(p.data for p in again) == body
    assert again[-1] == Publish(CLIP, "p1-7", b"")
    assert all(len(p.data) <= 65_536 for p in again)
    assert relay.held == 0


def test_a_clip_that_is_not_webm_is_refused() -> None:
    relay = MediaRelay()
    with pytest.raises(MediaRejected, match="not a WebM file"):
        relay.take("p1", _piece(CLIP, 0, b"GIF89a", last=True), 0)


def test_the_quota_bounds_what_the_hub_holds_and_old_streams_expire() -> None:
    relay = MediaRelay(max_bytes=10_000, max_age_ms=1_000)
    relay.take("p1", _piece(CLIP, 0, WEBM_MAGIC + bytes(6000)), 0)
    with pytest.raises(MediaRejected, match="quota"):
        relay.take("p1", MediaChunk(CLIP, "p1-8", 0, False, bytes(4090)), 0)
    assert relay.held == 6004
    assert relay.expire(5_000) == [("p1", "p1-7")]
    assert relay.held == 0
    assert relay.expired == 1
    assert relay.take("p1", _piece(CLIP, 1, b"x"), 6_000) == []  # a dropped stream stays dropped


def test_bad_media_ids_and_kinds_are_counted_through_the_relay(tmp_path: Path) -> None:
    rig: Any = Rig(tmp_path)
    try:
        rig.feed(MediaChunk(AUDIO, "../x", 0, False, b"a"))
        rig.feed(_piece(AUDIO, 0, WEBM_MAGIC), _piece(CLIP, 1, b"b"))
        assert rig.counters.get("bad_media") == 2
        rig.feed(_piece(AUDIO, 1, b"", last=True))
        assert rig.outbox_topics() == ["centinela/demo/p1/audio/p1-7"] * 2
        assert rig.counters.get("media_audio") == 1
    finally:
        rig.store.close()


def _parse(**fields: Any) -> Any:
    body = {"id": "c1", "panel": "p1", "user": "alice", "via": "app", **fields}
    return parse_command(json.dumps(body).encode(), {"p1"})


def test_listen_and_clip_commands_carry_their_seconds() -> None:
    assert _parse(action="listen", seconds=120) == Accepted(
        "p1", Command("c1", Action.LISTEN, "alice", Via.APP, seconds=120)
    )
    assert _parse(action="clip", camera="hall", seconds=30) == Accepted(
        "p1", Command("c1", Action.CLIP, "alice", Via.APP, camera="hall", seconds=30)
    )
    assert _parse(action="listen_stop") == Accepted(
        "p1", Command("c1", Action.LISTEN_STOP, "alice", Via.APP)
    )


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        ({"action": "listen", "seconds": 121}, "seconds: required, a whole number from 1 to 120"),
        ({"action": "listen"}, "seconds: required, a whole number from 1 to 120"),
        ({"action": "listen", "seconds": True}, "seconds: required, a whole number from 1 to 120"),
        (
            {"action": "clip", "camera": "hall", "seconds": 31},
            "seconds: required, a whole number from 1 to 30",
        ),
        (
            {"action": "clip", "seconds": 5},
            "camera: required, a camera name (1 to 32 of a-z 0-9 _ -)",
        ),
        ({"action": "arm", "mode": "total", "seconds": 5}, "seconds: not a field of arm"),
    ],
)
def test_bad_media_commands_are_bad_requests(fields: dict[str, Any], detail: str) -> None:
    assert _parse(**fields) == Rejected("c1", "p1", detail)
