"""Panel keys: 256-bit secrets written as 64 hex digits; ``centinela keygen`` prints a new one."""

from __future__ import annotations

import argparse
import hashlib
import secrets
import string
from typing import Final

from centinela.errors import ConfigError
from protocol.frame import KEY_SIZE

KEY_HEX_DIGITS: Final = 2 * KEY_SIZE
_HEX: Final = frozenset(string.hexdigits)


def generate_key() -> str:
    """A new random panel key as 64 lower-case hex digits (from the OS's CSPRNG)."""
    return secrets.token_hex(KEY_SIZE)


def parse_key(text: str, *, file: str, key: str) -> bytes:
    """The 32 key bytes written in ``text``; ``ConfigError`` naming ``file`` and ``key`` if bad.

    The error never repeats the text: a wrong key is still a secret.
    """
    if not isinstance(text, str):
        raise ConfigError(file, key, f"must be a string of {KEY_HEX_DIGITS} hex digits")
    value = text.strip()
    if len(value) != KEY_HEX_DIGITS or not _HEX.issuperset(value):
        raise ConfigError(
            file,
            key,
            f"must be {KEY_HEX_DIGITS} hex digits (a 256-bit key; `centinela keygen` prints one), "
            f"got {len(value)} characters",
        )
    raw = bytes.fromhex(value)
    if len(set(raw)) == 1:
        raise ConfigError(file, key, "is a placeholder (one byte repeated); use `centinela keygen`")
    return raw


def fingerprint(key: bytes) -> str:
    """A short, non-secret name for a key (8 hex digits of its SHA-256) for logs and doctor."""
    return hashlib.sha256(b"centinela key fingerprint\x00" + key).hexdigest()[:8]


def run_keygen(args: argparse.Namespace) -> int:
    """``centinela keygen``: print a new random key on stdout."""
    print(generate_key())
    return 0


def key_id(key: bytes) -> int:
    """The key id (1-255) a frame carries for ``key``, derived from the key (docs/link.md).

    Panel and hub compute it from the key itself, so a rotation needs no extra
    setting; two keys whose ids collide cannot be used side by side.
    """
    return 1 + hashlib.sha256(b"centinela key id\x00" + key).digest()[0] % 255
