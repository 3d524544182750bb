"""Links that never give up, tasks that never die silently, commands that never run late."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from common.clock import VirtualClock
from common.mqtt import BrokerConfig, LinkState
from hub.mqttlink import MqttLink
from panel.link import LinkSettings, PanelLink
from panel.store import PanelStore
from protocol.keys import generate_key
from protocol.messages import Action, Command, Mode, Via
from protocol.topics import link_topics
from sim.broker import BrokerSpec, Mosquitto
from tests.panel_site import site_on
from tests.test_hub_fakepanel import T0, until

OUTAGE_S = 30 * 60


@pytest.fixture
def own_broker(broker_factory: Callable[[BrokerSpec], Mosquitto]) -> Mosquitto:
    """A broker of this test's own: the retained state of site "demo" stays there."""
    return broker_factory(BrokerSpec())


# -- one backoff ---------------------------------------------------------------------------


def test_one_backoff_for_links_and_drivers_correct_at_a_million_attempts() -> None:
    from common.backoff import Backoff
    from drivers import base

    assert base.Backoff is Backoff  # the drivers use the same implementation
    backoff = Backoff(base=0.05, cap=2.0, rng=random.Random(3))
    backoff.attempt = 10**6
    delays = [backoff.next() for _ in range(100)]
    assert all(1.0 <= d <= 2.0 for d in delays)
    assert backoff.ceiling(10**6) == 2.0
    backoff.reset()
    assert backoff.next() <= 0.05


# -- a 30-minute broker outage in virtual time -----------------------------------------


def _port_outside_ephemeral_range() -> int:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for port in random.sample(range(10_000, low), 100):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.fail("no free port below the ephemeral range")


async def _ride_out(
    clock: VirtualClock, waits: Callable[[], int], task: asyncio.Task[None], until_ms: int
) -> None:
    """Let each failed attempt's backoff pass on ``clock`` until ``until_ms``."""
    while clock.now_ms() < until_ms:
        seen = waits()
        # The link failed an attempt (a real refused connection) and sleeps on the clock.
        async with asyncio.timeout(30):
            while waits() == seen or clock.next_deadline() is None:
                if task.done():
                    task.result()  # a link that gave up: its exception fails the test
                    pytest.fail("the link task ended")
                await asyncio.sleep(0.001)
        deadline = clock.next_deadline()
        assert deadline is not None
        await clock.advance_to(deadline)


@pytest.mark.parametrize("side", ["panel", "hub"])
async def test_a_30_minute_broker_outage_in_virtual_time(side: str, tmp_path: Path) -> None:
    """Issue 10 item 7: the backoff overflowed at attempt 1,024 (about 25 minutes)."""
    # Not started yet: its port refuses connections. Outside the ephemeral range, so that no
    # attempt's own source port can be the destination (a TCP self-connect).
    broker = Mosquitto(port=_port_outside_ephemeral_range())
    clock = VirtualClock(T0)
    config = BrokerConfig(broker.host, broker.port)
    store: PanelStore | None = None
    link: PanelLink | MqttLink
    if side == "panel":
        store = PanelStore(tmp_path / "p1.db")
        settings = LinkSettings("demo", "p1", config, bytes.fromhex(generate_key()))
        link = PanelLink(settings, store, clock, lambda _c: None, sleep=clock.sleep)
        panel_link = link

        def waits() -> int:
            return panel_link.counters["connect_waits"]
    else:
        from common.backoff import Backoff

        link = MqttLink(
            "local", config, identifier="outage-hub", subscriptions=["centinela-link/demo/+/up"],
            on_message=lambda _m: None, backoff=Backoff(base=0.05, cap=2.0), sleep=clock.sleep,
        )  # fmt: skip
        hub_link = link

        def waits() -> int:
            return hub_link.connect_waits

    task = asyncio.create_task(link.run())
    try:
        await _ride_out(clock, waits, task, T0 + OUTAGE_S * 1000)
        assert waits() > 1024  # past the attempt that used to overflow
        broker.start()
        async with asyncio.timeout(30):
            while link.state is not LinkState.UP:
                assert not task.done()
                deadline = clock.next_deadline()  # the link sleeps before its next attempt
                if deadline is None:
                    await asyncio.sleep(0.001)
                else:
                    await clock.advance_to(deadline)
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        broker.close()
        if store is not None:
            store.close()


# -- supervised tasks ----------------------------------------------------------------------


