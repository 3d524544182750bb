"""The scenario target for a simulated site, in virtual time (the default) or real time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from common.clock import Clock, RealClock, VirtualClock
from sim.cloud import CloudStandIn
from sim.runner import Observed
from sim.site import SimSite, SiteFacts


class SimTarget:
    """Drives a SimSite through its device twins; time is the site's clock."""

    def __init__(self, site: SimSite) -> None:
        self.site = site
        self.clock: Clock = site.clock
        self.virtual = isinstance(site.clock, VirtualClock)

    @property
    def facts(self) -> SiteFacts:
        return self.site.facts

    @property
    def cloud(self) -> CloudStandIn:
        assert self.site.cloud is not None, "site not started"
        return self.site.cloud

    async def press(self, keys: str) -> None:
        await self.site.press(keys)

    async def tap(self, uid: str) -> None:
        await self.site.present_tag(uid)
        await self.site.settle()
        await self.site.remove_tag()

    async def set_zone(self, zone: str, is_open: bool) -> None:
        await self.site.set_zone(zone, is_open)

    async def tamper(self, target: str) -> None:
        await self.site.tamper(target)

    async def set_broker(self, up: bool) -> None:
        await self.site.set_broker(up)

    async def restart(self, which: str) -> None:
        await self.site.restart(which)

    async def power(self, which: str, on: bool) -> None:
        await self.site.power(which, on)

    def observe(self) -> Observed:
        if self.site.panel is None:
            return Observed(state=None, siren=None, locked=None)
        view = self.site.panel.view()
        return Observed(
            state=str(view.state),
            siren=view.siren,
            locked=view.locked,
            locked_until_ms=view.locked_until_ms,
            open_zones=tuple(view.open_zones),
        )

    def now_ms(self) -> int:
        return self.clock.now_ms()

    async def settle(self) -> None:
        await self.site.settle()

    async def _settle_after_timer(self) -> None:
        await self.site.settle()

    async def run_for(self, seconds: float, until: Callable[[], bool] | None) -> None:
        """Let time pass; stop early once ``until()`` holds (checked after every timer)."""
        clock = self.clock
        if isinstance(clock, VirtualClock):
            deadline = clock.mono_ms() + round(seconds * 1000)
            while until is None or not until():
                nxt = clock.next_deadline()
                if nxt is None or nxt > deadline:
                    await clock.advance_to(deadline, self._settle_after_timer)
                    return
                await clock.advance_to(nxt, self._settle_after_timer)
            return
        assert isinstance(clock, RealClock)
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while until is None or not until():
            left = end - loop.time()
            if left <= 0:
                return
            await asyncio.sleep(min(0.05, left))
