"""NFC reader: ISO 14443-A UIDs through nfcpy, polled in one edge thread.

Only 106 kbps Type A is polled. In ``uid`` mode only the anticollision UID is
read (no tag-type activation), so MIFARE Classic, Ultralight, NTAG and DESFire
cards and fobs all work and an empty field costs one short poll. In ``sun``
mode (a ``SunPolicy``) the tag must be an ISO-DEP tag whose NDEF file holds a
SUN message (NTAG 424 DNA, AN12196) that verifies, names a configured tag and
carries a higher read counter than any accepted before: only then is it
presented; anything else is a TagRefused with the reason. A tag held on the
reader is one tap: it is re-selected by UID every ``presence_interval`` seconds
and reported removed after ``removal_misses`` failed re-selections in a row.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
from collections.abc import Callable
from typing import Any

import nfc
import nfc.clf
import nfc.clf.udp
import nfc.tag
import nfc.tag.tt4

from drivers import ntag424
from drivers.base import Backoff, ThreadedDriver, reason_of
from drivers.ntag424 import SunPolicy, SunRejected
from drivers.reports import TagPresented, TagRefused, TagRemoved

_LOGGER = logging.getLogger(__name__)


# nfcpy has no types: its Device is Any to mypy, and subclassing Any needs the ignore.
class LoopbackUdpDevice(nfc.clf.udp.Device):  # type: ignore[misc]
    """nfcpy's UDP reader, bound to 127.0.0.1 and connected to its peer.

    Stock nfcpy leaves the reader socket unbound (the kernel binds it to all
    addresses), so anything on the network could answer its polls with a fake
    tag. Here the socket binds 127.0.0.1 and only accepts datagrams from the
    emulator's address.

    The "reader" of a ``udp:`` path is this socket, which cannot go away; what
    comes and goes is the tag emulator at the other end, and tag emulators (a
    rig's, or another tool's) often listen only while a tag is presented. So
    ECONNREFUSED (nothing listens on the port) means no target in the field:
    the exchange times out at once, as an empty field does, and is counted in
    ``absent``; it is never a lost reader.
    """

    def __init__(self, host: str, port: int) -> None:
        if not ipaddress.ip_address(socket.gethostbyname(host)).is_loopback:
            raise ValueError(f"udp: reader must stay on the loopback address, not {host}")
        super().__init__(host, port)
        self._vendor_name = "centinela"
        self._device_name = "loopback UDP reader"
        self._chipset_name = "UDP"

    socket: socket.socket | None
    absent = 0
    """Exchanges that found nothing listening on the emulator's port."""

    def _send_data(self, brty: str, data: bytes, addr: tuple[str, int]) -> None:
        try:
            super()._send_data(brty, data, addr)
        except ConnectionRefusedError:
            self.absent += 1
            raise nfc.clf.TimeoutError("no tag emulator listening") from None

    def _recv_data(self, timeout: float | None, *brty_list: str) -> Any:
        try:
            return super()._recv_data(timeout, *brty_list)
        except ConnectionRefusedError:
            self.absent += 1
            raise nfc.clf.TimeoutError("no tag emulator listening") from None

    def mute(self) -> None:
        """Switch the field off; an emulator gone meanwhile changes nothing."""
        with contextlib.suppress(nfc.clf.CommunicationError):
            super().mute()
        if self.socket is not None:  # the RFOFF failed before nfcpy closed the socket
            self.socket.close()
            self.socket = None

    def _create_socket(self) -> None:
        if self.socket is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            sock.connect(self.addr)
            self.socket = sock
            self.sent_data = self.rcvd_data = 0

    def _bind_socket(self, time_to_return: float) -> bool:
        raise nfc.clf.UnsupportedTargetError("the loopback reader does not listen")

    def interrupt(self) -> None:
        """Wake a poll blocked in select() (from another thread)."""
        sock = self.socket
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RD)


def open_frontend(path: str) -> Any:
    """An nfcpy ContactlessFrontend for ``path``; ``udp:`` gets the loopback device."""
    clf = nfc.ContactlessFrontend()
    if path.startswith("udp"):
        _, _, rest = path.partition(":")
        host, _, port = rest.partition(":")
        with clf.lock:
            clf.device = LoopbackUdpDevice(host or "127.0.0.1", int(port or 54321))
        return clf
    if not clf.open(path):
        raise OSError(f"no NFC reader at {path}")
    return clf


