"""Silent call and clips end to end: simulated microphone and camera -> panel -> link -> hub ->
cloud broker, decoded at the cloud subscriber with PyAV (CONTRACT §9)."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from drivers.sim_camera import read_clock
from sim.broker import BrokerSpec, Mosquitto
from tests.panel_site import Cloud, Site, cloud_subscriber, make_configs, running, site_on

av = pytest.importorskip("av")
np = pytest.importorskip("numpy")

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def mosquitto(broker_factory: Callable[[BrokerSpec], Mosquitto]) -> Mosquitto:
    return broker_factory(BrokerSpec())


async def _linked(site: Site) -> None:
    """The panel's state has reached the cloud: panel, hub and link are up."""
    await site.cloud.wait_for(lambda c: any(t.endswith("/p1/state") for t, _ in c.other))


async def _command(site: Site, cid: str, action: str, **fields: Any) -> dict[str, Any]:
    body = {"id": cid, "panel": "p1", "action": action, "user": "alice", "via": "app", **fields}
    await site.client.publish("centinela/demo/command", json.dumps(body), qos=1)
    try:
        await site.cloud.wait_for(lambda c: any(r["id"] == cid for r in c.results), timeout=20)
    except TimeoutError:
        raise AssertionError(
            f"no result for {cid}: {site.cloud.results} {site.cloud.events}"
        ) from None
    return next(r for r in site.cloud.results if r["id"] == cid)


def _event(cloud: Cloud, kind: str) -> dict[str, Any] | None:
    return next((e for e in cloud.events if e["type"] == kind), None)


def _stream(cloud: Cloud, kind: str, media_id: str) -> tuple[bytes, bool]:
    """The bytes of one media stream so far and whether its empty end message came."""
    topic = f"centinela/demo/p1/{kind}/{media_id}"
    parts = [payload for t, payload in cloud.other if t == topic]
    ended = bool(parts) and parts[-1] == b""
    return b"".join(parts), ended


def _decode_audio(webm: bytes) -> tuple[Any, int]:
    with av.open(io.BytesIO(webm)) as container:
        assert container.streams.audio[0].codec_context.name == "opus"
        resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)
        pcm = [
            out.to_ndarray().reshape(-1)
            for frame in container.decode(audio=0)
            for out in resampler.resample(frame)
        ]
    return np.concatenate(pcm).astype(np.float64), 48000


