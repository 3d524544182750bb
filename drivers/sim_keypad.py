"""Simulated serial keypads on the real wire: a pty pair, or a TCP serial server.

Each twin plays the keypad's side of the line: typed keys are written as key
bytes, the display and beep lines the real driver sends are parsed back.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import shutil
import socket
import tempfile
import tty
from collections.abc import Callable

from drivers.keypad import KEY_BYTES
from drivers.reports import KeyPressed, Report
from drivers.twin import SETTLE_LIMIT, Twin

_LOGGER = logging.getLogger(__name__)


class KeypadTwin(Twin):
    """What every simulated keypad offers: typing, the display, the beeps, unplugging."""

    path: str = ""
    driver_port: str = ""
    """What the serial driver opens (a pyserial port or URL)."""

    def __init__(self) -> None:
        super().__init__()
        self.display = ""
        self.displays: list[str] = []
        self.beeps: list[str] = []
        self.plugged = True
        self._rx = bytearray()

    async def start(self) -> None:
        """Create the device (called by the driver on entry)."""

    async def close(self) -> None:
        """Tear the device down (called by the driver on exit)."""

    def _send(self, data: bytes) -> None:
        raise NotImplementedError

    def type_nowait(self, keys: str) -> None:
        """Write the keys now; characters outside the key set go out too, as line noise."""
        data = keys.encode("latin-1")
        self._send(data)
        device = self.driver.device if self.driver is not None else "keypad"
        for byte in data:
            if byte in KEY_BYTES:
                self._expect(_key_matcher(chr(byte), device))

    async def type(self, keys: str) -> None:
        """Type ``keys`` once the keypad is connected; return when the panel has taken them in.

        Raises TimeoutError after SETTLE_LIMIT seconds (keypad unplugged, nobody reading).
        """
        if self.driver is not None:
            async with asyncio.timeout(SETTLE_LIMIT):
                await self.driver.wait_connected()
        self.type_nowait(keys)
        await self._settle_within(SETTLE_LIMIT)

    def write_raw(self, data: bytes) -> None:
        """Put raw bytes on the line (noise, bursts)."""
        self._send(data)

    def _on_output(self, data: bytes) -> None:
        self._rx += data
        while (end := self._rx.find(b"\n")) >= 0:
            line = bytes(self._rx[:end]).decode("ascii", "replace")
            del self._rx[: end + 1]
            if line.startswith("D:"):
                self.display = line[2:]
                self.displays.append(self.display)
            elif line.startswith("B:"):
                self.beeps.append(line[2:])
        if len(self._rx) > 4096:
            self._rx.clear()

    def unplug(self) -> None:
        """Pull the cable: the driver sees the line go away."""
        raise NotImplementedError

    def plug(self) -> None:
        """Plug it back in."""
        raise NotImplementedError


def _key_matcher(key: str, device: str) -> Callable[[Report], bool]:
    def match(inp: Report) -> bool:
        return isinstance(inp, KeyPressed) and inp.key == key and inp.device == device

    return match


def _open_pty() -> tuple[int, int, str]:
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    return master, slave, os.ttyname(slave)


class SimKeypad(KeypadTwin):
    """A keypad on a pty pair; a second pty (``.path``) lets a person type with any terminal.

    The driver opens ``.driver_path``, a symlink to the keypad pty that is
    re-pointed when the simulated cable is plugged back in, like a udev name.
    """

    def __init__(self) -> None:
        super().__init__()
        self._dir = ""
        self.driver_path = ""  # the symlink, made by start()
        self._line: tuple[int, int] | None = None
        self._human: tuple[int, int] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Create both ptys and start relaying."""
        self._loop = asyncio.get_running_loop()
        if not self._dir:
            self._dir = tempfile.mkdtemp(prefix="centinela-keypad-")
            self.driver_path = self.driver_port = os.path.join(self._dir, "keypad")
        if self._human is None:
            master, slave, name = _open_pty()
            self._human = (master, slave)
            self.path = name
            self._loop.add_reader(master, self._on_human)
        if self._line is None and self.plugged:
            self._open_line()

    def _open_line(self) -> None:
        assert self._loop is not None
        master, slave, name = _open_pty()
        self._line = (master, slave)
        tmp = self.driver_path + ".new"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.symlink(name, tmp)
        os.replace(tmp, self.driver_path)
        self._loop.add_reader(master, self._on_line)

    def _close_line(self) -> None:
        if self._line is None:
            return
        master, slave = self._line
        self._line = None
        if self._loop is not None:
            self._loop.remove_reader(master)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.driver_path)
        os.close(master)
        os.close(slave)

    async def close(self) -> None:
        """Close both ptys and remove the symlink."""
        self._close_line()
        if self._human is not None:
            master, slave = self._human
            self._human = None
            if self._loop is not None:
                self._loop.remove_reader(master)
            os.close(master)
            os.close(slave)
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = ""

    def _send(self, data: bytes) -> None:
        if self._line is None:
            _LOGGER.debug("simulated keypad unplugged: %d bytes dropped", len(data))
            return
        _write_all(self._line[0], data)

    def _on_line(self) -> None:
        if self._line is None:
            return
        try:
            data = os.read(self._line[0], 4096)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EIO):
                return
            raise
        self._on_output(data)
        if self._human is not None:
            with contextlib.suppress(BlockingIOError):
                os.write(self._human[0], data)

    def _on_human(self) -> None:
        assert self._human is not None
        try:
            data = os.read(self._human[0], 4096)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EIO):
                return
            raise
        self._send(data)

    def unplug(self) -> None:
        """Close the keypad pty: the driver's reads fail."""
        self.plugged = False
        self._close_line()

    def plug(self) -> None:
        """A fresh pty behind the same symlink."""
        if not self.plugged:
            self.plugged = True
            self._open_line()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            # A pty buffer holds kilobytes; a keypad never types that much.
            _LOGGER.warning("simulated keypad line full: %d bytes dropped", len(view))
            return
        view = view[n:]


