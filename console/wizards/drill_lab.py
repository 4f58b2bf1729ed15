"""Drills in the lab: the lab's actions, and a standby that takes over (for tests).

``lab_fault_actions(lab_or_faults)`` gives the lab's actions (``console.lab.actions``:
``lab.fault``, ``lab.fault_clear``, ``lab.deadman_arm``, ``lab.deadman_cancel``) for
a lab in this process, so a drill in the demo is planned, confirmed and audited
like a real one.

``takeover_plugin(...)`` is a small lab emulation giving any service a standby:
when the primary is down the address clients use (the VIP) goes down too, and
comes back ``delay_s`` later served by the standby. (The services plugin's own
lab does the same for checks that declare ``backends``, with replicated data.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from console.lab.actions import LAB_TARGET, LocalLab, lab_actions
from console.lab.faults import FaultBook
from console.plugin import ActionSpec, CommandReply, LabHostContext, Plugin

__all__ = ["LAB_TARGET", "TakeoverLab", "lab_fault_actions", "takeover_plugin"]


def lab_fault_actions(lab_or_faults: Any) -> tuple[ActionSpec, ...]:
    """The lab actions for a ``Lab`` (faults and switches) or a bare ``FaultBook``."""
    if isinstance(lab_or_faults, FaultBook):
        return lab_actions(LocalLab(lab_or_faults))
    return lab_actions(LocalLab(lab_or_faults.faults, getattr(lab_or_faults, "deadman", None)))


class TakeoverLab:
    """A standby takes over the VIP ``delay_s`` (lab clock) after the primary goes down."""

    def __init__(self, primary: str, vip: str, delay_s: float, fault: str = "services.down"):
        self.primary, self.vip, self.delay_s, self.fault = primary, vip, delay_s, fault
        self._lab: Any = None
        self._lost_at: float | None = None
        self._outage: str | None = None
        self.takeovers = 0

    async def start(self, lab: Any) -> None:
        self._lab = lab

    async def stop(self) -> None:
        return None

    async def command(self, host: LabHostContext, command: str) -> CommandReply | None:
        return None

    def tick(self, now: float) -> None:
        faults: FaultBook | None = getattr(self._lab, "faults", None)
        if faults is None:
            return
        primary_down = faults.get(self.fault, self.primary) is not None
        if not primary_down:
            if self._lost_at is not None:
                self._lost_at = None
                if self._outage is not None:
                    faults.clear(self._outage)
                    self._outage = None
            return
        if self._lost_at is None:
            self._lost_at = now
            self._outage = faults.inject(self.fault, self.vip, {"cause": "primary lost"})
        elif self._outage is not None and now - self._lost_at >= self.delay_s:
            faults.clear(self._outage)  # the standby now holds the VIP
            self._outage = None
            self.takeovers += 1

    def rewrite_config(self, section: dict[str, Any]) -> dict[str, Any]:
        return section

    def fault_names(self) -> Sequence[str]:
        return ()


def takeover_plugin(primary: str, vip: str, delay_s: float) -> Plugin:
    """A lab-only plugin (no collectors) that adds the standby behaviour to the lab."""
    emulation = TakeoverLab(primary, vip, delay_s)
    return Plugin(name="drilllab", description="standby takeover for drills", lab=lambda: emulation)
