"""NTAG 424 DNA AES secure messaging (EV2) per the datasheet and NXP AN12196: pure functions.

AuthenticateEV2First gives a transaction identifier (TI) and two session keys;
then every command carries a command counter, is MACed (CMAC truncated to its
odd-numbered bytes) and, in CommMode.Full, its data encrypted with AES-128 CBC
under an IV derived from the TI and the counter. Both sides are here: the
reader's (``wrap_*``, ``check_response``, enrolment) and the tag's (``open_*``,
``seal_response``, the simulated tag).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from drivers.ntag424 import cmac, truncate_mac

_ZERO_IV: Final = bytes(16)
_CMD_LABEL: Final = bytes.fromhex("A55A")
_RESP_LABEL: Final = bytes.fromhex("5AA5")


class SecureMessagingError(Exception):
    """A MAC, padding or authentication check failed."""


def _cbc(key: bytes, iv: bytes, data: bytes, *, decrypt: bool = False) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.CBC(iv))
    ctx = cipher.decryptor() if decrypt else cipher.encryptor()
    return ctx.update(data) + ctx.finalize()


def rotl(data: bytes) -> bytes:
    """Rotate left by one byte (RndA', RndB')."""
    return data[1:] + data[:1]


def pad(data: bytes) -> bytes:
    """ISO/IEC 9797-1 padding method 2: 0x80, then zeros to a whole block (always added)."""
    data = data + b"\x80"
    return data + bytes(-len(data) % 16)


def unpad(data: bytes) -> bytes:
    """Remove method-2 padding; SecureMessagingError if there is none."""
    stripped = data.rstrip(b"\x00")
    if not stripped.endswith(b"\x80") or len(data) - len(stripped) >= 16:
        raise SecureMessagingError("bad padding")
    return stripped[:-1]


def session_keys(key: bytes, rnd_a: bytes, rnd_b: bytes) -> tuple[bytes, bytes]:
    """(SesAuthENCKey, SesAuthMACKey) from SV1 / SV2 over RndA and RndB."""
    mixed = bytes(a ^ b for a, b in zip(rnd_a[2:8], rnd_b[0:6], strict=True))
    tail = bytes.fromhex("00010080") + rnd_a[0:2] + mixed + rnd_b[6:16] + rnd_a[8:16]
    return cmac(key, _CMD_LABEL + tail), cmac(key, _RESP_LABEL + tail)


def crc32nk(data: bytes) -> bytes:
    """The CRC32 of ChangeKey: IEEE 802.3 CRC-32 without the final inversion, LSB first."""
    return ((zlib.crc32(data) ^ 0xFFFFFFFF) & 0xFFFFFFFF).to_bytes(4, "little")


def change_key_data(
    key_no: int, new_key: bytes, version: int, *, old_key: bytes | None, auth_key_no: int = 0
) -> bytes:
    """ChangeKey's plain data: NewKey || KeyVer for the authenticated key, else the XOR and CRC."""
    if key_no == auth_key_no:
        return new_key + bytes([version])
    if old_key is None:
        raise ValueError("changing another key needs its old value")
    mixed = bytes(a ^ b for a, b in zip(new_key, old_key, strict=True))
    return mixed + bytes([version]) + crc32nk(new_key)


