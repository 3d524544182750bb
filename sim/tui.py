"""The simulator's terminal view (prompt_toolkit): live panel, cloud events, a command line."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from prompt_toolkit.application import Application
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout import HSplit, Layout, Window
from prompt_toolkit.layout.controls import BufferControl, FormattedTextControl
from prompt_toolkit.layout.processors import Processor, Transformation, TransformationInput
from prompt_toolkit.styles import Style
from prompt_toolkit.widgets import Frame

from drivers.sim_keypad import KeypadTwin
from protocol.messages import Mode, State
from sim.commands import (
    HELP,
    HELP_LINES,
    CommandError,
    Quit,
    ShowHelp,
    masks_code,
    parse_command,
)
from sim.scenario import (
    Broker,
    Cloud,
    Power,
    Press,
    Restart,
    SetZone,
    Step,
    Tamper,
    Tap,
    resolve_tag,
)
from sim.site import SimSite

_LOGGER = logging.getLogger(__name__)

STYLE = Style.from_dict(
    {
        "frame.border": "#5f87af",
        "title": "bold",
        "label": "#8a8a8a",
        "state.disarmed": "bold #5fd75f",
        "state.arming": "bold #ffd75f",
        "state.armed": "bold #ff8700",
        "state.pending": "bold reverse #ffd75f",
        "state.triggered": "bold reverse #ff5f5f",
        "on": "bold #ff5f5f",
        "off": "#5fd75f",
        "open": "bold #ffaf00",
        "closed": "#6c6c6c",
        "event.alarm": "bold #ff5f5f",
        "event": "",
        "time": "#8a8a8a",
        "message.ok": "#5fd75f",
        "message.error": "#ff5f5f",
        "help": "#8a8a8a",
        "prompt": "bold #5f87af",
    }
)
ALARM_TYPES = {"alarm", "panic", "duress", "fire", "tamper", "keypad_locked"}


def countdown_s(site: SimSite, now_ms: int) -> tuple[str, float] | None:
    """The running delay (exit, entry or siren) and its seconds left, if any."""
    config = site._panel_config
    if site.panel is None:
        return None
    view = site.panel.view()
    mode = view.mode or Mode.TOTAL
    timing = config.timing.get(mode) if config is not None else None
    if timing is None:
        return None
    if view.state == State.ARMING:
        label, total = "exit delay", timing.exit_delay
    elif view.state == State.PENDING:
        label, total = "entry delay", timing.entry_delay
    elif view.state == State.TRIGGERED:
        label, total = "siren", timing.alarm_duration
    else:
        return None
    return label, max(0.0, total - (now_ms - view.since_ms) / 1000)


def hhmmss(time_text: object) -> str:
    """``HH:MM:SS`` of an ISO time (local view of UTC)."""
    text = str(time_text or "")
    return text[11:19] if len(text) >= 19 else text


def status_fragments(site: SimSite, now_ms: int) -> StyleAndTextTuples:
    """The live panel view as styled text."""
    out: StyleAndTextTuples = []
    if site.panel is None:
        return [("class:label", " the panel is stopped (start panel)")]
    view = site.panel.view()
    state = str(view.state)
    style = "armed" if state.startswith("armed") else state
    out += [("class:label", " state   "), (f"class:state.{style}", f" {state.upper()} ")]
    since = datetime.datetime.fromtimestamp(view.since_ms / 1000, datetime.UTC)
    out += [("class:label", f"  since {since:%H:%M:%S}")]
    delay = countdown_s(site, now_ms)
    if delay is not None:
        out += [("class:label", f"   {delay[0]} "), ("class:title", f"{delay[1]:.0f} s")]
    out += [("", "\n"), ("class:label", " siren   ")]
    out += [("class:on", "ON ") if view.siren else ("class:off", "off")]
    out += [("class:label", "   keypad ")]
    if view.locked:
        left = ""
        if view.locked_until_ms is not None:
            left = f" {max(0, view.locked_until_ms - now_ms) / 1000:.0f} s"
        out += [("class:on", f"LOCKED{left}")]
    else:
        out += [("class:off", "unlocked")]
    twin = site.device_twin("keypad", KeypadTwin)
    display = twin.display if twin is not None else ""
    out += [("class:label", "   display "), ("", f"[{display}]")]
    out += [("", "\n"), ("class:label", " zones   ")]
    open_zones = set(view.open_zones)
    for name, kind in site.facts.zones.items():
        style = "class:open" if name in open_zones else "class:closed"
        mark = "●" if name in open_zones else "○"
        out += [(style, f"{mark} {name}"), ("class:label", f" ({kind})  ")]
    out += [("", "\n"), ("class:label", " climate ")]
    reading = getattr(site.panel, "climate_reading", None)
    cloud = site.cloud
    telemetry = cloud.telemetry.get(site.facts.panel, {}) if cloud else {}
    if reading is not None and reading.temperature is not None:
        out += [("", f"{reading.temperature:.1f} °C  {reading.humidity or 0:.0f} %")]
    elif telemetry.get("temperature") is not None:
        out += [("", f"{telemetry['temperature']:.1f} °C  {telemetry.get('humidity') or 0:.0f} %")]
    else:
        out += [("class:label", "waiting for the first reading")]
    avail = cloud.availability.get(site.facts.panel, "?") if cloud else "?"
    out += [("class:label", "   panel "), ("class:off" if avail == "online" else "class:on", avail)]
    linked = cloud is not None and cloud.connected.is_set()
    out += [
        ("class:label", "   cloud "),
        ("class:off", "connected") if linked else ("class:on", "down"),
    ]
    return out


def _cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, so the columns stay aligned."""
    return text if len(text) <= width else text[: width - 1] + "…"


