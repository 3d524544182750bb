"""A simulated NTAG 424 DNA: its files, keys, SDM mirroring and EV2 secure messaging.

The chip takes ISO/IEC 7816-4 APDUs and answers them as the datasheet and
AN12196 describe: ISOSelectFile, ISOReadBinary (with SUN mirroring into the
NDEF file), ISOUpdateBinary, AuthenticateEV2First, ChangeKey,
ChangeFileSettings, GetFileSettings and WriteData. The radio side (anticollision,
RATS, ISO-DEP blocks) is the tag emulator's (drivers.sim_nfc); a factory-fresh
chip has all keys zero and an empty NDEF file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

from drivers import ntag424
from drivers import ntag424_ev2 as ev2

NDEF_AID: Final = bytes.fromhex("D2760000850101")
ATS: Final = bytes.fromhex("067777710280")
"""NTAG 424 DNA's answer to RATS: FSCI 7 (128 bytes), FWI 7, one historical byte."""
SAK: Final = 0x20
FREE: Final = 0xE
NEVER: Final = 0xF

OK: Final = b"\x90\x00"
NOT_FOUND: Final = b"\x6a\x82"
DENIED: Final = b"\x69\x82"
WRONG_LENGTH: Final = b"\x67\x00"
BAD_INS: Final = b"\x6d\x00"
BAD_PARAMS: Final = b"\x6b\x00"
OK_NATIVE: Final = b"\x91\x00"
MORE: Final = b"\x91\xaf"
AUTH_ERROR: Final = b"\x91\xae"
INTEGRITY_ERROR: Final = b"\x91\x1e"
PERMISSION_DENIED: Final = b"\x91\x9d"
PARAMETER_ERROR: Final = b"\x91\x9e"
LENGTH_ERROR: Final = b"\x91\x7e"
BOUNDARY_ERROR: Final = b"\x91\xbe"

_FACTORY_CC: Final = bytes.fromhex("001720010000FF0406E104010000000506E10500808283")


@dataclass(frozen=True, slots=True)
class FileSettings:
    """A standard data file's settings (access rights as key numbers, E free, F never)."""

    read: int = FREE
    write: int = FREE
    read_write: int = FREE
    change: int = 0
    sdm: bool = False
    sdm_options: int = 0
    meta_key: int = NEVER
    file_key: int = NEVER
    ctr_key: int = NEVER
    picc_offset: int = 0
    mac_input_offset: int = 0
    mac_offset: int = 0

    def encode(self, size: int) -> bytes:
        """GetFileSettings' answer: type, option, rights, size and the SDM block."""
        out = bytes([0x00, 0x40 if self.sdm else 0x00])
        out += bytes([(self.read_write << 4) | self.change, (self.read << 4) | self.write])
        out += size.to_bytes(3, "little")
        if self.sdm:
            out += bytes([self.sdm_options, 0xF0 | self.ctr_key])
            out += bytes([(self.meta_key << 4) | self.file_key])
            out += self.picc_offset.to_bytes(3, "little")
            out += self.mac_input_offset.to_bytes(3, "little")
            out += self.mac_offset.to_bytes(3, "little")
        return out


