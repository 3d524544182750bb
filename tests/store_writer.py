"""Helper for the kill test: drives the real core and commits through PanelStore until killed.

Usage: ``python -m tests.store_writer DB SEED``. After every commit returns it prints
``c <last seq>``; the test kills it with SIGKILL at random moments and checks the store.
"""

from __future__ import annotations

import random
import sys
import time

from panel.actions import Action, CancelTimer, Emit, StartTimer
from panel.core import Panel
from panel.inputs import Input, KeyPressed, RemoteCommand, TimerFired, ZoneChanged
from panel.store import PanelStore
from protocol.messages import Action as CommandAction
from protocol.messages import Command, Via
from tests.test_core_support import site_config


def main(db: str, seed: int) -> None:
    rng = random.Random(seed)
    config = site_config(timing={"exit_delay": 0.05, "entry_delay": 0.05, "alarm_duration": 1})
    store = PanelStore(db)
    panel = Panel(config, store.load())
    timers: dict[str, int] = {}

    def now() -> int:
        return time.time_ns() // 1_000_000

    def commit(actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, StartTimer):
                timers[action.name] = action.at_ms
            elif isinstance(action, CancelTimer):
                timers.pop(action.name, None)
        events = [a.event for a in actions if isinstance(a, Emit)]
        store.commit(panel.snapshot(), events)
        print(f"c {store.next_seq - 1}", flush=True)

    commit(panel.start(now()))
    inputs: list[Input] = [
        KeyPressed("1"),
        KeyPressed("P"),
        ZoneChanged("window", True),
        ZoneChanged("window", False),
        ZoneChanged("smoke", True),
        ZoneChanged("smoke", False),
    ]
    n = 0
    while True:
        n += 1
        due = sorted((at, name) for name, at in timers.items() if at <= now())
        if due:
            del timers[due[0][1]]
            commit(panel.handle(TimerFired(due[0][1]), now()))
            continue
        roll = rng.random()
        if roll < 0.3:
            for key in rng.choice(["1234A", "1234D", "0000A", "2345D"]):
                commit(panel.handle(KeyPressed(key), now()))
        elif roll < 0.5:
            action = rng.choice([CommandAction.ARM, CommandAction.DISARM, CommandAction.STATUS])
            cmd = Command(f"c{n}", action, "alice", Via.APP, mode=rng.choice(list(config.timing)))
            commit(panel.handle(RemoteCommand(cmd), now()))
        elif roll < 0.55:
            store.ack(rng.randint(0, store.next_seq))
        else:
            commit(panel.handle(rng.choice(inputs), now()))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
