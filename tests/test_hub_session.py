"""The hub's cloud session: client id per site, a kept session, and commands sent while away.

A hub behind a load balancer may lose its connection at any moment (a node taken out,
a connection moved) or restart. With ``[cloud] session_expiry`` the broker keeps the
hub's session and queues the QoS 1 commands sent meanwhile; with the default (0) it
keeps nothing, and a command sent while the hub is away is never executed late.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from common.clock import VirtualClock
from common.errors import ConfigError
from common.mqtt import BrokerConfig, LinkState, link_options
from hub.cloudapi import iso_ms
from hub.commands import Accepted, Rejected, parse_command
from hub.config import MAX_SESSION_EXPIRY, HubConfig, load_hub_mapping
from hub.process import HubProcess
from protocol.messages import Action, Command, Result, State
from sim.broker import Mosquitto
from tests.test_hub_fakepanel import T0, Cloud, RawPanel, hub_mapping, new_key, new_site
from tests.test_hub_fakepanel import until as poll
from tests.test_hub_process import running

ARM = {"panel": "p1", "action": "arm", "mode": "total", "user": "alice", "via": "app"}
DAY = 86_400


def _answer(command: Command) -> Result | None:
    if command.action is Action.ARM:
        return Result(command.id, True, state=State.ARMING)
    return None


def _config(
    site: str, local: Mosquitto, key: bytes, tmp: Path, cloud_url: str, **cloud: Any
) -> HubConfig:
    mapping = hub_mapping(site, local, {"p1": key}, tmp / "hub.db")
    mapping["cloud"] = {"broker": cloud_url, **cloud}
    return load_hub_mapping(mapping, "<test>")


class BrokerLog:
    """The broker's own log from now on: what it says about one client."""

    def __init__(self, broker: Mosquitto) -> None:
        self._path = broker.log_path
        self._start = self._path.stat().st_size if self._path.exists() else 0

    def text(self) -> str:
        with self._path.open("rb") as log:
            log.seek(self._start)
            return log.read().decode(errors="replace")

    async def wait(self, *lines: str) -> str:
        """Until the broker has logged one of ``lines``; the one it logged."""
        found: list[str] = []

        def logged() -> bool:
            text = self.text()
            found.extend(line for line in lines if line in text)
            return bool(found)

        await poll(logged, seen=lambda: self.text()[-400:])
        return found[0]


async def _gone(log: BrokerLog, client_id: str) -> None:
    """Until the broker has seen the hub's connection end (a DISCONNECT or a dropped socket)."""
    await log.wait(
        f"Client {client_id} disconnected.",
        f"Client {client_id} closed its connection.",
        f"Socket error on client {client_id}, disconnecting.",
    )


