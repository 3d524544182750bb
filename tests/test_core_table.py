"""Every (state, input kind) pair: it transitions as the table says, or it is refused explicitly."""

from __future__ import annotations

import itertools

import pytest

from panel.actions import Beep, Emit, Reply, Tone
from panel.config import ZoneKind
from panel.machine import Request
from panel.transitions import (
    ARMED_STATES,
    DISARMABLE,
    PERMISSIONS,
    TABLE,
    Goto,
    Guard,
    Kind,
    lookup,
)
from protocol.messages import (
    ARMED_STATE,
    Command,
    ErrorCode,
    EventType,
    Method,
    Mode,
    State,
    Via,
)
from protocol.messages import Action as CommandAction
from tests.test_core_support import BOB_TAG, SITE, Rig, reach, site_config

PAIRS = list(itertools.product(State, Kind))


def _request(rig: Rig, kind: Kind) -> Request:
    """A request of ``kind`` as the core builds it from a real input."""
    alice = rig.config.user("alice")
    remote = {
        Kind.ARM: CommandAction.ARM,
        Kind.DISARM: CommandAction.DISARM,
        Kind.PANIC: CommandAction.SOS,
        Kind.STATUS: CommandAction.STATUS,
        Kind.PHOTO: CommandAction.PHOTO,
        Kind.UNLOCK: CommandAction.UNLOCK,
        Kind.REVOKE_TAG: CommandAction.REVOKE_TAG,
        Kind.LISTEN: CommandAction.LISTEN,
        Kind.LISTEN_STOP: CommandAction.LISTEN_STOP,
        Kind.CLIP: CommandAction.CLIP,
    }
    if kind is Kind.LISTEN_STOP:  # its guard: a silent call in progress
        rig.panel.machine.listening = Request(Kind.LISTEN, Method.APP, user=alice, photo_id="p1-9")
    if kind in remote:
        cmd = Command(
            "c1", remote[kind], "alice", Via.APP, mode=Mode.TOTAL, camera="hall_cam", seconds=10
        )
        return Request(
            kind,
            Method.APP,
            user=alice,
            mode=Mode.TOTAL,
            camera="hall_cam",
            tag=BOB_TAG,
            seconds=10,
            command=cmd,
        )
    zones = {
        Kind.FIRE: ("smoke", ZoneKind.FIRE),
        Kind.TAMPER: ("siren_box", ZoneKind.TAMPER),
        Kind.ENTRY_ZONE: ("back_door", ZoneKind.ENTRY),
        Kind.INSTANT_ZONE: ("hall", ZoneKind.INTERIOR),
        Kind.DEVICE_LOST: ("keypad", None),
        Kind.DEVICE_BACK: ("keypad", None),
    }
    if kind in zones:
        zone, zone_kind = zones[kind]
        return Request(kind, Method.SYSTEM, zone=zone, zone_kind=zone_kind, detail="test")
    if kind in (Kind.PHOTO_DONE, Kind.CLIP_DONE):
        return Request(kind, Method.SYSTEM, camera="hall_cam", photo_id="p1-1")
    if kind is Kind.LISTEN_DONE:
        return Request(kind, Method.SYSTEM, photo_id="p1-1", seconds=3.0)
    return Request(kind, Method.SYSTEM)


def _rig_in(state: State) -> Rig:
    rig = Rig(site_config(zones=[*SITE["zones"], {"name": "back_door", "kind": "entry"}]))
    reach(rig, state)
    rig.press("0000A0000A0000A")  # locked: the UNLOCK guard holds, nothing else cares
    assert rig.panel.view().locked
    rig.new_events()
    return rig


def test_the_table_names_only_known_states_and_kinds() -> None:
    for (state, kind), row in TABLE.items():
        assert isinstance(state, State)
        assert isinstance(kind, Kind)
        assert isinstance(row.target, State | Goto)


