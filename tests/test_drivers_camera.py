"""Cameras: ffmpeg (on its own test source, or a real V4L2 device) and the simulated camera.

``--camera-url v4l2:/dev/videoN`` runs the capture test against a real camera.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from drivers.camera import CameraError, FfmpegCamera
from drivers.registry import open_camera
from drivers.sim_camera import SimCamera, SimCameraDriver
from panel.inputs import DeviceBack, DeviceLost, Input

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
REAL = pytest.param("real", marks=pytest.mark.hardware)
TESTSRC = "testsrc=size=320x240:rate=5"


def decode(jpeg: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG"
    image.load()  # decodes every scan, not just the header
    return image


async def take(driver: Any, count: int = 1) -> list[Input]:
    async with asyncio.timeout(5):
        return [await anext(driver) for _ in range(count)]


@needs_ffmpeg
async def test_ffmpeg_testsrc_gives_a_jpeg() -> None:
    async with FfmpegCamera({"hall": TESTSRC}, input_format="lavfi") as camera:
        image = decode(await camera.capture("hall"))
    assert image.size == (320, 240)
    assert camera.captures == 1


@needs_ffmpeg
async def test_ffmpeg_failure_is_lost_then_back() -> None:
    sources = {"hall": "nosuchfilter=foo"}
    async with FfmpegCamera(sources, input_format="lavfi") as camera:
        with pytest.raises(CameraError):
            await camera.capture("hall")
        lost = await take(camera)
        assert isinstance(lost[0], DeviceLost)
        assert lost[0].device == "camera:hall"
        camera.sources["hall"] = TESTSRC  # the camera works again
        decode(await camera.capture("hall"))
        assert await take(camera) == [DeviceBack("camera:hall")]


@needs_ffmpeg
async def test_a_camera_that_never_answers_times_out_and_ffmpeg_is_killed(tmp_path: Path) -> None:
    fifo = tmp_path / "video0"
    os.mkfifo(fifo)  # opening it blocks, like a wedged device
    camera = FfmpegCamera({"hall": str(fifo)}, input_format="mjpeg", timeout=0.5)
    async with camera:
        with pytest.raises(CameraError, match="no picture within"):
            await camera.capture("hall")
    # The conftest fails the test if the ffmpeg process were still running.


async def test_a_missing_device_node_is_lost_at_start() -> None:
    async with FfmpegCamera({"hall": "/dev/video-centinela-none"}) as camera:
        lost = await take(camera)
        assert lost == [DeviceLost("camera:hall", "/dev/video-centinela-none not found")]


async def test_unknown_camera_name() -> None:
    async with open_camera("sim:", ["hall"]) as camera:
        with pytest.raises(CameraError, match="no camera named 'garage'"):
            await camera.capture("garage")


async def test_sim_camera_draws_name_and_time_on_a_real_jpeg() -> None:
    twin = SimCamera(clock=lambda: 1_790_000_000.0)
    async with SimCameraDriver(["hall", "garage"], twin) as camera:
        hall = decode(await camera.capture("hall"))
        garage = decode(await camera.capture("garage"))
    assert hall.size == (640, 360)
    caption = hall.convert("L").crop((0, 0, 640, 28)).tobytes()
    assert max(caption) > 200  # white text ...
    assert sum(caption) / len(caption) < 64  # ... on a black band
    assert hall.tobytes() != garage.tobytes()
    assert twin.frames == 2


async def test_sim_capture_delay_and_unplug() -> None:
    twin = SimCamera(delay=30.0)
    async with SimCameraDriver(["hall"], twin) as camera:
        slow = asyncio.create_task(camera.capture("hall"))
        await asyncio.sleep(0.05)
        assert not slow.done()  # a 30 s capture cannot be back yet
        slow.cancel()
        twin.delay = 0.0
        twin.unplug("hall")
        with pytest.raises(CameraError):
            await camera.capture("hall")
        assert [type(i) for i in await take(camera)] == [DeviceLost]
        twin.plug("hall")
        decode(await camera.capture("hall"))
        assert await take(camera) == [DeviceBack("camera:hall")]


@pytest.fixture(params=["sim:", REAL])
async def camera(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    url = request.param
    if url == "real":
        url = request.config.getoption("--camera-url", default=None)
        if not url:
            pytest.skip("real camera: pass --camera-url v4l2:/dev/videoN")
        if shutil.which("ffmpeg") is None:
            pytest.skip("ffmpeg not installed")
    async with open_camera(str(url), ["hall"]) as driver:
        yield driver


async def test_capture_decodes(camera: Any) -> None:
    image = decode(await camera.capture("hall"))
    assert image.width >= 160
    assert image.height >= 120
