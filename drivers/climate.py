"""Temperature and humidity from a BME280 on I2C (smbus2), read in one edge thread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from drivers import bme280
from drivers.base import Backoff, Driver, reason_of
from drivers.reports import ClimateReading

_LOGGER = logging.getLogger(__name__)

_MEASURE_TIMEOUT = 0.1  # forced mode at x1 oversampling takes at most ~10 ms


class SensorError(Exception):
    """The chip answered, but not as a BME280 should."""


class ClimateDriver(Driver):
    """Yields a ClimateReading every ``interval`` seconds; ``read()`` takes one now."""

    async def read(self) -> ClimateReading:
        """One reading; None values (and a DeviceLost) when the sensor cannot be read."""
        raise NotImplementedError


class Bme280Climate(ClimateDriver):
    """A BME280 (or a BMP280, which has no humidity) in forced mode, x1 oversampling.

    ``bus_factory(bus_number)`` returns an object with smbus2's
    read_byte_data / read_i2c_block_data / write_byte_data / close; the
    default is ``smbus2.SMBus``.
    """

    def __init__(
        self,
        bus: int,
        address: int,
        *,
        bus_factory: Callable[[int], Any] | None = None,
        interval: float = 60.0,
        device: str = "climate",
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__(device)
        self.bus_number = bus
        self.address = address
        self.interval = interval
        self.reads = 0
        self.errors = 0
        self._bus_factory = bus_factory
        self._bus: Any = None
        self._cal: bme280.Calibration | None = None
        self._has_humidity = True
        self._executor: ThreadPoolExecutor | None = None
        self._poller: asyncio.Task[None] | None = None
        self._backoff = backoff or Backoff(base=1.0, cap=max(1.0, interval))

    async def _start(self) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"centinela-{self.device}")
        self._poller = asyncio.get_running_loop().create_task(
            self._poll(), name=f"centinela-{self.device}-poll"
        )

    async def _stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        executor, self._executor = self._executor, None
        if executor is not None:
            with contextlib.suppress(Exception):
                await asyncio.get_running_loop().run_in_executor(executor, self._close_bus)
            executor.shutdown(wait=True)

    async def read(self) -> ClimateReading:
        """Measure now."""
        if self._executor is None:
            raise RuntimeError("use the driver inside 'async with'")
        loop = asyncio.get_running_loop()
        try:
            sample = await loop.run_in_executor(self._executor, self._measure)
        except (OSError, SensorError) as exc:
            self.errors += 1
            self._lost(reason_of(exc))
            return ClimateReading(None, None, self.device)
        self.reads += 1
        self._back()
        humidity = None if sample.humidity is None else round(sample.humidity, 2)
        return ClimateReading(round(sample.temperature, 2), humidity, self.device)

    async def _poll(self) -> None:
        failures = 0
        while True:
            reading = await self.read()
            if reading.temperature is None:
                if failures == 0:
                    self.stream.put(reading)  # once per outage; DeviceLost came first
                delay = self._backoff.delay(failures)
                failures += 1
            else:
                failures = 0
                self.stream.put(reading)
                delay = self.interval
            await asyncio.sleep(delay)

    # -- the edge thread ----------------------------------------------------------------
    def _open_bus(self) -> Any:
        if self._bus is None:
            if self._bus_factory is not None:
                self._bus = self._bus_factory(self.bus_number)
            else:
                import smbus2

                self._bus = smbus2.SMBus(self.bus_number)
            self._cal = None
        return self._bus

    def _close_bus(self) -> None:
        bus, self._bus = self._bus, None
        self._cal = None
        if bus is not None:
            with contextlib.suppress(OSError):
                bus.close()

    def _calibrate(self, bus: Any) -> bme280.Calibration:
        addr = self.address
        chip = bus.read_byte_data(addr, bme280.CHIP_ID)
        if chip == bme280.BME280_ID:
            self._has_humidity = True
        elif chip in bme280.BMP280_IDS:
            self._has_humidity = False
        else:
            raise SensorError(f"no BME280 at 0x{addr:02x} (chip id 0x{chip:02x})")
        tp = bytes(bus.read_i2c_block_data(addr, bme280.CALIB_TP, 24))
        h = None
        h1 = 0
        if self._has_humidity:
            h1 = bus.read_byte_data(addr, bme280.CALIB_H1)
            h = bytes(bus.read_i2c_block_data(addr, bme280.CALIB_H2, 7))
        return bme280.parse_calibration(tp, h1, h)

    def _measure(self) -> bme280.Sample:
        try:
            bus = self._open_bus()
            if self._cal is None:
                self._cal = self._calibrate(bus)
            addr = self.address
            if self._has_humidity:
                # ctrl_hum only takes effect on the next write of ctrl_meas.
                bus.write_byte_data(addr, bme280.CTRL_HUM, bme280.OSRS_X1)
            meas = bme280.OSRS_X1 << 5 | bme280.OSRS_X1 << 2 | bme280.MODE_FORCED
            bus.write_byte_data(addr, bme280.CTRL_MEAS, meas)
            deadline = time.monotonic() + _MEASURE_TIMEOUT
            while bus.read_byte_data(addr, bme280.STATUS) & bme280.STATUS_MEASURING:
                if time.monotonic() > deadline:
                    raise SensorError("measurement did not finish")
                time.sleep(0.002)
            data = bytes(bus.read_i2c_block_data(addr, bme280.DATA, 8))
        except (OSError, SensorError):
            self._close_bus()  # start afresh, calibration included, on the next read
            raise
        sample = bme280.compensate(self._cal, data, has_humidity=self._has_humidity)
        if sample is None:
            raise SensorError("temperature measurement skipped")
        return sample
