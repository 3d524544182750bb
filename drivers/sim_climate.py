"""A simulated BME280: its register map on a fake I2C bus, following a daily curve.

The real ``Bme280Climate`` driver reads it: chip id, calibration, a forced
measurement, the status bit, the data registers, and compensates them. The
raw ADC values are found by searching the datasheet formulas, so what the
driver reads back is the curve (to the sensor's resolution).
"""

from __future__ import annotations

import errno
import math
import random
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from drivers import bme280
from drivers.twin import Twin

# Calibration: the worked example of Bosch's BMP280 datasheet for temperature and
# pressure, and a plausible humidity trimming set.
DATASHEET_TP = (27504, 26435, -1000, 36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000)
HUMIDITY_TRIM = (75, 362, 0, 313, 50, 30)  # dig_H1 .. dig_H6


def calibration_registers(tp: tuple[int, ...], h: tuple[int, ...]) -> dict[int, int]:
    """The NVM bytes at 0x88-0x9F, 0xA1 and 0xE1-0xE7 for these trimming parameters."""
    regs: dict[int, int] = {}
    for i, byte in enumerate(struct.pack("<HhhHhhhhhhhh", *tp)):
        regs[bme280.CALIB_TP + i] = byte
    h1, h2, h3, h4, h5, h6 = h
    regs[bme280.CALIB_H1] = h1
    e1, e2 = struct.pack("<h", h2)
    e4 = (h4 >> 4) & 0xFF
    e5 = (h4 & 0x0F) | ((h5 & 0x0F) << 4)
    e6 = (h5 >> 4) & 0xFF
    e7 = h6 & 0xFF
    for offset, byte in enumerate((e1, e2, h3, e4, e5, e6, e7)):
        regs[bme280.CALIB_H2 + offset] = byte
    return regs


def _search(lo: int, hi: int, value: Callable[[int], float], target: float) -> int:
    """The input whose value is nearest ``target`` for a monotonic ``value`` on [lo, hi]."""
    rising = value(hi) >= value(lo)
    while lo < hi:
        mid = (lo + hi) // 2
        if (value(mid) < target) == rising:
            lo = mid + 1
        else:
            hi = mid
    if lo > 0 and abs(value(lo - 1) - target) < abs(value(lo) - target):
        return lo - 1
    return lo


@dataclass(frozen=True, slots=True)
class Environment:
    """What the sensor is exposed to."""

    temperature: float
    humidity: float
    pressure: float = 101325.0


class SimBme280:
    """The chip's registers behind smbus2's calls (read_byte_data, read_i2c_block_data, ...)."""

    def __init__(
        self,
        environment: Callable[[], Environment],
        *,
        address: int = 0x76,
        chip_id: int = bme280.BME280_ID,
    ) -> None:
        self.address = address
        self.environment = environment
        self.failing = False
        self.measurements = 0
        self._regs = dict.fromkeys(range(256), 0)
        self._regs[bme280.CHIP_ID] = chip_id
        self._regs.update(calibration_registers(DATASHEET_TP, HUMIDITY_TRIM))
        self.calibration = bme280.parse_calibration(
            bytes(self._regs[bme280.CALIB_TP + i] for i in range(24)),
            self._regs[bme280.CALIB_H1],
            bytes(self._regs[bme280.CALIB_H2 + i] for i in range(7)),
        )
        self._busy_reads = 0
        self._lock = threading.Lock()

    def _check(self, addr: int) -> None:
        if self.failing or addr != self.address:
            raise OSError(errno.EREMOTEIO, "Remote I/O error")

    def read_byte_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int:
        with self._lock:
            self._check(i2c_addr)
            if register == bme280.STATUS:
                if self._busy_reads:
                    self._busy_reads -= 1
                    return bme280.STATUS_MEASURING
                return 0
            return self._regs[register & 0xFF]

    def read_i2c_block_data(
        self, i2c_addr: int, register: int, length: int, force: bool | None = None
    ) -> list[int]:
        with self._lock:
            self._check(i2c_addr)
            return [self._regs[(register + i) & 0xFF] for i in range(length)]

    def write_byte_data(
        self, i2c_addr: int, register: int, value: int, force: bool | None = None
    ) -> None:
        with self._lock:
            self._check(i2c_addr)
            self._regs[register] = value & 0xFF
            if register == bme280.CTRL_MEAS and value & 0b11 in (0b01, 0b10):
                self._measure(value)

    def close(self) -> None:
        """Nothing to release."""

    def _measure(self, ctrl_meas: int) -> None:
        self.measurements += 1
        self._busy_reads = 1  # the driver sees the measuring bit once, as on the chip
        env = self.environment()
        cal = self.calibration
        adc_t = _search(
            0, (1 << 20) - 1, lambda a: bme280.temperature_int(cal, a)[0] / 100, env.temperature
        )
        t_fine = bme280.t_fine_int(cal, adc_t)
        adc_p = _search(
            0, (1 << 20) - 1, lambda a: bme280.pressure_int64(cal, a, t_fine) / 256, env.pressure
        )
        adc_h = _search(
            0, 0xFFFF, lambda a: bme280.humidity_int32(cal, a, t_fine) / 1024, env.humidity
        )
        if (ctrl_meas >> 2) & 0b111 == 0:
            adc_p = bme280.SKIPPED_TP
        if self._regs[bme280.CTRL_HUM] & 0b111 == 0:
            adc_h = bme280.SKIPPED_H
        data = (
            adc_p >> 12, (adc_p >> 4) & 0xFF, (adc_p & 0x0F) << 4,
            adc_t >> 12, (adc_t >> 4) & 0xFF, (adc_t & 0x0F) << 4,
            adc_h >> 8, adc_h & 0xFF,
        )  # fmt: skip
        for i, byte in enumerate(data):
            self._regs[bme280.DATA + i] = byte


class SimClimate(Twin):
    """A room over the day: warmest mid-afternoon, damper at night, with seeded noise."""

    def __init__(self, clock: Callable[[], float] | None = None, *, seed: int = 0) -> None:
        super().__init__()
        self.clock = clock or time.time
        self._rng = random.Random(seed)
        self.fixed: Environment | None = None
        self.sensor = SimBme280(self.environment)
        self.path = "bme280 (simulated)"

    def environment(self) -> Environment:
        """The conditions at the clock's current time."""
        if self.fixed is not None:
            return self.fixed
        hours = (self.clock() % 86400) / 3600
        phase = math.sin(2 * math.pi * (hours - 9) / 24)  # peaks at 15:00
        temperature = 21.0 + 2.5 * phase + self._rng.gauss(0, 0.05)
        humidity = 45.0 - 8.0 * phase + self._rng.gauss(0, 0.3)
        pressure = 101325.0 + 120.0 * math.sin(2 * math.pi * self.clock() / 259200)
        return Environment(temperature, min(max(humidity, 0.0), 100.0), pressure)

    def bus(self, number: int) -> SimBme280:
        """The fake I2C bus (the driver's ``bus_factory``)."""
        return self.sensor

    def set(self, temperature: float, humidity: float) -> None:
        """Hold the room at fixed conditions (None-free: this is what the sensor sees)."""
        self.fixed = Environment(temperature, humidity)

    def unplug(self) -> None:
        """The sensor stops answering (every transfer fails with EREMOTEIO)."""
        self.sensor.failing = True

    def plug(self) -> None:
        """The sensor answers again."""
        self.sensor.failing = False
