"""Every rule of CONTRACT §4, one scenario-like test each, on the pure core."""

from __future__ import annotations

import dataclasses
import json

import pytest

from panel.actions import CapturePhoto, Emit, SetSiren, StartTimer
from panel.core import Panel
from panel.inputs import (
    ClimateReading,
    DeviceBack,
    DeviceLost,
    KeyPressed,
    PhotoCaptured,
    TagRemoved,
    TamperDetected,
    TimerFired,
)
from panel.store import snapshot_from_json, snapshot_to_json
from protocol.messages import ErrorCode, EventType, Method, Mode, State
from tests.test_core_support import (
    ALICE_TAG,
    BOB_TAG,
    CAROL_TAG,
    CODES,
    STRANGER_TAG,
    T0,
    Rig,
    fields_of,
    reach,
    site_config,
)

E = EventType


# ------------------------------------------------------------------ arming and modes


def test_code_then_a_arms_total_after_the_exit_delay() -> None:
    rig = Rig()
    rig.press("1234A")
    assert rig.state is State.ARMING
    arming = rig.last_event(E.ARMING)
    assert fields_of(arming, user=1, method=1, mode=1, cid=1, sia=1) == {
        "user": "alice",
        "method": Method.KEYPAD,
        "mode": Mode.TOTAL,
        "cid": "3400",
        "sia": "CG",
    }
    assert rig.timers["exit"] == T0 + 30_000
    rig.wait(29.9)
    assert rig.state is State.ARMING
    rig.wait(0.1)
    assert rig.state is State.ARMED_TOTAL
    armed = rig.last_event(E.ARMED)
    assert (armed.user, armed.method, armed.cid, armed.sia) == (
        "alice",
        Method.KEYPAD,
        "3401",
        "CL",
    )
    assert armed.time_ms == T0 + 30_000


@pytest.mark.parametrize(
    ("key", "mode", "state", "exit_s", "cid", "sia"),
    [
        ("A", Mode.TOTAL, State.ARMED_TOTAL, 30, "3401", "CL"),
        ("B", Mode.PARTIAL, State.ARMED_PARTIAL, 10, "3441", "NL"),
        ("C", Mode.NIGHT, State.ARMED_NIGHT, 5, "3441", "NL"),
    ],
)
def test_each_mode_has_its_own_exit_delay(
    key: str, mode: Mode, state: State, exit_s: int, cid: str, sia: str
) -> None:
    rig = Rig()
    rig.press("2345" + key)
    assert rig.last_event(E.ARMING).mode is mode
    rig.wait(exit_s - 0.001)
    assert rig.state is State.ARMING
    rig.wait(0.001)
    assert rig.state is state
    assert (rig.last_event(E.ARMED).cid, rig.last_event(E.ARMED).sia) == (cid, sia)


def test_zero_exit_delay_arms_at_once() -> None:
    rig = Rig(site_config(timing={"exit_delay": 0}))
    rig.press("1234A")
    assert rig.state is State.ARMED_TOTAL
    assert rig.types() == [E.ARMING, E.ARMED]


@pytest.mark.parametrize(
    ("key", "watched", "ignored"),
    [
        ("A", {"front_door", "window", "hall", "garage"}, set()),
        ("B", {"front_door", "window"}, {"hall", "garage"}),
        ("C", {"front_door", "window", "garage"}, {"hall"}),
    ],
)
def test_each_mode_watches_its_zones(key: str, watched: set[str], ignored: set[str]) -> None:
    for zone in sorted(watched | ignored):
        rig = Rig()
        rig.arm(key)
        rig.new_events()
        rig.open(zone)
        if zone in ignored:
            assert rig.state in (State.ARMED_PARTIAL, State.ARMED_NIGHT), zone
            assert rig.new_events() == [], zone
        elif zone == "front_door":
            assert rig.state is State.PENDING
        else:
            assert rig.state is State.TRIGGERED, zone
            assert rig.siren


# ------------------------------------------------------------------ entry and alarms


def test_entry_zone_starts_the_entry_delay_and_a_disarm_in_time_stops_it() -> None:
    rig = Rig()
    rig.arm()
    rig.open("front_door")
    assert rig.state is State.PENDING
    entry = rig.last_event(E.ENTRY)
    assert (entry.zone, entry.cid, entry.sia) == ("front_door", "6134", "BG")
    assert not rig.siren
    rig.wait(19)
    rig.press("2345D")
    assert rig.state is State.DISARMED
    assert rig.timers == {}
    rig.wait(60)
    assert E.ALARM not in rig.types(rig.events)


def test_entry_delay_runs_out_into_an_alarm_on_that_zone() -> None:
    rig = Rig()
    rig.arm("B")
    rig.open("front_door")
    rig.wait(14.9)
    assert rig.state is State.PENDING
    rig.wait(0.1)
    assert rig.state is State.TRIGGERED
    alarm = rig.last_event(E.ALARM)
    assert (alarm.zone, alarm.cid, alarm.sia, alarm.mode) == (
        "front_door",
        "1134",
        "BA",
        Mode.PARTIAL,
    )
    assert rig.siren