@dataclass(slots=True)
class Session:
    """An authenticated session: TI, session keys (never in a repr) and the command counter."""

    ti: bytes
    enc_key: bytes = field(repr=False)
    mac_key: bytes = field(repr=False)
    counter: int = 0

    def _iv(self, label: bytes) -> bytes:
        block = label + self.ti + self.counter.to_bytes(2, "little") + bytes(8)
        return _cbc(self.enc_key, _ZERO_IV, block)

    def command_mac(self, ins: int, header: bytes, payload: bytes) -> bytes:
        """MACt of a command: Cmd || CmdCtr || TI || CmdHeader || CmdData."""
        ctr = self.counter.to_bytes(2, "little")
        return truncate_mac(cmac(self.mac_key, bytes([ins]) + ctr + self.ti + header + payload))

    def response_mac(self, status: int, payload: bytes) -> bytes:
        """MACt of a response (after the counter moved on): RC || CmdCtr || TI || RespData."""
        ctr = self.counter.to_bytes(2, "little")
        return truncate_mac(cmac(self.mac_key, bytes([status]) + ctr + self.ti + payload))

    # -- the reader's side ----------------------------------------------------------------
    def wrap(self, ins: int, header: bytes = b"", data: bytes = b"", *, full: bool = True) -> bytes:
        """A native command APDU in CommMode.Full (``full``) or CommMode.MAC."""
        payload = _cbc(self.enc_key, self._iv(_CMD_LABEL), pad(data)) if full and data else data
        body = header + payload + self.command_mac(ins, header, payload)
        return bytes([0x90, ins, 0x00, 0x00, len(body)]) + body + b"\x00"

    def check_response(self, status: int, body: bytes, *, full: bool = True) -> bytes:
        """The data of a response (``body`` without SW1 SW2); the counter moves on."""
        self.counter = (self.counter + 1) & 0xFFFF
        if len(body) < 8:
            raise SecureMessagingError("response without its MAC")
        payload, mac = body[:-8], body[-8:]
        if self.response_mac(status, payload) != mac:
            raise SecureMessagingError("response MAC does not verify")
        if not (full and payload):
            return payload
        return unpad(_cbc(self.enc_key, self._iv(_RESP_LABEL), payload, decrypt=True))

    # -- the tag's side -------------------------------------------------------------------
    def open_command(self, ins: int, header: bytes, body: bytes, *, full: bool = True) -> bytes:
        """The plain data of a received command; SecureMessagingError if its MAC fails."""
        if len(body) < 8:
            raise SecureMessagingError("command without its MAC")
        payload, mac = body[:-8], body[-8:]
        if self.command_mac(ins, header, payload) != mac:
            raise SecureMessagingError("command MAC does not verify")
        if not (full and payload):
            return payload
        if len(payload) % 16:
            raise SecureMessagingError("encrypted data is not whole blocks")
        return unpad(_cbc(self.enc_key, self._iv(_CMD_LABEL), payload, decrypt=True))

    def seal_response(self, status: int, data: bytes = b"", *, full: bool = True) -> bytes:
        """Response data and MAC for an accepted command; the counter moves on."""
        self.counter = (self.counter + 1) & 0xFFFF
        payload = _cbc(self.enc_key, self._iv(_RESP_LABEL), pad(data)) if full and data else data
        return payload + self.response_mac(status, payload)


# -- AuthenticateEV2First ----------------------------------------------------------------------


def reader_answer(key: bytes, enc_rnd_b: bytes, rnd_a: bytes) -> tuple[bytes, bytes]:
    """Part 1 on the reader: (E(K, RndA || RndB'), RndB) from the tag's E(K, RndB)."""
    if len(enc_rnd_b) != 16 or len(rnd_a) != 16:
        raise SecureMessagingError("AuthenticateEV2First part 1 is 16 bytes")
    rnd_b = _cbc(key, _ZERO_IV, enc_rnd_b, decrypt=True)
    return _cbc(key, _ZERO_IV, rnd_a + rotl(rnd_b)), rnd_b


def reader_session(key: bytes, rnd_a: bytes, rnd_b: bytes, enc_answer: bytes) -> Session:
    """Part 2 on the reader: the session, once the tag has proved it holds the key."""
    if len(enc_answer) != 32:
        raise SecureMessagingError("AuthenticateEV2First part 2 is 32 bytes")
    plain = _cbc(key, _ZERO_IV, enc_answer, decrypt=True)
    if plain[4:20] != rotl(rnd_a):
        raise SecureMessagingError("the tag does not hold the key")
    enc, mac = session_keys(key, rnd_a, rnd_b)
    return Session(plain[0:4], enc, mac)


def tag_challenge(key: bytes, rnd_b: bytes) -> bytes:
    """Part 1 on the tag: E(K, RndB)."""
    return _cbc(key, _ZERO_IV, rnd_b)


def tag_session(key: bytes, rnd_b: bytes, answer: bytes, ti: bytes) -> tuple[bytes, Session]:
    """Part 2 on the tag: (E(K, TI || RndA' || PDcap2 || PCDcap2), session) if RndB' checks."""
    if len(answer) != 32:
        raise SecureMessagingError("AuthenticateEV2First part 2 is 32 bytes")
    plain = _cbc(key, _ZERO_IV, answer, decrypt=True)
    rnd_a = plain[:16]
    if plain[16:] != rotl(rnd_b):
        raise SecureMessagingError("the reader does not hold the key")
    enc, mac = session_keys(key, rnd_a, rnd_b)
    reply = _cbc(key, _ZERO_IV, ti + rotl(rnd_a) + bytes(12))
    return reply, Session(ti, enc, mac)
