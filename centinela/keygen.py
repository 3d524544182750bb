"""``centinela keygen``: print a new random panel key."""

from __future__ import annotations

import argparse

from protocol.keys import generate_key


def run_keygen(args: argparse.Namespace) -> int:
    """Print a new random 256-bit key (64 hex digits) on stdout."""
    print(generate_key())
    return 0
