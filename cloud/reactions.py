"""What the service does by itself: a stolen tag's photos, from the report and at every attempt."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cloud.config import Installation
from cloud.store import Membership
from cloud.words import answer

if TYPE_CHECKING:
    from cloud.web import Context

_LOGGER = logging.getLogger(__name__)


async def photos_from_every_camera(
    context: Context, inst: Installation, user: str, reason: str
) -> int:
    """Ask every camera for a photo, marked with ``reason``; how many were accepted."""
    accepted = 0
    for camera in inst.cameras:
        context.link.expect_photo(inst.site, camera, reason)
        result = await context.link.command(inst.site, "photo", user, "web", camera=camera)
        if result.get("ok"):
            accepted += 1
        else:
            context.link.forget_photo(inst.site, camera, reason)
    return accepted


async def report_stolen(
    context: Context,
    inst: Installation,
    member: Membership,
    account_id: int,
    uid: str,
    _: Callable[[str], str],
) -> tuple[str, bool]:
    """Revoke the tag on the panel, then a photo from every camera."""
    result = await context.link.command(inst.site, "revoke_tag", member.panel_user, "web", tag=uid)
    if not result.get("ok"):
        return answer(result, "revoke_tag", _), False
    context.store.mark_stolen(inst.number, uid, account_id)
    await photos_from_every_camera(context, inst, member.panel_user, f"stolen:{uid}")
    return answer(result, "revoke_tag", _), True


def stolen_tag_hook(context: Context) -> Callable[[str, dict[str, Any]], None]:
    """An event hook: a stolen tag presented at the panel gets a photo from every camera."""

    def hook(site: str, event: dict[str, Any]) -> None:
        inst = context.config.by_site(site)
        if inst is None or event.get("type") != "tag_rejected" or not event.get("tag"):
            return
        stolen = context.store.stolen_tags(inst.number)
        uid = str(event["tag"]).upper()
        if uid not in stolen:
            return
        reporters = [
            m.panel_user
            for acc, _settings in context.store.accounts_of(inst.number)
            for m in context.store.memberships(acc.id)
            if m.number == inst.number
        ]
        masters = [u for u in reporters if (h := inst.holder(u)) and h.role == "master"]
        if not (masters or reporters):
            return
        user = (masters or reporters)[0]
        reason = f"{event.get('panel')}:{event.get('seq')}"
        _LOGGER.info("stolen tag %s presented: photos from every camera", uid)
        context.spawn(photos_from_every_camera(context, inst, user, reason))

    return hook