def parse_settings(data: bytes, size: int) -> FileSettings:
    """ChangeFileSettings' data; ValueError for what this chip cannot take."""
    if len(data) < 3:
        raise ValueError("too short")
    option, rights = data[0], data[1:3]
    base = FileSettings(
        read=rights[1] >> 4,
        write=rights[1] & 0xF,
        read_write=rights[0] >> 4,
        change=rights[0] & 0xF,
    )
    if option & 0x03:
        raise ValueError("only plain communication is simulated for the NDEF file")
    if not option & 0x40:
        if len(data) != 3:
            raise ValueError("trailing data")
        return base
    if len(data) != 15:
        raise ValueError("the simulated chip takes UID+counter mirroring with a MAC only")
    sdm_options, ctr_byte, keys_byte = data[3], data[4], data[5]
    offsets = [int.from_bytes(data[i : i + 3], "little") for i in (6, 9, 12)]
    settings = replace(
        base,
        sdm=True,
        sdm_options=sdm_options,
        ctr_key=ctr_byte & 0xF,
        meta_key=keys_byte >> 4,
        file_key=keys_byte & 0xF,
        picc_offset=offsets[0],
        mac_input_offset=offsets[1],
        mac_offset=offsets[2],
    )
    if sdm_options != ntag424.SDM_OPTIONS or settings.meta_key > 4 or settings.file_key > 4:
        raise ValueError("unsupported SDM options")
    if settings.picc_offset + 32 > size or settings.mac_offset + 16 > size:
        raise ValueError("mirror beyond the file")
    if settings.mac_input_offset > settings.mac_offset:
        raise ValueError("MAC input after the MAC")
    return settings


