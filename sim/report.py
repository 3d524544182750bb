"""Scenario run reports: the summary line and JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from sim.runner import ScenarioOutcome


def summary(outcomes: Sequence[ScenarioOutcome], seconds: float) -> str:
    """``N passed, N failed`` (with malformed and errors when there are any) and the time."""
    counts = {s: sum(1 for o in outcomes if o.status == s) for s in ("passed", "failed")}
    text = f"{counts['passed']} passed, {counts['failed']} failed"
    malformed = sum(1 for o in outcomes if o.status == "malformed")
    errors = sum(1 for o in outcomes if o.status == "error")
    if malformed:
        text += f", {malformed} malformed"
    if errors:
        text += f", {errors} errors"
    virtual = sum(o.virtual_s for o in outcomes)
    simulated = f" ({virtual:g} s simulated)" if virtual else ""
    return f"scenarios: {text} in {seconds:.1f} s{simulated}"


def exit_status(outcomes: Sequence[ScenarioOutcome]) -> int:
    """2 when a file was malformed, 1 when an expectation failed or a run broke, else 0."""
    if any(o.status == "malformed" for o in outcomes):
        return 2
    if any(o.status != "passed" for o in outcomes):
        return 1
    return 0


def write_junit(outcomes: Sequence[ScenarioOutcome], path: str | Path) -> None:
    """One testsuite, one testcase per scenario file, the step lines as system-out."""
    suite = ET.Element(
        "testsuite",
        name="centinela scenarios",
        tests=str(len(outcomes)),
        failures=str(sum(1 for o in outcomes if o.status == "failed")),
        errors=str(sum(1 for o in outcomes if o.status in ("error", "malformed"))),
        skipped="0",
        time=f"{sum(o.seconds for o in outcomes):.3f}",
    )
    for outcome in outcomes:
        case = ET.SubElement(
            suite,
            "testcase",
            classname="scenarios",
            name=outcome.name,
            file=outcome.path,
            time=f"{outcome.seconds:.3f}",
        )
        lines = []
        for step in outcome.steps:
            lines.append(f"{'✓' if step.ok else '✗'} steps[{step.index}] {step.text}")
            lines.extend(f"    {d}" for d in step.detail)
        if outcome.status == "failed":
            failure = ET.SubElement(case, "failure", message=outcome.message, type="expectation")
            failed = next((s for s in outcome.steps if not s.ok), None)
            failure.text = "\n".join(failed.detail) if failed else outcome.message
        elif outcome.status in ("error", "malformed"):
            error = ET.SubElement(case, "error", message=outcome.message, type=outcome.status)
            error.text = outcome.message
        if lines:
            ET.SubElement(case, "system-out").text = "\n".join(lines)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    Path(path).write_bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n")
