"""Notification e-mails through SMTP, for the accounts that asked for them."""

from __future__ import annotations

import asyncio
import logging
import smtplib
from email.message import EmailMessage
from typing import Any

from cloud.config import CloudConfig
from cloud.i18n import gettext_for, when
from cloud.store import Store
from cloud.words import ALARM_TYPES, ARM_TYPES, what, who

_LOGGER = logging.getLogger(__name__)


class Mailer:
    """Turns events into e-mails; sending runs in a thread so the loop never waits on SMTP."""

    def __init__(self, config: CloudConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self.sent = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def on_event(self, site: str, event: dict[str, Any]) -> None:
        """Event hook of the cloud link."""
        mail = self.config.mail
        inst = self.config.by_site(site)
        if mail is None or inst is None:
            return
        kind = str(event.get("type"))
        setting = (
            "on_alarm"
            if kind in ALARM_TYPES
            else "on_photo"
            if kind == "photo_ready"
            else "on_arm"
            if kind in ARM_TYPES and kind != "arming"
            else None
        )
        if setting is None:
            return
        for account, settings in self.store.accounts_of(inst.number):
            if not settings.get(setting):
                continue
            _ = gettext_for(account.lang)
            msg = EmailMessage()
            msg["From"] = mail.sender
            msg["To"] = account.email
            text = what(event, _)
            msg["Subject"] = f"{_('Your alarm')} {inst.number}: {text}"
            body = [
                f"{_('When')}: {when(event.get('time'), account.lang, inst.time_zone)}",
                f"{_('What')}: {text}",
                f"{_('Who')}: {who(event, _)}",
            ]
            jpeg = None
            if kind == "photo_ready" and event.get("photo"):
                jpeg = self.store.photo_jpeg(site, str(event["photo"]))
            msg.set_content("\n".join(body) + "\n")
            if jpeg:
                msg.add_attachment(
                    jpeg, maintype="image", subtype="jpeg", filename=f"{event['photo']}.jpg"
                )
            task = asyncio.get_running_loop().create_task(self._send(msg))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, msg: EmailMessage) -> None:
        mail = self.config.mail
        assert mail is not None
        try:
            await asyncio.to_thread(self._deliver, mail.host, mail.port, msg)
            self.sent += 1
        except (OSError, smtplib.SMTPException) as exc:
            _LOGGER.warning("notification e-mail not sent: %s", exc)

    @staticmethod
    def _deliver(host: str, port: int, msg: EmailMessage) -> None:
        with smtplib.SMTP(host, port, timeout=10) as smtp:
            smtp.send_message(msg)

    async def drain(self) -> None:
        """Wait for the e-mails being sent."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
