"""Bosch BME280: register map, calibration and compensation as the datasheet gives them.

Pure functions, no I/O. The integer formulas follow datasheet section 4.2.3
(``BME280_compensate_T_int32``, ``BME280_compensate_P_int64``,
``bme280_compensate_H_int32``) with C's 32/64-bit signed arithmetic: Python's
``>>`` is the same arithmetic shift, and the one division is truncated toward
zero as in C. The floating-point formulas of appendix 8.1 are here too, to
cross-check the integer ones.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

CHIP_ID = 0xD0
CTRL_HUM = 0xF2
STATUS = 0xF3
CTRL_MEAS = 0xF4
CONFIG = 0xF5
DATA = 0xF7  # press_msb .. hum_lsb, 8 bytes
CALIB_TP = 0x88  # dig_T1 .. dig_P9, 24 bytes
CALIB_H1 = 0xA1
CALIB_H2 = 0xE1  # dig_H2 .. dig_H6, 7 bytes

BME280_ID = 0x60
BMP280_IDS = (0x56, 0x57, 0x58)  # the same chip without the humidity sensor
STATUS_MEASURING = 0x08
SKIPPED_TP = 0x80000
SKIPPED_H = 0x8000

OSRS_X1 = 0b001
MODE_FORCED = 0b01


@dataclass(frozen=True, slots=True)
class Calibration:
    """The trimming parameters read from the chip's NVM."""

    t1: int
    t2: int
    t3: int
    p1: int
    p2: int
    p3: int
    p4: int
    p5: int
    p6: int
    p7: int
    p8: int
    p9: int
    h1: int = 0
    h2: int = 0
    h3: int = 0
    h4: int = 0
    h5: int = 0
    h6: int = 0


@dataclass(frozen=True, slots=True)
class Sample:
    """One compensated measurement: °C, Pa and %RH (None where the chip skipped it)."""

    temperature: float
    pressure: float | None
    humidity: float | None


def parse_calibration(tp: bytes, h1: int, h: bytes | None) -> Calibration:
    """Calibration from the 24 bytes at 0x88, the byte at 0xA1 and the 7 bytes at 0xE1."""
    t1, t2, t3, p1, p2, p3, p4, p5, p6, p7, p8, p9 = struct.unpack("<HhhHhhhhhhhh", tp[:24])
    if h is None:
        return Calibration(t1, t2, t3, p1, p2, p3, p4, p5, p6, p7, p8, p9)
    h2 = struct.unpack("<h", h[0:2])[0]
    h3 = h[2]
    e4 = struct.unpack("b", h[3:4])[0]  # signed, as in Bosch's reference driver
    e6 = struct.unpack("b", h[5:6])[0]
    h4 = (e4 * 16) | (h[4] & 0x0F)
    h5 = (e6 * 16) | (h[4] >> 4)
    h6 = struct.unpack("b", h[6:7])[0]
    return Calibration(t1, t2, t3, p1, p2, p3, p4, p5, p6, p7, p8, p9, h1, h2, h3, h4, h5, h6)


def parse_raw(data: bytes) -> tuple[int, int, int]:
    """(adc_T, adc_P, adc_H) from the 8 data bytes at 0xF7."""
    adc_p = (data[0] << 12) | (data[1] << 4) | (data[2] >> 4)
    adc_t = (data[3] << 12) | (data[4] << 4) | (data[5] >> 4)
    adc_h = (data[6] << 8) | data[7]
    return adc_t, adc_p, adc_h


