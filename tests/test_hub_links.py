"""Link keys and frame seqs at the hub: key rotation, and replay/seq state across restarts."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from hub.config import PanelKeys
from hub.linkkeys import derived_key_id
from protocol.frame import Direction
from protocol.keys import fingerprint
from sim.broker import Mosquitto
from tests.test_hub_fakepanel import Cloud, RawPanel, event, new_key, new_site, until
from tests.test_hub_process import config_for, running


async def test_a_rotation_accepts_both_keys_and_answers_in_the_panels_key(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    site, old, new = new_site(), new_key(), new_key()
    config = config_for(site, mosquitto, {"p1": new}, tmp_path)
    config = dataclasses.replace(config, panels=(PanelKeys("p1", new, previous_key=old),))
    epoch = 0x0123456789ABCD  # one panel store throughout: only its key changes
    async with Cloud(mosquitto, site) as cloud, running(config) as hub:
        # Not rotated yet: the panel still seals with the old key under its derived id.
        async with RawPanel(
            mosquitto, site, "p1", old, key_id=derived_key_id(old), epoch=epoch
        ) as panel:
            await panel.send(event(1))
            await panel.wait_acked(1)
            assert panel.bad_down == 0
        # Rotated: the new key under its derived id; the hub's acks follow.
        async with RawPanel(
            mosquitto, site, "p1", new, key_id=derived_key_id(new), epoch=epoch
        ) as panel:
            panel.acked = 1
            await panel.send(event(2))
            await panel.wait_acked(2)
            assert panel.bad_down == 0
        # Id 0 means the current key: a panel that never rotates.
        async with RawPanel(mosquitto, site, "p1", new, key_id=0, epoch=epoch) as panel:
            panel.sender = type(panel.sender)(
                "p1", Direction.PANEL_TO_HUB, new, next_seq=500, epoch=epoch
            )
            panel.acked = 2
            await panel.send(event(3))
            await panel.wait_acked(3)
            # ...so the old key under id 0 is a forgery.
            stale = RawPanel(mosquitto, site, "p1", old, key_id=0)
            stale.sender = type(panel.sender)("p1", Direction.PANEL_TO_HUB, old, next_seq=900)
            await panel.publish_raw(stale.seal(event(4)))
            await until(lambda: hub.counters.get("bad_frame.authentication_failed", 0) == 1)
        assert [e["seq"] for e in await cloud.wait_events(3)] == [1, 2, 3]


async def test_replay_windows_and_sender_seqs_survive_a_restart(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    site, key = new_site(), new_key()
    config = config_for(site, mosquitto, {"p1": key}, tmp_path)
    async with RawPanel(mosquitto, site, "p1", key) as panel:
        async with running(config) as hub:
            frames = await panel.send(event(1), event(2))
            await panel.wait_acked(2)
            assert hub.store is not None
            assert hub.store.tx_reserved("p1", fingerprint(key)) == 1000
            first_ack_seq = panel.receiver.highest_seq
        # The same panel (its receiver remembers the hub's frame seqs) meets a restarted hub.
        async with running(config) as hub:
            for frame in frames:
                await panel.publish_raw(frame)  # frames the hub accepted before its restart
            await until(lambda: hub.counters.get("replay", 0) == 2)
            acks_before = len(panel.acks)
            await panel.send(event(3))
            await panel.wait_acked(3)
            assert len(panel.acks) == acks_before + 1  # the replays were not re-acked
            assert panel.bad_down == 0  # the restarted hub did not reuse a frame seq
            assert panel.receiver.highest_seq > 1000 >= first_ack_seq
            assert hub.store is not None
            assert hub.store.tx_reserved("p1", fingerprint(key)) == 2000
            assert hub.store.count_events("p1") == 3
