"""Every scenario of the bundled library passes on the simulated site (virtual time)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.broker import Mosquitto
from sim.scenario import load_scenario
from sim.scenario_cli import run_simulated, validate

LIBRARY = sorted((Path(__file__).parent.parent / "sim" / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", LIBRARY, ids=[p.stem for p in LIBRARY])
async def test_library_scenario_passes(path: Path, mosquitto: Mosquitto) -> None:
    # `mosquitto` only makes sure the broker is installed; each scenario starts its own.
    scenario = load_scenario(path)
    data, source = validate(scenario)
    lines: list[str] = []
    outcome = await run_simulated(scenario, data, source, out=lines.append)
    assert outcome.passed, "\n".join(lines)
    assert outcome.events, "a scenario that saw no event on the cloud checks too little"


def test_the_library_covers_every_event_type_the_contract_lists() -> None:
    text = "\n".join(p.read_text() for p in LIBRARY)
    for kind in (
        "arming", "armed", "disarmed", "entry", "alarm", "panic", "duress", "tamper", "fire",
        "code_rejected", "tag_rejected", "keypad_locked", "keypad_unlocked", "arm_refused",
        "tag_revoked", "photo_requested", "photo_ready", "restart",
    ):  # fmt: skip
        assert f"type: {kind}" in text, kind
    for action in ("arm", "disarm", "status", "photo", "sos", "unlock", "revoke_tag"):
        assert f"action: {action}" in text, action
    for error in ("unknown_user", "forbidden", "bad_request", "invalid_state", "panel_offline"):
        assert f"error: {error}" in text, error
