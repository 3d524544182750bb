"""Cameras: one JPEG per request, captured by ffmpeg from a V4L2 device."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence

from drivers.base import Backoff, Driver
from drivers.reports import DeviceBack, DeviceLost

_LOGGER = logging.getLogger(__name__)

JPEG_MAGIC = b"\xff\xd8\xff"


class CameraError(Exception):
    """A capture failed; the message says why in one line."""


class FrameRing:
    """A camera's recent recording: (time in seconds, JPEG) pairs, the oldest dropped first."""

    def __init__(self, seconds: int, fps: int) -> None:
        self.seconds = seconds
        self.fps = fps
        self.frames: deque[tuple[float, bytes]] = deque(maxlen=max(1, seconds * fps))

    def add(self, when: float, jpeg: bytes) -> None:
        """Keep one frame."""
        self.frames.append((when, jpeg))

    def last(self, seconds: float, now: float) -> list[tuple[float, bytes]]:
        """The frames of the last ``seconds`` before ``now``, oldest first."""
        return [(t, j) for t, j in self.frames if now - seconds <= t <= now]


class CameraDriver(Driver):
    """``capture(camera)`` returns a JPEG; the stream yields DeviceLost/DeviceBack per camera.

    A camera given a ring (``rings[name] = (seconds, fps)``) records continuously into a
    FrameRing while the driver runs; ``recent(camera, seconds)`` gives a clip's frames.
    """

    def __init__(
        self,
        cameras: Sequence[str],
        device: str = "camera",
        *,
        rings: Mapping[str, tuple[int, int]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(device)
        self.cameras = tuple(cameras)
        self.captures = 0
        self._down: set[str] = set()
        self.ring_clock = clock
        self.rings = {
            name: FrameRing(seconds, fps)
            for name, (seconds, fps) in (rings or {}).items()
            if seconds > 0 and name in self.cameras
        }
        self._recorders: list[asyncio.Task[None]] = []

    async def grab(self, camera: str) -> bytes:
        """One frame for the ring; a still capture unless the driver has a cheaper way."""
        return await self.capture(camera)

    def recent(self, camera: str, seconds: float) -> list[tuple[float, bytes]]:
        """The last ``seconds`` of ``camera``'s recording, oldest first (CameraError if none)."""
        self._check_name(camera)
        ring = self.rings.get(camera)
        if ring is None:
            raise CameraError(f"camera {camera!r} keeps no recording (ring_seconds = 0)")
        frames = ring.last(seconds, self.ring_clock())
        if not frames:
            raise CameraError(f"camera {camera!r} has recorded nothing yet")
        return frames

    def start_recording(self) -> None:
        """Start one recorder task per camera with a ring."""
        loop = asyncio.get_running_loop()
        for name, ring in self.rings.items():
            task = loop.create_task(self._record(name, ring), name=f"centinela-ring-{name}")
            self._recorders.append(task)

    async def stop_recording(self) -> None:
        """Stop the recorders."""
        tasks, self._recorders = self._recorders, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _record(self, camera: str, ring: FrameRing) -> None:
        period = 1.0 / ring.fps
        due = time.monotonic()
        while True:
            due += period
            try:
                jpeg = await self.grab(camera)
            except CameraError as exc:
                _LOGGER.debug("ring of %s: %s", camera, exc)
            else:
                ring.add(self.ring_clock(), jpeg)
            delay = due - time.monotonic()
            if delay < -period:  # too slow for this rate: skip frames, do not pile up
                due = time.monotonic()
                delay = 0.0
            await asyncio.sleep(max(0.0, delay))

    async def capture(self, camera: str) -> bytes:
        """One JPEG from ``camera``; raises CameraError (and reports the camera lost)."""
        raise NotImplementedError

    def device_name(self, camera: str) -> str:
        """The name a camera has in DeviceLost/DeviceBack."""
        return f"{self.device}:{camera}"

    def _check_name(self, camera: str) -> None:
        if camera not in self.cameras:
            raise CameraError(f"no camera named {camera!r}")

    def _camera_lost(self, camera: str, reason: str) -> None:
        if camera not in self._down and self._running:
            self._down.add(camera)
            _LOGGER.warning("camera %s lost: %s", camera, reason)
            self.stream.put(DeviceLost(self.device_name(camera), reason))

    def _camera_back(self, camera: str) -> None:
        if camera in self._down and self._running:
            self._down.discard(camera)
            _LOGGER.info("camera %s back", camera)
            self.stream.put(DeviceBack(self.device_name(camera)))


class FfmpegCamera(CameraDriver):
    """Runs ``ffmpeg -f FORMAT [OPTIONS] -i SOURCE -frames:v 1 -f mjpeg -`` per capture.

    ``input_format`` is ``v4l2`` for real cameras; tests use ``lavfi`` with a
    ``testsrc`` source. A missing device node is reported lost at once and
    watched with backoff until it reappears.
    """

    def __init__(
        self,
        sources: Mapping[str, str],
        *,
        input_format: str = "v4l2",
        input_options: Sequence[str] = (),
        timeout: float = 10.0,
        ffmpeg: str = "ffmpeg",
        device: str = "camera",
        backoff: Backoff | None = None,
        rings: Mapping[str, tuple[int, int]] | None = None,
    ) -> None:
        super().__init__(list(sources), device, rings=rings)
        self.sources = dict(sources)
        self.input_format = input_format
        self.input_options = tuple(input_options)
        self.timeout = timeout
        self.ffmpeg = ffmpeg
        self._backoff = backoff or Backoff(base=1.0, cap=30.0)
        self._watchers: dict[str, asyncio.Task[None]] = {}

    def _node(self, camera: str) -> str | None:
        source = self.sources[camera]
        return source if self.input_format == "v4l2" and source.startswith("/") else None

    def _missing(self, camera: str) -> str | None:
        """The camera's device node if it does not exist."""
        node = self._node(camera)
        return node if node is not None and not os.path.exists(node) else None

    async def _start(self) -> None:
        for camera in self.cameras:
            node = self._missing(camera)
            if node is not None:
                self._camera_lost(camera, f"{node} not found")
                self._watch(camera)
        self.start_recording()

    async def _stop(self) -> None:
        await self.stop_recording()
        watchers = list(self._watchers.values())
        self._watchers.clear()
        for task in watchers:
            task.cancel()
        for task in watchers:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _watch(self, camera: str) -> None:
        if camera not in self._watchers:
            self._watchers[camera] = asyncio.get_running_loop().create_task(
                self._wait_for_node(camera), name=f"centinela-camera-{camera}"
            )

    async def _wait_for_node(self, camera: str) -> None:
        attempt = 0
        try:
            while self._missing(camera) is not None:
                await asyncio.sleep(self._backoff.delay(attempt))
                attempt += 1
            self._camera_back(camera)
        finally:
            self._watchers.pop(camera, None)

    def command(self, camera: str) -> list[str]:
        """The ffmpeg command line for one capture."""
        return [
            self.ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error",
            "-f", self.input_format, *self.input_options, "-i", self.sources[camera],
            "-frames:v", "1", "-f", "mjpeg", "-",
        ]  # fmt: skip

    async def capture(self, camera: str) -> bytes:
        """Run ffmpeg once; the JPEG it writes to stdout."""
        self._check_name(camera)
        if shutil.which(self.ffmpeg) is None:
            raise CameraError(f"{self.ffmpeg} not found (apt-get install ffmpeg)")
        try:
            jpeg = await self._run(camera)
        except CameraError as exc:
            self._camera_lost(camera, str(exc))
            if self._missing(camera) is not None:
                self._watch(camera)
            raise
        self.captures += 1
        self._camera_back(camera)
        return jpeg

    async def _run(self, camera: str) -> bytes:
        proc = await asyncio.create_subprocess_exec(
            *self.command(camera),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(self.timeout):
                out, err = await proc.communicate()
        except TimeoutError:
            raise CameraError(f"no picture within {self.timeout:g} s") from None
        finally:
            if proc.returncode is None:
                proc.kill()
                with contextlib.suppress(ProcessLookupError):
                    await asyncio.shield(proc.wait())
        if proc.returncode != 0:
            lines = err.decode("utf-8", "replace").strip().splitlines()
            raise CameraError(lines[-1][:200] if lines else f"ffmpeg exit {proc.returncode}")
        if not out.startswith(JPEG_MAGIC):
            raise CameraError("ffmpeg gave no JPEG")
        return out
