"""NTAG 424 DNA Secure Unique NFC (SUN) messages, as NXP AN12196 describes: pure functions.

A personalised tag mirrors into its NDEF URI, at every read, ``picc_data`` (the
PICCData block, AES-128 CBC with a zero IV under the SDM meta read key: a tag
byte, the 7-byte UID and the 3-byte little-endian read counter) and ``cmac``
(the SDM MAC: AES-CMAC under a session key derived from the SDM file read key,
the UID and the counter, over empty MAC input, keeping the odd-numbered bytes).
Nothing here talks to a tag; the reader driver and the simulated tag use it.
"""

from __future__ import annotations

import functools
import hmac
import struct
import threading
from dataclasses import dataclass, field
from typing import Final, Protocol

import ndef
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

KEY_BYTES: Final = 16
UID_BYTES: Final = 7
PICC_DATA_TAG: Final = 0xC7
"""PICCDataTag: UID mirrored, read counter mirrored, a 7-byte UID."""
SV2_PREFIX: Final = bytes.fromhex("3CC300010080")
PICC_PARAM: Final = "picc_data"
MAC_PARAM: Final = "cmac"
COUNTER_LIMIT: Final = 0xFFFFFF

# Refusal reasons (they end up in the ``tag_rejected`` event's detail).
NO_SUN: Final = "no SUN message"
BAD_PICC: Final = "bad PICCData"
BAD_MAC: Final = "bad MAC"
UID_MISMATCH: Final = "UID mismatch"
UNKNOWN: Final = "unknown tag"
NOT_FRESH: Final = "counter not increased"
NOT_RECORDED: Final = "counter not recorded"
NOT_SYNCED: Final = "counters not synchronised"


class SunRejected(Exception):
    """A SUN message that does not prove a genuine tag; ``reason`` is one of the constants above."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SunKeys:
    """The SDM meta read key and file read key of a site (secrets: never in a repr)."""

    meta_key: bytes = field(repr=False)
    file_key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.meta_key) != KEY_BYTES or len(self.file_key) != KEY_BYTES:
            raise ValueError("SUN keys are 16 bytes (AES-128)")


@dataclass(frozen=True, slots=True)
class SunRead:
    """A verified SUN message: the tag's UID (upper-case hex) and its read counter."""

    uid: str
    counter: int


_ZERO_IV: Final = bytes(16)


@functools.lru_cache(maxsize=16)
def _cipher(key: bytes) -> Cipher[modes.CBC]:
    # A site has two keys: the key schedules are made once, not at every tap.
    return Cipher(algorithms.AES(key), modes.CBC(_ZERO_IV))


@functools.lru_cache(maxsize=16)
def _keyed_cmac(key: bytes) -> CMAC:
    return CMAC(algorithms.AES(key))


def _aes_block(key: bytes, block: bytes, *, decrypt: bool = False) -> bytes:
    cipher = _cipher(key)
    ctx = cipher.decryptor() if decrypt else cipher.encryptor()
    return ctx.update(block) + ctx.finalize()


def cmac(key: bytes, data: bytes) -> bytes:
    """AES-CMAC (NIST SP 800-38B), 16 bytes."""
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def _site_cmac(key: bytes, data: bytes) -> bytes:
    mac = _keyed_cmac(key).copy()
    mac.update(data)
    return mac.finalize()


def truncate_mac(full: bytes) -> bytes:
    """MACt: the odd-numbered bytes of a 16-byte CMAC (S14 S12 … S0 in NXP's numbering)."""
    return full[1::2]


def encrypt_picc_data(meta_key: bytes, uid: bytes, counter: int, pad: bytes) -> bytes:
    """ENCPICCData for ``uid`` and ``counter``; ``pad`` is the tag's 5 random bytes."""
    if len(uid) != UID_BYTES or len(pad) != 5 or not 0 <= counter <= COUNTER_LIMIT:
        raise ValueError("PICCData needs a 7-byte UID, a 24-bit counter and 5 padding bytes")
    plain = bytes([PICC_DATA_TAG]) + uid + counter.to_bytes(3, "little") + pad
    return _aes_block(meta_key, plain)


