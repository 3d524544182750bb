"""``centinela keygen``: print a new random panel key (or a site's two SUN tag keys)."""

from __future__ import annotations

import argparse
import secrets

from protocol.keys import generate_key


def run_keygen(args: argparse.Namespace) -> int:
    """Print a new random 256-bit key (64 hex digits), or with ``--sun`` an ``[nfc]`` table."""
    if getattr(args, "sun", False):
        print("[nfc]")
        print('tags = "sun"')
        print(f'meta_key = "{secrets.token_hex(16)}"')
        print(f'file_key = "{secrets.token_hex(16)}"')
        return 0
    print(generate_key())
    return 0
