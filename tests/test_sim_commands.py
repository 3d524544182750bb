"""What a person types in the simulator's view becomes the same steps scenarios use."""

from __future__ import annotations

import pytest
from prompt_toolkit.formatted_text import fragment_list_to_text

from sim.commands import CommandError, Quit, ShowHelp, masks_code, parse_command
from sim.scenario import Broker, Cloud, Power, Press, Restart, SetZone, Tamper, Tap
from sim.site import DEMO_SITE, SiteFacts, read_site_file
from sim.tui import event_fragments, hhmmss, result_message

FACTS = SiteFacts.from_mapping(read_site_file(DEMO_SITE))


def test_the_demo_site_has_what_the_issue_asks_for() -> None:
    assert FACTS.site == "demo"
    assert sorted(FACTS.roles.values()) == ["arm_only", "master", "user"]
    assert all(FACTS.users.values())
    assert sorted(FACTS.zones.values()) == sorted(
        ["entry", "perimeter", "interior", "panic", "tamper", "fire"]
    )
    assert len(FACTS.cameras) == 2
    data = read_site_file(DEMO_SITE)
    assert any("duress_code" in u for u in data["users"])
    assert data["devices"]["climate"] == "sim:"


@pytest.mark.parametrize(
    ("line", "step"),
    [
        ("1234A", Press("1234A")),
        ("p", Press("P")),
        ("k 1234 d", Press("1234D")),
        ("press *#", Press("*#")),
        ("tap bob", Tap("bob")),
        ("tap 04aabbccdd", Tap("04aabbccdd")),
        ("open front_door", SetZone("front_door", True)),
        ("close hall_pir", SetZone("hall_pir", False)),
        ("tamper keypad", Tamper("keypad")),
        ("tamper siren_box", Tamper("siren_box")),
        ("arm night", Cloud({"action": "arm", "mode": "night", "user": "alice", "via": "app"})),
        (
            "arm total bob web",
            Cloud({"action": "arm", "mode": "total", "user": "bob", "via": "web"}),
        ),
        ("disarm bob", Cloud({"action": "disarm", "user": "bob", "via": "app"})),
        ("status", Cloud({"action": "status", "user": "alice", "via": "app"})),
        ("sos carol", Cloud({"action": "sos", "user": "carol", "via": "app"})),
        ("unlock", Cloud({"action": "unlock", "user": "alice", "via": "app"})),
        (
            "photo garden",
            Cloud({"action": "photo", "camera": "garden", "user": "alice", "via": "app"}),
        ),
        (
            "revoke bob",
            Cloud({"action": "revoke_tag", "tag": "04B0B1B2B3B4B5", "user": "alice", "via": "app"}),
        ),
        ("broker stop", Broker(False)),
        ("restart hub", Restart("hub")),
        ("stop panel", Power("panel", False)),
        ("start hub", Power("hub", True)),
        ("quit", Quit()),
        ("help", ShowHelp()),
    ],
)
def test_commands_parse_to_steps(line: str, step: object) -> None:
    assert parse_command(line, FACTS) == step


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("", "type a command"),
        ("tap mallory", "no user 'mallory'"),
        ("open garage", "no zone 'garage'"),
        ("arm sideways", "arm total|partial|night"),
        ("k 12x", "keys are"),
        ("fly", "unknown command 'fly'"),
    ],
)
def test_bad_commands_say_why(line: str, reason: str) -> None:
    with pytest.raises(CommandError, match=reason):
        parse_command(line, FACTS)


def test_key_presses_are_masked_on_screen() -> None:
    assert masks_code("1234A")
    assert masks_code("k 1234")
    assert not masks_code("tap alice")
    assert not masks_code("arm total")


def test_events_render_when_what_who_how() -> None:
    text = fragment_list_to_text(
        event_fragments(
            [
                {"seq": 3, "time": "2026-01-01T09:00:10.000Z", "type": "armed", "mode": "total"}
                | {"user": "alice", "method": "tag"}
            ]
        )
    )
    assert "09:00:10" in text
    assert "#3" in text
    assert "armed" in text
    assert "alice" in text
    assert "tag" in text
    assert "no events yet" in fragment_list_to_text(event_fragments([]))
    assert hhmmss("2026-01-01T09:00:10.000Z") == "09:00:10"


def test_cloud_results_read_as_one_line() -> None:
    assert result_message("arm", {"id": "c1", "ok": True, "state": "arming"}) == (
        "class:message.ok",
        "✓ arm (c1) ok: arming",
    )
    assert result_message(
        "unlock", {"id": "c2", "ok": False, "error": "forbidden", "detail": "user may not unlock"}
    ) == ("class:message.error", "✗ unlock (c2): forbidden — user may not unlock")


def test_help_lists_every_command_of_the_view() -> None:
    from sim.commands import HELP_LINES
    from sim.tui import help_fragments

    text = fragment_list_to_text(help_fragments())
    assert len(text.splitlines()) == len(HELP_LINES)
    for example in ("k 1234 A", "stop|start|restart panel|hub", "tamper keypad", "[app|web]"):
        assert example in text
    # Every verb that parse_command knows has a line.
    verbs = "tap open close tamper arm disarm status sos unlock photo revoke broker stop start"
    for verb in [*verbs.split(), "restart", "help", "quit"]:
        assert verb in text, verb


async def test_a_command_the_cloud_could_not_send_is_a_failure() -> None:
    from types import SimpleNamespace

    from sim.tui import perform

    class Unreachable:
        def next_id(self) -> str:
            return "c1"

        async def send(self, command: object) -> bool:
            return False

    site = SimpleNamespace(cloud=Unreachable(), facts=FACTS)
    with pytest.raises(RuntimeError, match="cloud broker is unreachable"):
        await perform(site, Cloud({"action": "status", "user": "alice"}))  # type: ignore[arg-type]


def test_long_names_keep_the_event_columns() -> None:
    events = [
        {"seq": 1, "type": "arm_refused", "user": "a_very_long_user", "method": "keypad"},
        {"seq": 2, "type": "keypad_unlocked", "user": "bo", "method": "system"},
    ]
    lines = fragment_list_to_text(event_fragments(events)).splitlines()
    assert lines[0].index("keypad") == lines[1].index("system")
