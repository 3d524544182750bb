"""A revoked (reported stolen) tag presented at the reader: the attempt is rejected and
counted, and the panel takes a photo with every camera in the same step."""

from __future__ import annotations

from panel.inputs import PhotoCaptured
from protocol.messages import Event, EventType, Method
from tests.test_core_support import BOB_TAG, Rig, fields_of, site_config

CAMERAS = [{"name": "hall_cam"}, {"name": "door_cam"}]


def has(event: Event, **expected: object) -> bool:
    return fields_of(event, **expected) == expected


def revoked_rig() -> Rig:
    rig = Rig(site_config(cameras=CAMERAS))
    assert rig.command("revoke_tag", tag=BOB_TAG).ok
    rig.new_events()
    return rig


def test_a_revoked_tag_presented_gets_a_photo_from_every_camera_at_once() -> None:
    rig = revoked_rig()
    rig.tap(BOB_TAG)
    events = rig.new_events()
    assert rig.types(events) == [
        EventType.TAG_REJECTED,
        EventType.PHOTO_REQUESTED,
        EventType.PHOTO_REQUESTED,
    ]
    rejected, *requested = events
    assert has(rejected, method=Method.TAG, tag=BOB_TAG, detail="revoked")
    assert [e.zone for e in requested] == ["hall_cam", "door_cam"]
    for event in requested:
        assert has(event, method=Method.TAG, tag=BOB_TAG, user=None)
        assert event.time_ms == rejected.time_ms
    assert [(p.camera, p.photo_id) for p in rig.photos] == [(e.zone, e.photo) for e in requested]
    photo = requested[0].photo
    assert photo is not None
    rig.feed(PhotoCaptured(photo, "hall_cam", ok=True))
    (ready,) = rig.new_events()
    assert has(ready, type=EventType.PHOTO_READY, method=Method.TAG, tag=BOB_TAG, photo=photo)


def test_every_attempt_with_a_revoked_tag_is_photographed_and_counts_towards_the_lockout() -> None:
    rig = revoked_rig()
    for attempt in range(3):  # the test site locks after 3 wrong attempts
        rig.tap(BOB_TAG)
        events = rig.new_events()
        assert rig.types(events).count(EventType.PHOTO_REQUESTED) == 2, attempt
    assert EventType.KEYPAD_LOCKED in rig.types(events)
    assert rig.panel.locked
    assert len(rig.photos) == 6


def test_an_unknown_tag_takes_no_photo() -> None:
    rig = revoked_rig()
    rig.tap("04DEADBEEF0000")
    assert rig.types(rig.new_events()) == [EventType.TAG_REJECTED]
    assert rig.photos == []