def decrypt_picc_data(meta_key: bytes, enc: bytes) -> tuple[bytes, int]:
    """(UID, read counter) from ENCPICCData; SunRejected(BAD_PICC) when it is not PICCData."""
    if len(enc) != 16:
        raise SunRejected(NO_SUN)
    plain = _aes_block(meta_key, enc, decrypt=True)
    if plain[0] != PICC_DATA_TAG:
        raise SunRejected(BAD_PICC)  # a wrong meta key or a forged block
    return plain[1:8], int.from_bytes(plain[8:11], "little")


def session_mac_key(file_key: bytes, uid: bytes, counter: int) -> bytes:
    """KSesSDMFileReadMAC = CMAC(file key, SV2 = 3CC300010080 || UID || counter LE)."""
    return _site_cmac(file_key, SV2_PREFIX + uid + counter.to_bytes(3, "little"))


def sdm_mac(file_key: bytes, uid: bytes, counter: int, data: bytes = b"") -> bytes:
    """The 8-byte SDMMAC over ``data`` (empty when the MAC input offset is the MAC offset)."""
    return truncate_mac(cmac(session_mac_key(file_key, uid, counter), data))


def parse_sun_uri(uri: str) -> tuple[bytes, bytes]:
    """(ENCPICCData, SDMMAC) from a URI's ``picc_data`` and ``cmac``; else SunRejected(NO_SUN)."""
    _, _, rest = uri.partition("?")
    query, _, _ = rest.partition("#")
    picc: list[str] = []
    mac: list[str] = []
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name == PICC_PARAM:
            picc.append(value)
        elif name == MAC_PARAM:
            mac.append(value)
    if len(picc) != 1 or len(mac) != 1 or len(picc[0]) != 32 or len(mac[0]) != 16:
        raise SunRejected(NO_SUN)
    try:
        return bytes.fromhex(picc[0]), bytes.fromhex(mac[0])
    except ValueError:
        raise SunRejected(NO_SUN) from None


def sun_uri_of(message: bytes) -> str:
    """The URI of an NDEF message holding one URI record; SunRejected(NO_SUN) otherwise."""
    try:
        records = list(ndef.message_decoder(message))
    except ndef.DecodeError:
        raise SunRejected(NO_SUN) from None
    uris = [r.iri for r in records if isinstance(r, ndef.UriRecord)]
    if len(uris) != 1:
        raise SunRejected(NO_SUN)
    return str(uris[0])


def verify(keys: SunKeys, picc: bytes, mac: bytes, *, uid: bytes | None = None) -> SunRead:
    """Decrypt and check one SUN message; ``uid`` (anticollision) must match when given.

    Raises SunRejected with the reason. Freshness (the counter) is the caller's check.
    """
    tag_uid, counter = decrypt_picc_data(keys.meta_key, picc)
    expected = sdm_mac(keys.file_key, tag_uid, counter)
    if not hmac.compare_digest(expected, mac):
        raise SunRejected(BAD_MAC)
    if uid is not None and not hmac.compare_digest(uid, tag_uid):
        raise SunRejected(UID_MISMATCH)
    return SunRead(tag_uid.hex().upper(), counter)


def verify_uri(keys: SunKeys, uri: str, *, uid: bytes | None = None) -> SunRead:
    """``verify`` on the parameters of a SUN URI."""
    picc, mac = parse_sun_uri(uri)
    return verify(keys, picc, mac, uid=uid)


# -- what enrolment writes and the tag mirrors into ----------------------------------------


@dataclass(frozen=True, slots=True)
class SunTemplate:
    """The NDEF file a tag is personalised with, and where the tag mirrors into it."""

    file: bytes
    """NLEN (2 bytes, big-endian) and the NDEF message, as stored in the tag's file 02."""
    picc_offset: int
    mac_offset: int