def test_an_instant_zone_during_the_entry_delay_alarms_at_once() -> None:
    rig = Rig()
    rig.arm()
    rig.open("front_door")
    rig.open("hall")
    assert rig.state is State.TRIGGERED
    assert rig.last_event(E.ALARM).zone == "hall"
    assert rig.last_event(E.ALARM).cid == "1132"


def test_perimeter_alarm_and_more_zones_reported_once_each() -> None:
    rig = Rig()
    rig.arm()
    rig.new_events()
    rig.open("window")
    rig.open("hall")
    rig.close("hall")
    rig.open("hall")
    events = rig.new_events()
    assert [(e.type, e.zone, e.cid) for e in events] == [
        (E.ALARM, "window", "1131"),
        (E.ALARM, "hall", "1132"),
    ]


def test_the_siren_stops_after_alarm_duration_and_the_panel_rearms() -> None:
    rig = Rig()
    rig.arm()
    rig.open("window")
    rig.wait(179)
    assert rig.siren
    rig.wait(1)
    assert not rig.siren
    assert rig.state is State.ARMED_TOTAL
    end, armed = rig.events[-2:]
    assert (end.type, end.cid, end.sia, end.zone) == (E.ALARM_END, "3131", "BR", "window")
    assert (armed.type, armed.method, armed.cid, armed.user) == (
        E.ARMED,
        Method.SYSTEM,
        "3463",
        None,
    )
    # The window still open stays out until it closes; opening it again alarms again.
    rig.wait(600)
    assert rig.state is State.ARMED_TOTAL
    rig.close("window")
    rig.open("window")
    assert rig.state is State.TRIGGERED


def test_each_mode_uses_its_own_alarm_duration() -> None:
    rig = Rig()
    rig.arm("C")
    rig.open("window")
    rig.wait(60)
    assert rig.state is State.ARMED_NIGHT
    assert not rig.siren


@pytest.mark.parametrize(
    ("zone", "event_type", "cid", "sia"),
    [
        ("panic_button", E.PANIC, "1120", "PA"),
        ("smoke", E.FIRE, "1110", "FA"),
        ("siren_box", E.TAMPER, "1137", "TA"),
    ],
)
def test_panic_fire_and_tamper_zones_alarm_even_disarmed(
    zone: str, event_type: EventType, cid: str, sia: str
) -> None:
    rig = Rig()
    rig.open(zone)
    assert rig.state is State.TRIGGERED
    assert rig.siren
    event = rig.last_event(event_type)
    assert (event.zone, event.cid, event.sia, event.mode) == (zone, cid, sia, None)
    rig.wait(180)
    assert rig.state is State.DISARMED  # back to where it was
    assert not rig.siren
    assert rig.last_event(E.ALARM_END).cid == "3" + cid[1:]


@pytest.mark.parametrize("state", list(State))
def test_panic_key_alarms_at_once_in_every_state(state: State) -> None:
    rig = Rig()
    reach(rig, state)
    rig.press("12")  # digits typed so far do not matter
    rig.press("P")
    assert rig.state is State.TRIGGERED
    assert rig.siren
    panic = rig.last_event(E.PANIC)
    assert (panic.method, panic.cid, panic.sia, panic.zone) == (
        Method.KEYPAD,
        "1120",
        "PA",
        "keypad",
    )
    assert "exit" not in rig.timers
    assert "entry" not in rig.timers


@pytest.mark.parametrize("state", list(State))
def test_tamper_switch_alarms_in_every_state(state: State) -> None:
    rig = Rig()
    reach(rig, state)
    rig.feed(TamperDetected("keypad"))
    assert rig.state is State.TRIGGERED
    tamper = rig.last_event(E.TAMPER)
    assert (tamper.zone, tamper.cid, tamper.sia) == ("keypad", "1137", "TA")


def test_a_flapping_tamper_does_not_keep_the_siren_on_but_a_fire_restarts_it() -> None:
    rig = Rig()
    rig.open("siren_box")
    rig.wait(100)
    rig.close("siren_box")
    rig.open("siren_box")  # the same kind of alarm again: reported, siren time unchanged
    assert rig.last_event(E.TAMPER).time_ms == rig.now
    rig.wait(80)
    assert rig.state is State.DISARMED
    rig.arm()
    rig.open("hall")
    rig.wait(170)
    rig.open("smoke")  # a fire 10 s before the burglary siren would stop: full time again
    rig.wait(179)
    assert rig.siren
    rig.wait(1)
    assert not rig.siren
    assert rig.last_event(E.ALARM_END).cid == "3110"


def test_alarm_during_the_exit_delay_rearms_into_the_chosen_mode() -> None:
    rig = Rig()
    rig.press("1234B")
    rig.open("smoke")
    assert rig.state is State.TRIGGERED
    rig.wait(180)
    assert rig.state is State.ARMED_PARTIAL


