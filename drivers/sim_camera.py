"""A simulated camera: a real JPEG drawn with Pillow, the camera's name and the time on it."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from drivers.camera import CameraDriver, CameraError
from drivers.twin import Twin

SIZE = (640, 360)
CLOCK_BITS = 24
"""The frame's time in tenths of a second (mod 2**24) drawn as black/white blocks."""
_BLOCK = (20, 16)  # width, height of one bit block
_BACKGROUNDS: dict[tuple[int, int], Any] = {}


def _blocks(height: int) -> list[tuple[int, int, int, int]]:
    w, h = _BLOCK
    top = height - h - 6
    return [(8 + i * (w + 4), top, 8 + i * (w + 4) + w, top + h) for i in range(CLOCK_BITS)]


def read_clock(image: Any) -> float:
    """The time drawn in a frame (a Pillow image), in seconds mod 2**24 / 10."""
    gray = image.convert("L")
    value = 0
    for i, (x0, y0, x1, y1) in enumerate(_blocks(gray.height)):
        if gray.getpixel(((x0 + x1) // 2, (y0 + y1) // 2)) > 128:
            value |= 1 << i
    return value / 10


def render(camera: str, when: float, frame: int, size: tuple[int, int] = SIZE) -> bytes:
    """A JPEG: a gradient 'scene', a moving bar, the camera name, the UTC time and that time
    again as blocks a test can read back after encoding (``read_clock``)."""
    from PIL import Image, ImageDraw

    width, height = size
    if size not in _BACKGROUNDS:
        _BACKGROUNDS[size] = Image.linear_gradient("L").resize(size).convert("RGB")
    image = _BACKGROUNDS[size].copy()
    draw = ImageDraw.Draw(image)
    tenths = round(when * 10) % (1 << CLOCK_BITS)
    draw.rectangle((0, height - 28, width, height), fill=(128, 128, 128))
    for i, box in enumerate(_blocks(height)):
        draw.rectangle(box, fill=(255, 255, 255) if tenths >> i & 1 else (0, 0, 0))
    x = (frame * 37) % width
    draw.rectangle((x, height // 3, x + width // 10, 2 * height // 3), fill=(200, 60, 40))
    stamp = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    draw.rectangle((0, 0, width, 28), fill=(0, 0, 0))
    draw.text((8, 6), f"{camera}  {stamp}", fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


class SimCamera(Twin):
    """The cameras' side: how long a capture takes, whether a camera is unplugged."""

    def __init__(self, clock: Callable[[], float] | None = None, *, delay: float = 0.0) -> None:
        super().__init__()
        self.clock = clock or time.time
        self.delay = delay
        self.unplugged: set[str] = set()
        self.frames = 0
        self.path = "camera (simulated)"

    def unplug(self, camera: str) -> None:
        """Captures from ``camera`` fail until it is plugged back."""
        self.unplugged.add(camera)

    def plug(self, camera: str) -> None:
        """The camera answers again."""
        self.unplugged.discard(camera)


class SimCameraDriver(CameraDriver):
    """Captures from the simulated cameras, encoding in one thread off the event loop."""

    def __init__(
        self,
        cameras: Sequence[str],
        twin: SimCamera,
        device: str = "camera",
        *,
        rings: Mapping[str, tuple[int, int]] | None = None,
    ) -> None:
        super().__init__(cameras, device, rings=rings, clock=twin.clock)
        self.twin = twin
        twin.attach(self)
        self._executor: ThreadPoolExecutor | None = None

    async def _start(self) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="centinela-sim-camera")
        self.start_recording()

    async def _stop(self) -> None:
        await self.stop_recording()
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    async def capture(self, camera: str) -> bytes:
        """A fresh JPEG after the twin's delay."""
        self._check_name(camera)
        if self._executor is None:
            raise RuntimeError("use the driver inside 'async with'")
        twin: SimCamera = self.twin
        if twin.delay > 0:
            await asyncio.sleep(twin.delay)
        if camera in twin.unplugged:
            self._camera_lost(camera, "no picture (simulated camera unplugged)")
            raise CameraError("no picture (simulated camera unplugged)")
        twin.frames += 1
        when = twin.clock()
        loop = asyncio.get_running_loop()
        jpeg = await loop.run_in_executor(self._executor, render, camera, when, twin.frames)
        self.captures += 1
        self._camera_back(camera)
        return jpeg

    async def grab(self, camera: str) -> bytes:
        """A frame for the ring: drawn at once (no capture delay), not counted as a photo."""
        if self._executor is None or camera in self.twin.unplugged:
            raise CameraError("no picture (simulated camera unplugged or stopped)")
        loop = asyncio.get_running_loop()
        when = self.twin.clock()
        return await loop.run_in_executor(self._executor, render, camera, when, 0)
