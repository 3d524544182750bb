"""``centinela sim [SITE.toml] [--broker URL] [--headless]``: a whole site in one process."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from common.clock import RealClock
from common.errors import ConfigError, UsageError
from common.extras import require
from common.mqtt import parse_broker_url
from drivers.sim_keypad import KeypadTwin
from sim.runner import event_line
from sim.site import DEMO_SITE, HUB_SECTIONS, SimSite, read_site_file

_LOGGER = logging.getLogger(__name__)
# A closed terminal (SIGHUP) stops the site as cleanly as Ctrl-C or SIGTERM.
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def run_sim(args: argparse.Namespace) -> int:
    """The command's handler."""
    from panel.config import load_site_mapping

    if args.broker is not None:
        try:
            parse_broker_url(args.broker, file="--broker", key="")
        except ConfigError as exc:
            raise UsageError(f"--broker: {exc.reason}") from None
    path = Path(args.site) if args.site else DEMO_SITE
    data = read_site_file(path)
    # A bad site file: one line, exit 2, before anything starts ([arc] and the like: its hub's).
    load_site_mapping({k: v for k, v in data.items() if k not in HUB_SECTIONS}, str(path))
    interactive = not args.headless and sys.stdin.isatty() and sys.stdout.isatty()
    if interactive:
        require("prompt_toolkit", where="the interactive view (--headless needs none)")
        # Log lines would tear the full-screen view: keep only errors, in a file-less quiet.
        logging.getLogger().setLevel(logging.CRITICAL)
    return asyncio.run(serve(data, str(path), broker_url=args.broker, interactive=interactive))


async def serve(
    data: Mapping[str, Any], source: str, *, broker_url: str | None, interactive: bool
) -> int:
    """Run the site until Ctrl-C, SIGTERM or (interactive) quit; stop everything on the way out."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    view: Any = None

    def on_signal() -> None:
        stop.set()
        if view is not None:
            view.exit()

    for sig in SIGNALS:
        loop.add_signal_handler(sig, on_signal)
    try:
        with tempfile.TemporaryDirectory(prefix="centinela-sim-") as tmp:
            site = SimSite(
                data,
                source,
                clock=RealClock(),
                workdir=Path(tmp),
                broker_url=broker_url,
                # mosquitto when installed; CENTINELA_SIM_BROKER=amqtt forces the embedded one.
                prefer_broker=os.environ.get("CENTINELA_SIM_BROKER", "auto"),
            )
            async with site, _customer_area(site, Path(tmp)) as login:
                banner = describe(site) + login
                if interactive:
                    from sim.tui import SimView

                    view = SimView(site, banner)
                    if not stop.is_set():
                        await view.run()
                else:
                    _headless(site, banner)
                    await stop.wait()
                    _LOGGER.info("stopping")
    finally:
        for sig in SIGNALS:
            loop.remove_signal_handler(sig)
    return 0


@contextlib.asynccontextmanager
async def _customer_area(site: SimSite, workdir: Path) -> AsyncIterator[str]:
    """The customer area on the site's broker; yields the banner lines that say how to log in."""
    from sim.customer import start_customer_area

    try:
        import cloud.service  # noqa: F401 (its web stack is an extra: centinela[cloud])
    except ImportError as exc:
        yield f"\ncustomer area not installed ({exc.name} missing: pip install 'centinela[cloud]')"
        return
    area, login = await start_customer_area(site, workdir)
    others = ", ".join(f"{u} {k!r}" for u, k in login.keywords.items())
    try:
        yield (
            f"\ncustomer area {login.url} · log in as {login.email} / {login.password}"
            f"\nsign up another user: installation number {login.number}, keyword of {others}"
        )
    finally:
        await area.stop()


def describe(site: SimSite) -> str:
    """Site, panel, broker; then the keypad's serial path for a person to type into."""
    broker = site.broker.kind if site.broker is not None else "external"
    twin = site.device_twin("keypad", KeypadTwin)
    path = twin.path if twin is not None else ""
    keypad = f"\nkeypad serial {path} (type keys there from any serial terminal)" if path else ""
    return (
        f"centinela sim · site {site.facts.site} · panel {site.facts.panel}"
        f" · broker {site.broker_url} ({broker}){keypad}"
    )


def _headless(site: SimSite, banner: str) -> None:
    """Log the banner, then every event and state the cloud sees, one line each."""
    for line in banner.splitlines():
        _LOGGER.info("%s", line)
    _LOGGER.info("running; Ctrl-C or SIGTERM stops")

    def on_cloud(kind: str, value: Any) -> None:
        if kind == "event":
            _LOGGER.info("event %s", event_line(value))
        elif kind == "state":
            _LOGGER.info("state %s %s", value[0], value[1].get("state"))
        elif kind == "result":
            _LOGGER.info("result %s", value)
        elif kind == "availability":
            who = "hub" if value[0] == "hub" else f"panel {value[0]}"
            _LOGGER.info("%s %s", who, value[1])

    cloud = site.cloud
    assert cloud is not None
    # What arrived while the site was starting first, then everything as it comes.
    for panel, text in cloud.availability.items():
        on_cloud("availability", (panel, text))
    for panel, state in cloud.states.items():
        on_cloud("state", (panel, state))
    for event in cloud.events:
        on_cloud("event", event)
    cloud.listeners.append(on_cloud)
