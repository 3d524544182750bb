"""`centinela sim` starts the customer area with the site live behind it and says how to log in."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).parent.parent


def test_sim_prints_the_customer_area_and_a_login_that_works() -> None:
    env = {**os.environ, "CENTINELA_CLOUD_LISTEN": "127.0.0.1:0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "centinela.cli", "sim", "--headless"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "state p1" in line:
                break
        text = "".join(lines)
        area = re.search(r"customer area (http://127\.0\.0\.1:\d+) · log in as (\S+) / (\S+)", text)
        assert area, text
        assert "installation number 1234567" in text and "bob 'amapola'" in text
        url, email, password = area.groups()
        with httpx.Client(base_url=url, timeout=10) as web:
            page = web.get("/")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf
            r = web.post(
                "/login", data={"csrf": csrf.group(1), "email": email, "password": password}
            )
            assert r.status_code == 303
            for _ in range(50):  # the retained state reaches the service right after start-up
                home = web.get("/")
                if ">Disarmed<" in home.text:
                    break
                time.sleep(0.1)
            assert ">Disarmed<" in home.text and "Online" in home.text
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=20)  # reads what is left, so the logger never blocks
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=5)
    assert proc.returncode == 0