# ------------------------------------------------------------------ exit delay and refusals


def test_arming_is_refused_naming_every_open_watched_zone() -> None:
    rig = Rig()
    rig.open("window")
    rig.open("hall")
    rig.open("front_door")  # entry zones may stay open
    rig.new_events()
    rig.press("1234A")
    assert rig.state is State.DISARMED
    (refused,) = rig.new_events()
    assert refused.type is E.ARM_REFUSED
    assert refused.zone == "window"
    assert refused.detail == "open: window, hall"
    assert (refused.user, refused.mode, refused.cid, refused.sia) == (
        "alice",
        Mode.TOTAL,
        "1454",
        "CI",
    )
    assert "OPEN ZONES: WINDOW, HALL" in rig.displays[-1]
    # Partial does not watch the hall, but it does watch the window.
    rig.close("window")
    rig.press("1234B")
    assert rig.state is State.ARMING


def test_remote_arm_refused_with_open_zones_answers_invalid_state() -> None:
    rig = Rig()
    rig.open("hall")
    result = rig.command("arm", mode="total")
    assert (result.ok, result.error) == (False, ErrorCode.INVALID_STATE)
    assert result.detail == "open zones: hall"
    assert rig.last_event(E.ARM_REFUSED).method is Method.APP


def test_entry_zone_open_at_the_end_of_the_exit_delay_starts_the_entry_delay() -> None:
    rig = Rig()
    rig.press("1234A")
    rig.open("front_door")
    rig.open("hall")  # the way out: ignored during the exit delay
    rig.close("hall")
    assert rig.state is State.ARMING
    rig.wait(30)
    assert rig.state is State.PENDING


def test_instant_zone_open_at_the_end_of_the_exit_delay_alarms() -> None:
    rig = Rig()
    rig.press("1234A")
    rig.open("hall")
    rig.wait(30)
    assert rig.state is State.TRIGGERED
    assert rig.types()[-2:] == [E.ARMED, E.ALARM]
    assert rig.last_event(E.ALARM).zone == "hall"


@pytest.mark.parametrize("state", [State.ARMING, State.ARMED_TOTAL, State.PENDING, State.TRIGGERED])
def test_disarm_stops_everything_at_once(state: State) -> None:
    rig = Rig()
    reach(rig, state)
    rig.press("2345D")
    assert rig.state is State.DISARMED
    assert not rig.siren
    assert rig.timers == {}
    disarmed = rig.last_event(E.DISARMED)
    assert (disarmed.user, disarmed.method, disarmed.cid) == ("bob", Method.KEYPAD, "1401")
    assert disarmed.sia == ("OR" if state is State.TRIGGERED else "OP")
    rig.wait(600)
    assert rig.state is State.DISARMED


def test_disarm_while_disarmed_and_arm_while_armed_are_refused() -> None:
    rig = Rig()
    rig.new_events()
    rig.press("1234D")
    assert rig.state is State.DISARMED
    assert rig.new_events() == []
    rig.arm()
    rig.new_events()
    rig.press("1234B")
    assert rig.state is State.ARMED_TOTAL
    assert rig.new_events() == []


# ------------------------------------------------------------------ keypad grammar


def test_star_clears_the_digits() -> None:
    rig = Rig()
    rig.press("99*1234A")
    assert rig.state is State.ARMING
    rig = Rig()
    rig.press("12*34A")
    assert rig.state is State.DISARMED
    assert rig.last_event(E.CODE_REJECTED).detail == "wrong code"


def test_ten_idle_seconds_clear_the_digits() -> None:
    rig = Rig()
    rig.press("12")
    rig.wait(9.9)
    rig.press("34A")
    assert rig.state is State.ARMING  # each key restarts the idle time
    rig = Rig()
    rig.press("12")
    rig.wait(10)
    rig.press("34A")
    assert rig.state is State.DISARMED
    assert rig.last_event(E.CODE_REJECTED).method is Method.KEYPAD


def test_hash_is_ignored() -> None:
    rig = Rig()
    rig.press("12#34#A")
    assert rig.state is State.ARMING


@pytest.mark.parametrize("typed", ["123", "123456789", "12345678901234"])
def test_codes_of_the_wrong_length_are_wrong(typed: str) -> None:
    rig = Rig()
    rig.press(typed + "A")
    assert rig.state is State.DISARMED
    assert rig.last_event(E.CODE_REJECTED).cid == "1421"


def test_a_mode_key_alone_does_nothing() -> None:
    rig = Rig()
    rig.press("A")
    assert rig.state is State.DISARMED
    assert rig.events == []


def test_tag_then_mode_key_within_ten_seconds_arms_with_the_tags_user() -> None:
    rig = Rig()
    rig.tap(ALICE_TAG.lower())
    rig.wait(9.9)
    rig.press("C")
    assert rig.state is State.ARMING
    arming = rig.last_event(E.ARMING)
    assert (arming.user, arming.method, arming.mode, arming.tag) == (
        "alice",
        Method.TAG,
        Mode.NIGHT,
        ALICE_TAG,
    )
    rig.wait(5)
    armed = rig.last_event(E.ARMED)
    assert (armed.method, armed.tag) == (Method.TAG, ALICE_TAG)