def event_fragments(events: Sequence[Mapping[str, Any]], rows: int = 12) -> StyleAndTextTuples:
    """The last events as the cloud saw them: when, what, who, how, where."""
    out: StyleAndTextTuples = []
    for event in events[-rows:]:
        kind = str(event.get("type", "?"))
        style = "class:event.alarm" if kind in ALARM_TYPES else "class:event"
        who = _cut(str(event.get("user") or ""), 8)
        how = _cut(str(event.get("method") or ""), 7)
        extra = " ".join(str(event[k]) for k in ("mode", "zone", "photo") if event.get(k))
        out += [
            ("class:time", f" {hhmmss(event.get('time'))} #{event.get('seq', '?'):<4}"),
            (style, f" {_cut(kind, 16):<16}"),
            ("", f" {who:<8} {how:<7} {extra}\n"),
        ]
    if not events:
        out.append(("class:label", " no events yet\n"))
    return out


def help_fragments() -> StyleAndTextTuples:
    """Every command of the view, one per line, with what it does."""
    width = max(len(example) for example, _ in HELP_LINES)
    out: StyleAndTextTuples = []
    for example, what in HELP_LINES:
        out += [("class:title", f" {example:<{width}}"), ("class:label", f"  {what}\n")]
    return out


class _MaskCodes(Processor):
    """Show key presses typed on the command line as ``*`` (codes never on screen)."""

    def apply_transformation(self, ti: TransformationInput) -> Transformation:
        text = ti.document.text
        if not masks_code(text):
            return Transformation(ti.fragments)
        return Transformation(
            [(s, "".join("*" if c.isdigit() else c for c in t)) for s, t, *_ in ti.fragments]
        )


async def perform(site: SimSite, step: Step) -> str:
    """Do one step on the running site; returns a short confirmation."""
    match step:
        case Press(keys):
            await site.press(keys)
            return f"pressed {''.join('*' if k.isdigit() else k for k in keys)}"
        case Tap(who):
            uid = resolve_tag(who, site.facts.users)
            await site.present_tag(uid)
            await site.settle()
            await site.remove_tag()
            return f"tapped {who}"
        case SetZone(zone, is_open):
            await site.set_zone(zone, is_open)
            return f"{'opened' if is_open else 'closed'} {zone}"
        case Tamper(target):
            await site.tamper(target)
            return f"tampered {target}"
        case Cloud(command):
            assert site.cloud is not None
            cmd = {"panel": site.facts.panel, **command}
            cmd.setdefault("id", site.cloud.next_id())
            if not await site.cloud.send(cmd):
                raise RuntimeError(f"{cmd['action']} not sent: the cloud broker is unreachable")
            return f"sent {cmd['action']} ({cmd['id']})"
        case Broker(up):
            await site.set_broker(up)
            return f"broker {'started' if up else 'stopped'}"
        case Restart(which):
            await site.restart(which)
            return f"{which} restarted"
        case Power(which, on):
            await site.power(which, on)
            return f"{which} {'started' if on else 'stopped'}"
    return "?"


def result_message(action: str, result: Mapping[str, Any]) -> tuple[str, str]:
    """The answer to a cloud command, for the message line."""
    if result.get("ok"):
        state = f": {result['state']}" if result.get("state") else ""
        return ("class:message.ok", f"✓ {action} ({result.get('id')}) ok{state}")
    detail = f" — {result['detail']}" if result.get("detail") else ""
    return (
        "class:message.error",
        f"✗ {action} ({result.get('id')}): {result.get('error')}{detail}",
    )


