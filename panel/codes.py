"""User codes kept only as keyed digests: HMAC-SHA256 with a secret drawn at each load."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from typing import Final

CODE_RE: Final = re.compile(r"[0-9]{4,8}")
"""A user or duress code as typed on the keypad."""

MAX_CODE_DIGITS: Final = 8


@dataclass(frozen=True, slots=True)
class CodeHasher:
    """Turns a code into a digest; the secret never leaves memory and differs at every load."""

    secret: bytes = field(repr=False)

    @classmethod
    def random(cls) -> CodeHasher:
        """A hasher with a fresh 256-bit secret."""
        return cls(secrets.token_bytes(32))

    def digest(self, code: str) -> bytes:
        """The keyed digest of ``code``."""
        return hmac.new(self.secret, code.encode("ascii"), hashlib.sha256).digest()

    def matches(self, code: str, digest: bytes) -> bool:
        """Whether ``code`` has ``digest``, compared in constant time."""
        return hmac.compare_digest(self.digest(code), digest)
