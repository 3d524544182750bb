"""SUN verification (NXP AN12196) against the application note's published example values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers import ntag424
from drivers.ntag424 import SunKeys, SunRejected

ZERO = bytes(16)
# AN12196, SUN example with all-zero keys: ENCPICCData, SDMMAC and what they hold.
AN_PICC = bytes.fromhex("EF963FF7828658A599F3041510671E88")
AN_MAC = bytes.fromhex("94EED9EE65337086")
AN_UID = bytes.fromhex("04DE5F1EACC040")
AN_COUNTER = 61  # 3D0000, least significant byte first
AN_SESSION_KEY = bytes.fromhex("3FB5F6E3A807A03D5E3570ACE393776F")
AN_FULL_MAC = bytes.fromhex("E194C7EE12D9F7EE8A65C8331B704386")
AN_URI = (
    "https://choose.url.com/ntag424?picc_data=EF963FF7828658A599F3041510671E88"
    "&cmac=94EED9EE65337086"
)


def test_picc_data_decrypts_to_the_published_uid_and_counter() -> None:
    assert ntag424.decrypt_picc_data(ZERO, AN_PICC) == (AN_UID, AN_COUNTER)


def test_session_mac_key_and_mac_over_empty_input_match_the_note() -> None:
    assert ntag424.session_mac_key(ZERO, AN_UID, AN_COUNTER) == AN_SESSION_KEY
    assert ntag424.cmac(AN_SESSION_KEY, b"") == AN_FULL_MAC
    assert ntag424.truncate_mac(AN_FULL_MAC) == AN_MAC
    assert ntag424.sdm_mac(ZERO, AN_UID, AN_COUNTER) == AN_MAC


def test_the_published_message_verifies() -> None:
    read = ntag424.verify_uri(SunKeys(ZERO, ZERO), AN_URI, uid=AN_UID)
    assert read == ntag424.SunRead("04DE5F1EACC040", 61)


def test_encrypting_picc_data_gives_back_the_published_block() -> None:
    pad = bytes.fromhex("DA5CF60941")  # the tag's random padding in the note's example
    assert ntag424.encrypt_picc_data(ZERO, AN_UID, AN_COUNTER, pad) == AN_PICC


@pytest.mark.parametrize(
    ("keys", "picc", "mac", "uid", "reason"),
    [
        (SunKeys(ZERO, ZERO), AN_PICC, bytes.fromhex("94EED9EE65337087"), AN_UID, "bad MAC"),
        (SunKeys(ZERO, b"\x01" * 16), AN_PICC, AN_MAC, AN_UID, "bad MAC"),
        (SunKeys(b"\x01" * 16, ZERO), AN_PICC, AN_MAC, AN_UID, "bad PICCData"),
        (SunKeys(ZERO, ZERO), AN_PICC, AN_MAC, bytes.fromhex("04DE5F1EACC041"), "UID mismatch"),
    ],
)
def test_forgeries_are_refused_with_their_reason(
    keys: SunKeys, picc: bytes, mac: bytes, uid: bytes, reason: str
) -> None:
    with pytest.raises(SunRejected) as caught:
        ntag424.verify(keys, picc, mac, uid=uid)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    "uri",
    [
        "https://choose.url.com/ntag424",
        "https://choose.url.com/ntag424?picc_data=EF963FF7828658A599F3041510671E88",
        "https://x/?picc_data=EF96&cmac=94EED9EE65337086",
        "https://x/?picc_data=ZZ963FF7828658A599F3041510671E88&cmac=94EED9EE65337086",
        "https://x/?picc_data=EF963FF7828658A599F3041510671E88&cmac=94EED9EE65337086"
        "&cmac=94EED9EE65337086",
    ],
)
def test_uris_without_a_sun_message(uri: str) -> None:
    with pytest.raises(SunRejected) as caught:
        ntag424.parse_sun_uri(uri)
    assert caught.value.reason == "no SUN message"


def test_an_ndef_message_must_hold_one_uri_record() -> None:
    import ndef

    text = b"".join(ndef.message_encoder([ndef.TextRecord("hello")]))
    for message in (b"", b"\xff\x00", text):
        with pytest.raises(SunRejected):
            ntag424.sun_uri_of(message)
    uri = b"".join(ndef.message_encoder([ndef.UriRecord(AN_URI)]))
    assert ntag424.sun_uri_of(uri) == AN_URI


def test_template_offsets_match_the_notes_layout() -> None:
    # AN12196's template https://choose.url.com/ntag424?e=…&c=… puts PICCData at 0x20 and
    # the MAC at 0x43; ours names the parameters picc_data and cmac (CONTRACT §10).
    template = ntag424.sun_template("https://choose.url.com/ntag424")
    shift = len("picc_data") - len("e")
    assert template.picc_offset == 0x20 + shift
    assert template.mac_offset == 0x43 + shift + len("cmac") - len("c")
    assert template.file[template.picc_offset : template.picc_offset + 32] == b"0" * 32
    assert template.file[template.mac_offset : template.mac_offset + 16] == b"0" * 16
    assert int.from_bytes(template.file[:2], "big") == len(template.file) - 2
    assert ntag424.sdm_file_settings(0x20, 0x43) == bytes.fromhex("4000E0C1F121200000430000430000")


def test_keys_never_show_in_a_repr() -> None:
    keys = SunKeys(bytes(range(16)), bytes(range(16, 32)))
    assert bytes(range(16)).hex() not in repr(keys).lower()
    assert "000102" not in repr(keys)


# -- garbage in: only SunRejected out -----------------------------------------------------------
def _outcome(parse: Callable[[Any], object], value: object) -> tuple[object, str | None]:
    try:
        return parse(value), None
    except SunRejected as rejected:
        return None, rejected.reason


@given(st.text(max_size=300))
def test_any_uri_is_refused_or_parsed_never_crashes(uri: str) -> None:
    parsed, reason = _outcome(ntag424.parse_sun_uri, uri)
    if reason is not None:
        assert reason == "no SUN message"
    else:
        assert isinstance(parsed, tuple)
        assert [len(part) for part in parsed] == [16, 8]


@given(st.binary(max_size=300))
def test_any_ndef_bytes_are_refused_or_give_a_uri(message: bytes) -> None:
    uri, reason = _outcome(ntag424.sun_uri_of, message)
    assert reason == "no SUN message" if reason is not None else isinstance(uri, str)


@given(st.binary(min_size=16, max_size=16), st.binary(min_size=8, max_size=8))
def test_random_messages_never_verify(picc: bytes, mac: bytes) -> None:
    with pytest.raises(SunRejected) as caught:
        ntag424.verify(SunKeys(ZERO, ZERO), picc, mac)
    assert caught.value.reason in ("bad PICCData", "bad MAC")
