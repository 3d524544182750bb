"""Panel keys: 256-bit secrets; new ones, their fingerprints and their key ids.

How a key is written in a config file (64 hex digits) is checked by
``common.configcheck.parse_key``.
"""

from __future__ import annotations

import hashlib
import secrets

from protocol.frame import KEY_SIZE


def generate_key() -> str:
    """A new random panel key as 64 lower-case hex digits (from the OS's CSPRNG)."""
    return secrets.token_hex(KEY_SIZE)


def fingerprint(key: bytes) -> str:
    """A short, non-secret name for a key (8 hex digits of its SHA-256) for logs and doctor."""
    return hashlib.sha256(b"centinela key fingerprint\x00" + key).hexdigest()[:8]


def key_id(key: bytes) -> int:
    """The key id (1-255) a frame carries for ``key``, derived from the key (docs/link.md).

    Panel and hub compute it from the key itself, so a rotation needs no extra
    setting; two keys whose ids collide cannot be used side by side.
    """
    return 1 + hashlib.sha256(b"centinela key id\x00" + key).digest()[0] % 255
