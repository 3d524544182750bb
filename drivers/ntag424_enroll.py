"""Personalising an NTAG 424 DNA for a site's SUN messages, as NXP AN12196 describes.

On a factory-fresh tag (every key the zero key): AuthenticateEV2First with key 0,
WriteData of the NDEF URI template into file 02, ChangeFileSettings turning SDM
on (UID and read counter mirrored, encrypted with key 2, MACed with key 1),
ChangeKey 1 (the site's file read key), ChangeKey 2 (its meta read key), and
last ChangeKey 0 (the tag's own master key, derived from the file key and the
UID, so a personalised tag can only be re-enrolled by its site). Blocking: it
runs on an nfcpy frontend, in the caller's thread.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any, Final

import nfc.clf
import nfc.tag
import nfc.tag.tt4

from drivers import ntag424
from drivers import ntag424_ev2 as ev2
from drivers.ntag424 import SunKeys

_LOGGER = logging.getLogger(__name__)

FACTORY_KEY: Final = bytes(16)
KEY_VERSION: Final = 0x01
MAX_TEMPLATE: Final = 224
"""NDEF file bytes one WriteData carries (CommMode.Full, a short APDU)."""
_SELECT_APP: Final = bytes.fromhex("00A4040C07D276000085010100")
_OK: Final = b"\x90\x00"
_OK_NATIVE: Final = b"\x91\x00"
_MORE: Final = b"\x91\xaf"
_AUTH_ERROR: Final = b"\x91\xae"


class EnrolError(Exception):
    """The tag cannot be enrolled (already personalised, wrong kind, a command refused)."""


def master_key(keys: SunKeys, uid: bytes) -> bytes:
    """The tag's key 0: CMAC of the site's file key over a label and the UID (per tag)."""
    return ntag424.cmac(keys.file_key, b"\x01centinela key 0\x00" + uid)


class _Card:
    """APDUs to an activated ISO-DEP tag: (data, status word)."""

    def __init__(self, tag: Any) -> None:
        self._tag = tag

    def send(self, apdu: bytes) -> tuple[bytes, bytes]:
        answer = self._tag.transceive(apdu)
        if answer is None or len(answer) < 2:
            raise EnrolError("the tag gave no answer (held still on the reader?)")
        answer = bytes(answer)
        return answer[:-2], answer[-2:]

    def authenticate(
        self, key_no: int, key: bytes, rng: Callable[[int], bytes]
    ) -> ev2.Session | None:
        """AuthenticateEV2First; None when the tag does not hold ``key``."""
        data, sw = self.send(bytes([0x90, 0x71, 0x00, 0x00, 0x02, key_no, 0x00, 0x00]))
        if sw != _MORE:
            raise EnrolError(f"AuthenticateEV2First refused ({sw.hex().upper()})")
        rnd_a = rng(16)
        answer, rnd_b = ev2.reader_answer(key, data, rnd_a)
        data, sw = self.send(bytes([0x90, 0xAF, 0x00, 0x00, 0x20]) + answer + b"\x00")
        if sw == _AUTH_ERROR:
            return None
        if sw != _OK_NATIVE:
            raise EnrolError(f"AuthenticateEV2First failed ({sw.hex().upper()})")
        try:
            return ev2.reader_session(key, rnd_a, rnd_b, data)
        except ev2.SecureMessagingError:
            raise EnrolError("the tag did not prove it holds the key") from None

    def command(
        self, session: ev2.Session, ins: int, header: bytes, data: bytes, what: str
    ) -> None:
        """One CommMode.Full command; its response MAC is checked."""
        answer, sw = self.send(session.wrap(ins, header, data))
        if sw != _OK_NATIVE:
            raise EnrolError(f"{what} refused ({sw.hex().upper()})")
        try:
            session.check_response(0x00, answer)
        except ev2.SecureMessagingError as exc:
            raise EnrolError(f"{what}: {exc}") from None


def enroll(
    clf: Any,
    found: Any,
    keys: SunKeys,
    url: str,
    *,
    force: bool = False,
    rng: Callable[[int], bytes] = os.urandom,
) -> str:
    """Personalise the tag ``found`` (a sensed 106A target); returns its UID in hex.

    A tag whose key 0 is not the factory key is refused, unless ``force`` is set and
    it is a tag of this site (its key 0 is the one derived from ``keys``).
    """
    uid = bytes(found.sdd_res)
    if len(uid) != ntag424.UID_BYTES or not (found.sel_res and found.sel_res[0] & 0x20):
        raise EnrolError(f"tag {uid.hex().upper()} is not an NTAG 424 DNA (ISO-DEP, 7-byte UID)")
    try:
        card = _Card(nfc.tag.tt4.activate(clf, found))
        return _personalise(card, uid, keys, url, force=force, rng=rng)
    except (nfc.tag.TagCommandError, nfc.clf.CommunicationError) as exc:
        raise EnrolError(f"the exchange with the tag broke ({exc}); hold it still") from None


def _personalise(
    card: _Card,
    uid: bytes,
    keys: SunKeys,
    url: str,
    *,
    force: bool,
    rng: Callable[[int], bytes],
) -> str:
    hexuid = uid.hex().upper()
    _, sw = card.send(_SELECT_APP)
    if sw != _OK:
        raise EnrolError(f"tag {hexuid} has no NTAG 424 DNA application")
    master = master_key(keys, uid)
    old = {1: FACTORY_KEY, 2: FACTORY_KEY}
    session = card.authenticate(0, FACTORY_KEY, rng)
    if session is None:
        if not force:
            raise EnrolError(
                f"tag {hexuid} is already personalised (key 0 is not the factory key); "
                "--force re-enrols a tag of this site"
            )
        session = card.authenticate(0, master, rng)
        if session is None:
            raise EnrolError(f"tag {hexuid} is personalised with keys of another site")
        old = {1: keys.file_key, 2: keys.meta_key}
    template = ntag424.sun_template(url)
    size = len(template.file)
    if size > MAX_TEMPLATE:
        raise EnrolError(f"the URL is too long for one command ({size} > {MAX_TEMPLATE} bytes)")
    header = b"\x02" + bytes(3) + size.to_bytes(3, "little")
    card.command(session, 0x8D, header, template.file, "WriteData (NDEF template)")
    settings = ntag424.sdm_file_settings(template.picc_offset, template.mac_offset)
    card.command(session, 0x5F, b"\x02", settings, "ChangeFileSettings (SDM)")
    for key_no, new in ((ntag424.FILE_KEY_NO, keys.file_key), (ntag424.META_KEY_NO, keys.meta_key)):
        data = ev2.change_key_data(key_no, new, KEY_VERSION, old_key=old[key_no])
        card.command(session, 0xC4, bytes([key_no]), data, f"ChangeKey {key_no}")
    # Key 0 last: changing the session's own key ends the session (no response MAC).
    data = ev2.change_key_data(0, master, KEY_VERSION, old_key=None)
    _, sw = card.send(session.wrap(0xC4, b"\x00", data))
    if sw != _OK_NATIVE:
        raise EnrolError(f"ChangeKey 0 refused ({sw.hex().upper()})")
    _LOGGER.info("tag %s personalised for SUN messages", hexuid)
    return hexuid
