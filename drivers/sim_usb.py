"""A simulated USB numeric keypad: a pyusb backend presenting one HID boot keyboard.

The real ``UsbHidKeypad`` driver runs unchanged on top of it: it finds the
device, detaches the (simulated) kernel driver, claims the interface, sets the
boot protocol and reads 8-byte interrupt reports.
"""

from __future__ import annotations

import array
import errno
import threading
from collections import deque
from types import SimpleNamespace
from typing import Any

import usb.backend
import usb.core

from drivers.keypad_usb import KEYMAP
from drivers.sim_keypad import KeypadTwin, _key_matcher
from drivers.twin import Settled

_EP_IN = 0x81
_KEY_CODE: dict[str, int] = {}
for _code, _key in KEYMAP.items():
    _KEY_CODE.setdefault(_key, _code)


def report(*codes: int, modifiers: int = 0) -> bytes:
    """A boot keyboard report holding up to six key codes."""
    if len(codes) > 6:
        raise ValueError("a boot report holds at most six keys")
    return bytes([modifiers, 0, *codes, *([0] * (6 - len(codes)))])


# pyusb has no types: IBackend is Any to mypy, and subclassing Any needs the ignore.
class SimHidBackend(usb.backend.IBackend):  # type: ignore[misc]
    """The USB side: descriptors, kernel-driver binding, claims, interrupt reports."""

    def __init__(self, vid: int, pid: int) -> None:
        super().__init__()
        self.vid = vid
        self.pid = pid
        self.plugged = True
        self.kernel_driver_active = True  # usbhid binds a keyboard as soon as it enumerates
        self.claimed = False
        self.protocol = 1  # report protocol until the host asks for boot
        self.idle_rate: int | None = None
        self.detaches = 0
        self.attaches = 0
        self.reads = 0
        self._reports: deque[bytes] = deque()
        self._cond = threading.Condition()

    # -- what the twin does ------------------------------------------------------------
    def queue(self, *reports: bytes) -> None:
        """Reports the keypad will send, in order."""
        with self._cond:
            self._reports.extend(reports)
            self._cond.notify_all()

    def set_plugged(self, plugged: bool) -> None:
        """Unplug (reads fail with ENODEV) or plug back (a fresh enumeration)."""
        with self._cond:
            self.plugged = plugged
            self._reports.clear()
            if plugged:
                self.kernel_driver_active = True
                self.claimed = False
                self.protocol = 1
            self._cond.notify_all()

    def _check(self) -> None:
        if not self.plugged:
            raise usb.core.USBError(
                "No such device (it may have been disconnected)", -4, errno.ENODEV
            )

    # -- descriptors ---------------------------------------------------------------------
    def enumerate_devices(self) -> Any:
        if self.plugged:
            yield "sim-keypad"

    def get_device_descriptor(self, dev: Any) -> Any:
        return SimpleNamespace(
            bLength=18, bDescriptorType=1, bcdUSB=0x0110, bDeviceClass=0, bDeviceSubClass=0,
            bDeviceProtocol=0, bMaxPacketSize0=8, idVendor=self.vid, idProduct=self.pid,
            bcdDevice=0x0100, iManufacturer=0, iProduct=0, iSerialNumber=0,
            bNumConfigurations=1, address=5, bus=1, port_number=1, port_numbers=(1,), speed=1,
        )  # fmt: skip

    def get_configuration_descriptor(self, dev: Any, config: int) -> Any:
        if config != 0:
            raise IndexError("one configuration")
        return SimpleNamespace(
            bLength=9, bDescriptorType=2, wTotalLength=34, bNumInterfaces=1,
            bConfigurationValue=1, iConfiguration=0, bmAttributes=0xA0, bMaxPower=50,
            extra_descriptors=[],
        )  # fmt: skip

    def get_interface_descriptor(self, dev: Any, intf: int, alt: int, config: int) -> Any:
        if intf != 0 or alt != 0 or config != 0:
            raise IndexError("one interface, no alternate settings")
        return SimpleNamespace(
            bLength=9, bDescriptorType=4, bInterfaceNumber=0, bAlternateSetting=0,
            bNumEndpoints=1, bInterfaceClass=3, bInterfaceSubClass=1, bInterfaceProtocol=1,
            iInterface=0, extra_descriptors=[9, 0x21, 0x11, 0x01, 0, 1, 0x22, 63, 0],
        )  # fmt: skip

    def get_endpoint_descriptor(self, dev: Any, ep: int, intf: int, alt: int, config: int) -> Any:
        if ep != 0 or intf != 0 or alt != 0 or config != 0:
            raise IndexError("one endpoint")
        return SimpleNamespace(
            bLength=7, bDescriptorType=5, bEndpointAddress=_EP_IN, bmAttributes=3,
            wMaxPacketSize=8, bInterval=10, bRefresh=0, bSynchAddress=0, extra_descriptors=[],
        )  # fmt: skip

    # -- handles, configuration, interfaces ----------------------------------------------
    def open_device(self, dev: Any) -> Any:
        self._check()
        return SimpleNamespace(dev=dev)

    def close_device(self, dev_handle: Any) -> None:
        pass

    def get_configuration(self, dev_handle: Any) -> int:
        self._check()
        return 1

    def set_configuration(self, dev_handle: Any, config_value: int) -> None:
        self._check()

    def claim_interface(self, dev_handle: Any, intf: int) -> None:
        self._check()
        if self.kernel_driver_active:
            raise usb.core.USBError("Resource busy", -6, errno.EBUSY)
        self.claimed = True

    def release_interface(self, dev_handle: Any, intf: int) -> None:
        self.claimed = False

    def is_kernel_driver_active(self, dev_handle: Any, intf: int) -> bool:
        self._check()
        return self.kernel_driver_active

    def detach_kernel_driver(self, dev_handle: Any, intf: int) -> None:
        self._check()
        self.kernel_driver_active = False
        self.detaches += 1

    def attach_kernel_driver(self, dev_handle: Any, intf: int) -> None:
        self._check()
        if self.claimed:
            raise usb.core.USBError("Resource busy", -6, errno.EBUSY)
        self.kernel_driver_active = True
        self.attaches += 1

    def ctrl_transfer(
        self,
        dev_handle: Any,
        bmRequestType: int,
        bRequest: int,
        wValue: int,
        wIndex: int,
        data: Any,
        timeout: int,
    ) -> Any:
        self._check()
        if bmRequestType == 0x21 and bRequest == 0x0B:
            self.protocol = wValue
        elif bmRequestType == 0x21 and bRequest == 0x0A:
            self.idle_rate = wValue >> 8
        else:
            raise usb.core.USBError("Pipe error", -9, errno.EPIPE)
        return 0

    # -- interrupt reports ---------------------------------------------------------------
    def intr_read(self, dev_handle: Any, ep: int, intf: int, buff: Any, timeout: int) -> int:
        with self._cond:
            self._check()
            if not self.claimed:
                raise usb.core.USBError("Access denied (interface not claimed)", -3, errno.EACCES)
            if not self._reports:
                self._cond.wait(timeout / 1000 if timeout else None)
            self._check()
            if not self._reports:
                raise usb.core.USBTimeoutError("Operation timed out", -7, errno.ETIMEDOUT)
            data = self._reports.popleft()
            self.reads += 1
        n = min(len(data), len(buff))
        buff[:n] = array.array("B", data[:n])
        return n