async def test_a_task_that_raises_or_returns_is_logged_and_restarted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from common.supervise import Supervisor

    runs: list[str] = []
    done = asyncio.Event()

    async def flaky() -> None:
        runs.append("raise")
        if len(runs) == 1:
            raise RuntimeError("a bug")
        if len(runs) == 2:
            return
        done.set()
        await asyncio.Event().wait()

    supervisor = Supervisor("test", base=0.001, cap=0.01)
    with caplog.at_level(logging.ERROR, logger="common.supervise"):
        supervisor.spawn("worker", flaky)
        async with asyncio.timeout(10):
            await done.wait()
        await supervisor.stop()
    assert supervisor.restarts["worker"] == 2
    messages = [r.getMessage() for r in caplog.records]
    assert "test task worker failed; restarting it" in messages
    assert "test task worker ended; restarting it" in messages
    assert any(r.exc_info and "a bug" in str(r.exc_info[1]) for r in caplog.records)
    assert supervisor.running() == []


async def test_the_panel_link_task_that_raises_is_restarted_with_a_log_line(
    own_broker: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """Issue 10 item 7: the panel's link task ended unnoticed and the panel ran on unlinked."""
    real_run = PanelLink.run
    calls: list[int] = []

    async def breaks_once(self: PanelLink) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OverflowError("int too large to convert to float")
        await real_run(self)

    monkeypatch.setattr(PanelLink, "run", breaks_once)
    with caplog.at_level(logging.ERROR, logger="common.supervise"):
        async with site_on(own_broker, tmp_path) as s:
            assert s.panel.link is not None
            link = s.panel.link
            await until(lambda: link.state is LinkState.UP)
            await until(lambda: s.hub.availability.label("p1") == "online")
    assert len(calls) == 2
    assert "panel task link failed; restarting it" in [r.getMessage() for r in caplog.records]


# -- commands that arrive after their deadline ---------------------------------------------


def test_the_hub_clock_follows_the_freshest_frame_and_forgets_old_ones() -> None:
    from panel.link import HubClock

    now = [100.0]
    hub = HubClock(lambda: now[0])
    assert hub.now_ms() is None
    assert hub.late_by(0) == 0  # nothing known: nothing refused
    hub.sample(1_000_000)  # the hub's clock leads the local one by 900,000 ms
    hub.sample(999_000)  # a frame that spent a second in transit
    now[0] += 5
    assert hub.now_ms() == 1_005_000
    assert hub.late_by(1_004_000) == 1000
    assert hub.late_by(1_006_000) == 0
    assert hub.late_by(None) == 0  # a command from a hub before protocol 1.1
    now[0] += HubClock.WINDOW_S + 1  # the hub's clock was set back meanwhile
    hub.sample(500_000)
    assert hub.now_ms() == 500_000


async def test_a_command_that_reaches_the_panel_after_its_deadline_is_refused(
    own_broker: Mosquitto, tmp_path: Path
) -> None:
    """Issue 10 item 3: a command held up in transit must not be executed late."""
    async with site_on(own_broker, tmp_path) as s:
        panel, hub = s.panel, s.hub
        link = panel.link
        assert link is not None and hub.relay is not None
        await until(lambda: link.counters["hub_heartbeats"] >= 1)  # the hub's clock is known
        now = hub.clock.now_ms()
        # Sealed by the hub 20 s ago with the usual deadline, delivered only now.
        command = Command("late", Action.ARM, "alice", Via.APP, mode=Mode.TOTAL,
                          deadline_ms=now - 15_000)  # fmt: skip
        frame = hub.relay.seal("p1", command, now - 20_000)
        await s.client.publish(link_topics("demo", "p1")[1], frame, qos=1)
        await until(lambda: link.counters["late_command"] == 1)
        await until(lambda: hub.counters.get("late_result", 0) == 1)  # refused, not executed
        assert str(panel.view().state) == "disarmed"
        assert not [e for e in s.cloud.events if e["type"] in ("arming", "armed")]
        # A command on time goes through.
        await s.client.publish(
            "centinela/demo/command",
            b'{"id":"c1","panel":"p1","action":"arm","mode":"total","user":"alice","via":"app"}',
            qos=1,
        )
        await s.cloud.wait_for(lambda c: any(r["id"] == "c1" for r in c.results))
        assert next(r for r in s.cloud.results if r["id"] == "c1")["ok"] is True
        assert str(panel.view().state) == "arming"
