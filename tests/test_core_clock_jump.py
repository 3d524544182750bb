"""A wall clock that jumps while the panel runs (NTP stepping a Pi without RTC, a date set
by hand): timers run on elapsed time, event times stay on the wall clock."""

from __future__ import annotations

import asyncio

import pytest

from common.clock import VirtualClock
from panel.inputs import Input, KeyPressed, TimerFired
from protocol.messages import EventType, State
from tests.test_core_support import T0, Rig

HOUR_MS = 3_600_000
EXIT_MS = 30_000  # the test site's total exit delay


class TwoClockRig(Rig):
    """The core fed two clocks: ``now`` (wall, may jump) and ``mono`` (elapsed time)."""

    def __init__(self) -> None:
        self.mono = T0  # the core's first call (``start``) had both at T0
        super().__init__()

    def feed(self, inp: Input) -> list:  # type: ignore[type-arg]
        return self.apply(self.panel.handle(inp, self.now, self.mono))

    def wait(self, seconds: float) -> None:
        """Let elapsed time pass (the wall clock with it), firing timers due on the way."""
        target = self.mono + round(seconds * 1000)
        while True:
            due = sorted((at, name) for name, at in self.timers.items() if at <= target)
            if not due:
                break
            at, name = due[0]
            self.now += at - self.mono
            self.mono = at
            del self.timers[name]
            self.feed(TimerFired(name))
        self.now += target - self.mono
        self.mono = target


@pytest.mark.parametrize("jump_ms", [HOUR_MS, -HOUR_MS])
def test_a_clock_jump_neither_ends_nor_lengthens_the_exit_delay(jump_ms: int) -> None:
    rig = TwoClockRig()
    rig.press("1234A")
    assert rig.state is State.ARMING
    rig.wait(1)
    rig.now += jump_ms  # the wall clock is corrected; elapsed time is not
    rig.press("*")
    assert rig.state is State.ARMING
    rig.wait(28.9)
    rig.press("*")
    assert rig.state is State.ARMING
    rig.wait(0.1)  # 30 s of elapsed time since arming
    assert rig.state is State.ARMED_TOTAL
    armed = rig.last_event(EventType.ARMED)
    arming = rig.last_event(EventType.ARMING)
    if jump_ms > 0:  # wall-clock time of the deadline, on the corrected clock
        assert armed.time_ms == T0 + EXIT_MS + jump_ms
    else:  # never before an event already stamped in this boot
        assert armed.time_ms == arming.time_ms


def test_a_due_exit_delay_ends_on_the_next_input_when_its_timer_was_missed() -> None:
    rig = TwoClockRig()
    rig.press("1234A")
    rig.timers.clear()  # the process's timer never fired
    rig.mono += EXIT_MS
    rig.now -= HOUR_MS
    rig.feed(KeyPressed("*"))
    assert rig.state is State.ARMED_TOTAL


@pytest.mark.parametrize("jump_ms", [HOUR_MS, -HOUR_MS])
def test_a_clock_jump_does_not_end_the_entry_delay_siren_or_lockout(jump_ms: int) -> None:
    rig = TwoClockRig()
    rig.arm()
    rig.open("front_door")
    assert rig.state is State.PENDING
    rig.now += jump_ms
    rig.press("*")
    assert rig.state is State.PENDING
    rig.wait(20)
    assert rig.state is State.TRIGGERED
    rig.now += jump_ms
    rig.press("*")
    assert rig.state is State.TRIGGERED and rig.siren
    rig.press("9999D9999D9999D")  # three wrong codes: locked for 90 s
    assert rig.panel.locked
    rig.now += jump_ms
    rig.press("*")
    assert rig.panel.locked
    rig.wait(90)
    assert not rig.panel.locked


def test_the_snapshot_keeps_the_elapsed_time_left_whatever_the_wall_clock_did() -> None:
    rig = TwoClockRig()
    rig.press("1234A")
    rig.wait(10)
    rig.now += HOUR_MS
    rig.press("*")
    assert rig.panel.snapshot().timers == {"exit": EXIT_MS - 10_000}


def test_the_virtual_clock_moves_its_wall_clock_alone() -> None:
    async def run() -> list[str]:
        clock = VirtualClock(T0)
        fired: list[str] = []
        clock.call_at_mono(T0 + EXIT_MS, lambda: fired.append("mono"))
        clock.jump_wall(HOUR_MS)
        assert (clock.now_ms(), clock.mono_ms()) == (T0 + HOUR_MS, T0)
        await clock.advance(1)
        assert fired == []
        await clock.advance(29)
        return fired

    assert asyncio.run(run()) == ["mono"]
