"""A test rig around the pure panel core: a virtual clock and a process stand-in.

Shared by the core tests; it holds no tests itself. The rig applies actions the way the
panel process does: it keeps the timers the core asks for, fires them in deadline order
when time passes, follows the siren and collects events and replies.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from panel.actions import (
    Action,
    CancelTimer,
    CapturePhoto,
    Display,
    Emit,
    Reply,
    SetSiren,
    StartTimer,
    StateChanged,
)
from panel.config import SiteConfig, load_site_mapping
from panel.core import Panel, PanelSnapshot
from panel.inputs import Input, KeyPressed, RemoteCommand, TagPresented, TimerFired, ZoneChanged
from panel.store import snapshot_from_json, snapshot_to_json
from protocol.messages import Action as CommandAction
from protocol.messages import Command, Event, EventType, Mode, Result, State, Via

T0 = 1_800_000_000_000  # epoch ms: a fixed start for the virtual clock

ALICE_TAG = "04A1B2C3D4E5F6"
BOB_TAG = "04B0B0B0B0B0B0"
CAROL_TAG = "04CA40CA40CA40"
STRANGER_TAG = "04DEADBEEF0000"

SITE: dict[str, Any] = {
    "panel": {"id": "p1", "site": "demo"},
    "timing": {
        "exit_delay": 30,
        "entry_delay": 20,
        "alarm_duration": 180,
        "partial": {"exit_delay": 10, "entry_delay": 15},
        "night": {"exit_delay": 5, "alarm_duration": 60},
    },
    "security": {"max_attempts": 3, "lockout": 90},
    "users": [
        {
            "name": "alice",
            "code": "1234",
            "role": "master",
            "tags": [ALICE_TAG],
            "duress_code": "1299",
        },
        {"name": "bob", "code": "2345", "role": "user", "tags": [BOB_TAG]},
        {"name": "carol", "code": "3456", "role": "arm_only", "tags": [CAROL_TAG]},
    ],
    "zones": [
        {"name": "front_door", "kind": "entry"},
        {"name": "window", "kind": "perimeter"},
        {"name": "hall", "kind": "interior"},
        {"name": "garage", "kind": "interior", "modes": ["total", "night"]},
        {"name": "panic_button", "kind": "panic"},
        {"name": "smoke", "kind": "fire"},
        {"name": "siren_box", "kind": "tamper"},
    ],
    "cameras": [{"name": "hall_cam"}],
}

CODES = {"alice": "1234", "bob": "2345", "carol": "3456"}


def site_config(**changes: Any) -> SiteConfig:
    """The test site, with top-level sections replaced by ``changes``."""
    data = copy.deepcopy(SITE)
    data.update(changes)
    return load_site_mapping(data, "test-site.toml", base_dir="/nonexistent")


class Rig:
    """The core plus what the panel process would do with its actions."""

    def __init__(
        self, config: SiteConfig | None = None, saved: PanelSnapshot | None = None, now: int = T0
    ) -> None:
        self.config = config or site_config()
        self.now = now
        self.timers: dict[str, int] = {}
        self.events: list[Event] = []
        self.replies: list[Result] = []
        self.photos: list[CapturePhoto] = []
        self.displays: list[str] = []
        self.siren = False
        self.views: list[Any] = []
        self._seen = 0
        self.panel = Panel(self.config, saved)
        self.last = self.apply(self.panel.start(now))

    # ----------------------------------------------------------- the process stand-in

    def apply(self, actions: list[Action]) -> list[Action]:
        for action in actions:
            if isinstance(action, StartTimer):
                self.timers[action.name] = action.at_ms
            elif isinstance(action, CancelTimer):
                self.timers.pop(action.name, None)
            elif isinstance(action, SetSiren):
                self.siren = action.on
            elif isinstance(action, Emit):
                if self.events:
                    assert action.event.seq == self.events[-1].seq + 1, "seq must rise by one"
                self.events.append(action.event)
            elif isinstance(action, Reply):
                self.replies.append(action.result)
            elif isinstance(action, CapturePhoto):
                self.photos.append(action)
            elif isinstance(action, Display):
                self.displays.append(action.text)
            elif isinstance(action, StateChanged):
                self.views.append(action.view)
        self.last = actions
        return actions

    def feed(self, inp: Input) -> list[Action]:
        return self.apply(self.panel.handle(inp, self.now))

    def press(self, keys: str) -> list[Action]:
        out: list[Action] = []
        for key in keys:
            out += self.feed(KeyPressed(key))
        self.last = out
        return out

    def tap(self, uid: str) -> list[Action]:
        return self.feed(TagPresented(uid))

    def open(self, zone: str) -> list[Action]:
        return self.feed(ZoneChanged(zone, True))

    def close(self, zone: str) -> list[Action]:
        return self.feed(ZoneChanged(zone, False))

    def command(self, action: str, user: str = "alice", via: str = "app", **fields: Any) -> Result:
        before = len(self.replies)
        mode = fields.pop("mode", None)
        cmd = Command(
            id=f"c{len(self.replies) + 1}",
            action=CommandAction(action),
            user=user,
            via=Via(via),
            mode=None if mode is None else Mode(mode),
            **fields,
        )
        self.feed(RemoteCommand(cmd))
        assert len(self.replies) == before + 1, "every command gets exactly one result"
        assert self.replies[-1].id == cmd.id
        return self.replies[-1]

    def wait(self, seconds: float) -> None:
        """Let virtual time pass, firing due timers at their deadlines, in order."""
        target = self.now + round(seconds * 1000)
        while True:
            due = sorted((at, name) for name, at in self.timers.items() if at <= target)
            if not due:
                break
            at, name = due[0]
            self.now = max(self.now, at)
            del self.timers[name]
            self.feed(TimerFired(name))
        self.now = target

    def restart(self, gap_s: float = 0) -> None:
        """The process dies and comes back: the snapshot goes through its JSON form."""
        saved = snapshot_from_json(snapshot_to_json(self.panel.snapshot()))
        self.now += round(gap_s * 1000)
        self.timers.clear()
        self.panel = Panel(self.config, saved)
        self.apply(self.panel.start(self.now))

    # ----------------------------------------------------------- looking

    @property
    def state(self) -> State:
        return self.panel.view().state

    def new_events(self) -> list[Event]:
        """Events since the last call."""
        out = self.events[self._seen :]
        self._seen = len(self.events)
        return out

    def types(self, events: Iterable[Event] | None = None) -> list[EventType]:
        return [e.type for e in (self.new_events() if events is None else events)]

    def last_event(self, event_type: EventType) -> Event:
        return next(e for e in reversed(self.events) if e.type is event_type)

    def arm(self, mode: str = "A", user: str = "alice") -> None:
        """Arm with a user's code and let the exit delay run out."""
        self.press(CODES[user] + mode)
        assert self.state is State.ARMING
        self.wait(60)
        assert self.state in (State.ARMED_TOTAL, State.ARMED_PARTIAL, State.ARMED_NIGHT)


def fields_of(event: Event, **expected: object) -> Mapping[str, object]:
    """The fields of ``event`` named in ``expected`` (for readable asserts)."""
    return {k: getattr(event, k) for k in expected}


def reach(rig: Rig, state: State) -> None:
    """Drive the rig into ``state``."""
    if state is State.DISARMED:
        return
    if state is State.ARMING:
        rig.press("1234A")
    elif state in (State.ARMED_TOTAL, State.ARMED_PARTIAL, State.ARMED_NIGHT):
        rig.arm({State.ARMED_TOTAL: "A", State.ARMED_PARTIAL: "B", State.ARMED_NIGHT: "C"}[state])
    elif state is State.PENDING:
        rig.arm()
        rig.open("front_door")
    elif state is State.TRIGGERED:
        rig.arm()
        rig.open("window")
    assert rig.state is state