class Balancer:
    """A TCP load balancer in front of one broker, whose connections can all be dropped."""

    def __init__(self, broker: Mosquitto) -> None:
        self.broker = broker
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Balancer:
        await self.resume()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.cut()

    async def resume(self) -> None:
        """Take connections again (on the same port)."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Refuse new connections and drop every open one, on both sides."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.close()
        pipes = list(self._pipes)
        for task in pipes:
            task.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.broker.host, self.broker.port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65_536):
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            sink.close()
            self._writers.discard(sink)


# -- the settings ------------------------------------------------------------------------


def _mapping(**cloud: Any) -> dict[str, Any]:
    return {
        "hub": {"site": "s"},
        "panels": [{"id": "p1", "key": new_key().hex()}],
        "cloud": {"broker": "mqtt://cloud.example.com", **cloud},
    }


def test_the_defaults_are_todays_clean_session_with_the_site_in_the_client_id() -> None:
    config = load_hub_mapping(_mapping(), "hub.toml")
    assert config.cloud_client_id == "centinela-hub-s-cloud"
    assert config.cloud_session_expiry == 0
    no_cloud = load_hub_mapping({k: v for k, v in _mapping().items() if k != "cloud"}, "h")
    assert (no_cloud.cloud_client_id, no_cloud.cloud_session_expiry) == (
        "centinela-hub-s-cloud", 0,
    )  # fmt: skip
    kept = load_hub_mapping(
        _mapping(client_id="acme/site-0042:hub", session_expiry=3600), "hub.toml"
    )
    assert kept.cloud_client_id == "acme/site-0042:hub"
    assert kept.cloud_session_expiry == 3600


def test_the_connect_options_ask_for_a_kept_session_on_both_protocols() -> None:
    v5 = BrokerConfig("h", 1883)
    clean = link_options(v5)
    assert clean["clean_start"] is True
    assert clean["properties"].SessionExpiryInterval == 0
    kept = link_options(v5, session_expiry=600)
    assert kept["clean_start"] is False
    assert kept["properties"].SessionExpiryInterval == 600
    assert kept["properties"].MaximumPacketSize == 65_536
    v311 = BrokerConfig("h", 1883, mqtt5=False)
    assert link_options(v311)["clean_session"] is True
    assert link_options(v311, session_expiry=600)["clean_session"] is False


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("client_id", "", "1 to 128 printable ASCII characters without spaces"),
        ("client_id", "hub one", "without spaces"),
        ("client_id", "x" * 129, "1 to 128"),
        ("client_id", "hüb", "ASCII"),
        ("client_id", "a\nb", "printable"),
        ("client_id", 42, "must be a string, not an integer"),
        ("client_id", "centinela-hub-s-local", "client id on that broker for the panels' link"),
        ("session_expiry", -1, f"between 0 and {MAX_SESSION_EXPIRY}"),
        ("session_expiry", 7 * DAY + 1, f"between 0 and {MAX_SESSION_EXPIRY}, not 604801"),
        ("session_expiry", "3600", "must be an integer, not a string"),
        ("session_expiry", 1.5, "must be an integer, not a number"),
        ("session_expiry", True, "must be an integer, not a boolean"),
    ],
)
def test_each_bad_cloud_session_key_is_one_line_naming_file_and_key(
    key: str, value: Any, words: str
) -> None:
    data = _mapping(**{key: value})
    if value == "centinela-hub-s-local":
        data["cloud"]["broker"] = "mqtt://127.0.0.1:1883"  # the [local] broker's default
    with pytest.raises(ConfigError) as info:
        load_hub_mapping(data, "hub.toml")
    assert (info.value.file, info.value.key) == ("hub.toml", f"cloud.{key}")
    assert words in info.value.reason
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("key", ["client_id", "session_expiry"])
def test_the_local_link_has_no_session_keys(key: str) -> None:
    data = _mapping()
    data["local"] = {key: 60}
    with pytest.raises(ConfigError) as info:
        load_hub_mapping(data, "hub.toml")
    assert (info.value.key, info.value.reason.split(" (")[0]) == (f"local.{key}", "unknown key")


def test_the_hub_command_names_a_bad_session_key_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text(
        f'[hub]\nsite = "s"\n[cloud]\nsession_expiry = 700000\n'
        f'[[panels]]\nid = "p1"\nkey = "{new_key().hex()}"\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "centinela", "hub", "--config", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert str(path) in done.stderr
    assert "cloud.session_expiry: must be between 0 and 604800, not 700000" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_command_may_say_when_it_expires() -> None:
    raw = b'{"id": "c1", "panel": "p1", "action": "status", "user": "a", "via": "app", '
    parsed = parse_command(raw + b'"expires": "2026-11-18T11:06:43.500Z"}', ["p1"])
    assert isinstance(parsed, Accepted)
    assert parsed.expires_ms == T0 + 3_500
    offset = parse_command(raw + b'"expires": "2026-11-18T12:06:43.500+01:00"}', ["p1"])
    assert isinstance(offset, Accepted)
    assert offset.expires_ms == T0 + 3_500
    for bad in (b'"tomorrow"', b'"2026-11-18T11:06:43"', b"1795000003500", b"null"):
        rejected = parse_command(raw + b'"expires": ' + bad + b"}", ["p1"])
        assert isinstance(rejected, Rejected), bad
        assert rejected.detail.startswith("expires: must be a time with its offset")


# -- over mosquitto: a hub that restarts -------------------------------------------------


@pytest.mark.parametrize(("protocol", "session_expiry"), [("5", 600), ("3.1.1", 600), ("5", 0)])
async def test_a_command_sent_while_the_hub_restarts(
    mosquitto: Mosquitto, tmp_path: Path, protocol: str, session_expiry: int
) -> None:
    site, key = new_site(), new_key()
    config = _config(site, mosquitto, key, tmp_path, mosquitto.url,
                     protocol=protocol, session_expiry=session_expiry)  # fmt: skip
    client_id = config.cloud_client_id
    log = BrokerLog(mosquitto)
    async with contextlib.AsyncExitStack() as stack:
        cloud = await stack.enter_async_context(Cloud(mosquitto, site))
        async with running(config):
            panel = await stack.enter_async_context(
                RawPanel(mosquitto, site, "p1", key, answer=_answer)
            )
        await _gone(log, client_id)  # the hub stopped cleanly: its connection is over
        await cloud.command({**ARM, "id": "away"})
        async with running(config, VirtualClock(T0)):
            await cloud.command({**ARM, "id": "after"})
            after = await cloud.wait_result("after")
            assert after == {"id": "after", "panel": "p1", "ok": True, "state": "arming"}
            if session_expiry:
                # Kept by the broker, handed over on the reconnect, executed like any other.
                assert await cloud.wait_result("away") == {**after, "id": "away"}
                assert [c.id for c in panel.commands] == ["away", "after"]
                assert panel.commands[0].deadline_ms == T0 + 10_000  # from its arrival
            else:
                # Today's clean session: what was sent while the hub was away is gone
                # (it would have come before "after": one topic, one session, in order).
                assert "away" not in cloud.results()
                assert [c.id for c in panel.commands] == ["after"]
        if session_expiry:
            # Both were acknowledged to the broker ("away" before the subscriptions were
            # even sent again): a third start of the hub gets neither a second time.
            async with running(config, VirtualClock(T0)):
                await cloud.command({**ARM, "id": "third"})
                await cloud.wait_result("third")
                assert [c.id for c in panel.commands] == ["away", "after", "third"]
    level = "p5" if protocol == "5" else "p2"  # mosquitto logs 3.1.1 as p2
    clean = "c0" if session_expiry else "c1"
    assert f"as {client_id} ({level}, {clean}, k30)" in log.text()


async def test_commands_kept_in_the_broker_still_expire(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """A kept command is bounded by its sender's expiry, whatever the hub's own timeout."""
    site, key = new_site(), new_key()
    config = _config(site, mosquitto, key, tmp_path, mosquitto.url, session_expiry=DAY)
    log = BrokerLog(mosquitto)
    async with contextlib.AsyncExitStack() as stack:
        cloud = await stack.enter_async_context(Cloud(mosquitto, site))
        async with running(config):
            panel = await stack.enter_async_context(
                RawPanel(mosquitto, site, "p1", key, answer=_answer)
            )
        await _gone(log, config.cloud_client_id)
        await cloud.command({**ARM, "id": "late", "expires": iso_ms(T0 - 1)})
        await cloud.command({**ARM, "id": "soon", "expires": iso_ms(T0 + 3_000)})
        expiry = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        expiry.MessageExpiryInterval = 5
        await cloud.command({**ARM, "id": "mqtt5"}, properties=expiry)
        async with running(config, VirtualClock(T0)) as hub:  # the hub's clock says T0
            late = await cloud.wait_result("late")
            assert late == {"id": "late", "panel": "p1", "ok": False, "error": "timeout",
                            "detail": "the command expired before it reached the hub"}  # fmt: skip
            await cloud.wait_result("mqtt5")
            sent = {c.id: c.deadline_ms for c in panel.commands}
            assert list(sent) == ["soon", "mqtt5"]  # "late" never went to the panel
            assert sent["soon"] == T0 + 3_000
            mqtt5 = sent["mqtt5"]
            assert mqtt5 is not None
            assert T0 < mqtt5 <= T0 + 5_000  # what was left of its 5 s in the broker
            assert hub.counters["command_expired"] == 1


# -- over mosquitto: a connection dropped by the load balancer ---------------------------


@pytest.mark.parametrize("session_expiry", [600, 0])
async def test_a_command_sent_while_the_balancer_drops_the_hub(
    mosquitto: Mosquitto, tmp_path: Path, session_expiry: int
) -> None:
    site, key = new_site(), new_key()
    async with Balancer(mosquitto) as balancer:
        config = _config(site, mosquitto, key, tmp_path, balancer.url,
                         session_expiry=session_expiry,
                         client_id=f"acme-{site}")  # fmt: skip
        log = BrokerLog(mosquitto)
        async with (
            Cloud(mosquitto, site) as cloud,
            running(config, VirtualClock(T0)) as hub,
            RawPanel(mosquitto, site, "p1", key, answer=_answer) as panel,
        ):
            connects = hub.cloud.connects
            await balancer.cut()  # the hub is still running; its connection is gone
            await _gone(log, f"acme-{site}")
            await poll(lambda: hub.cloud.state is not LinkState.UP)
            await cloud.command({**ARM, "id": "away"})
            await balancer.resume()
            await poll(lambda: hub.cloud.state is LinkState.UP and hub.cloud.connects > connects)
            await cloud.command({**ARM, "id": "after"})
            await cloud.wait_result("after")
            if session_expiry:
                assert (await cloud.wait_result("away"))["ok"] is True
                assert [c.id for c in panel.commands] == ["away", "after"]
            else:
                assert "away" not in cloud.results()
                assert [c.id for c in panel.commands] == ["after"]
            assert [r["id"] for r in cloud.json("result")].count("after") == 1
        assert f"as acme-{site} (p5, {'c0' if session_expiry else 'c1'}, k30)" in log.text()


async def test_kept_commands_wait_for_the_panels_link_of_a_starting_hub(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """At start the cloud link waits for the panels' link: kept commands find the panels."""
    site, key = new_site(), new_key()
    async with Balancer(mosquitto) as local_path:
        mapping = hub_mapping(site, mosquitto, {"p1": key}, tmp_path / "hub.db")
        mapping["local"] = {"broker": local_path.url}
        mapping["cloud"] = {"broker": mosquitto.url, "session_expiry": 600}
        config = load_hub_mapping(mapping, "<test>")
        log = BrokerLog(mosquitto)
        async with contextlib.AsyncExitStack() as stack:
            cloud = await stack.enter_async_context(Cloud(mosquitto, site))
            async with running(config):
                panel = await stack.enter_async_context(
                    RawPanel(mosquitto, site, "p1", key, answer=_answer)
                )
            await _gone(log, config.cloud_client_id)
            await cloud.command({**ARM, "id": "away"})
            await local_path.cut()  # the panels' broker is out of reach when the hub starts
            hub = HubProcess(config, clock=VirtualClock(T0), backoff_cap=0.3, local_first_s=600)
            await hub.start()
            try:
                await poll(lambda: hub.local.connect_waits >= 3)  # refused three times
                assert hub.cloud.connects == 0  # not connected: "away" stays in the broker
                assert "away" not in cloud.results()
                await local_path.resume()
                assert await cloud.wait_result("away") == {
                    "id": "away", "panel": "p1", "ok": True, "state": "arming"
                }  # fmt: skip
                assert [c.id for c in panel.commands] == ["away"]
            finally:
                await hub.stop()