class Ntag424Chip:
    """One simulated NTAG 424 DNA (7-byte UID); ``apdu(command) -> response``."""

    def __init__(self, uid: str | bytes, *, rng: Callable[[int], bytes] = os.urandom) -> None:
        raw = bytes.fromhex(uid) if isinstance(uid, str) else bytes(uid)
        if len(raw) != ntag424.UID_BYTES:
            raise ValueError("an NTAG 424 DNA has a 7-byte UID")
        self.uid = raw
        self.rng = rng
        self.keys = [bytes(16)] * 5
        self.key_versions = [0] * 5
        cc = bytearray(_FACTORY_CC.ljust(32, b"\0"))
        self.files = {1: cc, 2: bytearray(256), 3: bytearray(128)}
        self.settings = {
            1: FileSettings(write=0, read_write=0),
            2: FileSettings(),
            3: FileSettings(read=2, write=3, read_write=3, change=0),
        }
        self.read_counter = 0
        self.reads = 0
        self.last_read = b""  # file 02 as the last reader saw it (what a skimmer records)
        self.ats = ATS  # what the chip answers to RATS (a test may break it)
        self._fids = {0xE103: 1, 0xE104: 2, 0xE105: 3}
        self.activate()

    @property
    def hexuid(self) -> str:
        """The UID in upper-case hex."""
        return self.uid.hex().upper()

    def activate(self) -> None:
        """A new selection by a reader: no application, no file, no session."""
        self._app = False
        self._file: int | None = None
        self._session: ev2.Session | None = None
        self._auth_key: int | None = None
        self._pending: tuple[int, bytes] | None = None
        self._counted = False

    # -- test helpers (what a factory or an attacker's writer does) --------------------
    def write_ndef(self, message: bytes) -> None:
        """Put an NDEF message in file 02 as it is (no SDM): a copy of a recorded read."""
        self.files[2][:] = bytes(256)
        self.files[2][0 : 2 + len(message)] = len(message).to_bytes(2, "big") + message

    def personalise(
        self, keys: ntag424.SunKeys, base_url: str = "https://tag.invalid/t", *, master: bytes = b""
    ) -> Ntag424Chip:
        """Leave the chip as ``centinela tag enroll`` does, without the commands (for tests)."""
        template = ntag424.sun_template(base_url)
        self.keys[ntag424.FILE_KEY_NO] = keys.file_key
        self.keys[ntag424.META_KEY_NO] = keys.meta_key
        if master:
            self.keys[0] = master
        self.files[2][:] = template.file.ljust(256, b"\0")
        data = ntag424.sdm_file_settings(template.picc_offset, template.mac_offset)
        self.settings[2] = parse_settings(data, 256)
        return self

    def recorded_message(self) -> bytes:
        """The NDEF message of the last read, as someone who skimmed it would have it."""
        size = int.from_bytes(self.last_read[:2], "big")
        return self.last_read[2 : 2 + size]

    # -- the wire ------------------------------------------------------------------------
    def apdu(self, cmd: bytes) -> bytes:
        """Answer one command APDU."""
        if len(cmd) < 4:
            return WRONG_LENGTH
        cla, ins, p1, p2 = cmd[:4]
        data, _le = _split(cmd[4:])
        if cla == 0x90:
            if self._pending is not None and ins != 0xAF:
                self._pending = None
            return self._native(ins, data)
        if cla != 0x00:
            return b"\x6e\x00"
        if ins == 0xA4:
            return self._select(p1, data)
        if ins == 0xB0:
            return self._read_binary((p1 << 8) | p2, _le)
        if ins == 0xD6:
            return self._update_binary((p1 << 8) | p2, data)
        return BAD_INS

    def _select(self, p1: int, data: bytes) -> bytes:
        if p1 == 0x04:
            if data != NDEF_AID:
                return NOT_FOUND
            self.activate()
            self._app = True
            return OK
        if p1 == 0x00 and self._app and len(data) == 2:
            number = self._fids.get(int.from_bytes(data, "big"))
            if number is None:
                return NOT_FOUND
            self._file = number
            return OK
        return NOT_FOUND

    def _read_binary(self, offset: int, le: int) -> bytes:
        number = self._file
        if number is None:
            return b"\x69\x86"
        if self.settings[number].read != FREE:
            return DENIED
        size = len(self.files[number])
        if offset >= size:
            return BAD_PARAMS
        content = bytes(self.files[number])
        if number == 2 and self.settings[2].sdm:
            if not self._counted:
                self._counted = True
                self.read_counter = min(self.read_counter + 1, ntag424.COUNTER_LIMIT)
                self.reads += 1
            content = self._dynamic(self.read_counter)
            self.last_read = content
        length = le or 256
        return content[offset : offset + length] + OK

    def _update_binary(self, offset: int, data: bytes) -> bytes:
        number = self._file
        if number is None:
            return b"\x69\x86"
        if self.settings[number].write != FREE:
            return DENIED
        if offset + len(data) > len(self.files[number]):
            return BAD_PARAMS
        self.files[number][offset : offset + len(data)] = data
        return OK

    def _dynamic(self, counter: int) -> bytes:
        settings = self.settings[2]
        content = bytearray(self.files[2])
        if not settings.sdm:
            return bytes(content)
        picc = ntag424.encrypt_picc_data(
            self.keys[settings.meta_key], self.uid, counter, self.rng(5)
        )
        at = settings.picc_offset
        content[at : at + 32] = picc.hex().upper().encode()
        mac_input = bytes(content[settings.mac_input_offset : settings.mac_offset])
        mac = ntag424.sdm_mac(self.keys[settings.file_key], self.uid, counter, mac_input)
        content[settings.mac_offset : settings.mac_offset + 16] = mac.hex().upper().encode()
        return bytes(content)

    # -- native commands -------------------------------------------------------------------
    def _native(self, ins: int, data: bytes) -> bytes:
        if ins == 0x71:
            return self._auth_first(data)
        if ins == 0xAF:
            return self._auth_second(data)
        handlers = {
            0xC4: self._change_key,
            0x5F: self._change_file_settings,
            0xF5: self._get_file_settings,
            0x8D: self._write_data,
        }
        handler = handlers.get(ins)
        if handler is None:
            return b"\x91\x1c"
        if not self._app:
            return PERMISSION_DENIED
        return handler(data)

    def _auth_first(self, data: bytes) -> bytes:
        self._session = self._auth_key = None
        if not self._app or len(data) < 2 or data[0] > 4:
            return PARAMETER_ERROR
        rnd_b = self.rng(16)
        self._pending = (data[0], rnd_b)
        return ev2.tag_challenge(self.keys[data[0]], rnd_b) + MORE

    def _auth_second(self, data: bytes) -> bytes:
        pending, self._pending = self._pending, None
        if pending is None:
            return b"\x91\xca"
        key_no, rnd_b = pending
        try:
            reply, session = ev2.tag_session(self.keys[key_no], rnd_b, data, self.rng(4))
        except ev2.SecureMessagingError:
            return AUTH_ERROR
        self._session, self._auth_key = session, key_no
        return reply + OK_NATIVE

    def _secure(self, ins: int, header: bytes, body: bytes, *, full: bool) -> bytes | None:
        session = self._session
        if session is None:
            return None
        try:
            return session.open_command(ins, header, body, full=full)
        except ev2.SecureMessagingError:
            self._session = self._auth_key = None
            return None

    def _reply(self, data: bytes = b"", *, full: bool = True) -> bytes:
        assert self._session is not None
        return self._session.seal_response(0x00, data, full=full) + OK_NATIVE

    def _change_key(self, data: bytes) -> bytes:
        if self._session is None or self._auth_key != 0:
            return PERMISSION_DENIED
        if len(data) < 1 + 32 + 8 or data[0] > 4:
            return LENGTH_ERROR
        key_no = data[0]
        plain = self._secure(0xC4, data[:1], data[1:], full=True)
        if plain is None:
            return INTEGRITY_ERROR
        if key_no == self._auth_key:
            if len(plain) != 17:
                return LENGTH_ERROR
            self.keys[key_no], self.key_versions[key_no] = plain[:16], plain[16]
            self._session = self._auth_key = None  # the session's key is gone
            return OK_NATIVE
        if len(plain) != 21:
            return LENGTH_ERROR
        new = bytes(a ^ b for a, b in zip(plain[:16], self.keys[key_no], strict=True))
        if ev2.crc32nk(new) != plain[17:21]:
            return INTEGRITY_ERROR
        self.keys[key_no], self.key_versions[key_no] = new, plain[16]
        return self._reply()

    def _change_file_settings(self, data: bytes) -> bytes:
        if not data or data[0] not in self.files:
            return PARAMETER_ERROR
        number = data[0]
        if self._session is None or self._auth_key != self.settings[number].change:
            return PERMISSION_DENIED
        plain = self._secure(0x5F, data[:1], data[1:], full=True)
        if plain is None:
            return INTEGRITY_ERROR
        try:
            self.settings[number] = parse_settings(plain, len(self.files[number]))
        except ValueError:
            return PARAMETER_ERROR
        return self._reply()

    def _get_file_settings(self, data: bytes) -> bytes:
        if not data or data[0] not in self.files:
            return PARAMETER_ERROR
        number = data[0]
        encoded = self.settings[number].encode(len(self.files[number]))
        if self._session is None:
            return encoded + OK_NATIVE
        if self._secure(0xF5, data[:1], data[1:], full=False) is None:
            return INTEGRITY_ERROR
        return self._reply(encoded, full=False)

    def _write_data(self, data: bytes) -> bytes:
        if len(data) < 7 or data[0] not in self.files:
            return PARAMETER_ERROR
        number, header = data[0], data[:7]
        offset = int.from_bytes(data[1:4], "little")
        length = int.from_bytes(data[4:7], "little")
        rights = self.settings[number]
        if self._session is not None:
            if self._auth_key not in (rights.write, rights.read_write) and rights.write != FREE:
                return PERMISSION_DENIED
            plain = self._secure(0x8D, header, data[7:], full=True)
            if plain is None:
                return INTEGRITY_ERROR
        elif rights.write == FREE:
            plain = data[7:]
        else:
            return PERMISSION_DENIED
        if len(plain) != length:
            return LENGTH_ERROR
        if offset + length > len(self.files[number]):
            return BOUNDARY_ERROR
        self.files[number][offset : offset + length] = plain
        return self._reply() if self._session is not None else OK_NATIVE


def _split(body: bytes) -> tuple[bytes, int]:
    """(data, Le) of a short APDU body (after CLA INS P1 P2)."""
    if not body:
        return b"", 0
    if len(body) == 1:
        return b"", body[0]
    lc = body[0]
    data = body[1 : 1 + lc]
    le = body[1 + lc] if len(body) > 1 + lc else 0
    return data, le
