"""Serial keypad: one ASCII byte per key in, display and beep lines out (pyserial, asyncio)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

import serial
import serial_asyncio_fast

from drivers.base import Backoff, reason_of
from drivers.keypad import KEY_BYTES, KeypadDriver, beep_line, display_line
from drivers.reports import KeyPressed

_LOGGER = logging.getLogger(__name__)

_KEYS = {b: KeyPressed(chr(b)) for b in KEY_BYTES}


class _Protocol(asyncio.Protocol):
    def __init__(self, driver: SerialKeypad) -> None:
        self._driver = driver

    def data_received(self, data: bytes) -> None:
        self._driver._on_bytes(data)

    def eof_received(self) -> bool | None:
        return None  # close the transport: the keypad hung up

    def connection_lost(self, exc: Exception | None) -> None:
        self._driver._on_closed(self, exc)


class SerialKeypad(KeypadDriver):
    """A keypad on a serial line (``/dev/ttyUSB0``) or a TCP serial server (``socket://``).

    Key bytes are never logged. Bytes outside the key set are counted in
    ``stats.noise`` and dropped.
    """

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = 9600,
        device: str = "keypad",
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__(device)
        self.port = port
        self.baudrate = baudrate
        self._backoff = backoff or Backoff(base=0.2, cap=30.0)
        self._transport: serial_asyncio_fast.SerialTransport | None = None
        self._protocol: _Protocol | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._closed_event = asyncio.Event()
        if device != "keypad":
            self._keys = {b: KeyPressed(chr(b), device) for b in KEY_BYTES}
        else:
            self._keys = _KEYS

    async def _start(self) -> None:
        if self.twin is not None:
            await self.twin.start()
            self.port = self.twin.driver_port
        if not await self._open():
            self._schedule_reconnect()

    async def _stop(self) -> None:
        task, self._reconnect_task = self._reconnect_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        transport, self._transport = self._transport, None
        if transport is not None and not transport.is_closing():
            self._closed_event.clear()
            transport.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await self._closed_event.wait()
        if self.twin is not None:
            await self.twin.close()

    async def _open(self) -> bool:
        protocol = _Protocol(self)
        try:
            transport, _ = await serial_asyncio_fast.create_serial_connection(
                asyncio.get_running_loop(), lambda: protocol, self.port, baudrate=self.baudrate
            )
        except (OSError, serial.SerialException, ValueError) as exc:
            self._lost(reason_of(exc))
            return False
        if not self._running:
            transport.close()
            return False
        self._transport = transport
        self._protocol = protocol
        self._back()
        return True

    def _schedule_reconnect(self) -> None:
        if self._running and (self._reconnect_task is None or self._reconnect_task.done()):
            self._reconnect_task = asyncio.get_running_loop().create_task(
                self._reconnect(), name=f"centinela-{self.device}-reconnect"
            )

    async def _reconnect(self) -> None:
        attempt = 0
        while self._running:
            await asyncio.sleep(self._backoff.delay(attempt))
            attempt += 1
            if await self._open():
                return

    def _on_bytes(self, data: bytes) -> None:
        stats = self.stats
        stats.bytes_in += len(data)
        keys = self._keys
        put = self.stream.put
        for byte in data:
            inp = keys.get(byte)
            if inp is None:
                stats.noise += 1
            else:
                stats.keys += 1
                put(inp)

    def _on_closed(self, protocol: _Protocol, exc: Exception | None) -> None:
        self._closed_event.set()
        if protocol is not self._protocol:
            return
        self._protocol = None
        self._transport = None
        if self._running:
            self._lost(reason_of(exc) if exc else "port closed")
            self._schedule_reconnect()

    def _write(self, line: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing() or not self.connected:
            self.stats.dropped_out += 1
            _LOGGER.debug("%s: output dropped while lost", self.device)
            return
        # Written straight to the descriptor, never blocking: pyserial's own write spins
        # while the line is full (a keypad that stopped reading, flow control held), and
        # that would stall the whole panel. A display line that does not fit is dropped.
        port = transport.serial
        if port is None:
            self.stats.dropped_out += 1
            return
        try:
            fd = port.fileno()
            if os.get_blocking(fd):
                os.set_blocking(fd, False)
            written = os.write(fd, line)
        except BlockingIOError:
            written = 0
        except (OSError, AttributeError, serial.SerialException) as exc:
            _LOGGER.debug("%s: write failed: %s", self.device, exc)
            written = 0
        if written < len(line):
            self.stats.dropped_out += 1
            return
        self.stats.lines_out += 1

    async def display(self, text: str) -> None:
        """Send ``D:<text>\\n``."""
        self._write(display_line(text))

    async def beep(self, kind: str) -> None:
        """Send ``B:<kind>\\n``."""
        self._write(beep_line(kind))
