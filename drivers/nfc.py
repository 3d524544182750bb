"""NFC reader: ISO 14443-A UIDs through nfcpy, polled in one edge thread.

Only 106 kbps Type A is polled, and only the anticollision UID is read (no
tag-type activation), so MIFARE Classic, Ultralight, NTAG and DESFire cards and
fobs all work and an empty field costs one short poll. A tag held on the reader
is one tap: it is re-selected by UID every ``presence_interval`` seconds and
reported removed after ``removal_misses`` failed re-selections in a row.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
from typing import Any

import nfc
import nfc.clf
import nfc.clf.udp

from drivers.base import Backoff, ThreadedDriver, reason_of
from drivers.reports import TagPresented, TagRemoved

_LOGGER = logging.getLogger(__name__)


# nfcpy has no types: its Device is Any to mypy, and subclassing Any needs the ignore.
class LoopbackUdpDevice(nfc.clf.udp.Device):  # type: ignore[misc]
    """nfcpy's UDP reader, bound to 127.0.0.1 and connected to its peer.

    Stock nfcpy leaves the reader socket unbound (the kernel binds it to all
    addresses), so anything on the network could answer its polls with a fake
    tag. Here the socket binds 127.0.0.1 and only accepts datagrams from the
    emulator's address; a vanished emulator shows as ECONNREFUSED (an OSError,
    like an unplugged USB reader).
    """

    def __init__(self, host: str, port: int) -> None:
        if not ipaddress.ip_address(socket.gethostbyname(host)).is_loopback:
            raise ValueError(f"udp: reader must stay on the loopback address, not {host}")
        super().__init__(host, port)
        self._vendor_name = "centinela"
        self._device_name = "loopback UDP reader"
        self._chipset_name = "UDP"

    socket: socket.socket | None

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
    ) -> None:
        super().__init__(device)
        self.path = path
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
                self._clf = open_frontend(self.path)
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
        found = clf.sense(target, iterations=1)
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
            self.taps += 1
            self._emit(TagPresented(hexuid, self.device))
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
