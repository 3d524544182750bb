"""Sign-up, log-in and unblocking: the rules, with no HTTP in them (the web and the API share them).

Errors are message ids keyed by form field; the views translate them. Nothing here
tells whether an e-mail has an account, except a sign-up by someone who already proved
the installation number and keyword.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from cloud.config import CloudConfig, Installation
from cloud.i18n import N_
from cloud.store import Account, Store

MAX_FAILURES: Final = 5
EMAIL_RE: Final = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,}")
MOBILE_RE: Final = re.compile(r"\+?[0-9 ]{6,20}")
# argon2id sized for a Raspberry Pi 4 (≈ 0.1-0.2 s there): 19 MiB, 2 passes, 1 lane
# (OWASP's first recommended set).
HASHER: Final = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_DUMMY_HASH: Final = HASHER.hash(secrets.token_hex(16))


def password_problem(password: str) -> str | None:
    """Why a password breaks the policy (≥ 6, upper, lower, digit), or None."""
    if (
        len(password) < 6
        or not re.search(r"[A-Z]", password)
        or not re.search(r"[a-z]", password)
        or not re.search(r"[0-9]", password)
    ):
        return N_(
            "At least 6 characters, with an upper-case letter, a lower-case letter and a digit."
        )
    return None


def normal_email(email: str) -> str:
    """E-mails compare without case or surrounding spaces."""
    return email.strip().lower()


def token_hash(token: str) -> str:
    """Sessions and API tokens are stored as hashes only."""
    return hashlib.sha256(token.encode()).hexdigest()


def verify(hash_: str, secret: str) -> bool:
    """An argon2 check that never raises."""
    try:
        return HASHER.verify(hash_, secret)
    except (VerificationError, InvalidHashError):
        return False


@dataclass
class Outcome:
    """What an attempt came to: an account, or errors by field (``""`` for the whole form)."""

    account: Account | None = None
    errors: dict[str, str] = field(default_factory=dict)
    blocked: bool = False


class Accounts:
    """The account rules over a store."""

    def __init__(self, config: CloudConfig, store: Store) -> None:
        self.config = config
        self.store = store
        # Keywords are compared with argon2 hashes only, never as given in the file. Each is
        # hashed when its installation is first named (an operator lists 100,000 of them:
        # hashing every one at start would take hours).
        self._keywords: dict[tuple[str, str], str] = {}

    def _holder_for(self, inst: Installation, keyword: str) -> str | None:
        for holder in inst.holders:
            key = (inst.number, holder.user)
            hashed = self._keywords.get(key)
            if hashed is None:
                hashed = self._keywords[key] = HASHER.hash(holder.keyword)
            if verify(hashed, keyword):
                return holder.user
        return None

    async def sign_up(
        self,
        number: str,
        keyword: str,
        name: str,
        mobile: str,
        email: str,
        password: str,
        repeat: str,
        lang: str = "en",
    ) -> Outcome:
        """Create an account acting as the holder whose keyword was given; nothing on error."""
        out = Outcome()
        inst = self.config.installation(number.strip())
        user = None
        if inst is None:
            out.errors["number"] = N_("There is no installation with this number.")
        else:
            user = await asyncio.to_thread(self._holder_for, inst, keyword)
            if user is None:
                out.errors["keyword"] = N_("The keyword does not match this installation.")
        if not name.strip():
            out.errors["name"] = N_("Write your name.")
        if not MOBILE_RE.fullmatch(mobile.strip()):
            out.errors["mobile"] = N_("Write a mobile number (digits, optionally with +).")
        email = normal_email(email)
        if not EMAIL_RE.fullmatch(email):
            out.errors["email"] = N_("Write a valid e-mail address.")
        elif user is not None and self.store.account_by_email(email) is not None:
            out.errors["email"] = N_("This e-mail already has an account: log in instead.")
        problem = password_problem(password)
        if problem:
            out.errors["password"] = problem
        if password != repeat:
            out.errors["repeat"] = N_("The two passwords are different.")
        if out.errors or inst is None or user is None:
            return out
        hash_ = await asyncio.to_thread(HASHER.hash, password)
        account = self.store.create_account(
            email, name.strip(), mobile.strip(), hash_, inst.number, user, lang
        )
        if account is None:
            out.errors["email"] = N_("This e-mail already has an account: log in instead.")
        out.account = account
        return out

    async def log_in(self, email: str, password: str) -> Outcome:
        """Check a password; 5 wrong in a row block the e-mail until it is unblocked."""
        email = normal_email(email)
        account = self.store.account_by_email(email)
        if self.store.failures(email) >= MAX_FAILURES:
            await asyncio.to_thread(verify, _DUMMY_HASH, password)
            return Outcome(errors={"": BLOCKED}, blocked=True)
        hash_ = account.password_hash if account is not None else _DUMMY_HASH
        ok = await asyncio.to_thread(verify, hash_, password)
        if account is not None and ok:
            self.store.clear_failures(email)
            return Outcome(account=account)
        if self.store.add_failure(email) >= MAX_FAILURES:
            return Outcome(errors={"": BLOCKED}, blocked=True)
        return Outcome(errors={"": N_("Wrong e-mail or password.")})

    async def unblock(self, email: str, keyword: str, password: str, repeat: str) -> Outcome:
        """Email + keyword + a new password: unblocked, the old password gone, sessions closed."""
        out = Outcome()
        problem = password_problem(password)
        if problem:
            out.errors["password"] = problem
        if password != repeat:
            out.errors["repeat"] = N_("The two passwords are different.")
        email = normal_email(email)
        account = self.store.account_by_email(email)
        matched = False
        if account is not None:
            for m in self.store.memberships(account.id):
                key = self._keywords.get((m.number, m.panel_user))
                if key is None:
                    continue
                same: bool = await asyncio.to_thread(verify, key, keyword)
                matched = matched or same
        else:
            await asyncio.to_thread(verify, _DUMMY_HASH, keyword)
        if not matched:
            out.errors[""] = N_("The e-mail and keyword do not match.")
        if out.errors or account is None:
            return out
        self.store.set_password(account.id, await asyncio.to_thread(HASHER.hash, password))
        self.store.clear_failures(email)
        self.store.drop_sessions(account.id)
        out.account = account
        return out

    def new_session(self, account: Account, kind: str) -> tuple[str, str]:
        """A fresh (token, csrf) for an account; only the token's hash is stored."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24)
        self.store.add_session(token_hash(token), account.id, kind, csrf)
        return token, csrf


BLOCKED: Final = N_(
    "Your user is blocked after 5 wrong passwords. To unblock it, use "
    "“I have trouble accessing my account” → “My user is blocked”."
)