def test_the_table_rows_that_every_state_shares() -> None:
    for state in State:
        for kind in (Kind.PANIC, Kind.FIRE, Kind.TAMPER):
            assert lookup(state, kind) is not None
        assert (lookup(state, Kind.DISARM) is not None) == (state in DISARMABLE)
        assert (lookup(state, Kind.ARM) is not None) == (state is State.DISARMED)
        assert (lookup(state, Kind.ENTRY_ZONE) is not None) == (
            state in ARMED_STATES | {State.PENDING, State.TRIGGERED}
        )
        assert (lookup(state, Kind.EXIT_END) is not None) == (state is State.ARMING)
        assert (lookup(state, Kind.ENTRY_END) is not None) == (state is State.PENDING)
        assert (lookup(state, Kind.SIREN_END) is not None) == (state is State.TRIGGERED)


def test_roles() -> None:
    assert all(Kind.ARM in kinds for kinds in PERMISSIONS.values())
    assert Kind.DISARM not in PERMISSIONS["arm_only"]  # type: ignore[index]
    assert {role for role, kinds in PERMISSIONS.items() if Kind.UNLOCK in kinds} == {"master"}


@pytest.mark.parametrize(("state", "kind"), PAIRS, ids=[f"{s}-{k}" for s, k in PAIRS])
def test_every_pair_transitions_as_the_table_says_or_is_refused(state: State, kind: Kind) -> None:
    rig = _rig_in(state)
    panel = rig.panel
    mode_before = panel.view().mode
    req = _request(rig, kind)
    panel.recorder.begin(rig.now)
    accepted = panel.machine.dispatch(req)
    actions = panel.recorder.finish()
    events = [a.event for a in actions if isinstance(a, Emit)]
    replies = [a.result for a in actions if isinstance(a, Reply)]
    row = lookup(state, kind)
    if row is None:
        assert not accepted
        assert panel.view().state is state
        assert events == []
        if req.command is not None:
            assert [(r.ok, r.error) for r in replies] == [(False, ErrorCode.INVALID_STATE)]
        return
    assert accepted, row
    if row.target is Goto.SAME:
        expected = state
    elif row.target is Goto.ARMED:
        assert mode_before is not None
        expected = ARMED_STATE[mode_before]
    elif row.target is Goto.AFTER_ALARM:
        expected = State.DISARMED if mode_before is None else ARMED_STATE[mode_before]
    else:
        expected = row.target
    assert panel.view().state is expected
    assert replies == []  # the reply to an accepted command comes once handle() is done
    if panel.view().state is State.TRIGGERED:
        assert panel.view().siren
        assert "siren" in panel.timers


@pytest.mark.parametrize("state", [s for s in State if s is not State.DISARMED])
def test_keypad_requests_out_of_place_are_refused_with_an_error_beep(state: State) -> None:
    rig = Rig()
    reach(rig, state)
    before = rig.state
    rig.new_events()
    out = rig.press("1234B")
    assert rig.state is before
    assert Beep(Tone.ERROR) in out
    assert rig.new_events() == []


def test_disarm_code_while_disarmed_is_refused_with_an_error_beep() -> None:
    rig = Rig()
    out = rig.press("1234D")
    assert Beep(Tone.ERROR) in out
    assert rig.events == []


def test_guard_zones_closed_refuses_with_arm_refused() -> None:
    assert lookup(State.DISARMED, Kind.ARM).guard is Guard.ZONES_CLOSED  # type: ignore[union-attr]
    rig = Rig()
    rig.open("window")
    rig.press("1234A")
    assert rig.state is State.DISARMED
    assert [e.type for e in rig.events] == [EventType.ARM_REFUSED]


def test_guard_locked_refuses_unlock_when_not_locked() -> None:
    assert lookup(State.ARMING, Kind.UNLOCK).guard is Guard.LOCKED  # type: ignore[union-attr]
    rig = Rig()
    result = rig.command("unlock")
    assert (result.ok, result.error) == (False, ErrorCode.INVALID_STATE)
    assert rig.events == []
