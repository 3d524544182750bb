"""Hypothesis drives the core with random keys, tags, zones, commands, restarts and time.

A small reference model, written as plain code rather than a table, predicts the state,
the siren, the lockout and the timers after every step; invariants hold throughout.
Run size: 500 examples x up to 50 steps in ``make test`` (see docs/events.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from panel.config import Role, ZoneKind
from panel.inputs import KEYS, DeviceBack, DeviceLost, RemoteCommand, TamperDetected
from protocol.messages import ARMED_STATE, Command, EventType, Method, Mode, State, Via
from protocol.messages import Action as CommandAction
from tests.test_core_support import ALICE_TAG, BOB_TAG, CAROL_TAG, STRANGER_TAG, Rig, site_config

# CPU-bound: 25,000 steps take 40-60 s on a loaded two-core machine. The suite's 60 s
# timeout is for hangs, not for a busy neighbour.
pytestmark = pytest.mark.timeout(300)

CONFIG = site_config()
DISARMABLE = {
    State.ARMING,
    State.ARMED_TOTAL,
    State.ARMED_PARTIAL,
    State.ARMED_NIGHT,
    State.PENDING,
    State.TRIGGERED,
}
ARMED = {State.ARMED_TOTAL, State.ARMED_PARTIAL, State.ARMED_NIGHT}
KEYPAD_TIMERS = {"keypad_idle", "tag_window", "lockout"}
CODE_OF = {"1234": ("alice", False), "1299": ("alice", True), "2345": ("bob", False)}
CODE_OF["3456"] = ("carol", False)
TAG_OF = {ALICE_TAG: "alice", BOB_TAG: "bob", CAROL_TAG: "carol"}
MODE_KEY = {"A": Mode.TOTAL, "B": Mode.PARTIAL, "C": Mode.NIGHT}


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


@dataclass
class Model:
    """What the panel should be doing, by the rules of CONTRACT §4."""

    now: int
    called: int = 0  # the time of the core's last call
    state: State = State.DISARMED
    mode: Mode | None = None
    siren: bool = False
    timers: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    level: int = 0
    locked_until: int | None = None
    digits: str = ""
    overflow: bool = False
    tag_user: str | None = None
    tag_uid: str | None = None
    revoked: set[str] = field(default_factory=set)
    open: set[str] = field(default_factory=set)
    credential: bool = False  # a valid credential was used in this step
    alarm_kind: str | None = None  # what the siren is sounding for
    entry_kind: ZoneKind | None = None

    # -- time

    def advance(self, target: int) -> None:
        while True:
            due = sorted((at, name) for name, at in self.timers.items() if at <= target)
            if not due:
                break
            at, name = due[0]
            del self.timers[name]
            self.now = self.called = at
            self.timer(name)
        self.now = target

    def timer(self, name: str) -> None:
        if name == "exit":
            assert self.mode is not None
            self.state = ARMED_STATE[self.mode]
            for zone in CONFIG.zones:
                if zone.name in self.open and not zone.always_active:
                    self.zone_opened(zone.name)
        elif name == "entry":
            self.burglary(self.entry_kind)
        elif name == "siren":
            self.siren = False
            self.alarm_kind = None
            self.state = State.DISARMED if self.mode is None else ARMED_STATE[self.mode]
        elif name == "lockout":
            self.locked_until = None
            self.failed = 0
        elif name == "keypad_idle":
            self.digits, self.overflow = "", False
        elif name == "tag_window":
            self.tag_user = self.tag_uid = None

    def start(self, name: str, seconds: float) -> None:
        self.timers[name] = self.now + _ms(seconds)

    # -- alarms

    def alarm(self, kind: str) -> None:
        self.timers.pop("exit", None)
        self.timers.pop("entry", None)
        if self.state is not State.TRIGGERED or self.alarm_kind != kind:
            self.start("siren", CONFIG.timing_for(self.mode).alarm_duration)
        self.state = State.TRIGGERED
        self.siren = True
        self.alarm_kind = kind

    def burglary(self, zone_kind: ZoneKind | None) -> None:
        self.timers.pop("entry", None)
        self.state = State.TRIGGERED
        self.siren = True
        self.alarm_kind = f"burglary {zone_kind}"
        self.start("siren", CONFIG.timing_for(self.mode).alarm_duration)

    def zone_opened(self, name: str) -> None:
        zone = CONFIG.zone(name)
        assert zone is not None
        if zone.always_active:
            self.alarm(zone.kind.value)
            return
        if self.mode is None or self.mode not in zone.modes:
            return
        if zone.kind is ZoneKind.ENTRY:
            if self.state in ARMED:
                self.state = State.PENDING
                self.entry_kind = zone.kind
                self.start("entry", CONFIG.timing_for(self.mode).entry_delay)
        elif self.state in ARMED or self.state is State.PENDING:
            self.burglary(zone.kind)

    # -- credentials

    def request(self, kind: str, user: str, mode: Mode | None) -> bool:
        role = CONFIG.user(user).role  # type: ignore[union-attr]
        if kind == "disarm":
            if role is Role.ARM_ONLY or self.state not in DISARMABLE:
                return False
            for name in ("exit", "entry", "siren"):
                self.timers.pop(name, None)
            self.siren = False
            self.alarm_kind = None
            self.state, self.mode = State.DISARMED, None
            return True
        if kind == "arm":
            assert mode is not None
            if self.state is not State.DISARMED:
                return False
            for zone in CONFIG.zones:
                blocking = zone.kind in (ZoneKind.PERIMETER, ZoneKind.INTERIOR)
                if blocking and zone.name in self.open and mode in zone.modes:
                    return False
            self.state, self.mode = State.ARMING, mode
            self.start("exit", CONFIG.timing_for(mode).exit_delay)
            return True
        self.alarm("panic")
        return True

    def failed_attempt(self) -> None:
        self.failed += 1
        if self.failed < CONFIG.max_attempts:
            return
        self.level += 1
        duration = min(_ms(CONFIG.lockout) << (self.level - 1), 86_400_000)
        self.failed = 0
        self.locked_until = self.now + duration
        self.timers["lockout"] = self.locked_until
        self.clear_digits()
        self.forget_tag()

    def cleared(self) -> None:
        """Only an action carried out with a code or tag clears the wrong attempts."""
        self.failed = self.level = 0

    def clear_digits(self) -> None:
        self.digits, self.overflow = "", False
        self.timers.pop("keypad_idle", None)

    def forget_tag(self) -> None:
        self.tag_user = self.tag_uid = None
        self.timers.pop("tag_window", None)

    def key(self, key: str) -> None:
        if key == "P":
            self.clear_digits()
            self.alarm("panic")
            return
        if self.locked_until is not None:
            return
        if key.isdigit():
            self.forget_tag()
            if len(self.digits) < 8:
                self.digits += key
            else:
                self.overflow = True
            self.start("keypad_idle", 10)
        elif key == "*":
            self.clear_digits()
            self.forget_tag()
        elif key in "ABCD":
            kind = "disarm" if key == "D" else "arm"
            if self.digits or self.overflow:
                code, overflow = self.digits, self.overflow
                self.clear_digits()
                if overflow or code not in CODE_OF:
                    self.failed_attempt()
                    return
                self.credential = True
                if self.request(kind, CODE_OF[code][0], MODE_KEY.get(key)):
                    self.cleared()
            elif self.tag_user is not None:
                user = self.tag_user
                self.forget_tag()
                self.credential = True
                if self.request(kind, user, MODE_KEY.get(key)):
                    self.cleared()

    def keys(self, keys: str) -> None:
        for key in keys:
            self.key(key)

    def zone(self, name: str, is_open: bool) -> None:
        if not is_open:
            self.open.discard(name)
        elif name not in self.open:
            self.open.add(name)
            self.zone_opened(name)

    def tag(self, uid: str) -> None:
        if self.locked_until is not None:
            return
        if uid in self.revoked or uid not in TAG_OF:
            self.failed_attempt()
            return
        self.credential = True
        self.clear_digits()
        if self.state is State.DISARMED:
            self.tag_user, self.tag_uid = TAG_OF[uid], uid
            self.start("tag_window", 10)
        else:
            self.forget_tag()
            if self.request("disarm", TAG_OF[uid], None):
                self.cleared()

    def command(self, cmd: Command) -> None:
        user = CONFIG.user(cmd.user)
        if cmd.action is CommandAction.ARM and cmd.mode is None:
            return
        if cmd.action is CommandAction.PHOTO and cmd.camera != "hall_cam":
            return
        if cmd.action is CommandAction.REVOKE_TAG and cmd.tag not in TAG_OF:
            return
        if user is None:
            return
        role = user.role
        if (
            cmd.action in (CommandAction.UNLOCK, CommandAction.REVOKE_TAG)
            and role is not Role.MASTER
        ):
            return
        if cmd.action is CommandAction.PHOTO and role is Role.ARM_ONLY:
            return
        self.credential = True
        if cmd.action is CommandAction.ARM:
            self.request("arm", user.name, cmd.mode)
        elif cmd.action is CommandAction.DISARM:
            self.request("disarm", user.name, None)
        elif cmd.action is CommandAction.SOS:
            self.alarm("panic")
        elif cmd.action is CommandAction.UNLOCK and self.locked_until is not None:
            self.timers.pop("lockout", None)
            self.locked_until = None
            self.failed = self.level = 0
        elif cmd.action is CommandAction.REVOKE_TAG:
            assert cmd.tag is not None
            self.revoked.add(cmd.tag)
            if self.tag_uid == cmd.tag:
                self.forget_tag()

    def restart(self, gap: int) -> None:
        self.digits, self.overflow = "", False
        self.tag_user = self.tag_uid = None
        self.timers.pop("keypad_idle", None)
        self.timers.pop("tag_window", None)
        # Each timer runs for the time it had left at the last call; the time off does not
        # count. An entry delay cut short ends in the alarm at once.
        left = {name: at - self.called for name, at in self.timers.items()}
        self.now += gap
        self.called = self.now
        self.timers = {name: self.now + ms for name, ms in left.items()}
        if self.locked_until is not None:
            self.locked_until = self.timers["lockout"]
        if self.state is State.PENDING:
            self.burglary(self.entry_kind)


class PanelMachine(RuleBasedStateMachine):
    """Random inputs to the core and the model side by side."""

    def __init__(self) -> None:
        super().__init__()
        self.rig = Rig(CONFIG)
        self.model = Model(now=self.rig.now)
        self.locked_before = False
        self.step_events: list[EventType] = []
        self.step_count = 0

    def _step(
        self,
        local: bool,
        feed: Callable[[], object],
        model: Callable[[], object],
        *,
        call: bool = True,
    ) -> None:
        """Run one input on both; ``local`` marks a code or tag that a lockout must stop.

        ``call``: the step calls the core now (a wait or a restart keeps track itself).
        """
        before_state = self.rig.state
        self.locked_before = self.rig.panel.view().locked
        self.model.credential = False
        count = len(self.rig.events)
        if call:
            self.model.called = self.model.now
        feed()
        model()
        new = self.rig.events[count:]
        self.step_events = [e.type for e in new]
        if local and self.locked_before:
            assert new == [], "a code or tag while locked must have no effect"
            assert self.rig.state is before_state
        if EventType.ARMING in self.step_events:
            assert self.model.credential, "armed without a valid credential"
        for event in new:
            if event.type is EventType.DISARMED:
                assert event.user != "carol", "an arm_only user disarmed"
            if event.type is EventType.ARMED and event.method is Method.SYSTEM:
                assert event.user is None

    @rule(key=st.sampled_from(sorted(KEYS - {"P"})))
    def press(self, key: str) -> None:
        self._step(True, lambda: self.rig.press(key), lambda: self.model.key(key))

    @rule(
        code=st.sampled_from(["1234", "1299", "2345", "3456", "0000", "12345", "123456789"]),
        key=st.sampled_from("ABCD"),
    )
    def enter_code(self, code: str, key: str) -> None:
        self._step(True, lambda: self.rig.press(code + key), lambda: self.model.keys(code + key))

    @rule()
    def wrong_codes_in_a_row(self) -> None:
        keys = "0000A" * CONFIG.max_attempts
        self._step(True, lambda: self.rig.press(keys), lambda: self.model.keys(keys))

    @rule()
    def panic(self) -> None:
        self._step(False, lambda: self.rig.press("P"), lambda: self.model.key("P"))

    @rule(uid=st.sampled_from([ALICE_TAG, BOB_TAG, CAROL_TAG, STRANGER_TAG]))
    def tap(self, uid: str) -> None:
        self._step(True, lambda: self.rig.tap(uid), lambda: self.model.tag(uid))

    @rule(
        zone=st.sampled_from([z.name for z in CONFIG.zones]),
        is_open=st.booleans(),
    )
    def zone(self, zone: str, is_open: bool) -> None:
        feed = (lambda: self.rig.open(zone)) if is_open else (lambda: self.rig.close(zone))
        self._step(False, feed, lambda: self.model.zone(zone, is_open))

    @rule()
    def tamper(self) -> None:
        self._step(
            False,
            lambda: self.rig.feed(TamperDetected("keypad")),
            lambda: self.model.alarm("tamper"),
        )

    @rule(lost=st.booleans())
    def device(self, lost: bool) -> None:
        inp = DeviceLost("nfc", "gone") if lost else DeviceBack("nfc")
        self._step(False, lambda: self.rig.feed(inp), lambda: None)
        assert self.step_events == [EventType.TAMPER if lost else EventType.DEVICE_BACK]

    @rule(
        action=st.sampled_from(list(CommandAction)),
        user=st.sampled_from(["alice", "bob", "carol", "mallory"]),
        via=st.sampled_from(list(Via)),
        mode=st.none() | st.sampled_from(list(Mode)),
        camera=st.sampled_from([None, "hall_cam", "attic"]),
        tag=st.sampled_from([None, BOB_TAG, CAROL_TAG, "zz"]),
    )
    def remote(
        self,
        action: CommandAction,
        user: str,
        via: Via,
        mode: Mode | None,
        camera: str | None,
        tag: str | None,
    ) -> None:
        self.step_count += 1
        cmd = Command(f"c{self.step_count}", action, user, via, mode, camera, tag)
        replies = len(self.rig.replies)
        self._step(
            False, lambda: self.rig.feed(RemoteCommand(cmd)), lambda: self.model.command(cmd)
        )
        assert len(self.rig.replies) == replies + 1

    @rule(seconds=st.sampled_from([0.5, 1, 5, 9.9, 10, 15, 30, 60, 90, 100, 180, 200, 360]))
    def wait(self, seconds: float) -> None:
        self._step(
            False,
            lambda: self.rig.wait(seconds),
            lambda: self.model.advance(self.rig.now),
            call=False,
        )

    @rule(gap=st.sampled_from([0, 5, 100]))
    def restart(self, gap: int) -> None:
        self._step(
            False,
            lambda: self.rig.restart(gap_s=gap),
            lambda: self.model.restart(gap * 1000),
            call=False,
        )
        assert self.step_events[0] is EventType.RESTART

    # -- invariants

    @invariant()
    def agrees_with_the_model(self) -> None:
        view = self.rig.panel.view()
        m = self.model
        assert view.state is m.state
        assert view.mode == m.mode
        assert view.siren == m.siren == self.rig.siren
        assert view.locked_until_ms == m.locked_until
        assert set(view.open_zones) == m.open
        assert dict(self.rig.panel.timers) == m.timers
        assert self.rig.timers == m.timers, "the process's timers match the core's"

    @invariant()
    def siren_only_when_triggered(self) -> None:
        if self.rig.siren:
            assert self.rig.state is State.TRIGGERED

    @invariant()
    def disarmed_has_only_keypad_timers(self) -> None:
        if self.rig.state is State.DISARMED:
            assert set(self.rig.panel.timers) <= KEYPAD_TIMERS

    @invariant()
    def each_timed_state_has_its_timer(self) -> None:
        needed = {State.ARMING: "exit", State.PENDING: "entry", State.TRIGGERED: "siren"}
        name = needed.get(self.rig.state)
        if name is not None:
            assert name in self.rig.panel.timers

    @invariant()
    def seq_rises_by_one(self) -> None:
        seqs = [e.seq for e in self.rig.events]
        assert seqs == list(range(1, len(seqs) + 1))
        assert self.rig.panel.snapshot().next_seq == len(seqs) + 1


PanelMachine.TestCase.settings = settings(
    max_examples=500,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestPanelMachine = PanelMachine.TestCase
