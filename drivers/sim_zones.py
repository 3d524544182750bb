"""Simulated zones: gpiozero mock pins, driven the way the contacts would, read by GpioZones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from drivers.reports import TamperDetected, ZoneChanged
from drivers.twin import Settled, Twin
from drivers.zones import GpioOptions, ZoneSpec

# A Compute Module 3 board has GPIO0-53; skip I2C (2, 3) and the UART (14, 15).
_POOL = [p for p in range(4, 54) if p not in (14, 15, 17, 27)]
SIREN_PIN = 17
STROBE_PIN = 27


@dataclass(frozen=True, slots=True)
class SimZoneSpec:
    """A zone as the simulator wires it."""

    name: str
    kind: str
    pin: int | None
    normally_open: bool


def _contact_pin_class() -> Any:
    from gpiozero.pins.mock import MockPin

    # gpiozero has no types: MockPin is Any to mypy, and subclassing Any needs the ignore.
    class ContactPin(MockPin):  # type: ignore[misc]
        """A mock pin with a contact to ground: low while closed, else at its pull level."""

        contact_closed = False

        def _set_pull(self, value: str) -> None:
            super()._set_pull(value)
            if self.contact_closed and self._function == "input":
                self.drive_low()

        def set_contact(self, closed: bool) -> None:
            self.contact_closed = closed
            if self._function != "input":
                return
            if closed or self._pull == "down":
                self.drive_low()
            elif self._pull == "up":
                self.drive_high()

    return ContactPin


class SimZones(Twin):
    """Opens, closes and tampers zones by name by driving the mock pins.

    Each zone gets its own pin (and, while pins last, a tamper loop on a
    second one); siren and strobe sit on GPIO17 and GPIO27 of a mock Compute
    Module 3. Pins in the configuration are ignored: they name the real board.
    """

    def __init__(self, zones: Sequence[ZoneSpec]) -> None:
        super().__init__()
        from gpiozero.pins.mock import MockFactory

        self.factory = MockFactory(revision="a020a0", pin_class=_contact_pin_class())
        # Configured pins are for the real board; the simulator wires its own.
        free = iter(_POOL)
        self.zones: list[SimZoneSpec] = []
        self.tamper_pins: dict[str, int] = {}
        for zone in zones:
            pin = _next(free, zone.name)
            self.zones.append(SimZoneSpec(zone.name, zone.kind, pin, bool(zone.normally_open)))
        for zone in self.zones:
            loop_pin = next(free, None)
            if loop_pin is not None:  # a tamper loop per zone while pins last
                self.tamper_pins[zone.name] = loop_pin
        self.options = GpioOptions(siren=SIREN_PIN, strobe=STROBE_PIN, debounce=0.02)
        self._by_name = {z.name: z for z in self.zones}
        self._open: dict[str, bool] = {z.name: False for z in self.zones}
        self._tampered: dict[str, bool] = {z.name: False for z in self.zones}
        self.path = "gpio: (simulated)"

    def start(self) -> None:
        """Put every contact in its rest position (called before the driver opens)."""
        for zone in self.zones:
            self._contact(zone.pin, self._closed(zone, self._open[zone.name]))
        for name, pin in self.tamper_pins.items():
            self._contact(pin, not self._tampered[name])

    def _pin(self, number: int | None) -> Any:
        return self.factory.pin(number)

    def _contact(self, number: int | None, closed: bool) -> None:
        self._pin(number).set_contact(closed)

    @staticmethod
    def _closed(zone: SimZoneSpec, faulted: bool) -> bool:
        # An NC contact opens when the zone faults; an NO contact closes.
        return faulted if zone.normally_open else not faulted

    def _zone(self, name: str) -> SimZoneSpec:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no simulated zone {name!r}") from None

    def set(self, name: str, faulted: bool) -> Settled:
        """Open (fault) or close (restore) a zone."""
        zone = self._zone(name)
        if self._open[name] != faulted:
            self._open[name] = faulted
            self._expect(lambda i: isinstance(i, ZoneChanged) and i == ZoneChanged(name, faulted))
        self._contact(zone.pin, self._closed(zone, faulted))
        return self._settled()

    def open(self, name: str) -> Settled:
        """Fault the zone (door opened, beam broken)."""
        return self.set(name, True)

    def close(self, name: str) -> Settled:
        """Restore the zone."""
        return self.set(name, False)

    def bounce(self, name: str, edges: int) -> Settled:
        """Chatter: ``edges`` quick changes of the contact, ending where the count leaves it."""
        zone = self._zone(name)
        state = self._open[name]
        for _ in range(edges):
            state = not state
            self._contact(zone.pin, self._closed(zone, state))
        if state != self._open[name]:
            self._open[name] = state
            self._expect(lambda i: isinstance(i, ZoneChanged) and i == ZoneChanged(name, state))
        return self._settled()

    def tamper(self, name: str) -> Settled:
        """Open the zone's tamper loop (detector cover off, wire cut)."""
        if name not in self.tamper_pins:
            raise KeyError(f"simulated zone {name!r} has no tamper loop")
        if not self._tampered[name]:
            self._tampered[name] = True
            self._expect(lambda i: isinstance(i, TamperDetected) and i.source == name)
        self._contact(self.tamper_pins[name], False)
        return self._settled()

    def is_open(self, name: str) -> bool:
        """Whether the simulated contact is faulted."""
        return self._open[self._zone(name).name]

    def _output(self, number: int) -> bool:
        pin = self._pin(number)
        return pin.function == "output" and bool(pin.state) != self.options.active_low

    @property
    def siren(self) -> bool:
        """True while the siren output is driven."""
        return self._output(SIREN_PIN)

    @property
    def strobe(self) -> bool:
        """True while the strobe output is driven."""
        return self._output(STROBE_PIN)


def _next(free: Any, name: str) -> int:
    pin = next(free, None)
    if pin is None:
        raise ValueError(f"no simulated GPIO pin left for zone {name}")
    return int(pin)
