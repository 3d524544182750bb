"""Keypad drivers on the real wire: serial over a pty, a TCP serial server, USB HID.

The same tests run against a real keypad with ``--keypad-url URL`` (run with
``-s``: the test tells you what to press). Tests that inject line faults run on
the simulated keypads only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from drivers.base import Backoff
from drivers.keypad import BEEP_KINDS, KeypadDriver
from drivers.registry import open_keypad
from drivers.sim_usb import SimUsbKeypad, report
from panel.inputs import DeviceBack, DeviceLost, Input, KeyPressed

ALL_KEYS = "0123456789*#ABCDP"
REAL = pytest.param("real", marks=[pytest.mark.hardware, pytest.mark.timeout(600)])


@pytest.fixture(params=["sim:", "sim:socket", "sim:usbhid", REAL])
def keypad_url(request: pytest.FixtureRequest) -> str:
    if request.param == "real":
        url = request.config.getoption("--keypad-url", default=None)
        if not url:
            pytest.skip("real keypad: pass --keypad-url URL (and -s)")
        return str(url)
    return str(request.param)


class Person:
    """Asks the person at a real device to do something (simulated devices need nobody)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys

    def ask(self, text: str) -> None:
        with self._capsys.disabled():
            print(f"\n>>> {text}", flush=True)


@pytest.fixture
def person(capsys: pytest.CaptureFixture[str]) -> Person:
    return Person(capsys)


def _fast(driver: KeypadDriver) -> KeypadDriver:
    driver._backoff = Backoff(base=0.01, cap=0.05)  # type: ignore[attr-defined]
    return driver


@pytest.fixture
async def keypad(keypad_url: str) -> AsyncIterator[KeypadDriver]:
    async with _fast(open_keypad(keypad_url)) as driver:
        async with asyncio.timeout(5 if driver.twin is not None else 60):
            await driver.wait_connected()
        yield driver


@pytest.fixture(params=["sim:", "sim:socket", "sim:usbhid"])
async def sim_keypad(request: pytest.FixtureRequest) -> AsyncIterator[KeypadDriver]:
    """Fault injection needs the line itself: simulated keypads only."""
    async with _fast(open_keypad(request.param)) as driver:
        async with asyncio.timeout(5):
            await driver.wait_connected()
        yield driver


def _limit(driver: KeypadDriver) -> float:
    return 5.0 if driver.twin is not None else 120.0


async def take(driver: KeypadDriver, count: int) -> list[Input]:
    async with asyncio.timeout(_limit(driver)):
        return [await anext(driver) for _ in range(count)]


def press(driver: KeypadDriver, person: Person, keys: str) -> None:
    if driver.twin is not None:
        driver.twin.type_nowait(keys)
    else:
        person.ask(f"press, one at a time: {' '.join(keys)}")