class SimView:
    """The interactive view over a running SimSite."""

    def __init__(self, site: SimSite, banner: str) -> None:
        self.site = site
        self.banner = banner
        self.message: tuple[str, str] = ("class:help", "type help for every command")
        self.help_open = False  # the events frame shows every command until the next one
        self.photo_dir = site.workdir / "photos"
        self._jobs: set[asyncio.Task[None]] = set()
        self._sent: dict[str, str] = {}  # command id -> action, until its result comes
        self.input = Buffer(multiline=False, accept_handler=self._accept)
        keys = KeyBindings()

        @keys.add("c-c")
        @keys.add("c-d")
        def _quit(event: KeyPressEvent) -> None:
            event.app.exit()

        body = HSplit(
            [
                Window(
                    FormattedTextControl(lambda: [("class:title", self.banner)]),
                    height=2,
                    wrap_lines=True,
                ),
                Frame(
                    Window(FormattedTextControl(self._status), height=6, wrap_lines=True),
                    title="panel",
                ),
                Frame(
                    Window(FormattedTextControl(self._events)),
                    title="events (as the cloud sees them)",
                ),
                Window(FormattedTextControl(lambda: [self.message]), height=1),
                Window(FormattedTextControl(self._help), height=4, wrap_lines=True),
                Window(
                    BufferControl(self.input, input_processors=[_MaskCodes()]),
                    height=1,
                    get_line_prefix=lambda *_: [("class:prompt", "› ")],
                ),
            ]
        )
        self.app: Application[None] = Application(
            layout=Layout(body, focused_element=self.input),
            key_bindings=keys,
            style=STYLE,
            full_screen=True,
            refresh_interval=0.5,
        )

    def _help(self) -> StyleAndTextTuples:
        users = " · ".join(f"{n} ({r})" for n, r in self.site.facts.roles.items())
        return [("class:help", f"{HELP}\nusers: {users}")]

    def _status(self) -> StyleAndTextTuples:
        return status_fragments(self.site, self.site.clock.now_ms())

    def _events(self) -> StyleAndTextTuples:
        if self.help_open:
            return help_fragments()
        cloud = self.site.cloud
        return event_fragments(cloud.events if cloud else [])

    def _changed(self, kind: str = "", value: object = None) -> None:
        if kind == "result" and isinstance(value, Mapping):
            action = self._sent.pop(str(value.get("id")), None)
            if action is not None:
                self.message = result_message(action, value)
        if kind == "photo" and isinstance(value, tuple) and self.site.cloud is not None:
            self.message = self._save_photo(str(value[1]))
        if kind in ("audio", "clip") and isinstance(value, tuple) and self.site.cloud is not None:
            self.message = self._save_media(kind, str(value[0]))
        self.app.invalidate()

    def _save_photo(self, photo_id: str) -> tuple[str, str]:
        """Write a photo the cloud received where the person can open it; say where."""
        assert self.site.cloud is not None
        data = self.site.cloud.photos.get(photo_id)
        if data is None or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", photo_id):
            return ("class:message.error", f"✗ photo {photo_id!r}: nothing to save")
        try:
            self.photo_dir.mkdir(mode=0o700, exist_ok=True)
            path = self.photo_dir / f"{photo_id}.jpg"
            path.write_bytes(data)
        except OSError as exc:
            return ("class:message.error", f"✗ photo {photo_id}: cannot save it: {exc}")
        return (
            "class:message.ok",
            f"✓ photo {photo_id} ({len(data) // 1024} KB) saved as {path} "
            "(kept until the simulator stops)",
        )

    def _save_media(self, kind: str, media_id: str) -> tuple[str, str]:
        """Write a finished listen-in or clip as a WebM file a browser or player opens."""
        assert self.site.cloud is not None
        data = self.site.cloud.media_done.get(media_id)
        if not data or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", media_id):
            return ("class:message.error", f"✗ {kind} {media_id!r}: nothing to save")
        try:
            self.photo_dir.mkdir(mode=0o700, exist_ok=True)
            path = self.photo_dir / f"{kind}-{media_id}.webm"
            path.write_bytes(data)
        except OSError as exc:
            return ("class:message.error", f"✗ {kind} {media_id}: cannot save it: {exc}")
        return ("class:message.ok", f"✓ {kind} {media_id} ({len(data) // 1024} KB) saved as {path}")

    def _accept(self, buffer: Buffer) -> bool:
        text = buffer.text
        try:
            command = parse_command(text, self.site.facts)
        except CommandError as exc:
            self.message = ("class:message.error", f"✗ {exc}")
            return False
        if isinstance(command, Quit):
            self.app.exit()
            return False
        if isinstance(command, ShowHelp):
            self.help_open = True
            self.message = ("class:help", "every command, with an example")
            return False
        self.help_open = False
        task = asyncio.create_task(self._run(command))
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)
        return False

    async def _run(self, step: Step) -> None:
        if isinstance(step, Cloud) and self.site.cloud is not None:
            command_id = self.site.cloud.next_id()
            step = Cloud({"id": command_id, **step.command})
            self._sent[command_id] = str(step.command.get("action"))
        try:
            self.message = ("class:message.ok", f"✓ {await perform(self.site, step)}")
        except Exception as exc:
            self.message = ("class:message.error", f"✗ {exc}")
        self.app.invalidate()

    async def run(self) -> None:
        """Show the view until the person quits (Ctrl-C, Ctrl-D, quit)."""
        cloud = self.site.cloud
        if cloud is not None:
            cloud.listeners.append(self._changed)
        try:
            await self.app.run_async()
        finally:
            if cloud is not None:
                with contextlib.suppress(ValueError):
                    cloud.listeners.remove(self._changed)
            for task in list(self._jobs):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def exit(self) -> None:
        """Leave the view (from a signal)."""
        if self.app.is_running:
            self.app.exit()
