"""Capped exponential backoff with jitter: the one retry policy of links, drivers and tasks."""

from __future__ import annotations

import random
from typing import Final

_MAX_EXPONENT: Final = 64
"""Past 2**64 any cap has long been reached; bounding the exponent keeps it a float."""


class Backoff:
    """``min(cap, base * 2 ** attempt)`` times U(0.5, 1), for any attempt count.

    Stateless callers ask ``delay(attempt)``; a reconnect loop calls ``next()``
    after each failure and ``reset()`` after a success.
    """

    def __init__(
        self, base: float = 0.2, cap: float = 30.0, rng: random.Random | None = None
    ) -> None:
        if base <= 0:
            raise ValueError("backoff needs a base above 0")
        self.base = base
        self.cap = max(cap, base)  # a first delay above the cap is the delay every time
        self.attempt = 0
        self._rng = rng or random.Random()

    def ceiling(self, attempt: int) -> float:
        """The delay before jitter for retry number ``attempt`` (0-based)."""
        return min(self.cap, self.base * 2.0 ** min(max(attempt, 0), _MAX_EXPONENT))

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        return self.ceiling(attempt) * self._rng.uniform(0.5, 1.0)

    def next(self) -> float:
        """The delay before the next attempt of a loop that counts its own failures."""
        delay = self.delay(self.attempt)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """Call after a success: the next delay is the shortest again."""
        self.attempt = 0