def test_tag_then_mode_key_too_late_does_nothing() -> None:
    rig = Rig()
    rig.tap(ALICE_TAG)
    rig.wait(10)
    rig.press("A")
    assert rig.state is State.DISARMED
    assert rig.events == []


def test_a_digit_after_a_tag_starts_a_code_instead() -> None:
    rig = Rig()
    rig.tap(BOB_TAG)
    rig.press("1A")
    assert rig.state is State.DISARMED
    assert rig.last_event(E.CODE_REJECTED)


@pytest.mark.parametrize("state", [State.ARMING, State.ARMED_NIGHT, State.PENDING, State.TRIGGERED])
def test_a_tag_tap_disarms(state: State) -> None:
    rig = Rig()
    reach(rig, state)
    rig.tap(BOB_TAG)
    assert rig.state is State.DISARMED
    assert not rig.siren
    disarmed = rig.last_event(E.DISARMED)
    assert (disarmed.user, disarmed.method, disarmed.tag) == ("bob", Method.TAG, BOB_TAG)


# ------------------------------------------------------------------ roles and duress


def test_arm_only_arms_but_never_disarms() -> None:
    rig = Rig()
    rig.arm(user="carol")
    assert rig.last_event(E.ARMED).user == "carol"
    rig.new_events()
    rig.press("3456D")
    rig.tap(CAROL_TAG)
    assert rig.state is State.ARMED_TOTAL
    code, tag = rig.new_events()
    assert (code.type, code.user, code.detail) == (
        E.CODE_REJECTED,
        "carol",
        "arm_only may not disarm",
    )
    assert (tag.type, tag.user, tag.tag) == (E.TAG_REJECTED, "carol", CAROL_TAG)
    assert rig.command("disarm", user="carol").error is ErrorCode.FORBIDDEN
    # A refused valid credential does not count towards a lockout.
    for _ in range(5):
        rig.press("3456D")
    assert not rig.panel.view().locked


def test_carol_arms_with_her_tag() -> None:
    rig = Rig()
    rig.tap(CAROL_TAG)
    rig.press("B")
    assert rig.state is State.ARMING


def test_duress_code_disarms_silently_and_raises_duress() -> None:
    rig = Rig()
    rig.arm()
    rig.open("front_door")
    rig.new_events()
    normal = Rig()
    normal.arm()
    normal.open("front_door")
    normal_out = normal.press("1234D")
    out = rig.press("1299D")
    assert rig.state is State.DISARMED
    assert not rig.siren
    duress, disarmed = rig.new_events()
    assert (duress.type, duress.user, duress.cid, duress.sia) == (E.DURESS, "alice", "1121", "HA")
    assert (disarmed.type, disarmed.user) == (E.DISARMED, "alice")
    # Nothing at the keypad tells a duress disarm from a normal one.
    local = [a for a in out if not isinstance(a, Emit)]
    normal_local = [a for a in normal_out if not isinstance(a, Emit)]
    assert [type(a) for a in local] == [type(a) for a in normal_local]
    assert not any(isinstance(a, SetSiren) and a.on for a in out)


def test_duress_while_triggered_stops_the_siren() -> None:
    rig = Rig()
    reach(rig, State.TRIGGERED)
    rig.press("1299D")
    assert rig.state is State.DISARMED
    assert not rig.siren
    assert rig.last_event(E.DURESS)


# ------------------------------------------------------------------ lockout


def test_wrong_codes_lock_the_keypad_and_reader_then_it_unlocks() -> None:
    rig = Rig()
    rig.press("1111A")
    rig.press("2222A")
    rig.new_events()
    rig.press("3333A")
    rejected, locked = rig.new_events()
    assert rejected.type is E.CODE_REJECTED
    assert (locked.type, locked.cid, locked.sia) == (E.KEYPAD_LOCKED, "1461", "JA")
    view = rig.panel.view()
    assert view.locked
    assert view.locked_until_ms == rig.now + 90_000
    # Codes and tags while locked: ignored, not counted, no event.
    rig.press("1234A")
    rig.tap(ALICE_TAG)
    rig.tap(STRANGER_TAG)
    rig.press("9999A")
    assert rig.state is State.DISARMED
    assert rig.new_events() == []
    rig.wait(90)
    assert not rig.panel.view().locked
    unlocked = rig.last_event(E.KEYPAD_UNLOCKED)
    assert (unlocked.method, unlocked.cid) == (Method.SYSTEM, "3461")
    rig.press("1234A")
    assert rig.state is State.ARMING


def test_unknown_and_revoked_tags_count_with_wrong_codes() -> None:
    rig = Rig()
    rig.command("revoke_tag", tag=BOB_TAG)
    rig.tap(STRANGER_TAG)
    rig.tap(BOB_TAG)
    rig.press("0000A")
    assert rig.panel.view().locked
    details = [e.detail for e in rig.events if e.type in (E.TAG_REJECTED, E.CODE_REJECTED)]
    assert details == ["unknown tag", "revoked", "wrong code"]


