"""Driver latency: a tag on the simulated reader, a key byte on the simulated keypad line.

``nfc_read_ms``: from ``present(uid)`` on the emulated tag (the reader's poll is
already waiting, as when a card enters a polling reader's field) to the
TagPresented coming out of the driver's async iterator. Baseline: stock nfcpy's
``clf.connect(rdwr=...)`` reading the same emulated tag (it also activates the
tag as a Type 2 tag, which the driver skips: it only needs the UID).

``keypad_key_us``: from ``os.write`` of one key byte on the pty master to the
KeyPressed coming out of the driver. Baseline: a bare blocking pyserial
``read(1)`` of the byte on another pty.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import tty

import serial

from drivers.nfc import open_frontend
from drivers.registry import open_keypad, open_nfc
from drivers.sim_nfc import SimTagEmulator
from tests.bench.harness import Metric, percentiles

TAPS = 200
KEYS = 2000
UID = "04A1B2C3D4E5F6"


async def _wait_holding(emulator: SimTagEmulator) -> None:
    for _ in range(20_000):
        if emulator.holding:
            return
        await asyncio.sleep(0.0002)
    raise RuntimeError("the reader never polled")


async def nfc_driver_ms() -> list[float]:
    """Present -> TagPresented yielded, per tap."""
    driver = open_nfc("sim:")
    driver.presence_interval = 0.02  # fast removal between taps; presentation is unaffected
    samples = []
    async with driver:
        emulator: SimTagEmulator = driver.twin
        await driver.wait_connected()
        for _ in range(TAPS):
            emulator.hold_polls_now()
            await _wait_holding(emulator)
            start = time.perf_counter()
            emulator.present(UID)
            got = await anext(driver)
            samples.append((time.perf_counter() - start) * 1000)
            assert got.uid == UID  # type: ignore[union-attr]
            emulator.remove()
            await anext(driver)  # TagRemoved
    return samples


def nfc_bare_ms() -> list[float]:
    """Present -> clf.connect() returns the tag, per tap (stock nfcpy, no asyncio)."""
    emulator = SimTagEmulator()
    emulator.start()
    clf = open_frontend(emulator.path)
    go, done = threading.Event(), threading.Event()
    finished: list[float] = []
    options = {"targets": ["106A"], "on-connect": lambda tag: False, "iterations": 1}

    def reader() -> None:
        for _ in range(TAPS):
            go.wait()
            go.clear()
            tag = clf.connect(rdwr=options)
            finished.append(time.perf_counter())
            assert tag.identifier == bytes.fromhex(UID)
            done.set()

    thread = threading.Thread(target=reader, name="bench-nfc-bare")
    thread.start()
    samples = []
    try:
        for _ in range(TAPS):
            emulator.hold_polls_now()
            go.set()
            while not emulator.holding:
                time.sleep(0.0002)
            start = time.perf_counter()
            emulator.present(UID)
            done.wait(10)
            done.clear()
            samples.append((finished[-1] - start) * 1000)
            emulator.remove()
    finally:
        thread.join(10)
        clf.close()
        emulator.close()
    return samples


async def keypad_driver_us() -> list[float]:
    """One byte on the pty master -> KeyPressed yielded, per key."""
    samples = []
    async with open_keypad("sim:") as driver:
        await driver.wait_connected()
        master = driver.twin._line[0]
        for i in range(KEYS):
            byte = b"0123456789"[i % 10 : i % 10 + 1]
            start = time.perf_counter_ns()
            os.write(master, byte)
            await anext(driver)
            samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


def keypad_bare_us() -> list[float]:
    """One byte on a pty master -> a bare pyserial read(1) returns it."""
    master, slave = os.openpty()
    tty.setraw(slave)
    port = serial.Serial(os.ttyname(slave), 9600, timeout=1)
    samples = []
    try:
        for i in range(KEYS):
            byte = b"0123456789"[i % 10 : i % 10 + 1]
            start = time.perf_counter_ns()
            os.write(master, byte)
            assert port.read(1) == byte
            samples.append((time.perf_counter_ns() - start) / 1000)
    finally:
        port.close()
        os.close(master)
        os.close(slave)
    return samples


async def run() -> list[Metric]:
    nfc_base = percentiles(await asyncio.to_thread(nfc_bare_ms))
    nfc = percentiles(await nfc_driver_ms())
    key_base = percentiles(keypad_bare_us())
    key = percentiles(await keypad_driver_us())
    return [
        Metric(
            "nfc_read_ms",
            nfc[0],
            "ms",
            baseline=nfc_base[0],
            target="p50 <= 20 ms, p99 <= 100 ms",
            extra={"p99": nfc[1], "baseline_p99": nfc_base[1], "taps": TAPS},
            met=nfc[0] <= 20 and nfc[1] <= 100,
        ),
        Metric(
            "keypad_key_us",
            key[0],
            "us",
            baseline=key_base[0],
            target="p50 <= 1000 us",
            extra={"p99": key[1], "baseline_p99": key_base[1], "keys": KEYS},
            met=key[0] <= 1000,
        ),
    ]