def sun_template(base_url: str) -> SunTemplate:
    """The NDEF URI ``base_url?picc_data=0…0&cmac=0…0`` and the offsets SDM mirrors into."""
    sep = "&" if "?" in base_url else "?"
    uri = f"{base_url}{sep}{PICC_PARAM}={'0' * 32}&{MAC_PARAM}={'0' * 16}"
    message = b"".join(ndef.message_encoder([ndef.UriRecord(uri)]))
    file = struct.pack(">H", len(message)) + message
    picc_at = file.index(f"{PICC_PARAM}=".encode()) + len(PICC_PARAM) + 1
    mac_at = file.index(f"&{MAC_PARAM}=".encode()) + len(MAC_PARAM) + 2
    return SunTemplate(file, picc_at, mac_at)


SDM_OPTIONS: Final = 0xC1
"""SDMOptions: UID mirror, SDMReadCtr mirror, ASCII encoding."""
FILE_KEY_NO: Final = 1
META_KEY_NO: Final = 2


def sdm_file_settings(picc_offset: int, mac_offset: int) -> bytes:
    """ChangeFileSettings data for file 02 (AN12196's layout, our offsets).

    FileOption 40 (SDM on, plain); access rights 00E0 (read free; write, read-write and
    change with key 0); SDMOptions C1; SDMAccessRights F121 (counter retrieval key 1,
    meta read key 2, file read key 1); PICCDataOffset, SDMMACInputOffset = SDMMACOffset.
    """

    def off(value: int) -> bytes:
        return value.to_bytes(3, "little")

    sdm_rights = bytes([0xF0 | FILE_KEY_NO, (META_KEY_NO << 4) | FILE_KEY_NO])
    return (
        bytes([0x40, 0x00, 0xE0, SDM_OPTIONS])
        + sdm_rights
        + off(picc_offset)
        + off(mac_offset)
        + off(mac_offset)
    )


# -- what the reader driver needs from the panel -----------------------------------------------


class CounterStore(Protocol):
    """Durable read counters per tag UID (the panel's store); called from the reader's thread."""

    def last_counter(self, uid: str) -> int | None:
        """The highest read counter accepted for ``uid``, or None."""

    def accept_counter(self, uid: str, counter: int) -> None:
        """Record ``counter`` as accepted for ``uid`` (durably, before the tap counts)."""

    def synchronised(self) -> bool:
        """False while a new store waits for the counters its hub holds: no read counts."""


class MemoryCounters:
    """Counters kept in memory (tests and benchmarks; the panel keeps them in its store)."""

    def __init__(self) -> None:
        self.counters: dict[str, int] = {}
        self._lock = threading.Lock()

    def last_counter(self, uid: str) -> int | None:
        """The highest counter accepted for ``uid``."""
        with self._lock:
            return self.counters.get(uid)

    def accept_counter(self, uid: str, counter: int) -> None:
        """Remember ``counter`` for ``uid``."""
        with self._lock:
            self.counters[uid] = counter

    def synchronised(self) -> bool:
        """Always: these counters have nobody to wait for."""
        return True


@dataclass(frozen=True, slots=True)
class SunPolicy:
    """What a reader in ``sun`` mode checks: the site's keys, its tags, the counters so far."""

    keys: SunKeys = field(repr=False)
    tags: frozenset[str]
    counters: CounterStore = field(repr=False, compare=False)

    def judge(self, read: SunRead) -> str | None:
        """None when ``read`` is a configured tag with a fresh counter, else the reason."""
        if read.uid not in self.tags:
            return UNKNOWN
        if not self.counters.synchronised():
            return NOT_SYNCED
        last = self.counters.last_counter(read.uid)
        if last is not None and read.counter <= last:
            return NOT_FRESH
        return None