def test_lockouts_double_until_a_valid_code() -> None:
    rig = Rig()
    durations = []
    for _ in range(3):
        rig.press("0000A0000A0000A")
        view = rig.panel.view()
        durations.append((view.locked_until_ms or 0) - rig.now)
        rig.wait(durations[-1] / 1000)
    assert durations == [90_000, 180_000, 360_000]
    rig.press("1234D")  # a valid code, but a refused action: the escalation stays
    rig.press("0000A0000A0000A")
    assert (rig.panel.view().locked_until_ms or 0) - rig.now == 720_000
    rig.wait(720)
    rig.press("1234A")  # an action carried out: the escalation starts over
    rig.press("1234D")
    rig.press("0000A0000A0000A")
    assert (rig.panel.view().locked_until_ms or 0) - rig.now == 90_000


@pytest.mark.parametrize(
    ("between", "who"),
    [
        ("3456D", "carol's own code, refused: arm_only may not disarm"),
        ("tap", "a tap of carol's own tag"),
        ("1234D", "a master's code, refused: nothing to disarm"),
        ("open", "a valid code whose arming is refused: a zone is open"),
    ],
)
def test_refused_actions_and_taps_never_clear_the_wrong_attempts(between: str, who: str) -> None:
    rig = Rig()
    rig.press("0000A0000A")
    if between == "tap":
        rig.tap(CAROL_TAG)
    elif between == "open":
        rig.open("window")
        rig.press("2345A")
        assert rig.last_event(E.ARM_REFUSED)
    else:
        rig.press(between)
    assert not rig.panel.view().locked
    rig.press("0000A")
    assert rig.panel.view().locked, who
    assert rig.last_event(E.KEYPAD_LOCKED)


def test_only_an_action_carried_out_clears_the_wrong_attempts() -> None:
    rig = Rig()
    rig.press("0000A0000A")
    rig.tap(CAROL_TAG)
    rig.press("B")  # carol arms with her tag: carried out
    assert rig.state is State.ARMING
    rig.press("0000D0000D")
    assert not rig.panel.view().locked
    rig.tap(BOB_TAG)  # bob's tag disarms: carried out
    assert rig.state is State.DISARMED
    rig.press("0000A0000A")
    assert not rig.panel.view().locked
    rig.press("0000A")
    assert rig.panel.view().locked


def test_an_arm_only_user_cannot_guess_the_master_code_between_own_codes() -> None:
    """The attack: wrong guesses, the user's own refused disarm code every few guesses."""
    rig = Rig()
    for guess in range(12):
        if rig.panel.view().locked:
            break
        rig.press(f"{9000 + guess}A")
        if guess % 2 == 1:
            rig.press("3456D")
    assert rig.panel.view().locked
    wrong = [e for e in rig.events if e.type is E.CODE_REJECTED and e.detail == "wrong code"]
    assert len(wrong) == 3  # max_attempts guesses, whatever came between them


def test_lockout_and_its_escalation_survive_a_restart() -> None:
    rig = Rig()
    rig.press("0000A0000A0000A")
    until = rig.panel.view().locked_until_ms
    assert until == rig.now + 90_000
    rig.wait(20)
    rig.press("1234A")  # ignored: the core's last call is now, 70 s before the end
    rig.restart(gap_s=30)  # the time the panel is off does not count
    assert rig.panel.view().locked_until_ms == rig.now + 70_000
    assert rig.last_event(E.RESTART)
    rig.press("1234A")
    assert rig.state is State.DISARMED
    rig.wait(70)
    assert not rig.panel.view().locked
    rig.press("0000A0000A0000A")
    assert (rig.panel.view().locked_until_ms or 0) - rig.now == 180_000


def test_failed_attempts_survive_a_restart() -> None:
    rig = Rig()
    rig.press("0000A0000A")
    rig.restart()
    rig.press("0000A")
    assert rig.panel.view().locked


def test_panic_and_remote_commands_still_work_while_locked() -> None:
    rig = Rig()
    rig.press("0000A0000A0000A")
    assert rig.command("arm", mode="night").ok
    rig.press("P")
    assert rig.state is State.TRIGGERED


def test_a_master_unlocks_remotely() -> None:
    rig = Rig()
    assert rig.command("unlock").error is ErrorCode.INVALID_STATE
    rig.press("0000A0000A0000A")
    assert rig.command("unlock", user="bob").error is ErrorCode.FORBIDDEN
    result = rig.command("unlock", via="web")
    assert result.ok
    assert not rig.panel.view().locked
    assert "lockout" not in rig.timers
    unlocked = rig.last_event(E.KEYPAD_UNLOCKED)
    assert (unlocked.user, unlocked.method) == ("alice", Method.WEB)
    rig.press("0000A0000A0000A")
    assert (rig.panel.view().locked_until_ms or 0) - rig.now == 90_000  # escalation reset