async def test_the_operators_cloud_gives_its_commands_an_expiry(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """``centinela cloud`` on MQTT 5 lets the broker drop a command once nobody waits for it."""
    from cloud.config import load_cloud_mapping
    from cloud.link import CloudLink
    from cloud.live import Live
    from cloud.store import open_store

    site = new_site()
    config = load_cloud_mapping(
        {
            "broker": {"url": mosquitto.url, "client_id": f"w-{site}", "share_group": "g1",
                       "session_expiry": 0},
            "store": {"url": f"sqlite:///{tmp_path / 'cloud.db'}"},
            "web": {"command_timeout": 7.5},
            "installations": [{"number": "1234", "site": site, "panel": "p1",
                               "holders": [{"user": "alice", "keyword": "secret"}]}],
        },
        "cloud.toml",
    )  # fmt: skip
    store = open_store(config.store_url)
    link = CloudLink(config, store, Live())
    async with Cloud(mosquitto, site) as hub_side:
        await link.start()
        try:
            await asyncio.wait_for(link.connected.wait(), 10)
            sent = asyncio.create_task(link.command(site, "status", "alice", "app"))
            await hub_side.wait(lambda: bool(hub_side.on("command")))
            command = hub_side.on("command")[0]
            body = hub_side.json("command")[0]
            await hub_side.client.publish(
                f"centinela/{site}/result", f'{{"id":"{body["id"]}","ok":true}}', qos=1
            )
            assert (await sent)["ok"] is True
        finally:
            await link.stop()
            store.close()
    left = getattr(command.properties, "MessageExpiryInterval", None)
    assert left is not None
    assert 0 < left <= 7  # its command_timeout in whole seconds, less what the hop took


def test_doctor_shows_the_cloud_session(tmp_path: Path) -> None:
    import io

    from centinela import doctor

    path = tmp_path / "hub.toml"
    path.write_text(
        '[hub]\nsite = "demo"\n[local]\nbroker = "mqtt://127.0.0.1:9"\n'
        '[cloud]\nbroker = "mqtt://127.0.0.1:9"\nclient_id = "acme-demo"\nsession_expiry = 900\n'
        f'[[panels]]\nid = "p1"\nkey = "{new_key().hex()}"\n'
    )
    out = io.StringIO()
    doctor.report(str(path), out=out)
    line = next(x for x in out.getvalue().splitlines() if "cloud session" in x)
    assert line.split()[0] == "ok"
    assert line.endswith("client id acme-demo, session kept 900 s while the hub is away")


async def test_a_command_sent_while_a_killed_hub_process_is_down(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """``centinela hub`` killed with SIGKILL: its kept session holds the command meanwhile."""
    from tests.procs import Proc

    site, key = new_site(), new_key()
    config = tmp_path / "hub.toml"
    config.write_text(
        f'[hub]\nsite = "{site}"\nstore = "hub.db"\n'
        f'[local]\nbroker = "{mosquitto.url}"\n'
        f'[cloud]\nbroker = "{mosquitto.url}"\nclient_id = "hub-{site}"\nsession_expiry = 600\n'
        f'[[panels]]\nid = "p1"\nkey = "{key.hex()}"\n'
    )
    hub = Proc(["hub", "--config", str(config)], tmp_path / "hub.log")
    async with contextlib.AsyncExitStack() as stack:
        cloud = await stack.enter_async_context(Cloud(mosquitto, site))
        try:
            hub.start()
            await cloud.wait(lambda: cloud.texts("hub/availability")[-1:] == ["online"])
            panel = await stack.enter_async_context(
                RawPanel(mosquitto, site, "p1", key, answer=_answer)
            )
            # The hub has stored the panel's epoch: after a restart it can send at once.
            await cloud.wait(lambda: cloud.texts("p1/availability")[-1:] == ["online"])
            hub.kill()  # no DISCONNECT: the broker publishes the hub's will
            await cloud.wait(lambda: cloud.texts("hub/availability")[-1:] == ["offline"])
            await cloud.command({**ARM, "id": "away"})
            hub.start()
            assert (await cloud.wait_result("away"))["ok"] is True
            assert [c.id for c in panel.commands] == ["away"]
        finally:
            hub.stop()
