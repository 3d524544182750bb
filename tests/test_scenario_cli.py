"""`centinela scenario run` as a rig engineer uses it: exit codes, messages, JUnit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sim.broker import Mosquitto
from sim.lifeline import Supervised

ROOT = Path(__file__).parent.parent
LIBRARY = ROOT / "sim" / "scenarios"


def centinela(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run the command; on a hang, SIGTERM it (so it stops its brokers) before failing."""
    argv = [sys.executable, "-m", "centinela", "scenario", "run", *map(str, args)]
    with Supervised(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            out, err = proc.communicate(timeout=50)
        except subprocess.TimeoutExpired:
            proc.terminate()
            proc.communicate(timeout=20)
            raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "spec: 1\nsteps:\n  - press: '1234A'\n  - wait: 1\n  - tap: alice\n  - presss: '1'\n",
            "steps[3]: unknown step \"presss\" (did you mean 'press'?) (line 6)",
        ),
        ("spec: 1\nsteps:\n  - {press: '1'\n", "YAML syntax error at line 4"),
        ("spec: 1\nsteps:\n  - open: garage\n", "steps[0].open: no zone 'garage' in the site"),
        (
            "spec: 1\nsite: {panel: {id: P!, site: demo}}\nsteps:\n  - wait: 1\n",
            ": site: panel.id",
        ),
    ],
)
def test_a_malformed_file_exits_2_naming_file_step_and_reason(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    proc = centinela(path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{path}: " in proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "0 passed, 0 failed, 1 malformed" in proc.stdout
    assert len(proc.stderr.strip().splitlines()) == 1
    assert message not in proc.stdout  # said once, on stderr
    assert proc.stderr.count(str(path)) == 1


def test_a_missing_file_exits_2(tmp_path: Path) -> None:
    proc = centinela(tmp_path / "nope.yaml")
    assert proc.returncode == 2
    assert "nope.yaml: no such file" in proc.stderr


WRONG = """\
spec: 1
name: deliberately wrong
steps:
  - press: "1234A"
  - expect: {state: arming}
  - wait: 10
  - expect: {state: armed_total, event: {type: armed, user: bob}}
  - press: "1234D"
"""


def test_a_good_and_a_wrong_scenario_pass_and_fail_with_junit(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(WRONG)
    junit = tmp_path / "out.xml"
    good = LIBRARY / "02_arm_total_code.yaml"
    proc = centinela(good, wrong, "--junit", junit)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert '  ✓ steps[0] press: "1234A"' in out
    assert (
        "  ✗ steps[3] expect: {state: armed_total, event: {type: armed, user: bob}}  (line 7)"
        in out
    )
    assert "but:      no event {type: armed, user: bob} on the cloud" in out
    assert "seen:     state armed_total, siren off, keypad unlocked" in out
    assert "events since steps[2] (on the cloud):" in out
    assert "armed mode=total user=alice method=keypad" in out
    assert "  - 1 step not run" in out
    assert "scenarios: 1 passed, 1 failed in" in out.splitlines()[-1]
    xml = junit.read_text()
    assert 'tests="2" failures="1"' in xml
    assert "deliberately wrong" in xml


def test_a_passing_file_exits_0(mosquitto: Mosquitto) -> None:
    proc = centinela(LIBRARY / "21_star_clears.yaml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "scenarios: 1 passed, 0 failed" in proc.stdout


REALTIME = """\
spec: 1
name: the same file on the wall clock
site:
  panel: {id: p1, site: quick}
  timing: {exit_delay: 1, entry_delay: 1, alarm_duration: 2}
  users: [{name: alice, code: "1234", role: master}]
  zones: [{name: door, kind: entry}]
steps:
  - press: "1234A"
  - expect: {state: arming}
  - wait: 1.2
  - expect: {state: armed_total, event: {type: armed}}
  - open: door
  - expect: {state: triggered, siren: "on", within: 3}
"""


def test_realtime_runs_the_same_file_on_the_wall_clock(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    path = tmp_path / "quick.yaml"
    path.write_text(REALTIME)
    proc = centinela(path, "--realtime")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "scenarios: 1 passed, 0 failed" in proc.stdout
    assert "simulated" not in proc.stdout