# ------------------------------------------------------------------ remote commands


def test_remote_arm_and_disarm_are_recorded_with_app_or_web() -> None:
    rig = Rig()
    result = rig.command("arm", mode="night", via="app")
    assert (result.ok, result.state) == (True, State.ARMING)
    arming = rig.last_event(E.ARMING)
    assert (arming.method, arming.mode, arming.user) == (Method.APP, Mode.NIGHT, "alice")
    rig.wait(5)
    armed = rig.last_event(E.ARMED)
    assert (armed.method, armed.cid, armed.sia) == (Method.APP, "3407", "NL")
    result = rig.command("disarm", user="bob", via="web")
    assert (result.ok, result.state) == (True, State.DISARMED)
    disarmed = rig.last_event(E.DISARMED)
    assert (disarmed.method, disarmed.cid, disarmed.sia) == (Method.WEB, "1407", "OQ")


def test_remote_total_arm_codes() -> None:
    rig = Rig()
    rig.command("arm", mode="total", user="carol")
    rig.wait(30)
    armed = rig.last_event(E.ARMED)
    assert (armed.cid, armed.sia, armed.user) == ("3407", "CQ", "carol")


@pytest.mark.parametrize(
    ("action", "user", "fields", "error"),
    [
        ("arm", "mallory", {"mode": "total"}, ErrorCode.UNKNOWN_USER),
        ("status", "mallory", {}, ErrorCode.UNKNOWN_USER),
        ("arm", "alice", {}, ErrorCode.BAD_REQUEST),
        ("photo", "alice", {}, ErrorCode.BAD_REQUEST),
        ("photo", "alice", {"camera": "attic"}, ErrorCode.BAD_REQUEST),
        ("revoke_tag", "alice", {}, ErrorCode.BAD_REQUEST),
        ("revoke_tag", "alice", {"tag": "zz"}, ErrorCode.BAD_REQUEST),
        ("disarm", "alice", {}, ErrorCode.INVALID_STATE),
        ("disarm", "carol", {}, ErrorCode.FORBIDDEN),
        ("photo", "carol", {"camera": "hall_cam"}, ErrorCode.FORBIDDEN),
        ("unlock", "bob", {}, ErrorCode.FORBIDDEN),
        ("revoke_tag", "bob", {"tag": ALICE_TAG}, ErrorCode.FORBIDDEN),
    ],
)
def test_remote_command_errors(
    action: str, user: str, fields: dict[str, str], error: ErrorCode
) -> None:
    rig = Rig()
    result = rig.command(action, user=user, **fields)
    assert (result.ok, result.error, result.state) == (False, error, State.DISARMED)
    assert result.detail
    assert rig.state is State.DISARMED


def test_status_answers_the_current_state_for_any_role() -> None:
    rig = Rig()
    rig.arm("B")
    for user in CODES:
        result = rig.command("status", user=user)
        assert (result.ok, result.state) == (True, State.ARMED_PARTIAL)


def test_remote_arm_while_armed_is_invalid_state() -> None:
    rig = Rig()
    rig.arm()
    assert rig.command("arm", mode="total").error is ErrorCode.INVALID_STATE


def test_sos_raises_a_panic_alarm_recorded_with_app_or_web() -> None:
    rig = Rig()
    result = rig.command("sos", user="carol", via="web")
    assert (result.ok, result.state) == (True, State.TRIGGERED)
    panic = rig.last_event(E.PANIC)
    assert (panic.method, panic.user, panic.cid) == (Method.WEB, "carol", "1120")
    assert rig.siren


def test_revoke_tag_refuses_the_tag_afterwards_even_after_a_restart() -> None:
    rig = Rig()
    result = rig.command("revoke_tag", tag=BOB_TAG.lower())
    assert result.ok
    revoked = rig.last_event(E.TAG_REVOKED)
    assert (revoked.tag, revoked.user, revoked.detail, revoked.method) == (
        BOB_TAG,
        "alice",
        "held by bob",
        Method.APP,
    )
    rig.restart()
    rig.new_events()
    rig.tap(BOB_TAG)
    rig.press("A")
    assert rig.state is State.DISARMED
    assert rig.types() == [E.TAG_REJECTED, E.PHOTO_REQUESTED]  # the site's one camera
    assert rig.command("revoke_tag", tag=BOB_TAG).ok  # again: ok, no second event
    assert rig.new_events() == []


def test_revoking_a_tag_cancels_its_pending_arming() -> None:
    rig = Rig()
    rig.tap(BOB_TAG)
    rig.command("revoke_tag", tag=BOB_TAG)
    rig.press("A")
    assert rig.state is State.DISARMED


