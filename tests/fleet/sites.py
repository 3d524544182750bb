"""What the fleet is made of: the cloud file for N installations, and what one home sends.

Each installation is site ``s<i>`` with panel ``p1`` and installation number
``1000000 + i``; holder ``alice`` with keyword ``girasol``. The daily rates are those of
a household: two arm/disarm cycles, a rejected code now and then, a few alarms a year,
a photo request every few weeks, a climate reading every 5 minutes.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

KEYWORD = "girasol"
PASSWORD = "Fleet1234"  # the scripted customers' password
FIRST_NUMBER = 1_000_000


def number(site: int) -> str:
    return str(FIRST_NUMBER + site)


@dataclass(frozen=True)
class Rates:
    """Messages per installation per day, as a hub sends them."""

    arm_cycles: float = 2.0  # each: arming, armed, disarmed events and three retained states
    rejected_codes: float = 0.3
    alarms: float = 0.02
    photos: float = 0.05  # photo_requested, the JPEG, photo_ready
    telemetry_every_s: float = 300.0

    def actions(self) -> dict[str, float]:
        """What happens at a home, per day: each arm is an ``arming`` and an ``armed`` event
        with two states, a disarm one event and one state, a photo two events and a JPEG."""
        return {
            "arm": self.arm_cycles,
            "disarm": self.arm_cycles,
            "code_rejected": self.rejected_codes,
            "alarm": self.alarms,
            "photo": self.photos,
        }

    def per_day(self) -> dict[str, float]:
        """Messages of each kind per installation per day."""
        return {
            "event": 3 * self.arm_cycles + self.rejected_codes + self.alarms + 2 * self.photos,
            "state": 3 * self.arm_cycles + self.alarms,
            "telemetry": 86_400 / self.telemetry_every_s,
            "photo": self.photos,
        }


RATES = Rates()


def cloud_config(
    broker: str,
    store: str,
    sites: int,
    tag: str,
    *,
    share: bool = True,
    listen: str = "127.0.0.1:0",
) -> str:
    """A cloud file for ``sites`` installations (workers named ``fleet-<tag>-<worker>``)."""
    lines = [
        "[broker]",
        f'url = "{broker}"',
        f'client_id = "fleet-{tag}"',
        *([f'share_group = "fleet{tag}"', "session_expiry = 600"] if share else []),
        "[store]",
        f'url = "{store}"',
        "[web]",
        f'listen = "{listen}"',
        "rate_limit = 10000",  # every scripted customer comes from 127.0.0.1
        "command_timeout = 5",
    ]
    for i in range(sites):
        lines += [
            "[[installations]]",
            f'number = "{number(i)}"',
            f'site = "s{i}"',
            'panel = "p1"',
            'cameras = ["hall"]',
            "[[installations.holders]]",
            'user = "alice"',
            f'keyword = "{KEYWORD}"',
            'role = "master"',
        ]
    return "\n".join(lines) + "\n"


def write_config(path: Path, *args: Any, **kw: Any) -> Path:
    path.write_text(cloud_config(*args, **kw))
    return path


def iso(t: float) -> str:
    return (
        datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{int(t * 1000) % 1000:03d}Z"
    )


def event(site: int, seq: int, kind: str, t: float, **fields: Any) -> bytes:
    body: dict[str, Any] = {"site": f"s{site}", "panel": "p1", "seq": seq, "time": iso(t)}
    body["type"] = kind
    body.update({k: v for k, v in fields.items() if v is not None})
    return json.dumps(body, separators=(",", ":")).encode()


def state(word: str, t: float) -> bytes:
    body = {"state": word, "since": iso(t), "open_zones": []}
    return json.dumps(body, separators=(",", ":")).encode()


def telemetry(t: float, i: int) -> bytes:
    reading = {"time": iso(t), "temperature": 19.0 + (i % 50) / 10, "humidity": 40 + i % 20}
    return json.dumps(reading, separators=(",", ":")).encode()


def jpeg() -> bytes:
    """A 640×480 camera-like JPEG (about as big as a panel's photo)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (640, 480), (90, 100, 110))
    draw = ImageDraw.Draw(image)
    for x in range(0, 640, 16):
        draw.line([(x, 0), (640 - x, 480)], fill=(x % 255, 120, 200 - x % 200), width=3)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()
