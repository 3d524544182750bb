"""The suite's own hygiene checks can fail: a leftover task or child process fails its test."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).with_name("conftest.py").read_text()
INI = "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"


def test_a_leftover_task_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makeini(INI)
    pytester.makepyfile(
        """
        import asyncio

        async def test_leaves_a_task():
            asyncio.get_running_loop().create_task(asyncio.sleep(30))

        async def test_tidy():
            task = asyncio.get_running_loop().create_task(asyncio.sleep(30))
            task.cancel()
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    # The call passes; the teardown check errors on the test that left the task.
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*left asyncio tasks behind*", "ERROR *test_leaves_a_task*"])


def test_a_leftover_child_process_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makeini(INI)
    pytester.makepyfile(
        """
        import subprocess

        LEFT = []

        def test_leaves_a_process():
            LEFT.append(subprocess.Popen(["sleep", "30"]))

        def test_cleans_up():
            for proc in LEFT:
                proc.kill()
                proc.wait()
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*left child processes behind*", "ERROR *test_leaves_a_process*"])