def is_random_uid(uid: bytes) -> bool:
    """A single-size UID starting 0x08 is random per ISO 14443-3 (phones, some cards)."""
    return len(uid) == 4 and uid[0] == 0x08


class NfcDriver(ThreadedDriver):
    """An NFC reader: yields TagPresented and TagRemoved (and DeviceLost/DeviceBack)."""


class NfcReader(NfcDriver):
    """Yields TagPresented once per tap and TagRemoved when the tag leaves the field."""

    def __init__(
        self,
        path: str,
        *,
        device: str = "nfc",
        poll_interval: float = 0.05,
        presence_interval: float = 0.1,
        removal_misses: int = 2,
        backoff: Backoff | None = None,
        frontend: Callable[[str], Any] | None = None,
        sun: SunPolicy | None = None,
    ) -> None:
        super().__init__(device)
        self.path = path
        self.sun = sun
        self.refused = 0  # sun mode: reads that did not prove a genuine, fresh tag
        self.absent_polls = 0  # udp: polls that found no emulator listening (an empty field)
        self._open_frontend = frontend or open_frontend
        self.poll_interval = poll_interval
        self.presence_interval = presence_interval
        self.removal_misses = removal_misses
        self.random_uids = 0
        self.taps = 0
        self._backoff = backoff or Backoff(base=0.5, cap=30.0)
        self._clf: Any = None
        self._healthy = False

    async def _start(self) -> None:
        if self.twin is not None:
            self.twin.start()
            self.path = self.twin.path
        await super()._start()

    async def _stop(self) -> None:
        self._stop_event.set()
        self._interrupt()
        if self.twin is not None:
            self.twin.close()  # answers a held poll, so the reader thread returns at once
        await super()._stop()

    def _interrupt(self) -> None:
        clf = self._clf
        device = getattr(clf, "device", None)
        if isinstance(device, LoopbackUdpDevice):
            device.interrupt()

    def _thread_main(self) -> None:
        attempt = 0
        while not self._stop_event.is_set():
            try:
                self._clf = self._open_frontend(self.path)
                self._poll(self._clf)
            except Exception as exc:
                if self._stop_event.is_set():
                    return  # woken by _interrupt(): whatever nfcpy raised is that
                if not isinstance(exc, OSError | nfc.clf.Error | ValueError):
                    raise
                self._emit_lost(reason_of(exc))
            finally:
                clf, self._clf = self._clf, None
                if clf is not None:
                    with contextlib.suppress(Exception):
                        clf.close()
            if self._healthy:
                self._healthy = False
                attempt = 0
            if not self._sleep(self._backoff.delay(attempt)):
                return
            attempt += 1

    def _sense(self, clf: Any, uid: bytes | None = None) -> Any:
        target = nfc.clf.RemoteTarget("106A")
        if uid is not None:
            target.sel_req = bytearray(uid)
        device = clf.device
        absent = getattr(device, "absent", 0)
        found = clf.sense(target, iterations=1)
        self.absent_polls += getattr(device, "absent", 0) - absent
        if not self._healthy:
            self._healthy = True
            self._emit_back()
        return found

    def _poll(self, clf: Any) -> None:
        """Poll until stopped; raises OSError when the reader goes."""
        while not self._stop_event.is_set():
            found = self._sense(clf)
            if found is None or not found.sdd_res:
                self._sleep(self.poll_interval)
                continue
            uid = bytes(found.sdd_res)
            if is_random_uid(uid):
                self.random_uids += 1
                self._hold(clf, uid)
                continue
            hexuid = uid.hex().upper()
            report: TagPresented | TagRefused | None = TagPresented(hexuid, self.device)
            if self.sun is not None:
                report = self._sun_decision(clf, found, self.sun)
            self.taps += 1
            if report is not None:
                self._emit(report)
            try:
                if not self._hold(clf, uid):
                    return
            except BaseException:
                self._emit(TagRemoved(hexuid, self.device))
                raise
            self._emit(TagRemoved(hexuid, self.device))

    def _hold(self, clf: Any, uid: bytes) -> bool:
        """Wait while the tag stays; True when it left, False when stopping."""
        misses = 0
        while self._sleep(self.presence_interval):
            if self._sense(clf, uid) is None:
                misses += 1
                if misses >= self.removal_misses:
                    return True
            else:
                misses = 0
        return False

    # -- sun mode ---------------------------------------------------------------------------

    _READ_ATTEMPTS = 3

    def _sun_decision(
        self, clf: Any, found: Any, policy: SunPolicy
    ) -> TagPresented | TagRefused | None:
        """Read and judge a SUN message; None when the tag could not be read (left the field)."""
        uid = bytes(found.sdd_res)
        hexuid = uid.hex().upper()
        if not (found.sel_res and found.sel_res[0] & 0x20):
            return self._refuse(hexuid, ntag424.NO_SUN)  # not ISO-DEP: a UID-only tag
        for attempt in range(self._READ_ATTEMPTS):
            try:
                message = read_ndef_file(clf, found)
                break
            except (nfc.tag.TagCommandError, nfc.clf.CommunicationError) as exc:
                _LOGGER.debug("tag %s: read %d failed: %s", hexuid, attempt + 1, exc)
                found = self._sense(clf, uid)
                if found is None:
                    _LOGGER.info("tag %s left before its SUN message was read", hexuid)
                    return None
            except OSError:
                raise  # the reader itself is gone
            except Exception as exc:  # answers nfcpy cannot parse (a short ATS, …)
                _LOGGER.debug("tag %s: malformed answer: %r", hexuid, exc)
                return self._refuse(hexuid, ntag424.NO_SUN)
        else:
            _LOGGER.warning("tag %s: SUN message unreadable after %d tries", hexuid, attempt + 1)
            return None
        try:
            read = ntag424.verify_uri(policy.keys, ntag424.sun_uri_of(message or b""), uid=uid)
        except SunRejected as rejected:
            return self._refuse(hexuid, rejected.reason)
        reason = policy.judge(read)
        if reason is not None:
            return self._refuse(hexuid, reason)
        try:
            policy.counters.accept_counter(read.uid, read.counter)
        except Exception:  # a store that cannot record the counter: fail closed
            _LOGGER.exception("tag %s: the read counter could not be recorded", hexuid)
            return self._refuse(hexuid, ntag424.NOT_RECORDED)
        return TagPresented(hexuid, self.device)

    def _refuse(self, hexuid: str, reason: str) -> TagRefused:
        self.refused += 1
        _LOGGER.info("tag %s refused: %s", hexuid, reason)
        return TagRefused(hexuid, reason, self.device)


