"""Codes and tags: who they belong to, the wrong-attempt counter, lockouts and revoked tags.

It owns the lockout part of the durable record (failed attempts, lockout level and end,
revoked tags). Digits typed are never kept here: a code is hashed, compared with every
user's digests and forgotten.
"""

from __future__ import annotations

import hmac
from typing import Final

from panel.actions import Timer, Tone
from panel.codes import CODE_RE
from panel.config import SiteConfig, User
from panel.durable import PanelSnapshot
from panel.recorder import Recorder
from protocol.messages import EventType, Method

MAX_LOCKOUT_MS: Final = 86_400_000
"""Lockouts double up to one day."""


class Credentials:
    """Checks codes and tags and counts wrong ones; ``max_attempts`` in a row lock them out."""

    def __init__(self, config: SiteConfig, record: PanelSnapshot, recorder: Recorder) -> None:
        self.cfg = config
        self.record = record
        self.out = recorder

    @property
    def locked(self) -> bool:
        """Whether the keypad and tag reader are locked out."""
        return self.record.locked_until_ms is not None

    def code_user(self, code: str) -> tuple[User, bool] | None:
        """The user whose code (True: duress code) this is; every digest is compared."""
        if not CODE_RE.fullmatch(code):
            return None
        typed = self.cfg.hasher.digest(code)
        found: tuple[User, bool] | None = None
        for user in self.cfg.users:
            if hmac.compare_digest(typed, user.code_digest):
                found = (user, False)
            if user.duress_digest is not None and hmac.compare_digest(typed, user.duress_digest):
                found = (user, True)
        return found

    def tag_user(self, uid: str) -> User | str:
        """The user holding tag ``uid`` (upper-case hex), or why it is refused."""
        if uid in self.record.revoked_tags:
            return "revoked"
        user = self.cfg.user_by_tag(uid)
        return "unknown tag" if user is None else user

    def failed_attempt(
        self, event_type: EventType, method: Method, tag: str | None, reason: str
    ) -> bool:
        """Count a wrong code or tag (an event says which); True when it locked them out.

        The ``max_attempts``-th wrong one in a row locks for ``lockout`` seconds, doubled
        for each lockout since the last action carried out, up to a day.
        """
        rec = self.record
        rec.failed_attempts += 1
        self.out.event(event_type, method, tag=tag, detail=reason)
        if rec.failed_attempts < self.cfg.max_attempts:
            self.out.say(reason.upper(), Tone.ERROR)
            return False
        rec.lockout_level += 1
        duration = self.lockout_ms(rec.lockout_level)
        rec.failed_attempts = 0
        rec.locked_until_ms = self.out.now + duration
        self.out.start_timer(Timer.LOCKOUT, duration)
        detail = f"{self.cfg.max_attempts} failed attempts; locked for {duration // 1000} s"
        self.out.event(EventType.KEYPAD_LOCKED, method, tag=tag, detail=detail)
        self.out.say("LOCKED", Tone.ERROR)
        return True

    def lockout_ms(self, level: int) -> int:
        """How long the ``level``-th lockout in a row lasts: ``lockout``, doubled each time."""
        return min(round(self.cfg.lockout * 1000) << (level - 1), MAX_LOCKOUT_MS)

    def succeeded(self) -> None:
        """An action carried out with a code or tag: the counter and escalation start over."""
        self.record.failed_attempts = 0
        self.record.lockout_level = 0

    def unlock(self, method: Method, user: str | None, *, vouched: bool = False) -> None:
        """End the lockout (its time ran out, or a master cleared it: ``vouched``)."""
        self.out.cancel_timer(Timer.LOCKOUT)
        self.record.locked_until_ms = None
        self.record.failed_attempts = 0
        if vouched:  # a master vouched for whoever is at the keypad
            self.record.lockout_level = 0
        self.out.event(EventType.KEYPAD_UNLOCKED, method, user=user)

    def revoke(self, uid: str, method: Method, user: str | None) -> None:
        """Refuse tag ``uid`` from now on (``tag_revoked`` once; again is a no-op)."""
        if uid in self.record.revoked_tags:
            return
        self.record.revoked_tags |= {uid}
        owner = self.cfg.user_by_tag(uid)
        detail = f"held by {owner.name}" if owner is not None else "not assigned to a user"
        self.out.event(EventType.TAG_REVOKED, method, user=user, tag=uid, detail=detail)
