"""Media at the edge: the microphones by URL, the camera ring, the WebM encoders."""

from __future__ import annotations

import io
import math
import struct
from pathlib import Path

import pytest

from common.errors import ConfigError
from common.extras import MissingDependency
from drivers import webm
from drivers.camera import FrameRing
from drivers.microphone import BLOCK_BYTES, AlsaMicrophone, SimMicrophone, decode_to_pcm
from drivers.registry import open_microphone

av = pytest.importorskip("av")


def test_microphones_are_chosen_by_url() -> None:
    assert isinstance(open_microphone("sim:"), SimMicrophone)
    tone = open_microphone("sim:?tone=440")
    assert isinstance(tone, SimMicrophone) and tone.tone == 440
    alsa = open_microphone("alsa:hw:1,0")
    assert isinstance(alsa, AlsaMicrophone) and alsa.device == "hw:1,0"
    for url, reason in (
        ("alsa:", "alsa: needs an ALSA device"),
        ("sim:?tone=5", "tone 5 is out of range"),
        ("pulse:default", "unknown microphone URL scheme 'pulse'"),
    ):
        with pytest.raises(ConfigError, match=reason):
            open_microphone(url, file="site.toml")


async def test_the_simulated_microphone_plays_a_file_in_real_time_blocks(tmp_path: Path) -> None:
    # A WAV of 0.1 s at 8 kHz, written with PyAV and played back at 48 kHz mono.
    wav = tmp_path / "room.wav"
    with av.open(str(wav), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=8000, layout="mono")
        frame = av.AudioFrame(format="s16", layout="mono", samples=800)
        frame.planes[0].update(
            struct.pack("<800h", *(round(8000 * math.sin(i / 3)) for i in range(800)))
        )
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    assert abs(len(decode_to_pcm(wav.read_bytes())) - 4800 * 2) <= 200
    mic = open_microphone(f"sim:?file={wav}")
    blocks = []
    async for block in mic.blocks():
        blocks.append(block)
        if len(blocks) == 6:
            break
    assert [len(b) for b in blocks] == [BLOCK_BYTES] * 6
    assert any(blocks[0]) and mic.opened == 1 and len(mic.produced) == 6


def test_the_ring_keeps_the_last_seconds_only() -> None:
    ring = FrameRing(seconds=2, fps=5)
    for i in range(30):
        ring.add(100 + i / 5, bytes([i]))
    assert len(ring.frames) == 10  # 2 s at 5 fps: the oldest went first
    recent = ring.last(1, now=105.8)
    assert [t for t, _ in recent] == pytest.approx([104.8, 105.0, 105.2, 105.4, 105.6, 105.8])


def test_opus_stays_near_its_bitrate_and_decodes_to_what_went_in() -> None:
    writer = webm.OpusWebmWriter()
    tone = struct.pack(
        f"<{webm.SAMPLE_RATE}h",
        *(round(9000 * math.sin(2 * math.pi * 1000 * i / webm.SAMPLE_RATE)) for i in range(48000)),
    )
    body = b"".join(writer.write(tone[i : i + 1920]) for i in range(0, len(tone), 1920))
    body += writer.close()
    assert len(body) * 8 / 1000 <= 32  # kbit in one second: 20 kbit/s Opus, header, clusters
    with av.open(io.BytesIO(body)) as container:
        samples = sum(f.samples for f in container.decode(audio=0))
    assert abs(samples - webm.SAMPLE_RATE) <= 960


def test_without_pyav_media_say_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import common.extras

    monkeypatch.setattr(common.extras, "installed", lambda module: module != "av")
    with pytest.raises(MissingDependency, match=r"av is not installed; install centinela\[panel\]"):
        webm.OpusWebmWriter()
    with pytest.raises(MissingDependency, match="silent call and clips"):
        webm.encode_clip([(0.0, b"\xff\xd8")])