_SELECT_NDEF_APP = bytes.fromhex("00A4040007D276000085010100")
_SELECT_NDEF_FILE = bytes.fromhex("00A4000C02E104")
_FIRST_READ = 128
_MAX_NDEF = 1024
_OK = b"\x90\x00"


def read_ndef_file(clf: Any, found: Any) -> bytes | None:
    """The NDEF message of the ISO-DEP tag ``found`` (NDEF application, file E104).

    None when the tag has no NDEF file or message; raises nfcpy's errors when the
    exchange breaks. The file is read from its start in as few APDUs as fit (one
    for a SUN URI), all in one ISO-DEP session.
    """
    tag = nfc.tag.tt4.activate(clf, found)

    def send(apdu: bytes) -> bytes:
        answer = tag.transceive(apdu)
        if answer is None or len(answer) < 2:
            raise nfc.clf.ProtocolError("short response")
        return bytes(answer)

    if send(_SELECT_NDEF_APP)[-2:] != _OK or send(_SELECT_NDEF_FILE)[-2:] != _OK:
        return None
    head = send(bytes([0x00, 0xB0, 0x00, 0x00, _FIRST_READ]))
    if head[-2:] != _OK or len(head) < 4:
        return None
    data = head[:-2]
    size = int.from_bytes(data[:2], "big")
    if size > _MAX_NDEF:
        return None  # an NTAG 424 DNA's NDEF file holds 256 bytes
    while len(data) < size + 2:
        offset = len(data)
        chunk = send(bytes([0x00, 0xB0, offset >> 8, offset & 0xFF, min(size + 2 - offset, 255)]))
        if chunk[-2:] != _OK or len(chunk) <= 2:
            return None
        data += chunk[:-2]
    return data[2 : size + 2] if size else None