def _dominant_hz(samples: Any, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


async def test_a_1khz_tone_reaches_the_cloud_and_the_panel_stays_silent(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    async with site_on(mosquitto, tmp_path) as site:
        panel, cloud = site.panel, site.cloud
        keypad, zones = panel.keypad.twin, panel.zones.twin
        await _linked(site)
        displays, beeps = list(keypad.displays), list(keypad.beeps)
        outputs: set[tuple[bool, bool]] = set()

        async def watch_outputs() -> None:
            while True:
                outputs.add((zones.siren, zones.strobe))
                await asyncio.sleep(0.01)

        watcher = asyncio.create_task(watch_outputs())
        try:
            result = await _command(site, "L1", "listen", seconds=3)
            assert result["ok"] is True
            await cloud.wait_for(lambda c: _event(c, "listen_ended") is not None, timeout=30)
        finally:
            watcher.cancel()
        started, ended = _event(cloud, "listen_started"), _event(cloud, "listen_ended")
        assert started is not None and ended is not None
        assert (started["user"], started["method"]) == ("alice", "app")
        assert (ended["user"], ended["method"]) == ("alice", "app")
        media_id = started["audio"]
        assert ended["audio"] == media_id
        await cloud.wait_for(lambda c: _stream(c, "audio", media_id)[1])
        webm, _ = _stream(cloud, "audio", media_id)
        samples, rate = _decode_audio(webm)
        assert abs(len(samples) / rate - 3.0) <= 0.5
        hz = _dominant_hz(samples, rate)
        assert abs(hz - 1000.0) <= 20.0, hz
        assert ended["detail"].startswith("3.0 s")
        # Silence at the panel: no display change, no beep, no siren or strobe at any time.
        assert (keypad.displays, keypad.beeps) == (displays, beeps)
        assert outputs == {(False, False)}


async def test_an_alarm_during_a_listen_in_arrives_and_a_second_listen_is_refused(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    async with site_on(mosquitto, tmp_path) as site:
        panel, cloud = site.panel, site.cloud
        await _linked(site)
        assert (await _command(site, "L1", "listen", seconds=60))["ok"] is True
        await cloud.wait_for(lambda c: _event(c, "listen_started") is not None)
        started = _event(cloud, "listen_started")
        assert started is not None
        media_id = started["audio"]
        await cloud.wait_for(lambda c: len(_stream(c, "audio", media_id)[0]) > 2000)
        second = await _command(site, "L2", "listen", seconds=5)
        assert (second["ok"], second["error"]) == (False, "invalid_state")
        forbidden = await _command(site, "L3", "listen", seconds=5, user="bob")
        assert (forbidden["ok"], forbidden["error"]) == (False, "forbidden")
        await panel.keypad.twin.type("P")
        await cloud.wait_for(lambda c: _event(c, "panic") is not None)
        assert not _stream(cloud, "audio", media_id)[1], "the panic came while the call went on"
        assert (await _command(site, "L4", "listen_stop"))["ok"] is True
        await cloud.wait_for(lambda c: _event(c, "listen_ended") is not None)
        await cloud.wait_for(lambda c: _stream(c, "audio", media_id)[1])
        seqs = [e["seq"] for e in cloud.events]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        samples, rate = _decode_audio(_stream(cloud, "audio", media_id)[0])
        assert len(samples) / rate > 0.5


async def test_a_clip_of_the_last_seconds_decodes_with_frames_from_that_window(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    seconds = 3
    async with site_on(mosquitto, tmp_path) as site:
        panel, cloud = site.panel, site.cloud
        ring = panel.camera.rings["hall"]
        await _linked(site)

        def recorded() -> float:
            frames = ring.frames
            return frames[-1][0] - frames[0][0] if len(frames) > 1 else 0.0

        async with asyncio.timeout(30):
            while recorded() < seconds + 1:
                await asyncio.sleep(0.1)
        asked = time.time()
        result = await _command(site, "V1", "clip", camera="hall", seconds=seconds)
        assert result["ok"] is True
        await cloud.wait_for(lambda c: _event(c, "clip_ready") is not None, timeout=30)
        ready = _event(cloud, "clip_ready")
        assert ready is not None
        assert (ready["user"], ready["method"], ready["zone"]) == ("alice", "app", "hall")
        clip_id = ready["clip"]
        await cloud.wait_for(lambda c: _stream(c, "clip", clip_id)[1])
        webm, _ = _stream(cloud, "clip", clip_id)
        with av.open(io.BytesIO(webm)) as container:
            assert container.streams.video[0].codec_context.name in ("vp8", "libvpx")
            frames = list(container.decode(video=0))
            length = float(frames[-1].pts * frames[-1].time_base) + 1 / 5
            clocks = [read_clock(frame.to_image()) for frame in frames]
        assert abs(length - seconds) <= 1.0
        wrap = (1 << 24) / 10
        low, high = (asked - seconds - 1) % wrap, (asked + 1) % wrap
        assert all(low <= c <= high for c in clocks), (low, clocks, high)
        assert clocks == sorted(clocks)


async def test_a_clip_cut_by_a_link_drop_resumes_and_arrives_whole(
    broker_factory: Callable[[BrokerSpec], Mosquitto], tmp_path: Path
) -> None:
    broker = broker_factory(BrokerSpec(persistence=True))
    panel_cfg, hub_cfg = make_configs(tmp_path, broker.url)
    async with cloud_subscriber(broker.host, broker.port, identifier="cloud-media") as (_, cloud):
        pass  # registers the persistent session so the broker queues for it
    async with running(panel_cfg, hub_cfg) as (panel, _hub):
        assert panel.link is not None
        # A slow media budget, so the link drops while the clip is on its way.
        panel.link.settings = dataclasses.replace(
            panel.link.settings, media_rate=4096, media_burst=4096
        )
        ring = panel.camera.rings["hall"]
        async with asyncio.timeout(30):
            while len(ring.frames) < 2 or ring.frames[-1][0] - ring.frames[0][0] < 4:
                await asyncio.sleep(0.1)
        async with cloud_subscriber(broker.host, broker.port, identifier="cloud-media") as (
            client,
            cloud,
        ):
            await cloud.wait_for(lambda c: any(t.endswith("/p1/state") for t, _ in c.other))
            body = {"id": "V1", "panel": "p1", "action": "clip", "camera": "hall", "seconds": 3}
            body |= {"user": "alice", "via": "app"}
            await client.publish("centinela/demo/command", json.dumps(body), qos=1)
            await cloud.wait_for(lambda c: _event(c, "clip_requested") is not None)
            async with asyncio.timeout(30):
                while panel.link.counters["media_bytes"] < 8192:
                    await asyncio.sleep(0.05)
        broker.stop()
        sent_before_the_drop = panel.link.counters["media_bytes"]
        async with asyncio.timeout(10):
            while panel.link.state.name == "UP":
                await asyncio.sleep(0.05)
        broker.start()
        async with cloud_subscriber(broker.host, broker.port, identifier="cloud-media") as (
            _,
            cloud,
        ):
            await cloud.wait_for(lambda c: _event(c, "clip_ready") is not None, timeout=60)
            ready = _event(cloud, "clip_ready")
            assert ready is not None
            clip_id = ready["clip"]
            await cloud.wait_for(lambda c: _stream(c, "clip", clip_id)[1], timeout=30)
            webm, _ = _stream(cloud, "clip", clip_id)
    assert panel.link.counters["disconnects"] >= 1
    assert len(webm) > sent_before_the_drop  # the drop cut the clip: the rest came after
    with av.open(io.BytesIO(webm)) as container:
        frames = list(container.decode(video=0))
    length = float(frames[-1].pts * frames[-1].time_base) + 1 / 5
    assert abs(length - 3) <= 1.0
