"""USB numeric keypad (HID boot keyboard) read with pyusb in one edge thread."""

from __future__ import annotations

import contextlib
import errno
import logging
from typing import Any

from drivers.base import Backoff, ThreadedDriver, reason_of
from drivers.keypad import KeypadDriver
from drivers.reports import KeyPressed

_LOGGER = logging.getLogger(__name__)

# HID usage page 0x07 (keyboard/keypad) -> panel key. docs/drivers.md shows the layout.
KEYMAP: dict[int, str] = {
    0x59: "1", 0x5A: "2", 0x5B: "3", 0x5C: "4", 0x5D: "5",
    0x5E: "6", 0x5F: "7", 0x60: "8", 0x61: "9", 0x62: "0",
    0x55: "*",  # keypad *
    0x58: "#",  # keypad Enter
    0x54: "A",  # keypad /   arm total
    0x56: "B",  # keypad -   arm partial
    0x57: "C",  # keypad +   arm night
    0x63: "D",  # keypad .   disarm
    0x53: "P",  # Num Lock   panic
    # The main-keyboard row, for keypads that send it with Num Lock off.
    0x1E: "1", 0x1F: "2", 0x20: "3", 0x21: "4", 0x22: "5",
    0x23: "6", 0x24: "7", 0x25: "8", 0x26: "9", 0x27: "0",
    0x28: "#",  # Enter
    0x2A: "*",  # Backspace clears, like *
}  # fmt: skip

ERROR_ROLLOVER = 0x01
_HID_CLASS = 3
_SET_IDLE = 0x0A
_SET_PROTOCOL = 0x0B
_CLASS_INTERFACE_OUT = 0x21
_READ_TIMEOUT_MS = 100


class HidKeyDecoder:
    """Turns boot-protocol keyboard reports into key presses.

    A key counts once when it appears in a report; a held key (repeated
    reports, idle-rate resends) and releases produce nothing; a phantom-state
    report (ErrorRollOver) is ignored and keeps the previous state.
    """

    def __init__(self) -> None:
        self._held: frozenset[int] = frozenset()
        self.unmapped = 0
        self.malformed = 0
        self.rollover = 0

    def feed(self, report: bytes) -> list[str]:
        """Keys newly pressed in this report, in report order."""
        if len(report) < 3:
            self.malformed += 1
            return []
        codes = [c for c in report[2:8] if c]
        if ERROR_ROLLOVER in codes:
            self.rollover += 1
            return []
        pressed = [c for c in codes if c not in self._held]
        self._held = frozenset(codes)
        keys = []
        for code in pressed:
            key = KEYMAP.get(code)
            if key is None:
                self.unmapped += 1
            else:
                keys.append(key)
        return keys

    def reset(self) -> None:
        """Forget held keys (after a reconnect)."""
        self._held = frozenset()