class SimUsbKeypad(KeypadTwin):
    """A USB numeric keypad: keys become press and release reports (no display, no buzzer)."""

    def __init__(self, vid: int = 0x1A2C, pid: int = 0x0E24) -> None:
        super().__init__()
        self.backend = SimHidBackend(vid, pid)
        self.path = f"usbhid:{vid:04x}:{pid:04x} (simulated)"

    def _send(self, data: bytes) -> None:
        self.backend.queue(data)

    def type_nowait(self, keys: str) -> None:
        """One press and one release report per key; every key must be in the key map."""
        codes = [_code_of(k) for k in keys]
        device = self.driver.device if self.driver is not None else "keypad"
        for key, code in zip(keys, codes, strict=True):
            self.backend.queue(report(code), report())
            self._expect(_key_matcher(key, device))

    def chord(self, keys: str, *, release: bool = True) -> Settled:
        """Keys pressed together (rollover): one report adds them one by one, then all go up."""
        codes = [_code_of(k) for k in keys]
        device = self.driver.device if self.driver is not None else "keypad"
        reports = [report(*codes[: i + 1]) for i in range(len(codes))]
        if release:
            reports.append(report())
        self.backend.queue(*reports)
        for key in keys:
            self._expect(_key_matcher(key, device))
        return self._settled()

    def unplug(self) -> None:
        """Reads fail with ENODEV; the device vanishes from enumeration."""
        self.plugged = False
        self.backend.set_plugged(False)

    def plug(self) -> None:
        """Enumerates again, with the kernel driver bound."""
        self.plugged = True
        self.backend.set_plugged(True)


def _code_of(key: str) -> int:
    try:
        return _KEY_CODE[key]
    except KeyError:
        raise ValueError(f"no USB keypad key for {key!r}") from None
