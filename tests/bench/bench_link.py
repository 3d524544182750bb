"""Panel -> hub -> cloud over a real mosquitto, panel and hub as separate processes.

key_to_cloud_ms, command_rtt_ms, hub_events_per_s, backlog_drain_s, panel_rss_mb,
hub_rss_mb — each against a raw aiomqtt baseline measured in the same run.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiomqtt

from common.configcheck import parse_key
from common.mqtt import NODELAY
from protocol.frame import Direction
from protocol.keys import generate_key
from protocol.messages import Ack, Event, EventType, Method
from protocol.session import Receiver, Sender
from sim.broker import BrokerSpec, Mosquitto
from tests.bench.harness import Metric, percentiles
from tests.bench.raw_relay import four_hop_rtt, relay_throughput, two_hop_latency
from tests.procs import Proc, PtyKeypad, panel_last_seq, write_configs

OPS = 1000
RELAY_EVENTS = 5000
BACKLOG = 10_000


async def _wait_online(cloud: aiomqtt.Client, site: str = "demo") -> None:
    await cloud.subscribe(f"centinela/{site}/p1/availability", qos=1)
    async with asyncio.timeout(60):  # a loaded machine starts processes slowly
        async for message in cloud.messages:
            if message.payload == b"online":
                return


async def _key_to_cloud(
    broker: Mosquitto, kp: PtyKeypad, panel: Proc, hub: Proc
) -> dict[str, float]:
    samples: list[float] = []
    rss_panel = rss_hub = 0.0
    async with aiomqtt.Client(broker.host, broker.port, socket_options=NODELAY) as cloud:
        await _wait_online(cloud)
        await cloud.subscribe("centinela/demo/event", qos=1)
        messages = cloud.messages
        for i in range(OPS + 20):
            code, final = ("1234", "A") if i % 2 == 0 else ("1234", "D")
            kp.type(code)
            await asyncio.sleep(0.002)  # the first keys are taken in before the clock starts
            start = time.perf_counter()
            kp.type(final)
            async with asyncio.timeout(10):
                async for message in messages:
                    if str(message.topic).endswith("/event"):
                        break
            if i >= 20:
                samples.append((time.perf_counter() - start) * 1000)
            if i % 100 == 0:
                kp.drain()
                rss_panel = max(rss_panel, panel.rss_mb())
                rss_hub = max(rss_hub, hub.rss_mb())
        # Commands: cloud -> hub -> panel -> hub -> cloud.
        rtts: list[float] = []
        await cloud.subscribe("centinela/demo/result", qos=1)
        for i in range(OPS // 2 + 20):
            start = time.perf_counter()
            command = {
                "id": f"s{i}",
                "panel": "p1",
                "action": "status",
                "user": "alice",
                "via": "app",
            }
            await cloud.publish("centinela/demo/command", json.dumps(command), qos=1)
            async with asyncio.timeout(10):
                async for message in messages:
                    if str(message.topic).endswith("/result"):
                        break
            if i >= 20:
                rtts.append((time.perf_counter() - start) * 1000)
    p50, p99 = percentiles(samples)
    c50, c99 = percentiles(rtts)
    return {
        "p50": p50,
        "p99": p99,
        "c50": c50,
        "c99": c99,
        "rss_panel": rss_panel,
        "rss_hub": rss_hub,
    }


async def _hub_throughput(broker: Mosquitto, key_text: str) -> float:
    """A raw-frame panel (p2) pushes events with a window of 64; rate at the cloud."""
    key = parse_key(key_text, file="bench", key="key")
    sender = Sender("p2", Direction.PANEL_TO_HUB, key, epoch=0x0B3C)
    receiver = Receiver("p2", Direction.HUB_TO_PANEL, {0: key}, local_epoch=0x0B3C)
    acked = 0
    async with (
        aiomqtt.Client(broker.host, broker.port, socket_options=NODELAY) as cloud,
        aiomqtt.Client(broker.host, broker.port, socket_options=NODELAY) as fake,
    ):
        fake.pending_calls_threshold = 10_000
        await cloud.subscribe("centinela/demo/event", qos=1)
        await fake.subscribe("centinela-link/demo/p2/down", qos=1)
        progress = asyncio.Event()

        async def acks() -> None:
            nonlocal acked
            async for message in fake.messages:
                got = receiver.open(bytes(message.payload))  # type: ignore[arg-type]
                if got.new_epoch:  # the hub's answer to unbound frames: bind to its store
                    sender.peer_epoch = got.header.epoch
                    progress.set()
                elif isinstance(got.message, Ack):
                    acked = max(acked, got.message.upto_seq)
                    progress.set()

        async def produce() -> None:
            sent = 0
            while sent < RELAY_EVENTS:
                while sent < min(RELAY_EVENTS, acked + 64):
                    sent += 1
                    event = Event(sent, 0, EventType.CODE_REJECTED, Method.KEYPAD, "1461", "JA")
                    await fake.publish("centinela-link/demo/p2/up", sender.seal(event, 0), qos=1)
                progress.clear()
                try:
                    async with asyncio.timeout(2):
                        await progress.wait()
                except TimeoutError:
                    sent = acked  # resend from the oldest unacknowledged, as a panel does

        ack_task = asyncio.create_task(acks())
        start = time.perf_counter()
        producer = asyncio.create_task(produce())
        got = 0
        async with asyncio.timeout(120):
            async for message in cloud.messages:
                if json.loads(message.payload).get("panel") == "p2":  # type: ignore[arg-type]
                    got += 1
                    if got == RELAY_EVENTS:
                        break
        elapsed = time.perf_counter() - start
        producer.cancel()
        ack_task.cancel()
    return RELAY_EVENTS / elapsed


async def _backlog(broker: Mosquitto, kp: PtyKeypad, panel_db: Path) -> float:
    """Events queued at the panel while the broker is down; seconds to drain at the cloud."""
    async with aiomqtt.Client(
        broker.host, broker.port, identifier="bench-cloud", clean_session=False
    ) as c:
        await c.subscribe("centinela/demo/event", qos=1)
    broker.stop()
    recorded = panel_last_seq(panel_db)
    for i in range(BACKLOG):
        kp.type("1234A" if i % 2 == 0 else "1234D")
        if i % 50 == 0:
            await asyncio.sleep(0.02)  # let the serial line and the panel keep up
            kp.drain()
    # The clock starts once the panel has recorded every event typed (in its store).
    async with asyncio.timeout(120):
        while panel_last_seq(panel_db) < recorded + BACKLOG:
            await asyncio.sleep(0.05)
            kp.drain()
    start = time.perf_counter()
    broker.start()
    got = 0
    last = 0
    print(f"backlog: {BACKLOG} events typed; broker back", file=sys.stderr)
    async with asyncio.timeout(120):
        while True:
            try:
                async with aiomqtt.Client(
                    broker.host, broker.port, identifier="bench-cloud", clean_session=False
                ) as cloud:
                    async for message in cloud.messages:
                        event = json.loads(message.payload)  # type: ignore[arg-type]
                        if event.get("panel") == "p1" and event["seq"] > last:
                            last = event["seq"]
                            got += 1
                            if got % 1000 == 0:
                                print(f"  {got} at the cloud (seq {last})", file=sys.stderr)
                            if got >= BACKLOG:
                                return time.perf_counter() - start
            except aiomqtt.MqttError:
                await asyncio.sleep(0.05)


def _baseline_rss() -> float:
    """RSS (MiB) of a bare Python process holding one connected aiomqtt client."""
    code = (
        "import asyncio,aiomqtt,sys\n"
        "async def m():\n"
        "  async with aiomqtt.Client('127.0.0.1', int(sys.argv[1])):\n"
        "    print(open('/proc/self/status').read().split('VmRSS:')[1].split()[0], flush=True)\n"
        "asyncio.run(m())\n"
    )
    with Mosquitto() as broker:
        out = subprocess.run(
            [sys.executable, "-c", code, str(broker.port)],
            capture_output=True,
            text=True,
            check=True,
        )
    return int(out.stdout.split()[0]) / 1024


async def run() -> list[Metric]:
    workdir = Path(tempfile.mkdtemp(prefix="centinela-bench-"))
    key = generate_key()
    with Mosquitto(BrokerSpec(persistence=True)) as broker:
        base_lat = percentiles(await two_hop_latency(broker.host, broker.port, OPS))
        base_rtt = percentiles(await four_hop_rtt(broker.host, broker.port, OPS // 2))
        base_tp = await relay_throughput(broker.host, broker.port, RELAY_EVENTS)
        kp = PtyKeypad()
        panel_toml, hub_toml = write_configs(workdir, broker.url, key, kp.url)
        with (workdir / "hub.toml").open("a") as f:
            f.write(f'\n[[panels]]\nid = "p2"\nkey = "{key}"\n')
        hub = Proc(["hub", "--config", str(hub_toml)], workdir / "hub.log").start()
        panel = Proc(["panel", "--config", str(panel_toml)], workdir / "panel.log").start()
        try:
            # Idle means started: the panel shows its state on the keypad and the hub says
            # it is online.
            await kp.opened()
            async with aiomqtt.Client(broker.host, broker.port) as cloud:
                await _wait_online(cloud)
            idle_panel, idle_hub = panel.rss_mb(), hub.rss_mb()
            lat = await _key_to_cloud(broker, kp, panel, hub)
            hub_tp = await _hub_throughput(broker, key)
            drain = await _backlog(broker, kp, workdir / "p1.db")
            load_panel = max(lat["rss_panel"], panel.rss_mb())
            load_hub = max(lat["rss_hub"], hub.rss_mb())
        finally:
            panel.stop()
            hub.stop()
            kp.close()
            shutil.rmtree(workdir, ignore_errors=True)  # it holds a panel key
    base_rss = _baseline_rss()
    return [
        Metric(
            "key_to_cloud_ms",
            lat["p50"],
            "ms",
            base_lat[0],
            "p50 <= 2x baseline, p99 <= 20 ms",
            {"p99": lat["p99"], "baseline_p99": base_lat[1]},
            met=lat["p50"] <= 2 * base_lat[0] and lat["p99"] <= 20,
        ),
        Metric(
            "command_rtt_ms",
            lat["c50"],
            "ms",
            base_rtt[0],
            "p50 <= 2x baseline",
            {"p99": lat["c99"], "baseline_p99": base_rtt[1]},
            met=lat["c50"] <= 2 * base_rtt[0],
        ),
        Metric(
            "hub_events_per_s",
            hub_tp,
            "1/s",
            base_tp,
            ">= 0.5x baseline",
            met=hub_tp >= base_tp / 2,
        ),
        Metric(
            "backlog_drain_s",
            drain,
            "s",
            None,
            f"<= 10 s for {BACKLOG} events",
            met=drain <= 10,
        ),
        Metric(
            "panel_rss_mb",
            load_panel,
            "MiB",
            base_rss,
            "<= 60 MiB",
            {"idle": idle_panel},
            met=load_panel <= 60,
        ),
        Metric(
            "hub_rss_mb",
            load_hub,
            "MiB",
            base_rss,
            "<= 60 MiB",
            {"idle": idle_hub},
            met=load_hub <= 60,
        ),
    ]
