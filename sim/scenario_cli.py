"""``centinela scenario run FILE... [--junit OUT.xml] [--realtime] [--rig RIG.toml]``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any

from common.clock import Clock, RealClock, VirtualClock
from common.errors import ConfigError, UsageError
from common.extras import MissingDependency
from sim.report import exit_status, summary, write_junit
from sim.runner import ScenarioOutcome, ScenarioRun
from sim.scenario import Scenario, check_against_site, load_scenario
from sim.site import DEMO_SITE, HUB_SECTIONS, VIRTUAL_START_MS, SimSite, SiteFacts, read_site_file

_LOGGER = logging.getLogger(__name__)
SEED = 20261126


def run_scenarios(args: argparse.Namespace) -> int:
    """The command's handler: run every file, print one line per step and a summary."""
    if not getattr(args, "verbose", False):
        # The run's own lines say what happened; library chatter would drown them.
        logging.getLogger().setLevel(logging.ERROR)
    out = _printer()
    outcomes = asyncio.run(
        _until_signal(run_files(args.files, realtime=args.realtime, rig=args.rig, out=out))
    )
    if args.junit:
        write_junit(outcomes, args.junit)
    return exit_status(outcomes)


async def _until_signal(work: Coroutine[Any, Any, list[ScenarioOutcome]]) -> list[ScenarioOutcome]:
    """Run ``work``; SIGTERM and SIGHUP cancel it like Ctrl-C, so every site is stopped."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await work
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None
    finally:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)


def _printer() -> Callable[[str], None]:
    encoding = (sys.stdout.encoding or "").lower()

    def out(text: str) -> None:
        if "utf" not in encoding:
            text = text.replace("✓", "ok").replace("✗", "FAIL").replace("—", "-")
        print(text, flush=True)

    return out


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def site_mapping(scenario: Scenario) -> tuple[Mapping[str, Any], str]:
    """The scenario's ``site:`` mapping (named after the file), or the bundled demo site."""
    if scenario.site is not None:
        return scenario.site, f"{scenario.path}: site"
    return read_site_file(DEMO_SITE), str(DEMO_SITE)


def validate(scenario: Scenario) -> tuple[Mapping[str, Any], str]:
    """Load the site (as the panel would) and check the names the steps use against it."""
    from panel.config import load_site_mapping

    data, source = site_mapping(scenario)
    load_site_mapping({k: v for k, v in data.items() if k not in HUB_SECTIONS}, source)
    facts = SiteFacts.from_mapping(data)
    check_against_site(scenario, facts.users, set(facts.zones))
    return data, source


async def run_files(
    files: Sequence[str],
    *,
    realtime: bool = False,
    rig: str | None = None,
    out: Callable[[str], None] = print,
    err: Callable[[str], None] = _stderr,
    prefer_broker: str = "auto",
) -> list[ScenarioOutcome]:
    """Run each file in turn (a malformed one is reported and skipped); print the summary."""
    started = time.perf_counter()
    outcomes: list[ScenarioOutcome] = []
    rig_config = None
    if rig is not None:
        from sim.rig import load_rig

        rig_config = load_rig(rig)
    for path in files:
        try:
            scenario = load_scenario(path)
            if rig_config is not None:
                # On a rig the panel runs its own site file: names are checked against it.
                facts = rig_config.facts
                check_against_site(scenario, facts.users, set(facts.zones))
            else:
                data, source = validate(scenario)
        except UsageError as exc:
            err(str(exc))  # the one error line, with the file, the step and the reason
            out(f"✗ {path}: malformed (see the error line)")
            outcomes.append(ScenarioOutcome(path, Path(path).stem, "malformed", message=str(exc)))
            continue
        if rig_config is not None:
            from sim.rig import run_on_rig

            outcomes.append(await run_on_rig(scenario, rig_config, out))
        else:
            outcomes.append(
                await run_simulated(
                    scenario, data, source, realtime=realtime, out=out, prefer_broker=prefer_broker
                )
            )
    if len(files) > 0:
        out(summary(outcomes, time.perf_counter() - started))
    return outcomes


async def run_simulated(
    scenario: Scenario,
    data: Mapping[str, Any],
    source: str,
    *,
    realtime: bool = False,
    out: Callable[[str], None] = print,
    prefer_broker: str = "auto",
) -> ScenarioOutcome:
    """Run one scenario on a fresh simulated site (own broker, own stores)."""
    random.seed(SEED)
    clock: Clock = RealClock() if realtime else VirtualClock(VIRTUAL_START_MS)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="centinela-scenario-") as tmp:
        site = SimSite(data, source, clock=clock, workdir=Path(tmp), prefer_broker=prefer_broker)
        try:
            await site.start()
        except MissingDependency:  # not the scenario's fault: one line, exit 2
            await site.stop()
            raise
        except Exception as exc:
            await site.stop()
            message = f"the simulated site did not start: {exc}"
            if isinstance(exc, ConfigError):
                out(f"✗ {scenario.path}: malformed: {exc}")
                return ScenarioOutcome(scenario.path, scenario.name, "malformed", message=str(exc))
            _LOGGER.debug("site start failed", exc_info=True)
            out(f"✗ {scenario.path}: {message}")
            return ScenarioOutcome(scenario.path, scenario.name, "error", message=message)
        try:
            from sim.simtarget import SimTarget

            return await ScenarioRun(scenario, SimTarget(site), out).run()
        except Exception as exc:
            _LOGGER.debug("scenario run broke", exc_info=True)
            message = f"the run broke: {type(exc).__name__}: {exc}"
            out(f"  ✗ {message}")
            outcome = ScenarioOutcome(scenario.path, scenario.name, "error", message=message)
            outcome.seconds = time.perf_counter() - started
            return outcome
        finally:
            await site.stop()
