"""What the service does by itself: a stolen tag's photos when it is reported.

Later attempts with the tag are photographed by the panel itself, in the same step as it
rejects them (docs/events.md); the link files those photos under the attempt."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from cloud.config import Installation
from cloud.store import Membership
from cloud.words import answer

if TYPE_CHECKING:
    from cloud.web import Context


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
