"""BME280: the datasheet's compensation, the register map, and the driver reading it.

``--climate-url bme280:BUS:ADDR`` runs the reading tests against a real sensor.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers import bme280
from drivers.base import Backoff
from drivers.climate import Bme280Climate
from drivers.registry import open_climate
from drivers.sim_climate import (
    DATASHEET_TP,
    HUMIDITY_TRIM,
    Environment,
    SimBme280,
    SimClimate,
    calibration_registers,
)
from panel.inputs import ClimateReading, DeviceBack, DeviceLost, Input

# The worked example of Bosch's BMP280 datasheet (same T and P compensation as the BME280).
EXAMPLE = bme280.Calibration(*DATASHEET_TP)
ADC_T, ADC_P = 519888, 415148
CAL = bme280.Calibration(*DATASHEET_TP, *HUMIDITY_TRIM)
REAL = pytest.param("real", marks=pytest.mark.hardware)


def test_datasheet_example_temperature() -> None:
    centi, t_fine = bme280.temperature_int(EXAMPLE, ADC_T)
    assert t_fine == 128422
    assert centi == 2508  # 25.08 °C
    celsius, fine = bme280.temperature_float(EXAMPLE, ADC_T)
    assert celsius == pytest.approx(25.08, abs=0.005)
    assert fine == 128422


def test_datasheet_example_pressure() -> None:
    _, t_fine = bme280.temperature_int(EXAMPLE, ADC_T)
    assert bme280.pressure_int64(EXAMPLE, ADC_P, t_fine) / 256 == pytest.approx(100653.27, abs=0.05)
    assert bme280.pressure_float(EXAMPLE, ADC_P, t_fine) == pytest.approx(100653.27, abs=0.05)


@settings(max_examples=300, deadline=None)
@given(adc_t=st.integers(380_000, 600_000), adc_h=st.integers(20_000, 40_000))
def test_integer_and_float_humidity_agree(adc_t: int, adc_h: int) -> None:
    _, t_fine = bme280.temperature_int(CAL, adc_t)
    fixed = bme280.humidity_int32(CAL, adc_h, t_fine) / 1024
    floating = bme280.humidity_float(CAL, adc_h, t_fine)
    assert 0.0 <= fixed <= 100.0
    assert fixed == pytest.approx(floating, abs=0.05)


@settings(max_examples=200, deadline=None)
@given(adc_t=st.integers(380_000, 600_000), adc_p=st.integers(200_000, 500_000))
def test_integer_and_float_pressure_agree(adc_t: int, adc_p: int) -> None:
    _, t_fine = bme280.temperature_int(CAL, adc_t)
    fixed = bme280.pressure_int64(CAL, adc_p, t_fine) / 256
    assert fixed == pytest.approx(bme280.pressure_float(CAL, adc_p, t_fine), rel=1e-5)


def test_humidity_is_clamped_to_0_and_100() -> None:
    _, t_fine = bme280.temperature_int(CAL, ADC_T)
    assert bme280.humidity_int32(CAL, 0, t_fine) == 0
    assert bme280.humidity_int32(CAL, 0xFFFF, t_fine) / 1024 == 100.0


@pytest.mark.parametrize(("h4", "h5"), [(313, 50), (-200, -1), (2047, -2048)])
def test_calibration_registers_round_trip(h4: int, h5: int) -> None:
    trim = (75, -362, 7, h4, h5, -30)
    regs = calibration_registers(DATASHEET_TP, trim)
    cal = bme280.parse_calibration(
        bytes(regs[0x88 + i] for i in range(24)),
        regs[0xA1],
        bytes(regs[0xE1 + i] for i in range(7)),
    )
    assert cal == bme280.Calibration(*DATASHEET_TP, *trim)


def test_raw_data_layout_and_skipped_channels() -> None:
    data = bytes([0x65, 0x5A, 0xC0, 0x7E, 0xED, 0x00, 0x80, 0x00])
    assert bme280.parse_raw(data) == (0x7EED0, 0x655AC, 0x8000)
    sample = bme280.compensate(CAL, data)
    assert sample is not None
    assert sample.humidity is None  # 0x8000: humidity skipped
    skipped_t = bytes([0x65, 0x5A, 0xC0, 0x80, 0x00, 0x00, 0x80, 0x00])
    assert bme280.compensate(CAL, skipped_t) is None


# -- the driver on the simulated register map ---------------------------------------------------
def _driver(twin_or_bus: Any, **kw: Any) -> Bme280Climate:
    return Bme280Climate(1, 0x76, bus_factory=twin_or_bus, backoff=Backoff(0.01, 0.05), **kw)


async def take(driver: Any, count: int = 1) -> list[Input]:
    async with asyncio.timeout(5):
        return [await anext(driver) for _ in range(count)]


async def test_reads_back_what_the_sensor_sees() -> None:
    twin = SimClimate(clock=lambda: 0.0)
    twin.set(25.0, 60.0)
    async with _driver(twin.bus) as driver:
        reading = await driver.read()
    assert reading.temperature == pytest.approx(25.0, abs=0.01)
    assert reading.humidity == pytest.approx(60.0, abs=0.01)
    assert twin.sensor.measurements >= 1  # the periodic poll may have read too


async def test_the_daily_curve_is_seeded_and_warmest_in_the_afternoon() -> None:
    async def at(hour: float, seed: int) -> ClimateReading:
        twin = SimClimate(clock=lambda: hour * 3600, seed=seed)
        async with _driver(twin.bus) as driver:
            return await driver.read()

    assert await at(15, 1) == await at(15, 1)
    afternoon, night = await at(15, 1), await at(3, 1)
    assert afternoon.temperature is not None
    assert night.temperature is not None
    assert afternoon.temperature > night.temperature + 3
    assert afternoon.humidity is not None
    assert night.humidity is not None
    assert afternoon.humidity < night.humidity
    assert 15 < afternoon.temperature < 30


async def test_a_read_error_is_reported_never_invented() -> None:
    twin = SimClimate(clock=lambda: 0.0)
    async with _driver(twin.bus, interval=0.05) as driver:
        first = await take(driver)
        assert isinstance(first[0], ClimateReading)
        assert first[0].temperature is not None
        twin.unplug()
        assert await driver.read() == ClimateReading(None, None)
        lost, none = await take(driver, 2)
        assert isinstance(lost, DeviceLost)
        assert lost.reason == "[Errno 121] Remote I/O error"
        assert none == ClimateReading(None, None)
        twin.plug()
        back, reading = await take(driver, 2)
        assert back == DeviceBack("climate")
        assert isinstance(reading, ClimateReading)
        assert reading.temperature is not None


async def test_a_bmp280_gives_no_humidity() -> None:
    sensor = SimBme280(lambda: Environment(20.0, 50.0), chip_id=0x58)
    async with _driver(lambda n: sensor) as driver:
        reading = await driver.read()
    assert reading.temperature == pytest.approx(20.0, abs=0.01)
    assert reading.humidity is None


async def test_something_else_at_the_address_is_not_a_bme280() -> None:
    sensor = SimBme280(lambda: Environment(20.0, 50.0), chip_id=0x33)
    async with _driver(lambda n: sensor) as driver:
        assert await driver.read() == ClimateReading(None, None)
        lost = await take(driver)
        assert isinstance(lost[0], DeviceLost)
        assert "chip id 0x33" in lost[0].reason


async def test_a_missing_bus_is_lost() -> None:
    def no_bus(number: int) -> Any:
        raise OSError(errno.ENOENT, "No such file or directory")

    async with _driver(no_bus) as driver:
        assert await driver.read() == ClimateReading(None, None)
        assert not driver.connected


@pytest.fixture(params=["sim:", REAL])
async def climate(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    url = request.param
    if url == "real":
        url = request.config.getoption("--climate-url", default=None)
        if not url:
            pytest.skip("real sensor: pass --climate-url bme280:BUS:ADDR")
    async with open_climate(str(url)) as driver:
        yield driver


async def test_a_plausible_reading(climate: Any) -> None:
    reading = await climate.read()
    assert reading.temperature is not None
    assert -40 <= reading.temperature <= 85  # the BME280's operating range
    assert reading.humidity is None or 0 <= reading.humidity <= 100
    assert climate.connected
