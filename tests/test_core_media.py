"""Silent call and clips in the core: roles, one listen-in at a time, bounds, and silence."""

from __future__ import annotations

import pytest

from panel.actions import Beep, CaptureClip, Display, SetSiren, StartListen, StopListen
from panel.inputs import ClipCaptured, ListenEnded
from protocol.messages import ErrorCode, Event, EventType, Method, State
from tests.test_core_support import Rig, fields_of, reach


def _has(event: Event, **expected: object) -> bool:
    return fields_of(event, **expected) == expected


def _listen(rig: Rig, user: str = "alice", seconds: int = 30) -> StartListen:
    result = rig.command("listen", user=user, seconds=seconds)
    assert result.ok, result
    starts = [a for a in rig.last if isinstance(a, StartListen)]
    assert len(starts) == 1
    return starts[0]


@pytest.mark.parametrize("state", [State.DISARMED, State.ARMED_TOTAL, State.TRIGGERED])
def test_a_listen_in_gives_no_sign_at_the_panel(state: State) -> None:
    rig = Rig()
    reach(rig, state)
    siren, displays = rig.siren, list(rig.displays)
    start = _listen(rig)
    assert start.seconds == 30
    assert not [a for a in rig.last if isinstance(a, Display | Beep | SetSiren)]
    stop = rig.command("listen_stop")
    assert stop.ok
    assert [a for a in rig.last if isinstance(a, StopListen)] == [StopListen(start.listen_id)]
    assert not [a for a in rig.last if isinstance(a, Display | Beep | SetSiren)]
    rig.feed(ListenEnded(start.listen_id, 12.34))
    assert not [a for a in rig.last if isinstance(a, Display | Beep | SetSiren)]
    assert (rig.siren, rig.displays) == (siren, displays)
    assert rig.state is state
    started = rig.last_event(EventType.LISTEN_STARTED)
    ended = rig.last_event(EventType.LISTEN_ENDED)
    assert _has(started, user="alice", method=Method.APP, photo=start.listen_id)
    assert _has(ended, user="alice", method=Method.APP, photo=start.listen_id)
    assert ended.detail == "12.3 s"


def test_one_listen_in_at_a_time() -> None:
    rig = Rig()
    first = _listen(rig)
    second = rig.command("listen", user="bob", seconds=10)
    assert (second.ok, second.error) == (False, ErrorCode.INVALID_STATE)
    assert second.detail == "a silent call is in progress"
    rig.feed(ListenEnded(first.listen_id, 30.0))
    _listen(rig, user="bob", seconds=10)  # free again once the first ended


def test_arm_only_may_not_listen_or_ask_for_a_clip() -> None:
    rig = Rig()
    for action, fields in (
        ("listen", {"seconds": 5}),
        ("clip", {"camera": "hall_cam", "seconds": 5}),
    ):
        result = rig.command(action, user="carol", **fields)
        assert (result.ok, result.error) == (False, ErrorCode.FORBIDDEN)
    assert _listen(rig, user="bob", seconds=5)


@pytest.mark.parametrize(
    ("action", "fields", "detail"),
    [
        ("listen", {"seconds": 121}, "listen needs seconds from 1 to 120"),
        ("listen", {}, "listen needs seconds from 1 to 120"),
        ("clip", {"camera": "hall_cam", "seconds": 31}, "clip needs seconds from 1 to 30"),
        ("clip", {"seconds": 5}, "clip needs a camera"),
        ("clip", {"camera": "attic", "seconds": 5}, "no camera 'attic' on this panel"),
    ],
)
def test_media_commands_out_of_bounds_are_bad_requests(
    action: str, fields: dict[str, object], detail: str
) -> None:
    rig = Rig()
    result = rig.command(action, **fields)
    assert (result.ok, result.error, result.detail) == (False, ErrorCode.BAD_REQUEST, detail)
    assert rig.events == []


def test_stop_without_a_listen_in_is_refused() -> None:
    rig = Rig()
    result = rig.command("listen_stop")
    assert (result.ok, result.error) == (False, ErrorCode.INVALID_STATE)


def test_a_clip_is_requested_then_ready_like_a_photo() -> None:
    rig = Rig()
    result = rig.command("clip", user="bob", via="web", camera="hall_cam", seconds=10)
    assert result.ok
    capture = next(a for a in rig.last if isinstance(a, CaptureClip))
    assert (capture.camera, capture.seconds) == ("hall_cam", 10)
    requested = rig.last_event(EventType.CLIP_REQUESTED)
    assert _has(requested, user="bob", method=Method.WEB, zone="hall_cam")
    assert requested.photo == capture.clip_id
    rig.feed(ClipCaptured(capture.clip_id, "hall_cam", ok=True))
    ready = rig.last_event(EventType.CLIP_READY)
    assert _has(ready, user="bob", method=Method.WEB, photo=capture.clip_id, detail="10 s")
    rig.feed(ClipCaptured(capture.clip_id, "hall_cam", ok=True))  # twice: reported once
    assert rig.types().count(EventType.CLIP_READY) == 1
