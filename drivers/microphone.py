"""Microphones for the silent call: ALSA on a Pi, or a simulated one, chosen by URL.

Both speak one interface: ``async for block in mic.blocks():`` yields 20 ms of signed
16-bit mono PCM at 48 kHz, in real time, until the loop stops. A microphone is opened
only while a listen-in runs; nothing else on the panel hears it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import struct
import threading
import time
from collections.abc import AsyncGenerator, Callable
from pathlib import Path

from drivers.webm import SAMPLE_RATE, load_av

_LOGGER = logging.getLogger(__name__)

BLOCK_SAMPLES = SAMPLE_RATE // 50
"""20 ms per block: one Opus frame."""
BLOCK_BYTES = BLOCK_SAMPLES * 2


class MicrophoneError(Exception):
    """The microphone cannot be opened or stopped delivering; the message says why."""


class Microphone:
    """``blocks()`` yields 20 ms PCM blocks (s16le, mono, 48 kHz) in real time."""

    url = "microphone"

    def blocks(self) -> AsyncGenerator[bytes, None]:
        """The microphone's sound from now on; stop iterating to close it."""
        raise NotImplementedError

    def describe(self) -> str:
        """What this microphone is, for ``centinela doctor`` and logs."""
        return self.url


class SimMicrophone(Microphone):
    """A room that plays a tone (``sim:?tone=1000``) or a sound file (``sim:?file=PATH``).

    ``produced`` records, per block, the monotonic time it was handed out and the
    sample index it starts at: the latency benchmark matches them at the cloud.
    """

    def __init__(
        self,
        tone: float = 1000.0,
        level: float = 0.3,
        file: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = "sim:"
        self.tone = tone
        self.level = level
        self.file = file
        self.clock = clock
        self.opened = 0  # how many listen-ins opened it
        self.produced: list[tuple[float, int]] = []
        self._samples: bytes | None = None

    def describe(self) -> str:
        what = f"file {self.file}" if self.file else f"a {self.tone:g} Hz tone"
        return f"simulated microphone playing {what}"

    def _file_samples(self) -> bytes:
        if self._samples is None:
            assert self.file is not None
            self._samples = decode_to_pcm(Path(self.file).read_bytes()) or bytes(BLOCK_BYTES)
        return self._samples

    def _block(self, index: int) -> bytes:
        start = index * BLOCK_SAMPLES
        if self.file:
            data = self._file_samples()
            offset = (start * 2) % len(data)
            out = (data[offset:] + data)[:BLOCK_BYTES]
            return out.ljust(BLOCK_BYTES, b"\0")
        amp = 32767 * self.level
        step = 2 * math.pi * self.tone / SAMPLE_RATE
        values = (round(amp * math.sin(step * (start + k))) for k in range(BLOCK_SAMPLES))
        return struct.pack(f"<{BLOCK_SAMPLES}h", *values)

    async def blocks(self) -> AsyncGenerator[bytes, None]:
        """Blocks paced by the clock, as a sound card delivers them."""
        self.opened += 1
        began = self.clock()
        index = 0
        while True:
            due = began + (index + 1) * BLOCK_SAMPLES / SAMPLE_RATE
            delay = due - self.clock()
            if delay > 0:
                await asyncio.sleep(delay)
            self.produced.append((self.clock(), index * BLOCK_SAMPLES))
            yield self._block(index)
            index += 1


class AlsaMicrophone(Microphone):
    """An ALSA capture device (``alsa:hw:1,0``, ``alsa:default``), read by PyAV in one thread.

    ``arecord -l`` (or ``centinela doctor``) lists the cards: card 1, device 0 is
    ``hw:1,0``; ``plughw:1,0`` lets ALSA convert rates and channels for a card that
    cannot capture 48 kHz mono itself.
    """

    def __init__(self, device: str) -> None:
        self.device = device
        self.url = f"alsa:{device}"

    def describe(self) -> str:
        return f"ALSA capture device {self.device}"

    async def blocks(self) -> AsyncGenerator[bytes, None]:
        av = load_av()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | BaseException] = asyncio.Queue(maxsize=250)
        stop = threading.Event()

        def put(item: bytes | BaseException) -> None:
            if queue.full():  # the consumer is behind: the oldest sound goes
                queue.get_nowait()
            queue.put_nowait(item)

        def run() -> None:
            try:
                container = av.open(
                    self.device, format="alsa", options={"sample_rate": "48000", "channels": "1"}
                )
            except Exception as exc:
                loop.call_soon_threadsafe(put, MicrophoneError(f"{self.device}: {exc}"))
                return
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            pending = b""
            try:
                for frame in container.decode(audio=0):
                    if stop.is_set():
                        break
                    for out in resampler.resample(frame):
                        pending += bytes(out.planes[0])[: out.samples * 2]
                    while len(pending) >= BLOCK_BYTES:
                        block, pending = pending[:BLOCK_BYTES], pending[BLOCK_BYTES:]
                        loop.call_soon_threadsafe(put, block)
            except Exception as exc:
                loop.call_soon_threadsafe(put, MicrophoneError(f"{self.device}: {exc}"))
            finally:
                container.close()

        thread = threading.Thread(target=run, name="centinela-microphone", daemon=True)
        thread.start()
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            with contextlib.suppress(RuntimeError):
                await asyncio.to_thread(thread.join, 2.0)


def decode_to_pcm(data: bytes) -> bytes:
    """Any sound file PyAV reads (WAV, WebM, Ogg ...) as s16le mono 48 kHz PCM."""
    import io

    av = load_av()
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    out: list[bytes] = []
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(audio=0):
            for res in resampler.resample(frame):
                out.append(bytes(res.planes[0])[: res.samples * 2])
    for res in resampler.resample(None):
        out.append(bytes(res.planes[0])[: res.samples * 2])
    return b"".join(out)


def alsa_cards(root: str = "/proc/asound") -> list[tuple[str, str]]:
    """Capture devices the kernel knows: (``hw:C,D``, description), from /proc/asound/pcm."""
    found: list[tuple[str, str]] = []
    with contextlib.suppress(OSError):
        for line in Path(root, "pcm").read_text().splitlines():
            # "01-00: USB Audio : USB Audio : capture 1"
            ids, _, rest = line.partition(":")
            if "capture" not in rest or "-" not in ids:
                continue
            card, device = (int(x) for x in ids.strip().split("-"))
            name = rest.split(":")[0].strip()
            found.append((f"hw:{card},{device}", name))
    return found