def test_photo_is_answered_at_once_and_followed_by_photo_ready() -> None:
    rig = Rig()
    result = rig.command("photo", user="bob", camera="hall_cam")
    assert (result.ok, result.state) == (True, State.DISARMED)
    requested = rig.last_event(E.PHOTO_REQUESTED)
    assert requested.photo == f"p1-{requested.seq}"
    assert (requested.zone, requested.user, requested.method) == ("hall_cam", "bob", Method.APP)
    assert rig.photos == [CapturePhoto("hall_cam", requested.photo)]
    rig.feed(PhotoCaptured(requested.photo, "hall_cam", ok=True))
    ready = rig.last_event(E.PHOTO_READY)
    assert (ready.photo, ready.zone, ready.user) == (requested.photo, "hall_cam", "bob")
    # A second delivery of the same photo, or one never asked for, is ignored.
    rig.new_events()
    rig.feed(PhotoCaptured(requested.photo, "hall_cam", ok=True))
    rig.feed(PhotoCaptured("p1-999", "hall_cam", ok=True))
    assert rig.new_events() == []


def test_a_failed_photo_gives_no_photo_ready() -> None:
    rig = Rig()
    rig.command("photo", camera="hall_cam")
    photo = rig.photos[-1].photo_id
    rig.new_events()
    rig.feed(PhotoCaptured(photo, "hall_cam", ok=False, detail="no frame"))
    assert rig.new_events() == []


def test_photo_ids_are_deterministic() -> None:
    ids = []
    for _ in range(2):
        rig = Rig()
        rig.press("1234A")
        rig.command("photo", camera="hall_cam")
        rig.command("photo", camera="hall_cam")
        ids.append([p.photo_id for p in rig.photos])
    assert ids[0] == ids[1]
    assert len(set(ids[0])) == 2


# ------------------------------------------------------------------ devices, other inputs


def test_a_lost_device_is_a_tamper_event_naming_it_and_its_return_is_reported() -> None:
    rig = Rig()
    rig.arm()
    rig.new_events()
    rig.feed(DeviceLost("keypad", "port closed"))
    (lost,) = rig.new_events()
    assert (lost.type, lost.zone, lost.detail, lost.cid, lost.sia) == (
        E.TAMPER,
        "keypad",
        "port closed",
        "1145",
        "EM",
    )
    assert rig.state is State.ARMED_TOTAL
    rig.feed(DeviceBack("keypad"))
    (back,) = rig.new_events()
    assert (back.type, back.zone, back.cid) == (E.DEVICE_BACK, "keypad", "3145")
    rig.feed(DeviceLost("nfc", "x" * 5000))  # a driver's long exception text
    assert rig.last_event(E.TAMPER).detail == "x" * 200


def test_climate_and_tag_removal_change_nothing() -> None:
    rig = Rig()
    assert rig.feed(ClimateReading(21.5, 40.0)) == []
    assert rig.feed(TagRemoved(ALICE_TAG)) == []


def test_unknown_zones_keys_and_stale_timers_are_ignored() -> None:
    rig = Rig()
    rig.arm()
    rig.new_events()
    assert rig.feed(TimerFired("exit")) == []
    assert rig.feed(TimerFired("bogus")) == []
    assert rig.feed(KeyPressed("X")) == []
    rig.open("attic")
    assert rig.new_events() == []
    assert rig.state is State.ARMED_TOTAL


def test_zone_reports_that_change_nothing_are_ignored() -> None:
    rig = Rig()
    rig.arm()
    rig.open("window")
    rig.press("1234D")
    rig.new_events()
    rig.open("window")  # already open: not a change
    assert rig.new_events() == []
    assert rig.panel.view().open_zones == ("window",)


# ------------------------------------------------------------------ restart


def test_restart_comes_back_in_the_same_state_and_records_restart() -> None:
    rig = Rig()
    rig.arm("B")
    seq = rig.events[-1].seq
    rig.restart(gap_s=5)
    assert rig.state is State.ARMED_PARTIAL
    restart = rig.events[-1]
    assert (restart.type, restart.seq, restart.cid, restart.sia) == (
        E.RESTART,
        seq + 1,
        "1305",
        "RR",
    )


def test_restart_during_the_exit_delay_keeps_the_time_it_had_left() -> None:
    rig = Rig()
    rig.press("1234A")
    rig.wait(10)
    rig.command("status")  # a call 10 s into the 30 s exit delay
    rig.restart(gap_s=100)  # however long the panel was off
    assert rig.state is State.ARMING
    assert rig.timers["exit"] == rig.now + 20_000
    rig.wait(19.9)
    assert rig.state is State.ARMING
    rig.wait(0.1)
    assert rig.state is State.ARMED_TOTAL


def test_restart_while_triggered_keeps_the_siren_on() -> None:
    rig = Rig()
    reach(rig, State.TRIGGERED)
    rig.restart(gap_s=1)
    assert rig.siren
    assert SetSiren(True) in rig.last
    assert any(isinstance(a, StartTimer) and a.name == "siren" for a in rig.last)


DAY_S = 86_400


def test_restart_during_the_exit_delay_with_the_clock_a_day_behind_still_arms() -> None:
    rig = Rig()
    rig.press("1234A")
    rig.restart(gap_s=-DAY_S + 5)  # a Pi without a clock that survives power loss
    assert rig.state is State.ARMING
    rig.wait(30)
    assert rig.state is State.ARMED_TOTAL


