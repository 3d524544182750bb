"""NTAG 424 DNA secure messaging against NXP AN12196's worked examples (both sides)."""

from __future__ import annotations

import pytest

from drivers import ntag424_ev2 as ev2
from drivers.ntag424_ev2 import SecureMessagingError, Session

h = bytes.fromhex
ZERO = bytes(16)


def test_authenticate_ev2_first_with_key_0_as_in_the_note() -> None:
    rnd_a = h("13C5DB8A5930439FC3DEF9A4C675360F")
    answer, rnd_b = ev2.reader_answer(ZERO, h("A04C124213C186F22399D33AC2A30215"), rnd_a)
    assert answer == h("35C3E05A752E0144BAC0DE51C1F22C56B34408A23D8AEA266CAB947EA8E0118D")
    session = ev2.reader_session(
        ZERO, rnd_a, rnd_b, h("3FA64DB5446D1F34CD6EA311167F5E4985B89690C04A05F17FA7AB2F08120663")
    )
    assert session.ti == h("9D00C4DF")
    assert session.enc_key == h("1309C877509E5A215007FF0ED19CA564")
    assert session.mac_key == h("4C6626F5E72EA694202139295C7A7FC7")
    # The tag's side of the same exchange gives the same reply and keys.
    assert ev2.tag_challenge(ZERO, rnd_b) == h("A04C124213C186F22399D33AC2A30215")
    reply, tag_side = ev2.tag_session(ZERO, rnd_b, answer, h("9D00C4DF"))
    assert reply == h("3FA64DB5446D1F34CD6EA311167F5E4985B89690C04A05F17FA7AB2F08120663")
    assert (tag_side.enc_key, tag_side.mac_key) == (session.enc_key, session.mac_key)


def test_a_wrong_key_fails_authentication() -> None:
    rnd_a = h("13C5DB8A5930439FC3DEF9A4C675360F")
    answer, rnd_b = ev2.reader_answer(b"\x01" * 16, h("A04C124213C186F22399D33AC2A30215"), rnd_a)
    with pytest.raises(SecureMessagingError):
        ev2.tag_session(ZERO, rnd_b, answer, h("9D00C4DF"))


def _table_session(counter: int) -> Session:
    return Session(
        h("9D00C4DF"),
        h("1309C877509E5A215007FF0ED19CA564"),
        h("4C6626F5E72EA694202139295C7A7FC7"),
        counter,
    )


def test_change_file_settings_in_comm_mode_full() -> None:
    reader = _table_session(1)
    apdu = reader.wrap(0x5F, b"\x02", h("4000E0C1F121200000430000430000"))
    assert apdu == h("905F0000190261B6D97903566E84C3AE5274467E89EAD799B7C1A0EF7A0400")
    tag = _table_session(1)
    assert tag.open_command(0x5F, b"\x02", apdu[6:-1]) == h("4000E0C1F121200000430000430000")
    assert tag.seal_response(0x00) == h("57BFF87B1241E93D")
    assert reader.check_response(0x00, h("57BFF87B1241E93D")) == b""
    assert reader.counter == tag.counter == 2


def test_a_forged_response_is_refused() -> None:
    reader = _table_session(1)
    reader.wrap(0x5F, b"\x02", h("4000E0C1F121200000430000430000"))
    with pytest.raises(SecureMessagingError):
        reader.check_response(0x00, h("57BFF87B1241E93E"))


def test_change_key_as_in_the_note() -> None:
    session = Session(
        h("7614281A"),
        h("4CF3CB41A22583A61E89B158D252FC53"),
        h("5529860B2FC5FB6154B7F28361D30BF9"),
        2,
    )
    new2 = h("F3847D627727ED3BC9C4CC050489B966")
    assert ev2.crc32nk(new2) == h("789DFADC")
    data = ev2.change_key_data(2, new2, 1, old_key=ZERO)
    assert session.wrap(0xC4, b"\x02", data) == h(
        "90C4000029022CF362B7BF4311FF3BE1DAA295E8C68DE09050560D19B9E16C2393AE9CD1FAC7"
        "5D0CE20BCD1D06E600"
    )
    assert session.check_response(0x00, h("203BB55D1089D587")) == b""
    new0 = h("5004BF991F408672B1EF00F08F9E8647")
    assert session.wrap(0xC4, b"\x00", ev2.change_key_data(0, new0, 1, old_key=None)) == h(
        "90C400002900C0EB4DEEFEDDF0B513A03A95A75491818580503190D4D05053FF75668A01D6FD"
        "A6610234BDED643200"
    )


def test_padding_round_trip_and_refusal() -> None:
    for n in range(40):
        assert ev2.unpad(ev2.pad(bytes(range(n)))) == bytes(range(n))
    with pytest.raises(SecureMessagingError):
        ev2.unpad(bytes(16))


def test_session_keys_never_show_in_a_repr() -> None:
    assert "1309c877" not in repr(_table_session(0)).lower()
