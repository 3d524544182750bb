"""Tags that cannot be cloned: a panel with ``[nfc] tags = "sun"`` and simulated NTAG 424 DNA tags.

The real NFC driver reads each simulated tag over nfcpy's UDP wire (anticollision,
RATS, ISO-DEP, ISO 7816-4 APDUs); the panel's store keeps the read counters.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from drivers.ntag424 import SunKeys
from drivers.sim_ntag424 import Ntag424Chip
from hub.process import HubProcess
from panel.config import SiteConfig, load_site_mapping
from panel.process import PanelProcess
from protocol.keys import generate_key
from protocol.messages import Event, EventType
from sim.broker import BrokerSpec, Mosquitto
from tests.panel_site import make_configs
from tests.test_store_loss import forget, until

ALICE = "04A1B2C3D4E5F6"
STRANGER = "04112233445566"
META = bytes.fromhex("8E1F3F0A6C2D4B5A69788796A5B4C3D2")
FILE = bytes.fromhex("1C2B3A4958677685941A2B3C4D5E6F70")
KEYS = SunKeys(META, FILE)
OTHER = bytes.fromhex("00112233445566778899AABBCCDDEEFF")


def site(tmp_path: Path, *, link: dict[str, Any] | None = None, **security: Any) -> SiteConfig:
    """A ``sun`` site; with ``link`` (its ``mqtt``, ``link``, ``store`` sections) one with a hub."""
    data: dict[str, Any] = {
        "panel": {"id": "p1", "site": "demo"},
        "security": {"max_attempts": 5, "lockout": 60, **security},
        "users": [{"name": "alice", "code": "1234", "role": "master", "tags": [ALICE]}],
        "zones": [{"name": "front_door", "kind": "entry"}],
        "nfc": {"tags": "sun", "meta_key": META.hex(), "file_key": FILE.hex()},
        **(link or {}),
    }
    return load_site_mapping(data, str(tmp_path / "site.toml"), base_dir=tmp_path)


@pytest.fixture
async def panel(tmp_path: Path) -> AsyncIterator[PanelProcess]:
    async with PanelProcess(site(tmp_path, max_attempts=6)) as running:
        await asyncio.wait_for(running.nfc.wait_connected(), 10)
        yield running


def tag_events(panel: PanelProcess) -> list[Event]:
    kinds = (EventType.TAG_REJECTED, EventType.KEYPAD_LOCKED)
    return [e for e in panel.recent_events if e.type in kinds]


async def tap(panel: PanelProcess, tag: str | Ntag424Chip, *, ndef: bytes = b"") -> None:
    async with asyncio.timeout(10):
        await panel.nfc.twin.tap(tag, ndef=ndef)
        while not panel.inputs_idle():
            await asyncio.sleep(0.005)


async def test_only_genuine_fresh_reads_count_and_every_refusal_counts_towards_lockout(
    panel: PanelProcess,
) -> None:
    genuine = Ntag424Chip(ALICE).personalise(KEYS)
    await tap(panel, genuine)  # read counter 1
    first = genuine.recorded_message()
    await tap(panel, genuine)  # read counter 2
    second = genuine.recorded_message()
    assert panel.nfc.refused == 0
    assert tag_events(panel) == []
    assert panel.view().state.value == "disarmed"

    # A copy of the UID on a writable card, with or without a skimmed URL on it.
    await tap(panel, ALICE)
    # Tags made with the wrong keys (a forger's NTAG 424 DNA).
    await tap(panel, Ntag424Chip(ALICE).personalise(SunKeys(META, OTHER)))
    await tap(panel, Ntag424Chip(ALICE).personalise(SunKeys(OTHER, FILE)))
    # A genuine tag of this site that nobody holds.
    await tap(panel, Ntag424Chip(STRANGER).personalise(KEYS))
    # Skimmed messages played back by an emulator with the same UID: the last one, an older one.
    for message in (second, first):
        replay = Ntag424Chip(ALICE)
        replay.write_ndef(message)
        await tap(panel, replay)

    events = tag_events(panel)
    refused = [(e.tag, e.detail) for e in events if e.type is EventType.TAG_REJECTED]
    assert refused == [
        (ALICE, "no SUN message"),
        (ALICE, "bad MAC"),
        (ALICE, "bad PICCData"),
        (STRANGER, "unknown tag"),
        (ALICE, "counter not increased"),
        (ALICE, "counter not increased"),
    ]
    assert events[-1].type is EventType.KEYPAD_LOCKED  # the sixth refusal locked the reader
    assert panel.view().locked_until_ms is not None
    assert panel.nfc.refused == 6


async def test_a_genuine_read_arms_with_its_user(panel: PanelProcess) -> None:
    chip = Ntag424Chip(ALICE).personalise(KEYS)
    await tap(panel, chip)
    await panel.keypad.twin.type("A")
    async with asyncio.timeout(5):
        while panel.view().state.value != "arming":
            await asyncio.sleep(0.01)
    arming = [e for e in panel.recent_events if e.type is EventType.ARMING][-1]
    assert (arming.user, arming.tag, arming.method.value) == ("alice", ALICE, "tag")


async def test_the_read_counter_survives_a_restart(tmp_path: Path) -> None:
    config = site(tmp_path)
    chip = Ntag424Chip(ALICE).personalise(KEYS)
    async with PanelProcess(config) as panel:
        await asyncio.wait_for(panel.nfc.wait_connected(), 10)
        await tap(panel, chip)
        await tap(panel, chip)
        skimmed = chip.recorded_message()
        assert tag_events(panel) == []
    async with PanelProcess(config) as panel:
        await asyncio.wait_for(panel.nfc.wait_connected(), 10)
        replay = Ntag424Chip(ALICE)
        replay.write_ndef(skimmed)
        await tap(panel, replay)
        assert [(e.tag, e.detail) for e in tag_events(panel)] == [(ALICE, "counter not increased")]
        await tap(panel, chip)  # counter 3: genuine and fresh
        assert len(tag_events(panel)) == 1
        assert panel.nfc.refused == 1
        assert chip.read_counter == 3


def linked_site(tmp_path: Path, broker: Mosquitto) -> tuple[SiteConfig, Any]:
    """A ``sun`` panel with its store and a hub on ``broker``: (panel config, hub config)."""
    key = generate_key()
    _, hub_cfg = make_configs(tmp_path, broker.url, key=key)
    link = {
        "mqtt": {"broker": broker.url},
        "link": {"key": key, "heartbeat": 30},
        "store": {"path": str(tmp_path / "p1.db")},
    }
    return site(tmp_path, link=link), hub_cfg


async def test_a_lost_store_takes_the_read_counters_back_from_the_hub(
    broker_factory: Callable[[BrokerSpec], Mosquitto], tmp_path: Path
) -> None:
    broker = broker_factory(BrokerSpec())
    config, hub_cfg = linked_site(tmp_path, broker)
    chip = Ntag424Chip(ALICE).personalise(KEYS)
    async with HubProcess(hub_cfg) as hub:
        assert hub.store is not None
        held = hub.store
        async with PanelProcess(config) as panel:
            await asyncio.wait_for(panel.nfc.wait_connected(), 10)
            await until(panel.tag_counters.synchronised)  # the hub had none for it
            await tap(panel, chip)  # read counter 1
            older = chip.recorded_message()
            await tap(panel, chip)  # read counter 2: N
            skimmed = chip.recorded_message()
            assert tag_events(panel) == []
            await until(lambda: held.tag_counters("p1") == [(ALICE, 2)])
        forget(config.store.path, leave_empty=False)
        async with PanelProcess(config) as panel:
            await asyncio.wait_for(panel.nfc.wait_connected(), 10)
            await until(panel.tag_counters.synchronised)  # the hub sent its counters
            assert panel.tag_counters.last_counter(ALICE) == 2
            for message in (skimmed, older):
                replay = Ntag424Chip(ALICE)
                replay.write_ndef(message)
                await tap(panel, replay)
            refused = [(e.tag, e.detail) for e in tag_events(panel)]
            assert refused == [(ALICE, "counter not increased")] * 2
            await tap(panel, chip)  # read counter 3: N + 1, genuine and fresh
            assert len(tag_events(panel)) == 2
            assert chip.read_counter == 3
            await until(lambda: held.tag_counters("p1") == [(ALICE, 3)])
    assert hub.counters["tag_counters_sent"] >= 2


async def test_a_new_store_refuses_sun_reads_until_the_hub_sends_its_counters(
    broker_factory: Callable[[BrokerSpec], Mosquitto], tmp_path: Path
) -> None:
    broker = broker_factory(BrokerSpec())
    config, hub_cfg = linked_site(tmp_path, broker)
    chip = Ntag424Chip(ALICE).personalise(KEYS)
    async with PanelProcess(config) as panel:  # its hub is not running yet
        await asyncio.wait_for(panel.nfc.wait_connected(), 10)
        await tap(panel, chip)
        refused = [(e.tag, e.detail) for e in tag_events(panel)]
        assert refused == [(ALICE, "counters not synchronised")]
        async with HubProcess(hub_cfg):
            await until(panel.tag_counters.synchronised)
            await tap(panel, chip)
            assert len(tag_events(panel)) == 1  # accepted
            assert panel.tag_counters.last_counter(ALICE) == 2


async def test_keys_never_appear_in_logs_reprs_or_events(
    panel: PanelProcess, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await tap(panel, Ntag424Chip(ALICE).personalise(KEYS))
    await tap(panel, Ntag424Chip(ALICE).personalise(SunKeys(OTHER, FILE)))
    seen = "\n".join(
        [r.getMessage() for r in caplog.records]
        + [repr(panel.config), repr(panel.config.nfc), repr(panel.nfc.sun)]
        + [json.dumps(str(e)) for e in panel.recent_events]
    ).lower()
    for key in (META, FILE):
        assert key.hex() not in seen


# -- configuration and doctor -------------------------------------------------------------------
def write_site(tmp_path: Path, nfc: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(
        '[panel]\nid = "p1"\nsite = "demo"\n\n'
        '[[users]]\nname = "alice"\ncode = "1234"\nrole = "master"\n'
        f'tags = ["{ALICE}"]\n\n'
        '[[zones]]\nname = "front_door"\nkind = "entry"\n\n' + nfc
    )
    return path


@pytest.mark.parametrize(
    ("nfc", "where", "reason"),
    [
        ('[nfc]\ntags = "sun"\n', "nfc.meta_key", "required"),
        (f'[nfc]\ntags = "sun"\nmeta_key = "{META.hex()}"\n', "nfc.file_key", "required"),
        (
            f'[nfc]\ntags = "sun"\nmeta_key = "{META.hex()[:30]}"\nfile_key = "{FILE.hex()}"\n',
            "nfc.meta_key",
            "32 hex digits",
        ),
        (
            f'[nfc]\ntags = "sun"\nmeta_key = "{"0" * 32}"\nfile_key = "{FILE.hex()}"\n',
            "nfc.meta_key",
            "factory key",
        ),
        (
            f'[nfc]\ntags = "sun"\nmeta_key = "{META.hex()}"\nfile_key = "{META.hex()}"\n',
            "nfc.file_key",
            "differ",
        ),
        ('[nfc]\ntags = "copy"\n', "nfc.tags", "must be one of"),
        (f'[nfc]\nmeta_key = 12\nfile_key = "{FILE.hex()}"\n', "nfc.meta_key", "string"),
    ],
)
def test_bad_nfc_sections_give_one_line_without_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], nfc: str, where: str, reason: str
) -> None:
    from centinela.cli import main

    path = write_site(tmp_path, nfc)
    assert main(["panel", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert where in err and reason in err, err
    assert META.hex()[:30] not in err and FILE.hex() not in err


def test_doctor_warns_in_uid_mode_and_checks_sun_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    from centinela import doctor

    out = io.StringIO()
    status = doctor.report(str(write_site(tmp_path, "")), out=out)
    uid_lines = [line for line in out.getvalue().splitlines() if "nfc tags" in line]
    assert uid_lines and uid_lines[0].startswith("warn") and "can be copied" in uid_lines[0]
    assert status == 0  # a warning, not a missing part

    sun = f'[nfc]\ntags = "sun"\nmeta_key = "{META.hex()}"\nfile_key = "{FILE.hex()}"\n'
    out = io.StringIO()
    doctor.report(str(write_site(tmp_path, sun)), out=out)
    text = out.getvalue()
    sun_lines = [line for line in text.splitlines() if "nfc tags" in line]
    assert sun_lines and sun_lines[0].startswith("ok") and "sun mode" in sun_lines[0]
    assert META.hex() not in text.lower() and FILE.hex() not in text.lower()


# -- enrolment ----------------------------------------------------------------------------------
def enrol_site(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(
        '[panel]\nid = "p1"\nsite = "demo"\n\n'
        '[[users]]\nname = "alice"\ncode = "1234"\nrole = "master"\n'
        f'tags = ["{ALICE}"]\n\n'
        '[[zones]]\nname = "front_door"\nkind = "entry"\n\n'
        f'[devices]\nnfc = "udp:127.0.0.1:{port}"\n\n'
        f'[nfc]\ntags = "sun"\nmeta_key = "{META.hex()}"\nfile_key = "{FILE.hex()}"\n'
        'url = "https://example.com/tap"\n'
    )
    return path


@pytest.fixture
def emulator() -> Any:
    from drivers.sim_nfc import SimTagEmulator

    emu = SimTagEmulator()
    emu.start()
    try:
        yield emu
    finally:
        emu.close()


async def enrol(path: Path, *extra: str) -> tuple[int, str, str]:
    import contextlib
    import io

    from centinela.cli import main

    out, err = io.StringIO(), io.StringIO()

    def run() -> int:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            return main(["tag", "enroll", "--config", str(path), "--timeout", "10", *extra])

    status = await asyncio.to_thread(run)
    return status, out.getvalue(), err.getvalue()


async def test_enrol_a_factory_fresh_tag_then_use_it(
    tmp_path: Path, emulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    path = enrol_site(tmp_path, emulator.port)
    chip = Ntag424Chip(ALICE)
    emulator.present(chip)
    status, out, err = await enrol(path)
    assert status == 0, err
    assert out.strip() == ALICE
    assert chip.keys[1] == FILE and chip.keys[2] == META
    assert chip.keys[0] != bytes(16) and chip.key_versions == [1, 1, 1, 0, 0]
    assert chip.settings[2].sdm
    printed = (out + err + "\n".join(r.getMessage() for r in caplog.records)).lower()
    for key in (META, FILE, chip.keys[0]):
        assert key.hex() not in printed

    # A personalised tag is refused, unless told to re-enrol it (it is this site's).
    status, out, err = await enrol(path)
    assert status == 1 and "already personalised" in err and out == ""
    status, out, err = await enrol(path, "--force")
    assert status == 0 and out.strip() == ALICE, err
    # Another site's tag cannot be taken over, even with --force.
    stranger = Ntag424Chip(STRANGER).personalise(SunKeys(OTHER, META), master=OTHER)
    emulator.present(stranger)
    status, out, err = await enrol(path, "--force")
    assert status == 1 and "another site" in err

    # The panel, on the same reader, accepts the enrolled tag and refuses a skimmed copy.
    emulator.remove()
    config = load_site_mapping_from(path)
    async with PanelProcess(config) as panel:
        await asyncio.wait_for(panel.nfc.wait_connected(), 10)
        await present_to(panel, emulator, chip)
        skimmed = chip.recorded_message()
        replay = Ntag424Chip(ALICE)
        replay.write_ndef(skimmed)
        await present_to(panel, emulator, replay)
        events = [(e.tag, e.detail) for e in tag_events(panel)]
        assert events == [(ALICE, "counter not increased")]
        assert panel.handled["TagPresented"] == 1 and panel.handled["TagRefused"] == 1


def load_site_mapping_from(path: Path) -> SiteConfig:
    from panel.config import load_site_file

    return load_site_file(path)


async def present_to(panel: PanelProcess, emulator: Any, tag: Ntag424Chip) -> None:
    """Present on the rig-style emulator; wait until the panel took the decision in."""
    before = panel.handled["TagPresented"] + panel.handled["TagRefused"]
    emulator.present(tag)
    async with asyncio.timeout(10):
        while panel.handled["TagPresented"] + panel.handled["TagRefused"] == before:
            await asyncio.sleep(0.01)
        emulator.remove()
        while panel.handled["TagRemoved"] <= before:
            await asyncio.sleep(0.01)


async def test_enrol_needs_keys_and_a_reader(tmp_path: Path) -> None:
    keys = f'[nfc]\ntags = "sun"\nmeta_key = "{META.hex()}"\nfile_key = "{FILE.hex()}"\n'
    status, out, err = await enrol(write_site(tmp_path, keys))  # devices.nfc is sim:
    assert status == 2 and "devices.nfc" in err and "needs a reader" in err
    assert len(err.strip().splitlines()) == 1 and out == ""
    status, out, err = await enrol(write_site(tmp_path, ""))  # uid mode, no keys
    assert status == 2 and "meta_key and file_key" in err
