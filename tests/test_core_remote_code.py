"""A command carrying a code (Home Assistant's keypad) is checked exactly like a keypad code."""

from __future__ import annotations

from protocol.messages import ErrorCode, EventType, Method, State
from tests.test_core_support import Rig

E = EventType


def test_the_code_names_the_user_and_the_role_is_checked() -> None:
    rig = Rig()
    result = rig.command("arm", user="", mode="total", code="3456")  # carol, arm_only
    assert result.ok and rig.state is State.ARMING
    arming = rig.last_event(E.ARMING)
    assert (arming.user, arming.method) == ("carol", Method.APP)
    refused = rig.command("disarm", user="", code="3456")
    assert not refused.ok and refused.error is ErrorCode.FORBIDDEN
    assert rig.state is State.ARMING
    assert rig.command("disarm", user="", code="2345").ok  # bob may
    assert rig.state is State.DISARMED
    assert rig.last_event(E.DISARMED).user == "bob"


def test_wrong_codes_count_towards_the_same_lockout_as_the_keypad() -> None:
    rig = Rig()  # max_attempts = 3
    rig.press("9999A")  # one wrong at the keypad
    for _ in range(2):
        result = rig.command("arm", user="", mode="total", code="8642")
        assert not result.ok and result.error is ErrorCode.FORBIDDEN
    assert rig.panel.locked
    types = rig.types(rig.events)
    assert types.count(E.CODE_REJECTED) == 3 and E.KEYPAD_LOCKED in types
    assert all("8642" not in repr(e) for e in rig.events)
    # Locked: even the right code is ignored and does not count.
    before = len(rig.events)
    locked = rig.command("arm", user="", mode="total", code="1234")
    assert not locked.ok and "locked" in (locked.detail or "")
    assert rig.state is State.DISARMED and len(rig.events) == before


def test_a_duress_code_raises_duress_and_acts_as_its_user() -> None:
    rig = Rig()
    assert rig.command("arm", user="", mode="total", code="1234").ok
    assert rig.command("disarm", user="", code="1299").ok
    assert rig.state is State.DISARMED
    assert rig.last_event(E.DURESS).user == "alice"