class SimSocketKeypad(KeypadTwin):
    """A keypad behind a TCP serial server (like ser2net) on 127.0.0.1."""

    def __init__(self, port: int = 0) -> None:
        super().__init__()
        self.port = port
        self.driver_port = self.url
        self._server: asyncio.Server | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        """The pyserial URL the driver opens."""
        return f"socket://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Listen on 127.0.0.1 (the port is chosen now even if the keypad starts unplugged)."""
        if self.port == 0:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                self.port = probe.getsockname()[1]
        self.path = f"127.0.0.1:{self.port}"
        self.driver_port = self.url
        if self._server is None and self.plugged:
            self._server = await asyncio.start_server(self._on_client, "127.0.0.1", self.port)

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._writer is not None:
            writer.close()  # one keypad, one panel
            return
        self._writer = writer
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)
        try:
            while data := await reader.read(4096):
                self._on_output(data)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if task is not None:
                self._clients.discard(task)
            if self._writer is writer:
                self._writer = None
            writer.close()

    def _send(self, data: bytes) -> None:
        if self._writer is None:
            _LOGGER.debug("simulated socket keypad not connected: %d bytes dropped", len(data))
            return
        self._writer.write(data)

    async def close(self) -> None:
        """Stop listening and drop the connection."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self._shutdown()

    async def _shutdown(self) -> None:
        server, self._server = self._server, None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        clients = list(self._clients)
        for task in clients:
            task.cancel()
        if clients:
            await asyncio.gather(*clients, return_exceptions=True)
        if server is not None:
            server.close()
            await server.wait_closed()

    def unplug(self) -> None:
        """Drop the connection and stop listening."""
        self.plugged = False
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._shutdown())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def plug(self) -> None:
        """Listen again on the same port."""
        if not self.plugged:
            self.plugged = True
            loop = asyncio.get_running_loop()
            task = loop.create_task(self.start())
            self._background.add(task)
            task.add_done_callback(self._background.discard)
