"""Whether each panel is online: authentic frames say online; silence or its last will, offline.

The status topic is not authenticated (anyone who may publish there could write
to it), so it can only ever take a panel offline, never bring it online.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from common.clock import Clock, TimerHandle

_LOGGER = logging.getLogger(__name__)


class Availability:
    """``online`` on an authentic frame only; ``offline`` on a will or after silence."""

    def __init__(
        self,
        panels: Iterable[str],
        clock: Clock,
        offline_after_s: float,
        on_change: Callable[[str, bool], None],
    ) -> None:
        self._clock = clock
        self._silence_ms = round(offline_after_s * 1000)
        self._on_change = on_change
        self.online: dict[str, bool | None] = dict.fromkeys(panels)
        self._last_seen: dict[str, int] = {}
        self._timers: dict[str, TimerHandle] = {}

    def start(self) -> None:
        """Start the silence timers: a panel not heard of within ``offline_after`` is offline."""
        now = self._clock.now_ms()
        for panel in self.online:
            self._last_seen[panel] = now
            self._arm(panel)

    def stop(self) -> None:
        """Cancel every timer."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def is_offline(self, panel: str) -> bool:
        """Known to be offline (not merely unknown)."""
        return self.online.get(panel) is False

    def label(self, panel: str) -> str:
        """``online``, ``offline`` or ``unknown``."""
        state = self.online.get(panel)
        return "unknown" if state is None else ("online" if state else "offline")

    def seen(self, panel: str) -> None:
        """An authentic frame came from ``panel``."""
        if panel not in self.online:
            return
        self._last_seen[panel] = self._clock.now_ms()
        self._set(panel, True, "frame")
        self._arm(panel)

    def status(self, panel: str, online: bool) -> None:
        """The panel's status topic said ``online`` or ``offline`` (its last will).

        ``online`` there proves nothing and changes nothing: the panel's next authentic
        frame (a state after every connect, a heartbeat) brings it online.
        """
        if panel not in self.online or online:
            return
        timer = self._timers.pop(panel, None)
        if timer is not None:
            timer.cancel()
        self._set(panel, False, "status")

    def _set(self, panel: str, online: bool, why: str) -> None:
        if self.online.get(panel) is online:
            return
        self.online[panel] = online
        _LOGGER.info("panel %s is %s (%s)", panel, "online" if online else "offline", why)
        self._on_change(panel, online)

    def _arm(self, panel: str) -> None:
        if panel in self._timers:
            return  # the running timer re-checks the newest last_seen when it fires
        when = self._last_seen[panel] + self._silence_ms
        self._timers[panel] = self._clock.call_at(when, lambda: self._check(panel))

    def _check(self, panel: str) -> None:
        self._timers.pop(panel, None)
        if self._clock.now_ms() - self._last_seen[panel] >= self._silence_ms:
            self._set(panel, False, "silence")
        else:
            self._arm(panel)
