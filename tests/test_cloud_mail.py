"""Notification e-mails through a real SMTP server (aiosmtpd) running in the test process."""

from __future__ import annotations

import email
import socket
from email import policy
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from tests.cloud_app import client_for, csrf_of, event, service_for, sign_up


class Inbox:
    """Keeps every message the SMTP server accepts."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_mail_follows_each_accounts_settings(tmp_path: Path) -> None:
    inbox = Inbox()
    port = free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    service = service_for(
        tmp_path, {"mail": {"smtp": f"smtp://127.0.0.1:{port}", "sender": "alarm@example.org"}}
    )
    try:
        async with client_for(service) as c:
            await sign_up(c, "alice@example.org")
            page = await c.get("/settings")
            await c.post(
                "/settings", data={"csrf": csrf_of(page.text), "on_alarm": "1", "on_photo": "1"}
            )
        async with client_for(service, headers={"accept-language": "es"}) as c:
            await sign_up(c, "bob@example.org", keyword="amapola")  # default: alarms only
        service.link.take(
            *event(1, type="photo_requested", photo="p1-1", zone="hall", method="web")
        )
        service.link.take("centinela/demo/p1/photo/p1-1", b"\xff\xd8\xff\xe0jpeg")
        service.link.take(*event(2, type="photo_ready", photo="p1-1", zone="hall", method="web"))
        service.link.take(*event(3, type="armed", method="keypad"))  # nobody asked for these
        service.link.take(*event(4, type="panic", zone="keypad", user=None, method="system"))
        service.link.take(*event(4, type="panic", zone="keypad", user=None, method="system"))
        await service.mailer.drain()
    finally:
        smtp.stop()
        service.store.close()
    got = sorted((m["To"], m["Subject"]) for m in inbox.messages)
    assert got == [
        ("alice@example.org", "Your alarm 1234567: Panic (SOS): Keypad"),
        ("alice@example.org", "Your alarm 1234567: Photo ready: Hall"),
        ("bob@example.org", "Tu alarma 1234567: Pánico (SOS): Keypad"),
    ]
    photo_mail = next(m for m in inbox.messages if "Photo ready" in m["Subject"])
    parts = [p for p in photo_mail.walk() if p.get_content_type() == "image/jpeg"]
    assert parts and parts[0].get_payload(decode=True) == b"\xff\xd8\xff\xe0jpeg"
    assert all(m["From"] == "alarm@example.org" for m in inbox.messages)
