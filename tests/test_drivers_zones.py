"""GPIO zones, tamper loops, siren and strobe, on gpiozero's MockFactory pins."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from common.errors import ConfigError
from drivers.registry import open_zones
from drivers.zones import GpioOptions, GpioZones
from panel.inputs import DeviceLost, Input, TamperDetected, ZoneChanged


@dataclass(frozen=True)
class Zone:
    name: str
    kind: str
    pin: int | None
    normally_open: bool = False


ZONES = [
    Zone("front_door", "entry", 5),  # NC reed contact
    Zone("panic_button", "panic", 6, normally_open=True),  # NO push button
]


async def take(driver: Any, count: int = 1) -> list[Input]:
    async with asyncio.timeout(5):
        return [await anext(driver) for _ in range(count)]


async def nothing_but_a_marker(driver: Any, factory: MockFactory) -> None:
    """Nothing was reported: a press and release of the panic button, made after whatever
    must not be reported, are the next two inputs (the debouncer reports in edge order)."""
    factory.pin(6).drive_low()
    assert await take(driver) == [ZoneChanged("panic_button", True)]
    factory.pin(6).drive_high()
    assert await take(driver) == [ZoneChanged("panic_button", False)]


@pytest.fixture
def factory() -> MockFactory:
    return MockFactory()


@pytest.fixture
async def gpio(factory: MockFactory) -> AsyncIterator[GpioZones]:
    options = GpioOptions(siren=17, strobe=27, tamper=22, debounce=0.02)
    async with GpioZones(ZONES, options, pin_factory=factory) as driver:
        # A mock pin with a pull-up reads high until something pulls it down: the NC
        # door loop and the enclosure switch read open until their contacts "close".
        initial = await take(driver, 2)
        assert set(initial) == {ZoneChanged("front_door", True), TamperDetected("panel")}
        factory.pin(5).drive_low()
        factory.pin(22).drive_low()
        assert await take(driver) == [ZoneChanged("front_door", False)]
        yield driver


async def test_nc_and_no_contacts(gpio: GpioZones, factory: MockFactory) -> None:
    assert not gpio.is_open("front_door")
    assert not gpio.is_open("panic_button")
    factory.pin(5).drive_high()  # door opens: the NC contact breaks, pull-up wins
    assert await take(gpio) == [ZoneChanged("front_door", True)]
    factory.pin(6).drive_low()  # button pressed: the NO contact makes
    assert await take(gpio) == [ZoneChanged("panic_button", True)]
    factory.pin(5).drive_low()
    factory.pin(6).drive_high()
    got = await take(gpio, 2)
    assert sorted(got, key=str) == [
        ZoneChanged("front_door", False),
        ZoneChanged("panic_button", False),
    ]


async def test_contact_bounce_is_one_change_or_none(gpio: GpioZones, factory: MockFactory) -> None:
    pin = factory.pin(5)
    for _ in range(4):  # chatter that ends open
        pin.drive_high()
        pin.drive_low()
    pin.drive_high()
    assert await take(gpio) == [ZoneChanged("front_door", True)]
    await nothing_but_a_marker(gpio, factory)
    pin.drive_low()  # a glitch shorter than the debounce time
    pin.drive_high()
    await nothing_but_a_marker(gpio, factory)
    assert gpio.is_open("front_door")


async def test_enclosure_tamper(gpio: GpioZones, factory: MockFactory) -> None:
    factory.pin(22).drive_high()
    assert await take(gpio) == [TamperDetected("panel")]
    factory.pin(22).drive_low()  # closing the lid reports nothing
    await nothing_but_a_marker(gpio, factory)


async def test_siren_and_strobe_outputs(gpio: GpioZones, factory: MockFactory) -> None:
    await gpio.siren(True)
    await gpio.strobe(True)
    assert factory.pin(17).state
    assert factory.pin(27).state
    assert gpio.siren_on
    await gpio.siren(False)
    assert not factory.pin(17).state
    assert factory.pin(27).state


async def test_active_low_relay_board_and_siren_off_on_exit(factory: MockFactory) -> None:
    options = GpioOptions(siren=17, active_low=True)
    async with GpioZones(ZONES, options, pin_factory=factory) as driver:
        assert factory.pin(17).state == 1  # relay off: pin held high
        await driver.siren(True)
        assert factory.pin(17).state == 0
    assert factory.pin(17).function == "input"  # released: the relay board's pull-up turns it off


async def test_a_zone_open_at_start_is_reported(factory: MockFactory) -> None:
    async with GpioZones(ZONES, GpioOptions(), pin_factory=factory) as driver:
        # The NC loop reads high (open); the NO button reads high too, which is its rest.
        assert await take(driver) == [ZoneChanged("front_door", True)]
        assert driver.is_open("front_door")
        assert not driver.is_open("panic_button")


async def test_no_gpio_is_a_lost_device_not_a_crash() -> None:
    # GPIO40 does not exist on the mock Pi 3B: gpiozero refuses it, as it does a missing chip.
    zones = [Zone("front_door", "entry", 40)]
    driver = GpioZones(zones, GpioOptions(), pin_factory=MockFactory())
    async with driver:
        lost = await take(driver)
        assert isinstance(lost[0], DeviceLost)
        assert lost[0].device == "zones"
        assert not driver.connected


# -- the simulated zones on the real driver ------------------------------------------------------
@pytest.fixture
async def sim() -> AsyncIterator[GpioZones]:
    zones = [Zone("front_door", "entry", None), Zone("sos", "panic", None, normally_open=True)]
    async with open_zones("sim:", zones) as driver:
        yield driver  # type: ignore[misc]


async def test_sim_open_close_tamper_and_siren(sim: GpioZones) -> None:
    twin = sim.twin
    twin.open("front_door")
    twin.open("sos")
    assert await take(sim, 2) == [ZoneChanged("front_door", True), ZoneChanged("sos", True)]
    twin.close("front_door")
    assert await take(sim) == [ZoneChanged("front_door", False)]
    twin.tamper("sos")
    assert await take(sim) == [TamperDetected("sos")]
    assert not twin.siren
    await sim.siren(True)
    assert twin.siren
    assert not twin.strobe


async def test_sim_bounce_and_settle(sim: GpioZones) -> None:
    twin = sim.twin
    got: list[Input] = []

    async def consume() -> None:
        async for inp in sim:
            got.append(inp)

    consumer = asyncio.create_task(consume())
    try:
        twin.bounce("front_door", 5)  # odd: ends open
        twin.bounce("sos", 4)  # even: ends where it started
        async with asyncio.timeout(5):
            await twin.settle()
        assert got == [ZoneChanged("front_door", True)]
        assert twin.is_open("front_door")
    finally:
        consumer.cancel()


def test_gpio_pins_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"zones.front_door.pin: a gpio: zone needs a pin"):
        open_zones("gpio:", [Zone("front_door", "entry", None)], file="site.toml")
    with pytest.raises(ConfigError, match="already used by the siren"):
        open_zones("gpio:?siren=5", [Zone("front_door", "entry", 5)])
    with pytest.raises(ConfigError, match="already used by zone a"):
        open_zones("gpio:", [Zone("a", "entry", 5), Zone("b", "entry", 5)])
    with pytest.raises(ConfigError, match="does not exist"):
        open_zones("gpio:", [Zone("a", "entry", 60)])


async def test_an_awaited_action_returns_once_the_panel_has_it(
    sim: GpioZones, monkeypatch: pytest.MonkeyPatch
) -> None:
    import drivers.twin

    got: list[Input] = []

    async def consume() -> None:
        async for inp in sim:
            got.append(inp)

    consumer = asyncio.create_task(consume())
    await sim.twin.open("front_door")
    assert got == [ZoneChanged("front_door", True)]
    consumer.cancel()
    monkeypatch.setattr(drivers.twin, "SETTLE_LIMIT", 0.1)
    with pytest.raises(TimeoutError, match="did not take in 1 simulated input"):
        await sim.twin.close("front_door")  # nobody reads any more
    sim.twin.open("sos")  # not awaited: nothing waits, nothing complains
