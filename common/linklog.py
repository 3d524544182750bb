"""What an installer reads about one MQTT link: why it is down, said often enough, not more.

A link that goes down, or cannot come up, is a WARNING naming the broker, the user
and the reason at once; while it stays down the warning is repeated at a falling
rate (10 s, 20 s, 40 s … up to every 10 minutes) with the number of attempts; one
INFO line says when it is back.

Two processes with the same client id (a second copy of a panel or hub, an SD card
cloned without changing ``[panel] id``) kick each other off the broker for ever.
A link that is dropped again and again within seconds of connecting (or told
"session taken over") says so, naming the client id, and waits longer each time
(5 s doubling up to 5 min) so the other copy stays up instead of both flapping.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

FIRST_REPEAT_S: Final = 10.0
SHORT_LIVED_S: Final = 5.0
"""A connection dropped sooner than this after it was made counts towards flapping."""
FLAPS: Final = 3
"""Short-lived connections in a row that mean another client uses this client id."""
FIRST_PAUSE_S: Final = 5.0
MAX_PAUSE_S: Final = 300.0
MAX_REPEAT_S: Final = 600.0
SESSION_TAKEN_OVER: Final = 142
"""MQTT 5 reason code: another client connected with the same client id."""


def reason_code(exc: BaseException) -> int | None:
    """The MQTT reason code behind ``exc`` (its cause chain included), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        rc = getattr(current, "rc", None)
        value = getattr(rc, "value", rc)
        if isinstance(value, int) and value:
            return value
        current = current.__cause__ or current.__context__
    return None


def reason(exc: BaseException) -> str:
    """Why a link failed, in words: the broker's reason code when it gave one."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        rc = getattr(current, "rc", None)
        if rc is not None and not isinstance(rc, int):
            return str(rc).lower()  # paho's ReasonCode: "not authorized", "session taken over"
        current = current.__cause__ or current.__context__
    return str(exc) or type(exc).__name__


class LinkLog:
    """The log lines of one link's outages (see the module docstring)."""

    def __init__(
        self,
        logger: logging.Logger,
        name: str,
        url: str,
        user: str | None,
        client_id: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._name = name
        self._where = f"{url} as {user!r}" if user else f"{url} (no user name)"
        self._clock = clock
        self._down_since: float | None = None
        self._failures = 0
        self._next_at = 0.0
        self._interval = FIRST_REPEAT_S
        self._was_up = False
        self._client_id = client_id
        self._up_at: float | None = None
        self._flaps = 0
        self._pause = FIRST_PAUSE_S

    @property
    def down(self) -> bool:
        """Whether an outage is being reported."""
        return self._down_since is not None

    def failed(self, exc: BaseException) -> float:
        """A connect attempt failed, or an established link dropped; returns a pause (s).

        The pause is 0 unless the link keeps being taken over by another client with
        the same client id; then the caller waits that long before its next attempt.
        """
        now = self._clock()
        self._failures += 1
        words = reason(exc)
        pause = self._flapping(now, exc)
        if pause:
            self._logger.warning(
                "%s: dropped %d times within seconds of connecting to %s: another process "
                "is probably connected with the same client id %r (a second copy of this "
                "program, or of its configuration); waiting %.0f s before trying again",
                self._name,
                self._flaps,
                self._where,
                self._client_id,
                pause,
            )
        if self._down_since is None:
            self._down_since = now
            self._interval = FIRST_REPEAT_S
            self._next_at = now + self._interval
            what = "lost" if self._was_up else "cannot connect to"
            self._logger.warning("%s: %s %s: %s", self._name, what, self._where, words)
            self._was_up = False
            return pause
        if now < self._next_at:
            return pause
        self._logger.warning(
            "%s: still no connection to %s after %d attempts in %.0f s: %s",
            self._name,
            self._where,
            self._failures,
            now - self._down_since,
            words,
        )
        self._interval = min(self._interval * 2, MAX_REPEAT_S)
        self._next_at = now + self._interval
        return pause

    def _flapping(self, now: float, exc: BaseException) -> float:
        up_at, self._up_at = self._up_at, None
        if up_at is None:
            return 0.0  # a failed connect attempt, not a dropped connection
        if reason_code(exc) != SESSION_TAKEN_OVER and now - up_at >= SHORT_LIVED_S:
            self._flaps = 0
            self._pause = FIRST_PAUSE_S
            return 0.0
        self._flaps += 1
        if self._flaps < FLAPS and reason_code(exc) != SESSION_TAKEN_OVER:
            return 0.0
        pause = self._pause
        self._pause = min(self._pause * 2, MAX_PAUSE_S)
        return pause

    def connected(self) -> None:
        """The link is up (again)."""
        self._up_at = self._clock()
        if self._down_since is None:
            self._logger.info("%s: connected to %s", self._name, self._where)
        else:
            self._logger.info(
                "%s: connected again to %s after %.0f s (%d failed attempts)",
                self._name,
                self._where,
                self._clock() - self._down_since,
                self._failures,
            )
        self._down_since = None
        self._failures = 0
        self._was_up = True
