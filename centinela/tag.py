"""``centinela tag enroll``: personalise an NTAG 424 DNA at the panel's reader for SUN messages.

Run by an installer at the reader named by the site file's ``devices.nfc``, with
the panel stopped (the reader is one device). It waits for a tag, enrols it with
the site's ``[nfc]`` keys and prints its UID, to go in a user's ``tags`` list.
Keys are never printed.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Any

from common.errors import UsageError
from drivers.ntag424 import SunKeys
from panel.config import load_site_file

_LOGGER = logging.getLogger(__name__)


def run_tag(args: argparse.Namespace) -> int:
    """The ``tag`` command group."""
    if args.tag_command == "enroll":
        return enroll_command(args.config, force=args.force, timeout=args.timeout)
    raise UsageError(f"unknown tag command {args.tag_command!r}")


def enroll_command(config: str, *, force: bool, timeout: float) -> int:
    """Wait for a tag on the configured reader, enrol it, print its UID; 0 on success."""

    from drivers.nfc import open_frontend
    from drivers.ntag424_enroll import EnrolError, enroll

    site = load_site_file(config)
    nfc_cfg = site.nfc
    if nfc_cfg.meta_key is None or nfc_cfg.file_key is None:
        raise UsageError(f"{config}: nfc: meta_key and file_key are needed to enrol tags")
    url = site.devices.nfc
    if url.startswith("sim:"):
        raise UsageError(f"{config}: devices.nfc: enrolment needs a reader, not {url!r}")
    keys = SunKeys(nfc_cfg.meta_key, nfc_cfg.file_key)
    try:
        clf = open_frontend(url)
    except (OSError, ValueError) as exc:
        print(f"centinela tag enroll: no reader at {url}: {exc}", file=sys.stderr)
        return 1
    try:
        print("hold a factory-fresh NTAG 424 DNA on the reader", file=sys.stderr, flush=True)
        found = _wait_for_tag(clf, timeout)
        if found is None:
            print(f"centinela tag enroll: no tag within {timeout:g} s", file=sys.stderr)
            return 1
        try:
            uid = enroll(clf, found, keys, nfc_cfg.url, force=force)
        except EnrolError as exc:
            print(f"centinela tag enroll: {exc}", file=sys.stderr)
            return 1
    finally:
        clf.close()
    print(uid)
    print(f'enrolled: add "{uid}" to the user\'s tags in {config}', file=sys.stderr)
    return 0


def _wait_for_tag(clf: Any, timeout: float) -> Any:
    import nfc.clf

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = clf.sense(nfc.clf.RemoteTarget("106A"), iterations=1)
        if found is not None and found.sdd_res:
            return found
        time.sleep(0.05)
    return None
