"""WebM encoding with PyAV (FFmpeg's libraries in its wheels): Opus audio and VP8 clips.

PyAV is chosen over running the distribution's ffmpeg because it needs no system
package on the Pi, encodes in-process without a pipe per stream, and lets the audio
muxer hand over each cluster as soon as it is written (docs/media.md).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

SAMPLE_RATE = 48_000
"""Opus works at 48 kHz; microphones deliver signed 16-bit mono at this rate."""
AUDIO_BITRATE = 20_000
CLIP_BITRATE = 400_000


def load_av() -> Any:
    """The ``av`` module, or MissingDependency in one line naming the extra that brings it."""
    from common.extras import require

    require("av", where="silent call and clips")
    import av

    return av


class _Sink(io.RawIOBase):
    """A write-only file the muxer writes to; ``take`` returns what came since the last call."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        return len(chunk)

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


class OpusWebmWriter:
    """Signed 16-bit mono PCM at 48 kHz in, WebM/Opus bytes out as soon as they are muxed.

    The muxer is told the output is live (no seeking back, short clusters), so the bytes
    returned by successive ``write`` calls and ``close``, concatenated, are one WebM file
    that a browser can start playing before it ends.
    """

    def __init__(self, bitrate: int = AUDIO_BITRATE, cluster_ms: int = 100) -> None:
        av = load_av()
        self._av = av
        self._sink = _Sink()
        self._out = av.open(
            self._sink,
            mode="w",
            format="webm",
            options={
                "live": "1",
                "cluster_time_limit": str(cluster_ms),
                "cluster_size_limit": "4000",
            },
        )
        # Constrained VBR: unconstrained, libopus spends ~45 kbit/s on a pure tone.
        stream = self._out.add_stream("libopus", rate=SAMPLE_RATE, options={"vbr": "constrained"})
        stream.bit_rate = bitrate
        stream.layout = "mono"
        self._stream = stream
        self._pts = 0
        self._closed = False

    def write(self, pcm: bytes) -> bytes:
        """Encode ``pcm`` (s16le mono, whole samples); the WebM bytes ready so far."""
        count = len(pcm) // 2
        frame = self._av.AudioFrame(format="s16", layout="mono", samples=count)
        frame.planes[0].update(pcm[: count * 2])
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        frame.time_base = Fraction(1, SAMPLE_RATE)
        self._pts += count
        for packet in self._stream.encode(frame):
            self._out.mux(packet)
        return self._sink.take()

    def close(self) -> bytes:
        """Flush the encoder and end the file; the last bytes."""
        if self._closed:
            return b""
        self._closed = True
        for packet in self._stream.encode(None):
            self._out.mux(packet)
        self._out.close()
        return self._sink.take()

    @property
    def seconds(self) -> float:
        """Audio taken in so far, in seconds."""
        return self._pts / SAMPLE_RATE


def encode_clip(frames: Sequence[tuple[float, bytes]], *, bitrate: int = CLIP_BITRATE) -> bytes:
    """JPEG frames with their times (seconds) in, one WebM/VP8 file out.

    Each frame keeps its own time, so a ring buffer that lost a frame (a slow capture)
    still gives a clip of the right duration.
    """
    if not frames:
        raise ValueError("no frames to encode")
    av = load_av()
    jpeg_decoder = av.CodecContext.create("mjpeg", "r")

    def picture(jpeg: bytes) -> Any:
        decoded = jpeg_decoder.decode(av.Packet(jpeg))
        if not decoded:
            raise ValueError("a frame of the recording is not a JPEG")
        return decoded[0]

    first = picture(frames[0][1])
    width, height = first.width - first.width % 2, first.height - first.height % 2
    out_file = io.BytesIO()
    with av.open(out_file, mode="w", format="webm") as out:
        stream = out.add_stream("libvpx", rate=1000)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = bitrate
        # Real-time speed: a Pi must encode a 30 s clip in seconds, not minutes.
        stream.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
        stream.time_base = Fraction(1, 1000)
        stream.codec_context.time_base = Fraction(1, 1000)
        start = frames[0][0]
        last_pts = -1
        for when, jpeg in frames:
            frame = picture(jpeg).reformat(width=width, height=height, format="yuv420p")
            # A decoded JPEG is marked an I picture, which would make every frame a key frame.
            frame.pict_type = av.video.frame.PictureType.NONE
            pts = max(last_pts + 1, round((when - start) * 1000))
            frame.pts = last_pts = pts
            frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return out_file.getvalue()
