"""The short chaos run: a few thousand events, one broker restart, one hub and one panel SIGKILL."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import chaos


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_nothing_lost_nothing_repeated_while_everything_fails(
    tmp_path: Path, mosquitto: object
) -> None:
    report = await chaos.run(events=3000, faults=1, seed=20261126, workdir=tmp_path)
    report.print()
    assert report.faults == {"broker": 1, "hub": 1, "panel": 1}
    assert report.problems == []
    assert report.panel_last_seq >= 3000
    assert report.cloud.seen == set(range(1, report.panel_last_seq + 1))
    assert report.hub_count == report.panel_last_seq