class UsbHidKeypad(ThreadedDriver, KeypadDriver):
    """A USB HID numeric keypad, detached from the kernel's keyboard driver while in use.

    ``backend`` is a pyusb backend (a simulated one in tests); None lets pyusb
    find libusb.
    """

    def __init__(
        self,
        vid: int,
        pid: int,
        *,
        backend: Any = None,
        device: str = "keypad",
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__(device)
        self.vid = vid
        self.pid = pid
        self.backend = backend
        self.decoder = HidKeyDecoder()
        self._backoff = backoff or Backoff(base=0.2, cap=30.0)
        self._served = False

    def _thread_main(self) -> None:
        import usb.core

        attempt = 0
        while not self._stop_event.is_set():
            try:
                dev = usb.core.find(idVendor=self.vid, idProduct=self.pid, backend=self.backend)
                if dev is None:
                    raise _Missing(f"no USB device {self.vid:04x}:{self.pid:04x}")
                self._serve(dev)
                return
            except _Missing as exc:
                self._emit_lost(str(exc))
            except (usb.core.USBError, usb.core.NoBackendError, ValueError) as exc:
                self._emit_lost(reason_of(exc))
            if self._served:
                self._served = False
                attempt = 0  # it had come back: start the backoff afresh
            if not self._sleep(self._backoff.delay(attempt)):
                return
            attempt += 1

    def _serve(self, dev: Any) -> None:
        """Claim the keypad and read reports until stopped; raises when the device goes."""
        import usb.core
        import usb.util

        intf_num, ep_addr, size = _boot_interface(dev)
        detached = False
        try:
            if _kernel_driver_active(dev, intf_num):
                dev.detach_kernel_driver(intf_num)
                detached = True
            usb.util.claim_interface(dev, intf_num)
            # Boot protocol: fixed 8-byte reports. Idle 0: report only on change.
            dev.ctrl_transfer(_CLASS_INTERFACE_OUT, _SET_PROTOCOL, 0, intf_num)
            # SET_IDLE is optional: the HID spec lets a keyboard stall it.
            with contextlib.suppress(usb.core.USBError):
                dev.ctrl_transfer(_CLASS_INTERFACE_OUT, _SET_IDLE, 0, intf_num)
            self.decoder.reset()
            self._served = True
            self._emit_back()
            self._read_loop(dev, ep_addr, size)
        finally:
            _release(dev, intf_num, detached)

    def _read_loop(self, dev: Any, ep_addr: int, size: int) -> None:
        import usb.core

        while not self._stop_event.is_set():
            try:
                report = bytes(dev.read(ep_addr, size, timeout=_READ_TIMEOUT_MS))
            except usb.core.USBTimeoutError:
                continue
            except usb.core.USBError as exc:
                if exc.errno == errno.ETIMEDOUT:
                    continue
                raise
            self.stats.reports += 1
            keys = self.decoder.feed(report)
            if keys:
                self.stats.keys += len(keys)
                self._emit(*(KeyPressed(k, self.device) for k in keys))

    async def display(self, text: str) -> None:
        """A USB keypad has no display: nothing is sent."""
        self.stats.dropped_out += 1

    async def beep(self, kind: str) -> None:
        """A USB keypad has no buzzer: nothing is sent."""
        self.stats.dropped_out += 1


class _Missing(Exception):
    pass


def _boot_interface(dev: Any) -> tuple[int, int, int]:
    """(interface number, IN endpoint address, packet size) of the keyboard interface."""
    import usb.core
    import usb.util

    try:
        cfg = dev.get_active_configuration()
    except usb.core.USBError:
        dev.set_configuration()
        cfg = dev.get_active_configuration()
    hid = [i for i in cfg if i.bInterfaceClass == _HID_CLASS]
    if not hid:
        raise ValueError("not a HID device")
    # Prefer the boot keyboard interface (subclass 1, protocol 1).
    hid.sort(key=lambda i: (i.bInterfaceSubClass, i.bInterfaceProtocol) != (1, 1))
    intf = hid[0]
    for ep in intf:
        if (
            usb.util.endpoint_direction(ep.bEndpointAddress) == usb.util.ENDPOINT_IN
            and usb.util.endpoint_type(ep.bmAttributes) == usb.util.ENDPOINT_TYPE_INTR
        ):
            return intf.bInterfaceNumber, ep.bEndpointAddress, max(8, ep.wMaxPacketSize)
    raise ValueError("HID interface without an interrupt IN endpoint")


def _kernel_driver_active(dev: Any, intf: int) -> bool:
    try:
        return bool(dev.is_kernel_driver_active(intf))
    except NotImplementedError:
        return False  # not every platform can tell; claiming will fail if it is


def _release(dev: Any, intf: int, reattach: bool) -> None:
    """Give the interface back, and the kernel its driver if we took it away."""
    import usb.core
    import usb.util

    with contextlib.suppress(usb.core.USBError, ValueError):
        usb.util.release_interface(dev, intf)
    if reattach:
        try:
            dev.attach_kernel_driver(intf)
        except (usb.core.USBError, NotImplementedError):
            _LOGGER.debug("could not reattach the kernel driver (device gone?)")
    with contextlib.suppress(usb.core.USBError):
        usb.util.dispose_resources(dev)