async def eventually(check: Any, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition never held within {limit} s")
        await asyncio.sleep(0.005)


# -- the same on every keypad ----------------------------------------------------------------
async def test_every_key_arrives_once_and_in_order(keypad: KeypadDriver, person: Person) -> None:
    press(keypad, person, ALL_KEYS)
    got = await take(keypad, len(ALL_KEYS))
    assert got == [KeyPressed(k) for k in ALL_KEYS]
    assert keypad.stats.keys == len(ALL_KEYS)


async def test_display_and_beeps_go_out(keypad: KeypadDriver, person: Person) -> None:
    for kind in BEEP_KINDS:
        await keypad.beep(kind)
    await keypad.display("ARMED TOTAL")
    twin = keypad.twin
    if twin is None:
        person.ask("the keypad should have beeped and show ARMED TOTAL")
    elif keypad_url_is_usb(keypad):
        assert keypad.stats.dropped_out == len(BEEP_KINDS) + 1  # no display, no buzzer
    else:
        await eventually(lambda: twin.display == "ARMED TOTAL")
        assert twin.beeps == list(BEEP_KINDS)


async def test_lost_and_back(keypad: KeypadDriver, person: Person) -> None:
    if keypad.twin is not None:
        keypad.twin.unplug()
    else:
        person.ask("unplug the keypad")
    lost = (await take(keypad, 1))[0]
    assert isinstance(lost, DeviceLost)
    assert lost.device == "keypad"
    assert lost.reason
    if keypad.twin is not None:
        keypad.twin.plug()
    else:
        person.ask("plug the keypad back in")
    assert await take(keypad, 1) == [DeviceBack("keypad")]
    press(keypad, person, "7")
    assert await take(keypad, 1) == [KeyPressed("7")]


# -- simulated keypads only --------------------------------------------------------------------
def keypad_url_is_usb(driver: KeypadDriver) -> bool:
    return isinstance(driver.twin, SimUsbKeypad)


async def test_typing_settles_once_the_consumer_has_taken_the_keys(
    sim_keypad: KeypadDriver,
) -> None:
    keypad = sim_keypad
    typing = asyncio.create_task(keypad.twin.type("12"))
    first = await take(keypad, 2)
    await asyncio.sleep(0.02)
    assert not typing.done()  # "2" is handed out but the consumer has not come back yet
    following = asyncio.create_task(anext(keypad))
    async with asyncio.timeout(5):
        await typing
    following.cancel()
    assert first == [KeyPressed("1"), KeyPressed("2")]


async def test_line_noise_is_counted_and_dropped(sim_keypad: KeypadDriver) -> None:
    keypad, twin = sim_keypad, sim_keypad.twin
    if isinstance(twin, SimUsbKeypad):
        # An unmapped key ('a'), a truncated report, then real keys.
        twin.backend.queue(report(0x04), report(), b"\x00", report(0x5A), report())
        assert await take(keypad, 1) == [KeyPressed("2")]
        assert keypad.decoder.unmapped == 1  # type: ignore[attr-defined]
        assert keypad.decoder.malformed == 1  # type: ignore[attr-defined]
        return
    noise = b"\x00\xff\r\n\x7fzz~\x1b"
    twin.write_raw(noise[:5] + b"1" + noise[5:] + b"2")
    assert await take(keypad, 2) == [KeyPressed("1"), KeyPressed("2")]
    assert keypad.stats.noise == len(noise)
    assert keypad.stats.bytes_in == len(noise) + 2


@pytest.mark.parametrize("url", ["sim:", "sim:socket", "sim:usbhid"])
async def test_absent_at_start_then_plugged_in(url: str) -> None:
    driver = _fast(open_keypad(url))
    driver.twin.unplug()
    async with driver:
        lost = await take(driver, 1)
        assert isinstance(lost[0], DeviceLost)
        driver.twin.plug()
        assert await take(driver, 1) == [DeviceBack("keypad")]
        driver.twin.type_nowait("#")
        assert await take(driver, 1) == [KeyPressed("#")]


async def test_keys_are_never_logged(
    sim_keypad: KeypadDriver, caplog: pytest.LogCaptureFixture
) -> None:
    keypad = sim_keypad
    caplog.set_level(logging.DEBUG)
    keypad.twin.type_nowait("9876D")
    assert await take(keypad, 5) == [KeyPressed(k) for k in "9876D"]
    for record in caplog.records:
        assert "9876" not in record.getMessage()
        assert "KeyPressed" not in record.getMessage()


async def test_output_while_lost_is_dropped_not_raised(sim_keypad: KeypadDriver) -> None:
    keypad = sim_keypad
    keypad.twin.unplug()
    await take(keypad, 1)
    before = keypad.stats.dropped_out
    await keypad.display("DISARMED")
    await keypad.beep("error")
    assert keypad.stats.dropped_out == before + 2


# -- the serial wire ---------------------------------------------------------------------------
@pytest.fixture
async def serial_keypad() -> AsyncIterator[KeypadDriver]:
    async with open_keypad("sim:") as driver:
        yield driver


async def test_display_text_is_printable_ascii_and_bounded(serial_keypad: KeypadDriver) -> None:
    twin = serial_keypad.twin
    await serial_keypad.display("Alarme déclenchée\n" + "x" * 100)
    expected = ("Alarme d?clench?e?" + "x" * 100)[:80]
    await eventually(lambda: twin.display == expected)
    with pytest.raises(ValueError, match="beep kind"):
        await serial_keypad.beep("LOUD!")


async def test_the_human_terminal_reaches_the_driver(serial_keypad: KeypadDriver) -> None:
    import os

    twin = serial_keypad.twin
    fd = os.open(twin.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        os.write(fd, b"42")
        assert await take(serial_keypad, 2) == [KeyPressed("4"), KeyPressed("2")]
        await serial_keypad.display("HELLO")
        await eventually(lambda: twin.display == "HELLO")
        echoed = b""
        async with asyncio.timeout(10):
            while b"D:HELLO\n" not in echoed:
                with contextlib.suppress(BlockingIOError):
                    echoed += os.read(fd, 64)
                await asyncio.sleep(0.005)
    finally:
        os.close(fd)


# -- USB HID specifics -------------------------------------------------------------------------
@pytest.fixture
async def usb_keypad() -> AsyncIterator[KeypadDriver]:
    async with _fast(open_keypad("sim:usbhid")) as driver:
        async with asyncio.timeout(5):
            await driver.wait_connected()
        yield driver


async def test_usb_rollover_phantom_and_held_keys(usb_keypad: KeypadDriver) -> None:
    twin: SimUsbKeypad = usb_keypad.twin
    twin.chord("123")  # three keys down together, in one growing report
    twin.backend.queue(report(*[0x01] * 6))  # phantom state: ignored
    twin.backend.queue(report(0x5C), report(0x5C), report(0x5C))  # "4" held: idle resends
    twin.backend.queue(report(0x5C, 0x5D), report(0x5D), report())  # "5" rolls over "4"
    twin.backend.queue(report(0x5C), report())  # "4" again after release
    got = await take(usb_keypad, 6)
    assert got == [KeyPressed(k) for k in "123454"]
    assert usb_keypad.decoder.rollover == 1  # type: ignore[attr-defined]


async def test_usb_kernel_driver_is_detached_then_given_back() -> None:
    driver = _fast(open_keypad("sim:usbhid"))
    backend = driver.twin.backend
    assert backend.kernel_driver_active
    async with driver:
        async with asyncio.timeout(5):
            await driver.wait_connected()
        assert not backend.kernel_driver_active
        assert backend.claimed
        assert backend.protocol == 0  # boot protocol
        assert backend.idle_rate == 0  # reports only on change
    assert backend.kernel_driver_active
    assert not backend.claimed
    assert (backend.detaches, backend.attaches) == (1, 1)


def test_usb_keymap_covers_every_panel_key() -> None:
    from drivers.keypad_usb import KEYMAP

    assert set(KEYMAP.values()) == set(ALL_KEYS)


@pytest.fixture(autouse=True)
def _no_thread_left() -> Iterator[None]:
    import threading

    before = {t.ident for t in threading.enumerate()}
    yield
    left = [
        t.name
        for t in threading.enumerate()
        if t.ident not in before and t.name.startswith("centinela")
    ]
    assert not left, f"driver threads left running: {left}"


async def test_a_keypad_that_stops_reading_never_stalls_the_panel() -> None:
    """Display lines to a serial line nobody drains are dropped and counted, not blocked on."""
    import os
    import tty

    from drivers.keypad_serial import SerialKeypad

    master, slave = os.openpty()
    tty.setraw(slave)
    tty.setraw(master)
    path = os.ttyname(slave)
    try:
        async with open_keypad(f"serial://{path}") as driver:
            assert isinstance(driver, SerialKeypad)
            await asyncio.wait_for(driver.wait_connected(), 5)
            for i in range(20_000):  # far more than a pty buffer holds
                await driver.display(f"line {i} " + "x" * 60)
            assert driver.stats.dropped_out > 0
            assert driver.stats.lines_out > 0
            # The loop is still responsive and keys still come in.
            os.write(master, b"7")
            async with asyncio.timeout(5):
                async for inp in driver:
                    if isinstance(inp, KeyPressed):
                        assert inp.key == "7"
                        break
    finally:
        os.close(master)
        os.close(slave)
