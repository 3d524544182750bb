"""Secure tags: SUN verification cost and the tap-to-decision time of a SUN read.

``sun_verify_us``: ``drivers.ntag424.verify_uri`` on one SUN URI (parse, decrypt
PICCData, derive the session MAC key, MAC over empty input, compare). Baseline:
the same three AES operations done bare with ``cryptography`` (one block
decrypt, two CMACs) and the MAC comparison, no parsing or other checks. Target ratio <= 2.

``secure_tap_ms``: from ``present(chip)`` of a personalised simulated NTAG 424
DNA (the reader's poll already waiting) to the TagPresented coming out of the
driver in ``sun`` mode: anticollision, RATS, three APDUs over ISO-DEP, the
verification and the counter check. Baseline: ``nfc_read_ms`` (UID only, the
same driver in ``uid`` mode), measured in the same run.
"""

from __future__ import annotations

import asyncio
import hmac
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from drivers import ntag424
from drivers.ntag424 import MemoryCounters, SunKeys, SunPolicy
from drivers.registry import open_nfc
from drivers.sim_nfc import SimTagEmulator
from drivers.sim_ntag424 import Ntag424Chip
from tests.bench.bench_drivers import _wait_holding, nfc_driver_ms
from tests.bench.harness import Metric, percentiles, rate

UID = "04A1B2C3D4E5F6"
KEYS = SunKeys(bytes.fromhex("8E1F3F0A6C2D4B5A69788796A5B4C3D2"), bytes(range(1, 17)))
TAPS = 200


def _message() -> tuple[str, bytes, bytes, bytes]:
    uid = bytes.fromhex(UID)
    picc = ntag424.encrypt_picc_data(KEYS.meta_key, uid, 42, b"\x01\x02\x03\x04\x05")
    mac = ntag424.sdm_mac(KEYS.file_key, uid, 42)
    uri = f"https://example.com/t?picc_data={picc.hex().upper()}&cmac={mac.hex().upper()}"
    return uri, picc, mac, uid


def verify_us() -> tuple[float, float]:
    """(verify_uri, bare AES) in microseconds per message."""
    uri, picc, mac, uid = _message()
    meta, file = KEYS.meta_key, KEYS.file_key
    sv2 = ntag424.SV2_PREFIX + uid + (42).to_bytes(3, "little")

    def ours() -> None:
        ntag424.verify_uri(KEYS, uri, uid=uid)

    def bare() -> None:
        dec = Cipher(algorithms.AES(meta), modes.CBC(bytes(16))).decryptor()
        dec.update(picc)
        dec.finalize()
        c = CMAC(algorithms.AES(file))
        c.update(sv2)
        session = c.finalize()
        m = CMAC(algorithms.AES(session))
        assert hmac.compare_digest(m.finalize()[1::2], mac)

    ours()
    return 1e6 / rate(ours), 1e6 / rate(bare)


async def secure_tap_ms() -> list[float]:
    """Present a personalised chip -> TagPresented yielded in sun mode, per tap."""
    policy = SunPolicy(KEYS, frozenset({UID}), MemoryCounters())
    driver = open_nfc("sim:", sun=policy)
    driver.presence_interval = 0.02  # type: ignore[attr-defined]
    chip = Ntag424Chip(UID).personalise(KEYS)
    samples = []
    async with driver:
        emulator: SimTagEmulator = driver.twin
        await driver.wait_connected()
        for _ in range(TAPS):
            emulator.hold_polls_now()
            await _wait_holding(emulator)
            start = time.perf_counter()
            emulator.present(chip)
            got = await anext(driver)
            samples.append((time.perf_counter() - start) * 1000)
            assert type(got).__name__ == "TagPresented", got
            emulator.remove()
            await anext(driver)  # TagRemoved
    assert chip.read_counter == TAPS
    return samples


async def run() -> list[Metric]:
    ours, bare = await asyncio.to_thread(verify_us)
    uid_only = percentiles(await nfc_driver_ms())
    secure = percentiles(await secure_tap_ms())
    return [
        Metric(
            "sun_verify_us",
            ours,
            "us",
            baseline=bare,
            target="ratio <= 2",
            met=ours <= 2 * bare,
        ),
        Metric(
            "secure_tap_ms",
            secure[0],
            "ms",
            baseline=uid_only[0],
            target="p50 <= 50 ms, p99 <= 150 ms on the twin",
            extra={"p99": secure[1], "baseline_p99": uid_only[1], "taps": TAPS},
            met=secure[0] <= 50 and secure[1] <= 150,
        ),
    ]
