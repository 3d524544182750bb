"""A panel reading a ``udp:`` tag emulator that listens only while a tag is presented (a rig)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from drivers.sim_nfc import SimTagEmulator
from panel.config import load_site_mapping
from panel.process import PanelProcess
from protocol.messages import EventType

ALICE = "04A1B2C3D4E5F6"


async def test_gaps_between_taps_are_no_tamper_and_tap_then_arm_works(tmp_path: Path) -> None:
    probe = SimTagEmulator()
    probe.start()
    port = probe.port
    probe.close()  # a free port; the rig's emulator starts on it for each tap
    data = {
        "panel": {"id": "p1", "site": "demo"},
        "users": [{"name": "alice", "code": "1234", "role": "master", "tags": [ALICE]}],
        "zones": [{"name": "front_door", "kind": "entry"}],
        "devices": {"nfc": f"udp:127.0.0.1:{port}"},
    }
    config = load_site_mapping(data, str(tmp_path / "site.toml"), base_dir=tmp_path)
    async with PanelProcess(config) as panel:
        async with asyncio.timeout(10):
            await panel.nfc.wait_connected()
            before = panel.nfc.absent_polls
            while panel.nfc.absent_polls < before + 3:  # polling a port nobody listens on
                await asyncio.sleep(0.01)
        for mode_key, state in (("A", "arming"), ("D", "disarmed")):
            emulator = SimTagEmulator(port)
            emulator.start()
            try:
                taps = panel.handled["TagPresented"]
                emulator.present(ALICE)
                async with asyncio.timeout(5):
                    while panel.handled["TagPresented"] == taps:
                        await asyncio.sleep(0.005)
            finally:
                emulator.close()
            if mode_key == "A":
                await panel.keypad.twin.type("A")  # tag, then A within a second
            async with asyncio.timeout(5):
                while panel.view().state.value != state:
                    await asyncio.sleep(0.01)
            async with asyncio.timeout(5):
                before = panel.nfc.absent_polls
                while panel.nfc.absent_polls < before + 3:
                    await asyncio.sleep(0.01)
        kinds = {e.type for e in panel.recent_events}
        assert EventType.TAMPER not in kinds
        assert EventType.DEVICE_BACK not in kinds
        assert panel.handled["DeviceLost"] == 0
