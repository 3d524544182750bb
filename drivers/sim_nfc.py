"""A simulated NFC tag on nfcpy's UDP wire, bound to 127.0.0.1.

It plays an NFC Forum Type 2 tag (NTAG213-like) with a 4-, 7- or 10-byte
ISO 14443-A UID: REQA/WUPA, anticollision and select over the cascade levels,
then READ, GET_VERSION and HLTA. The real reader driver (nfcpy's UDP driver
underneath) polls it exactly as it would poll a card.

With no tag in the field a poll (REQA) is held for up to ``hold`` seconds and
answered the moment a tag is presented, the way a card entering a polling
reader's field answers the next REQA; when the hold runs out the emulator sends
nfcpy's ``RFOFF``, which the reader takes as "nothing answered" at once rather
than after nfcpy's hard-coded one-second timeout. For half a second after the
emulator starts and after a tag is removed, polls are not held at all, so the
reader's first poll and its presence checks of a departed tag fail quickly.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import socket
import threading
import time
from binascii import hexlify, unhexlify
from functools import reduce
from operator import xor
from typing import Any

import nfc
import nfc.clf

from drivers.nfc import LoopbackUdpDevice, is_random_uid
from drivers.reports import TagPresented, TagRefused, TagRemoved
from drivers.sim_ntag424 import SAK, Ntag424Chip
from drivers.twin import Settled, Twin

_LOGGER = logging.getLogger(__name__)

_NTAG213_VERSION = bytes.fromhex("0004040201000F03")
_NAK = b"\x00"
_IDLE, _READY, _ACTIVE, _HALT = range(4)
_GRACE = 0.5  # seconds after start, plug or removal during which polls are not held


def normalize_uid(uid: str) -> bytes:
    """Hex UID (``04A1B2C3``, ``04:a1:b2:c3``) as bytes; 4, 7 or 10 bytes."""
    clean = uid.replace(":", "").replace(" ", "").replace("-", "")
    try:
        raw = bytes.fromhex(clean)
    except ValueError:
        raise ValueError(f"tag UID is not hex: {uid!r}") from None
    if len(raw) not in (4, 7, 10):
        raise ValueError(f"an ISO 14443-A UID has 4, 7 or 10 bytes, not {len(raw)}: {uid!r}")
    return raw


class _Card:
    """What a Type 2 tag answers during anticollision and after selection."""

    def __init__(self, uid: bytes, sak: int = 0x00, ndef: bytes = b"") -> None:
        self.uid = uid
        parts = [uid] if len(uid) == 4 else []
        if len(uid) == 7:
            parts = [b"\x88" + uid[:3], uid[3:]]
        elif len(uid) == 10:
            parts = [b"\x88" + uid[:3], b"\x88" + uid[3:6], uid[6:]]
        self.levels = [p + bytes([reduce(xor, p)]) for p in parts]
        self.sak = sak
        self.atqa = bytes([{4: 0x04, 7: 0x44, 10: 0x84}[len(uid)], 0x00])
        mem = bytearray(180)  # 45 pages, NTAG213
        if len(uid) == 7:
            mem[0:4] = self.levels[0][1:4] + self.levels[0][4:5]
            mem[4:8] = uid[3:7]
            mem[8] = self.levels[1][4]
        else:
            mem[0:4] = uid[:4]
            mem[4] = reduce(xor, uid[:4])
        mem[9] = 0x48
        mem[12:16] = b"\xe1\x10\x12\x00"  # capability container: NDEF, 144 bytes, read/write
        if len(ndef) > 140:
            raise ValueError("an NDEF message of at most 140 bytes fits an NTAG213")
        # The NDEF message TLV (empty unless given), then the terminator.
        mem[16 : 16 + len(ndef) + 3] = bytes([0x03, len(ndef)]) + ndef + b"\xfe"
        self.memory = bytes(mem)
        self.chip: Ntag424Chip | None = None

    def reset(self) -> None:
        """The field went off or the card is selected anew."""

    def read(self, page: int) -> bytes:
        start = (page * 4) % len(self.memory)
        return (self.memory + self.memory)[start : start + 16]


class _IsoCard(_Card):
    """An ISO 14443-4 (ISO-DEP) card around a simulated NTAG 424 DNA: RATS, then I-blocks."""

    def __init__(self, chip: Ntag424Chip) -> None:
        super().__init__(chip.uid, sak=SAK)
        self.chip = chip
        self.reset()

    def reset(self) -> None:
        self.iso = False
        self._chained = b""
        self._last = b""

    def block(self, cmd: bytes) -> bytes | None:
        """The answer to one frame after selection (None: stay silent)."""
        assert self.chip is not None
        if not self.iso:
            if cmd[0] == 0xE0 and len(cmd) == 2:
                self.iso = True
                self.chip.activate()
                return self.chip.ats
            return None
        pcb = cmd[0]
        if pcb & 0xE2 == 0x02:  # I-block
            if pcb & 0x10:  # chaining: acknowledge, keep the part
                self._chained += cmd[1:]
                return bytes([0xA2 | (pcb & 1)])
            apdu, self._chained = self._chained + cmd[1:], b""
            self._last = bytes([0x02 | (pcb & 1)]) + self.chip.apdu(apdu)
            return self._last
        if pcb & 0xE6 == 0xA2:  # R-block: NAK asks for the last block again
            if pcb & 0x10 and self._last and (self._last[0] & 1) == (pcb & 1):
                return self._last
            return bytes([0xA2 | (pcb & 1)])
        if pcb == 0xC2:  # S(DESELECT)
            self.reset()
            return b"\xc2"
        return None


class SimReaderDevice(LoopbackUdpDevice):
    """The simulated reader hardware: the loopback UDP reader, gone while the twin is unplugged.

    An unplugged USB or serial reader fails every transfer with ENODEV; this one
    does the same, so the driver's lost/back handling runs as with real hardware.
    """

    def __init__(self, emulator: SimTagEmulator) -> None:
        self._emulator = emulator
        super().__init__("127.0.0.1", emulator.port)
        self._device_name = "simulated reader"

    def _check(self) -> None:
        if not self._emulator.plugged:
            raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))

    def sense_tta(self, target: Any) -> Any:
        self._check()
        return super().sense_tta(target)

    def send_cmd_recv_rsp(self, target: Any, data: Any, timeout: float) -> Any:
        self._check()
        return super().send_cmd_recv_rsp(target, data, timeout)


class SimTagEmulator(Twin):
    """The tag side of the simulated reader: ``present(uid)``, ``remove()``, ``unplug()``."""

    def __init__(self, port: int = 0, *, hold: float = 0.5) -> None:
        super().__init__()
        self.port = port
        self.hold = hold
        self.polls = 0
        self.reads = 0
        self._card: _Card | None = None
        self._state = _IDLE
        self._held: dict[tuple[str, int], float] = {}
        self._quiet_until = 0.0
        self._lock = threading.RLock()
        self._sock: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._closing = False
        self.plugged = True

    @property
    def path(self) -> str:
        """The nfcpy path of the reader that polls this emulator."""
        return f"udp:127.0.0.1:{self.port}"

    @property
    def holding(self) -> bool:
        """True while a reader poll waits for a tag."""
        with self._lock:
            return bool(self._held)

    @property
    def uid(self) -> str | None:
        """The UID in the field, if any."""
        card = self._card
        return card.uid.hex().upper() if card else None

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        """Bind 127.0.0.1 and start answering (returns once listening)."""
        if self._thread is not None:
            return
        self._closing = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._bind()
        self._thread = threading.Thread(target=self._run, name="centinela-sim-tag", daemon=True)
        self._thread.start()

    def _bind(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        with self._lock:
            self._sock = sock
            self._quiet_until = time.monotonic() + _GRACE
        self._wake()

    def close(self) -> None:
        """Release held polls, stop the thread, close the socket."""
        with self._lock:
            self._closing = True
            self._release_held()
            self._drop_socket()
        self._wake()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(5)
        for sock in (self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        self._wake_r = self._wake_w = None

    def _drop_socket(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def _wake(self) -> None:
        if self._wake_w is not None:
            with contextlib.suppress(OSError):
                self._wake_w.send(b"x")

    # -- what a person does with the tag ----------------------------------------------
    def present(self, tag: str | Ntag424Chip, *, ndef: bytes = b"") -> Settled:
        """Put a tag in the field (another tag there is taken away first).

        ``tag`` is a UID (a Type 2 tag, carrying the NDEF message ``ndef``) or a
        simulated NTAG 424 DNA. The panel takes it in as a presented or a refused tag.
        """
        if isinstance(tag, Ntag424Chip):
            card: _Card = _IsoCard(tag)
        else:
            card = _Card(normalize_uid(tag), ndef=ndef)
        raw = card.uid
        with self._lock:
            if self._card is not None and self._card.uid == raw and self._card.chip is card.chip:
                return self._settled()
            if self._card is not None:
                self.remove()
            self._card = card
            self._state = _IDLE
            if not is_random_uid(raw):
                hexuid = raw.hex().upper()
                self._expect(lambda i: isinstance(i, TagPresented | TagRefused) and i.uid == hexuid)
            for addr in list(self._held):
                del self._held[addr]
                self._answer_reqa(addr)
        return self._settled()

    def remove(self) -> Settled:
        """Take the tag out of the field."""
        with self._lock:
            card, self._card = self._card, None
            self._state = _IDLE
            if card is not None:
                self._quiet_until = time.monotonic() + _GRACE
        if card is not None and not is_random_uid(card.uid):
            hexuid = card.uid.hex().upper()
            self._expect(lambda i: isinstance(i, TagRemoved) and i.uid == hexuid)
        return self._settled()

    def hold_polls_now(self) -> None:
        """End the grace period: the next poll of an empty field is held (for benchmarks)."""
        with self._lock:
            self._quiet_until = 0.0

    async def tap(self, tag: str | Ntag424Chip, *, ndef: bytes = b"") -> None:
        """Present the tag, wait until the panel has it, take it away, wait again."""
        self.present(tag, ndef=ndef)
        await self.settle()
        self.remove()
        await self.settle()

    def open_frontend(self, path: str) -> Any:
        """An nfcpy frontend on the simulated reader (the driver's ``frontend`` factory)."""
        if not self.plugged:
            raise OSError(errno.ENODEV, f"no NFC reader at {path}")
        clf = nfc.ContactlessFrontend()
        with clf.lock:
            clf.device = SimReaderDevice(self)
        return clf

    def unplug(self) -> None:
        """The reader hardware goes away: every transfer fails with ENODEV until ``plug()``."""
        with self._lock:
            self.plugged = False
            self._release_held()
            self._card = None
        self.forget()
        self._wake()

    def plug(self) -> None:
        """The reader comes back."""
        self.plugged = True

    # -- the wire -----------------------------------------------------------------------
    def _run(self) -> None:
        wake = self._wake_r
        assert wake is not None
        while not self._closing:
            with self._lock:
                sock = self._sock
                deadline = min(self._held.values(), default=None)
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            watched = [wake] if sock is None else [wake, sock]
            try:
                ready, _, _ = select.select(watched, [], [], timeout)
            except (OSError, ValueError):
                continue  # the socket was closed under us (unplug); look again
            if wake in ready:
                with contextlib.suppress(OSError):
                    wake.recv(4096)
            if sock is not None and sock in ready:
                try:
                    data, addr = sock.recvfrom(1024)
                except OSError:
                    continue
                with self._lock:
                    if self._sock is sock:
                        self._handle(data, addr)
            self._expire()

    def _expire(self) -> None:
        now = time.monotonic()
        with self._lock:
            for addr, deadline in list(self._held.items()):
                if deadline <= now:
                    del self._held[addr]
                    self._send(addr, b"RFOFF")

    def _release_held(self) -> None:
        for addr in list(self._held):
            self._send(addr, b"RFOFF")
        self._held.clear()

    def _send(self, addr: tuple[str, int], datagram: bytes) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.sendto(datagram, addr)

    def _reply(self, addr: tuple[str, int], data: bytes) -> None:
        self._send(addr, b"106A " + hexlify(data))

    def _answer_reqa(self, addr: tuple[str, int]) -> None:
        assert self._card is not None
        self._card.reset()
        self._state = _READY
        self._reply(addr, self._card.atqa)

    def _handle(self, datagram: bytes, addr: tuple[str, int]) -> None:
        if datagram.startswith(b"RFOFF"):
            self._held.pop(addr, None)
            self._state = _IDLE
            return
        try:
            brty, payload = datagram.split()
            cmd = unhexlify(payload)
        except ValueError:
            return
        if brty != b"106A" or not cmd:
            self._send(addr, b"RFOFF")  # no tag of that technology answers
            return
        card = self._card
        if cmd in (b"\x26", b"\x52"):
            self.polls += 1
            now = time.monotonic()
            if card is None and now < self._quiet_until:
                self._send(addr, b"RFOFF")  # the field just emptied: presence checks fail fast
            elif card is None:
                self._held[addr] = now + self.hold
            elif cmd == b"\x52" or self._state != _HALT:
                self._answer_reqa(addr)
            else:
                self._send(addr, b"RFOFF")
            return
        if card is None:
            self._send(addr, b"RFOFF")
            return
        if self._state == _ACTIVE:
            self._command(card, cmd, addr)
            return
        level = {0x93: 0, 0x95: 1, 0x97: 2}.get(cmd[0])
        if self._state == _READY and level is not None and level < len(card.levels):
            if cmd[1:] == b"\x20":
                self._reply(addr, card.levels[level])
                return
            if cmd[1] == 0x70 and cmd[2:] == card.levels[level]:
                final = level == len(card.levels) - 1
                self._reply(addr, bytes([card.sak if final else 0x04]))
                if final:
                    self._state = _ACTIVE
                return
        self._send(addr, b"RFOFF")  # a real tag stays silent; say so without the 1 s wait

    def _command(self, card: _Card, cmd: bytes, addr: tuple[str, int]) -> None:
        if isinstance(card, _IsoCard):
            answer = card.block(cmd)
            if answer is None:
                self._send(addr, b"RFOFF")  # a real card stays silent
            else:
                self._reply(addr, answer)
            return
        if cmd[0] == 0x30 and len(cmd) == 2:
            self.reads += 1
            self._reply(addr, card.read(cmd[1]))
        elif cmd == b"\x60" and len(card.uid) == 7:
            self._reply(addr, _NTAG213_VERSION)
        elif cmd[:2] == b"\x50\x00":
            self._state = _HALT
        else:
            self._reply(addr, _NAK)
            self._state = _IDLE