def test_a_lockout_restored_with_the_clock_a_day_behind_lasts_its_own_time() -> None:
    rig = Rig(site_config(security={"max_attempts": 3, "lockout": 10}))
    rig.press("0000A0000A0000A")
    rig.restart(gap_s=-DAY_S)
    assert rig.panel.view().locked_until_ms == rig.now + 10_000
    rig.wait(10)
    assert not rig.panel.view().locked
    rig.press("1234A")
    assert rig.state is State.ARMING


@pytest.mark.parametrize("gap_s", [-3600, 0, 5, 3600])
def test_an_entry_delay_cut_by_a_restart_ends_in_the_alarm_at_once(gap_s: int) -> None:
    rig = Rig()
    rig.arm()
    rig.open("front_door")
    rig.new_events()
    rig.restart(gap_s=gap_s)
    assert rig.state is State.TRIGGERED
    assert rig.siren
    restart, alarm = rig.new_events()
    assert (restart.type, restart.detail) == (E.RESTART, "state pending")
    assert (alarm.type, alarm.zone, alarm.cid, alarm.time_ms) == (
        E.ALARM,
        "front_door",
        "1134",
        rig.now,
    )
    assert "entry" not in rig.timers
    rig.wait(179)
    assert rig.siren
    rig.press("2345D")
    assert rig.state is State.DISARMED
    assert not rig.siren


@pytest.mark.parametrize("gap_s", [-3600, 5, DAY_S])
def test_an_alarm_cut_by_a_restart_sounds_for_the_time_it_had_left(gap_s: int) -> None:
    rig = Rig()
    reach(rig, State.TRIGGERED)
    rig.wait(100)
    rig.command("status")
    rig.restart(gap_s=gap_s)  # neither a clock behind nor a long power cut changes it
    assert rig.state is State.TRIGGERED
    assert rig.siren
    assert rig.timers["siren"] == rig.now + 80_000
    rig.wait(80)
    assert not rig.siren
    assert rig.state is State.ARMED_TOTAL


def test_a_stored_timer_never_outlasts_its_full_length() -> None:
    rig = Rig()
    rig.press("1234A")
    saved = dataclasses.replace(rig.panel.snapshot(), timers={"exit": 10 * DAY_S * 1000})
    panel = Panel(rig.config, saved)
    actions = panel.start(rig.now)
    assert StartTimer("exit", rig.now + 30_000) in actions


def test_a_snapshot_of_version_1_with_deadlines_is_read_as_time_left() -> None:
    rig = Rig()
    rig.press("1234A")
    doc = json.loads(snapshot_to_json(rig.panel.snapshot()))
    assert doc["v"] == 2
    assert doc["timers"] == {"exit": 30_000}
    doc.update(v=1, timers={"exit": T0 + 30_000})  # what an older panel wrote
    saved = snapshot_from_json(json.dumps(doc))
    assert saved.timers == {"exit": 30_000}
    panel = Panel(rig.config, saved)
    assert StartTimer("exit", T0 - 5_000 + 30_000) in panel.start(T0 - 5_000)


def test_event_times_never_run_backwards_within_a_boot() -> None:
    rig = Rig()
    rig.press("1234A")
    arming = rig.last_event(E.ARMING)
    rig.now -= 3600_000 - 38_000  # the clock is set back an hour; the exit timer fires
    rig.feed(TimerFired("exit"))
    armed = rig.last_event(E.ARMED)
    assert armed.time_ms >= arming.time_ms
    rig.press("2345D")
    assert rig.last_event(E.DISARMED).time_ms >= armed.time_ms
    times = [e.time_ms for e in rig.events]
    assert times == sorted(times)


def test_a_fresh_panel_starts_disarmed_without_a_restart_event() -> None:
    rig = Rig()
    assert rig.events == []
    assert rig.panel.view().since_ms == T0


def test_a_restored_state_without_its_timer_gets_one() -> None:
    rig = Rig()
    rig.press("1234A")
    broken = dataclasses.replace(rig.panel.snapshot(), timers={})
    panel = Panel(rig.config, broken)
    actions = panel.start(rig.now)
    assert any(isinstance(a, StartTimer) and a.name == "exit" for a in actions)


# ------------------------------------------------------------------ secrecy


def test_codes_never_appear_in_clear() -> None:
    rig = Rig()
    rig.press("1234A")
    rig.press("9876D")
    rig.press("1299D")
    rig.command("photo", camera="hall_cam")
    texts = [repr(rig.config), snapshot_to_json(rig.panel.snapshot()), repr(rig.panel.snapshot())]
    texts += rig.displays
    for event in rig.events:
        texts += [
            str(v) for k, v in dataclasses.asdict(event).items() if k not in ("seq", "time_ms")
        ]
    for code in ("1234", "9876", "1299", "2345", "3456"):
        for text in texts:
            assert code not in text, (code, text)
