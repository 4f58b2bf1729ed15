"""The lab's dead man's switches: restores scheduled at the target, before a fault.

A drill arms one before it injects (``lab.deadman_arm``, or ``POST /deadman`` on
the control API): "in ``after_s`` lab seconds, clear these faults on these
targets". A drill that restores normally cancels it; a console that died
mid-drill does not, and the lab restores by itself -- the same timer a real
target runs with ``systemd-run --on-active=...`` (see ``console.wizards.drill_deadman``).

Clearing ``host.power_off`` is how the lab powers a node back on, so one switch
covers a service stopped, a port disabled and a rack powered off alike.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from console.lab.faults import FaultBook
from console.lab.sim import LabClock

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Switch:
    """One armed switch."""

    key: str
    clears: tuple[tuple[str, str], ...]
    """(fault name, target) pairs cleared when it fires."""
    armed_at: float
    due: float
    """Lab time it fires at."""
    by: str = ""
    fired_at: float | None = None
    cleared: list[str] = field(default_factory=list)
    """Fault ids it cleared when it fired."""
    handle: asyncio.TimerHandle | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "clears": [list(c) for c in self.clears],
            "armed_at": self.armed_at,
            "due": self.due,
            "by": self.by,
            "fired_at": self.fired_at,
            "cleared": list(self.cleared),
        }


class DeadmanBook:
    """Armed and fired switches; the timers run on the lab clock."""

    def __init__(self, faults: FaultBook, clock: LabClock) -> None:
        self._faults = faults
        self._clock = clock
        self._armed: dict[str, Switch] = {}
        self.fired: list[Switch] = []
        """Switches that went off (nobody cancelled them): the lab restored by itself."""

    def arm(
        self, key: str, clears: Sequence[tuple[str, str]], after_s: float, by: str = ""
    ) -> Switch:
        """Arm (or re-arm: the same key replaces the old timer) a switch.

        Raises:
            ValueError: ``after_s`` not positive, or nothing to clear.
        """
        if after_s <= 0:
            raise ValueError("a dead man's switch needs a positive delay")
        if not clears:
            raise ValueError("a dead man's switch must clear at least one fault")
        self.cancel(key)
        now = self._clock.now()
        switch = Switch(key, tuple(clears), now, now + after_s, by)
        loop = asyncio.get_running_loop()
        switch.handle = loop.call_later(after_s / self._clock.speed, self._fire, key)
        self._armed[key] = switch
        log.info("lab: dead man's switch %s armed for %.1f s", key, after_s)
        return switch

    def cancel(self, key: str) -> bool:
        """Disarm; False when no switch with that key is armed."""
        switch = self._armed.pop(key, None)
        if switch is None:
            return False
        if switch.handle is not None:
            switch.handle.cancel()
        return True

    def armed(self) -> list[Switch]:
        return list(self._armed.values())

    def get(self, key: str) -> Switch | None:
        return self._armed.get(key)

    def cancel_all(self) -> None:
        for key in list(self._armed):
            self.cancel(key)

    def _fire(self, key: str) -> None:
        switch = self._armed.pop(key, None)
        if switch is None:
            return
        switch.fired_at = self._clock.now()
        for name, target in switch.clears:
            for fault in self._faults.active():
                if fault.name == name and fault.target == target:
                    self._faults.clear(fault.id)
                    switch.cleared.append(fault.id)
        self.fired.append(switch)
        log.warning(
            "lab: dead man's switch %s fired (nobody restored): cleared %s",
            key,
            ", ".join(switch.cleared) or "nothing (already restored)",
        )
