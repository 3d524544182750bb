"""The simulator's private broker: mosquitto when installed, else amqtt embedded in this process.

Both listen on a free 127.0.0.1 port only and can be stopped and started again
on the same port (the scenario step ``broker: stop`` / ``start``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

from common.extras import require
from sim.broker import BrokerSpec, Mosquitto, find_mosquitto, free_port

_LOGGER = logging.getLogger(__name__)


class PrivateBroker(Protocol):
    """A broker this process owns."""

    url: str
    kind: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def close(self) -> None: ...


class MosquittoBroker:
    """mosquitto in a child process, with persistence so queued messages survive a restart."""

    kind = "mosquitto"

    def __init__(self) -> None:
        self._broker = Mosquitto(BrokerSpec(persistence=True))
        self.url = self._broker.url

    @property
    def pid(self) -> int | None:
        """The child's PID while it runs (the supervisor of the mosquitto process)."""
        return self._broker.proc.pid if self._broker.proc else None

    async def start(self) -> None:
        await asyncio.to_thread(self._broker.start)

    async def stop(self) -> None:
        await asyncio.to_thread(self._broker.stop)

    async def close(self) -> None:
        await asyncio.to_thread(self._broker.close)


class EmbeddedBroker:
    """amqtt on this event loop (MQTT 3.1.1, anonymous, bound to 127.0.0.1 only)."""

    kind = "amqtt"

    def __init__(self, port: int | None = None) -> None:
        require("amqtt", where="the embedded broker")
        self.port = port or free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self._broker: Any = None

    def _config(self) -> dict[str, Any]:
        return {
            # amqtt's default listener binds every address: always name 127.0.0.1.
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }

    async def start(self) -> None:
        from amqtt.broker import Broker

        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._broker = Broker(self._config())
        await self._broker.start()
        _LOGGER.debug("embedded amqtt broker on %s", self.url)

    async def stop(self) -> None:
        broker, self._broker = self._broker, None
        if broker is None:
            return
        with contextlib.suppress(Exception):
            await broker.shutdown()
        # amqtt leaves the handlers of connections it closed running: end them here.
        leftovers = [
            task
            for task in asyncio.all_tasks()
            if getattr(task.get_coro(), "__qualname__", "").startswith("Broker.")
            and task is not asyncio.current_task()
        ]
        for task in leftovers:
            task.cancel()
        for task in leftovers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def close(self) -> None:
        await self.stop()


def private_broker(prefer: str = "auto") -> PrivateBroker:
    """mosquitto when installed (or asked for), else the embedded amqtt broker."""
    if prefer == "amqtt" or (prefer == "auto" and find_mosquitto() is None):
        return EmbeddedBroker()
    return MosquittoBroker()