def _div(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def t_fine_int(cal: Calibration, adc_t: int) -> int:
    """The fine temperature carried into the pressure and humidity formulas."""
    var1 = (((adc_t >> 3) - (cal.t1 << 1)) * cal.t2) >> 11
    var2 = (((((adc_t >> 4) - cal.t1) * ((adc_t >> 4) - cal.t1)) >> 12) * cal.t3) >> 14
    return var1 + var2


def temperature_int(cal: Calibration, adc_t: int) -> tuple[int, int]:
    """(temperature in 0.01 °C, t_fine)."""
    t_fine = t_fine_int(cal, adc_t)
    return (t_fine * 5 + 128) >> 8, t_fine


def pressure_int64(cal: Calibration, adc_p: int, t_fine: int) -> int:
    """Pressure in Pa as Q24.8 (divide by 256); 0 when the calibration would divide by zero."""
    var1 = t_fine - 128000
    var2 = var1 * var1 * cal.p6
    var2 = var2 + ((var1 * cal.p5) << 17)
    var2 = var2 + (cal.p4 << 35)
    var1 = ((var1 * var1 * cal.p3) >> 8) + ((var1 * cal.p2) << 12)
    var1 = (((1 << 47) + var1) * cal.p1) >> 33
    if var1 == 0:
        return 0
    p = 1048576 - adc_p
    p = _div(((p << 31) - var2) * 3125, var1)
    var1 = (cal.p9 * (p >> 13) * (p >> 13)) >> 25
    var2 = (cal.p8 * p) >> 19
    return ((p + var1 + var2) >> 8) + (cal.p7 << 4)


def humidity_int32(cal: Calibration, adc_h: int, t_fine: int) -> int:
    """Relative humidity in %RH as Q22.10 (divide by 1024)."""
    v = t_fine - 76800
    v = ((((adc_h << 14) - (cal.h4 << 20) - (cal.h5 * v)) + 16384) >> 15) * (
        (
            (((((v * cal.h6) >> 10) * (((v * cal.h3) >> 11) + 32768)) >> 10) + 2097152) * cal.h2
            + 8192
        )
        >> 14
    )
    v = v - (((((v >> 15) * (v >> 15)) >> 7) * cal.h1) >> 4)
    v = min(max(v, 0), 419430400)
    return v >> 12


def temperature_float(cal: Calibration, adc_t: int) -> tuple[float, int]:
    """(temperature in °C, t_fine) by the floating-point formula."""
    var1 = (adc_t / 16384.0 - cal.t1 / 1024.0) * cal.t2
    var2 = ((adc_t / 131072.0 - cal.t1 / 8192.0) * (adc_t / 131072.0 - cal.t1 / 8192.0)) * cal.t3
    return (var1 + var2) / 5120.0, int(var1 + var2)


def pressure_float(cal: Calibration, adc_p: int, t_fine: int) -> float:
    """Pressure in Pa by the floating-point formula."""
    var1 = t_fine / 2.0 - 64000.0
    var2 = var1 * var1 * cal.p6 / 32768.0
    var2 = var2 + var1 * cal.p5 * 2.0
    var2 = var2 / 4.0 + cal.p4 * 65536.0
    var1 = (cal.p3 * var1 * var1 / 524288.0 + cal.p2 * var1) / 524288.0
    var1 = (1.0 + var1 / 32768.0) * cal.p1
    if var1 == 0.0:
        return 0.0
    p = 1048576.0 - adc_p
    p = (p - var2 / 4096.0) * 6250.0 / var1
    var1 = cal.p9 * p * p / 2147483648.0
    var2 = p * cal.p8 / 32768.0
    return p + (var1 + var2 + cal.p7) / 16.0


def humidity_float(cal: Calibration, adc_h: int, t_fine: int) -> float:
    """Relative humidity in %RH by the floating-point formula."""
    h = t_fine - 76800.0
    h = (adc_h - (cal.h4 * 64.0 + cal.h5 / 16384.0 * h)) * (
        cal.h2 / 65536.0 * (1.0 + cal.h6 / 67108864.0 * h * (1.0 + cal.h3 / 67108864.0 * h))
    )
    h = h * (1.0 - cal.h1 * h / 524288.0)
    return min(max(h, 0.0), 100.0)


def compensate(cal: Calibration, data: bytes, *, has_humidity: bool = True) -> Sample | None:
    """A Sample from the 8 data bytes, by the integer formulas; None if temperature was skipped."""
    adc_t, adc_p, adc_h = parse_raw(data)
    if adc_t == SKIPPED_TP:
        return None
    centi, t_fine = temperature_int(cal, adc_t)
    pressure = None if adc_p == SKIPPED_TP else pressure_int64(cal, adc_p, t_fine) / 256.0
    humidity = None
    if has_humidity and adc_h != SKIPPED_H:
        humidity = humidity_int32(cal, adc_h, t_fine) / 1024.0
    return Sample(centi / 100.0, pressure, humidity)
