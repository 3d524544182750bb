"""The NFC reader driver (nfcpy underneath) against a tag emulated on nfcpy's UDP wire.

With ``--nfc-url PATH`` (and ``-s``) the same tests run against a real reader:
the test asks you to present and remove a tag. Tests that need a particular UID
or a reader fault run against the emulator only.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from drivers.base import Backoff
from drivers.nfc import LoopbackUdpDevice, NfcReader, open_frontend
from drivers.registry import open_nfc
from drivers.sim_nfc import SimTagEmulator, normalize_uid
from panel.inputs import DeviceBack, DeviceLost, Input, TagPresented, TagRemoved

SEVEN = "04A1B2C3D4E5F6"
FOUR = "DEADBEEF"
TEN = "0102030405060708090A"
REAL = pytest.param("real", marks=[pytest.mark.hardware, pytest.mark.timeout(600)])


class Person:
    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys

    def ask(self, text: str) -> None:
        with self._capsys.disabled():
            print(f"\n>>> {text}", flush=True)


@pytest.fixture(params=["sim:", REAL])
async def reader(
    request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> AsyncIterator[tuple[NfcReader, Person]]:
    url = request.param
    if url == "real":
        url = request.config.getoption("--nfc-url", default=None)
        if not url:
            pytest.skip("real reader: pass --nfc-url PATH (and -s)")
    driver = open_nfc(str(url))
    driver._backoff = Backoff(base=0.01, cap=0.05)  # type: ignore[attr-defined]
    async with driver:
        async with asyncio.timeout(10):
            await driver.wait_connected()
        yield driver, Person(capsys)  # type: ignore[misc]


@pytest.fixture
async def sim_reader() -> AsyncIterator[NfcReader]:
    """Particular UIDs and reader faults: the emulator only."""
    driver = open_nfc("sim:")
    driver._backoff = Backoff(base=0.01, cap=0.05)  # type: ignore[attr-defined]
    async with driver:
        async with asyncio.timeout(10):
            await driver.wait_connected()
        yield driver  # type: ignore[misc]


def _limit(driver: NfcReader) -> float:
    return 5.0 if driver.twin is not None else 120.0


async def take(driver: NfcReader, count: int = 1) -> list[Input]:
    async with asyncio.timeout(_limit(driver)):
        return [await anext(driver) for _ in range(count)]


async def nothing_for(driver: NfcReader, seconds: float) -> None:
    """Nothing arrives for ``seconds`` (while the reader keeps polling)."""
    try:
        async with asyncio.timeout(seconds):
            extra = await anext(driver)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected input: {extra}")


async def polled(driver: NfcReader, times: int = 3) -> None:
    """The emulator has answered ``times`` more polls: the reader kept looking at the field."""
    twin = driver.twin
    start = twin.polls
    async with asyncio.timeout(10):
        while twin.polls < start + times:
            await asyncio.sleep(0.005)


async def held(driver: NfcReader) -> None:
    """A tag stays on the reader while it checks the field several times (a person holding a
    real tag: a moment). Whatever the reader wrongly reported meanwhile comes before the
    next input the caller takes."""
    if driver.twin is None:
        await nothing_for(driver, 0.4)
    else:
        await polled(driver)


def present(driver: NfcReader, person: Person, uid: str) -> str | None:
    if driver.twin is not None:
        driver.twin.present(uid)
        return uid
    person.ask("hold a tag on the reader and keep it there")
    return None


def remove(driver: NfcReader, person: Person) -> None:
    if driver.twin is not None:
        driver.twin.remove()
    else:
        person.ask("take the tag away")


# -- on every reader -----------------------------------------------------------------------------
@pytest.mark.parametrize("uid", [SEVEN, FOUR])
async def test_tap_hold_remove_and_tap_again(reader: Any, uid: str) -> None:
    driver, person = reader
    expected = present(driver, person, uid)
    first = await take(driver)
    assert isinstance(first[0], TagPresented)
    seen = first[0].uid
    if expected is not None:
        assert seen == expected
    await held(driver)  # held on the reader: still one tap ...
    remove(driver, person)  # ... and the next input is its removal
    assert await take(driver) == [TagRemoved(seen)]
    present(driver, person, uid)
    again = await take(driver)
    assert again == [TagPresented(seen)]
    remove(driver, person)
    assert await take(driver) == [TagRemoved(seen)]
    assert driver.taps >= 2


# -- emulated tags only ------------------------------------------------------------------------
async def test_ten_byte_uids_and_swapping_tags(sim_reader: NfcReader) -> None:
    driver = sim_reader
    driver.twin.present(TEN)
    assert await take(driver) == [TagPresented(TEN)]
    driver.twin.present(SEVEN)  # the first tag leaves as the second arrives
    assert await take(driver, 2) == [TagRemoved(TEN), TagPresented(SEVEN)]


async def test_random_uids_are_not_taps(sim_reader: NfcReader) -> None:
    driver = sim_reader
    driver.twin.present("08123456")  # a phone: a fresh random UID each time
    async with asyncio.timeout(10):
        while driver.random_uids < 1:  # seen, and not taken for a tap ...
            await asyncio.sleep(0.005)
    await polled(driver)  # ... while the reader keeps looking
    driver.twin.present(FOUR)
    assert await take(driver, 1) == [TagPresented(FOUR)]  # no tap came before it


async def test_reader_lost_and_back(sim_reader: NfcReader) -> None:
    driver = sim_reader
    driver.twin.present(SEVEN)
    assert await take(driver) == [TagPresented(SEVEN)]
    driver.twin.unplug()
    removed, lost = await take(driver, 2)
    assert removed == TagRemoved(SEVEN)  # a tag on a vanished reader is gone too
    assert isinstance(lost, DeviceLost)
    assert lost.device == "nfc"
    assert "no such device" in lost.reason.lower()
    driver.twin.plug()
    assert await take(driver) == [DeviceBack("nfc")]
    driver.twin.present(FOUR)
    assert await take(driver) == [TagPresented(FOUR)]


async def test_tap_settles_when_the_panel_has_both_inputs(sim_reader: NfcReader) -> None:
    driver = sim_reader
    got: list[Input] = []

    async def consume() -> None:
        async for inp in driver:
            got.append(inp)

    consumer = asyncio.create_task(consume())
    try:
        async with asyncio.timeout(5):
            await driver.twin.tap(SEVEN)
        assert got == [TagPresented(SEVEN), TagRemoved(SEVEN)]
        await driver.twin.present(FOUR)  # an awaited action settles the same way
        assert got[-1] == TagPresented(FOUR)
    finally:
        consumer.cancel()


async def test_everything_binds_loopback_only(sim_reader: NfcReader) -> None:
    driver = sim_reader
    emulator: SimTagEmulator = driver.twin
    assert emulator._sock is not None
    assert emulator._sock.getsockname()[0] == "127.0.0.1"
    driver.twin.present(FOUR)
    await take(driver)
    sock = driver._clf.device.socket  # the reader holds the tag: its socket is open
    assert sock.getsockname()[0] == "127.0.0.1"
    assert sock.getpeername() == ("127.0.0.1", emulator.port)


# -- the emulator on its own, read by stock nfcpy -----------------------------------------------
@pytest.fixture
def emulator() -> Iterator[SimTagEmulator]:
    emu = SimTagEmulator()
    emu.start()
    try:
        yield emu
    finally:
        emu.close()


def test_bare_nfcpy_activates_the_emulated_tag(emulator: SimTagEmulator) -> None:
    emulator.present(SEVEN)
    clf = open_frontend(emulator.path)
    try:
        tag = clf.connect(rdwr={"targets": ["106A"], "on-connect": lambda tag: False})
        assert tag is not None
        assert tag.identifier == bytes.fromhex(SEVEN)
        assert tag.type == "Type2Tag"
        assert "NTAG213" in str(tag)
        assert tag.ndef is not None  # capability container read page by page
        assert emulator.reads > 0
    finally:
        clf.close()


def test_an_empty_field_answers_fast_and_no_tag_is_invented(emulator: SimTagEmulator) -> None:
    import nfc.clf

    clf = open_frontend(emulator.path)
    try:
        # Started under half a second ago: not held, RFOFF at once.
        assert clf.sense(nfc.clf.RemoteTarget("106A"), iterations=1) is None
        # A poll for another technology gets no tag either.
        assert clf.sense(nfc.clf.RemoteTarget("106B"), iterations=1) is None
    finally:
        clf.close()


def test_a_poll_held_in_an_empty_field_is_answered_by_a_presented_tag(
    emulator: SimTagEmulator,
) -> None:
    import time

    import nfc.clf

    emulator.hold_polls_now()  # past the start-up grace: polls are held
    clf = open_frontend(emulator.path)
    found: list[Any] = []
    poller = threading.Thread(
        target=lambda: found.append(clf.sense(nfc.clf.RemoteTarget("106A"), iterations=1))
    )
    poller.start()
    try:
        deadline = time.monotonic() + 10  # the poller thread may wait its turn under load
        while not emulator.holding and time.monotonic() < deadline:
            time.sleep(0.005)
        assert emulator.holding
        emulator.present(FOUR)
        poller.join(5)
        assert found
        assert bytes(found[0].sdd_res) == bytes.fromhex(FOUR)
    finally:
        poller.join(5)
        clf.close()


def test_udp_reader_refuses_anything_but_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        LoopbackUdpDevice("192.0.2.1", 54321)


def test_uid_normalisation() -> None:
    assert normalize_uid("04:a1:b2:c3") == bytes.fromhex("04A1B2C3")
    with pytest.raises(ValueError, match="4, 7 or 10"):
        normalize_uid("0102")
    with pytest.raises(ValueError, match="not hex"):
        normalize_uid("zz112233")


def test_a_closed_emulator_leaves_no_socket_open() -> None:
    emu = SimTagEmulator()
    emu.start()
    port = emu.port
    emu.close()
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.bind(("127.0.0.1", port))  # the port is free again
    finally:
        probe.close()


async def test_stopping_while_a_poll_is_held_is_quiet(
    emulator: SimTagEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.hold_polls_now()
    driver = NfcReader(emulator.path)  # no twin: only the driver's own interrupt can wake it
    async with driver:
        async with asyncio.timeout(10):  # the driver's thread may wait its turn under load
            while not emulator.holding:
                await asyncio.sleep(0.002)
    assert [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")] == []
    assert [i async for i in driver] == []  # ended cleanly, no error raised to the consumer


# -- a udp: reader with a tag emulator that only listens while a tag is presented ---------------
async def test_udp_reader_with_no_emulator_listening_sees_an_empty_field() -> None:
    """A rig starts its emulator for a tap and stops it after: that is no tag, not a lost reader."""
    first = SimTagEmulator()
    first.start()
    port = first.port
    driver = NfcReader(first.path, backoff=Backoff(base=1.0, cap=5.0))
    async with driver:
        async with asyncio.timeout(10):
            await driver.wait_connected()
        first.present(SEVEN)
        assert await take(driver) == [TagPresented(SEVEN)]
        first.close()  # the tag goes, and with it the emulator: nothing listens on the port
        assert await take(driver) == [TagRemoved(SEVEN)]
        async with asyncio.timeout(5):
            before = driver.absent_polls
            while driver.absent_polls < before + 5:  # it keeps polling the silent port
                await asyncio.sleep(0.01)
        for _ in range(2):  # and again, the next taps of the rig
            emulator = SimTagEmulator(port)
            emulator.start()
            try:
                emulator.present(FOUR)
                assert await take(driver) == [TagPresented(FOUR)]  # no DeviceLost/DeviceBack
            finally:
                emulator.close()
            assert await take(driver) == [TagRemoved(FOUR)]
        assert driver.connected
    assert [i async for i in driver] == []


# -- sun mode on the driver alone ---------------------------------------------------------------
class _BrokenCounters:
    """A counter store whose disk has failed."""

    def last_counter(self, uid: str) -> int | None:
        return None

    def accept_counter(self, uid: str, counter: int) -> None:
        raise OSError(5, "Input/output error")

    def synchronised(self) -> bool:
        return True


async def test_sun_mode_fails_closed_when_the_counter_cannot_be_recorded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from drivers.ntag424 import SunKeys, SunPolicy
    from drivers.sim_ntag424 import Ntag424Chip
    from panel.inputs import TagRefused

    keys = SunKeys(bytes(range(1, 17)), bytes(range(17, 33)))
    policy = SunPolicy(keys, frozenset({SEVEN}), _BrokenCounters())
    driver = open_nfc("sim:", sun=policy)
    async with driver:
        async with asyncio.timeout(10):
            await driver.wait_connected()
        driver.twin.present(Ntag424Chip(SEVEN).personalise(keys))
        assert await take(driver) == [TagRefused(SEVEN, "counter not recorded")]
        assert driver.connected  # the reader carries on
        driver.twin.remove()
        assert await take(driver) == [TagRemoved(SEVEN)]


def test_stock_nfcpy_reads_the_simulated_ntag424_as_a_type4_tag(emulator: SimTagEmulator) -> None:
    """nfcpy's own Type 4 Tag NDEF reader (capability container and all) reads the twin."""
    import ndef

    from drivers import ntag424
    from drivers.ntag424 import SunKeys
    from drivers.sim_ntag424 import Ntag424Chip

    keys = SunKeys(bytes(range(1, 17)), bytes(range(17, 33)))
    chip = Ntag424Chip(SEVEN).personalise(keys, "https://example.com/t")
    emulator.present(chip)
    clf = open_frontend(emulator.path)
    try:
        tag = clf.connect(rdwr={"targets": ["106A"], "on-connect": lambda tag: False})
        assert tag is not None and tag.type == "Type4Tag"
        assert tag.identifier == bytes.fromhex(SEVEN)
        (record,) = tag.ndef.records
        assert isinstance(record, ndef.UriRecord)
        assert record.iri.startswith("https://example.com/t?picc_data=")
        read = ntag424.verify_uri(keys, record.iri, uid=bytes.fromhex(SEVEN))
        assert read == ntag424.SunRead(SEVEN, 1) and chip.read_counter == 1
    finally:
        clf.close()


async def test_sun_mode_refuses_a_card_with_a_malformed_answer_and_reads_on() -> None:
    from drivers.ntag424 import MemoryCounters, SunKeys, SunPolicy
    from drivers.sim_ntag424 import Ntag424Chip
    from panel.inputs import TagRefused

    keys = SunKeys(bytes(range(1, 17)), bytes(range(17, 33)))
    policy = SunPolicy(keys, frozenset({SEVEN}), MemoryCounters())
    driver = open_nfc("sim:", sun=policy)
    async with driver:
        async with asyncio.timeout(10):
            await driver.wait_connected()
        broken = Ntag424Chip(SEVEN).personalise(keys)
        broken.ats = b"\x01"  # an answer to RATS too short to parse
        driver.twin.present(broken)
        assert await take(driver) == [TagRefused(SEVEN, "no SUN message")]
        driver.twin.remove()
        assert await take(driver) == [TagRemoved(SEVEN)]
        driver.twin.present(Ntag424Chip(SEVEN).personalise(keys))
        assert await take(driver) == [TagPresented(SEVEN)]
        assert driver.connected
