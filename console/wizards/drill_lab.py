"""Drills in the lab: fault injection as audited actions, and a standby that takes over.

``lab_fault_actions(faults)`` gives two ``ActionSpec`` (``lab.fault`` and
``lab.fault_clear``) that inject / clear a lab fault through the ActionRunner,
so a drill in the demo is planned, confirmed and audited like a real one. The
injected fault carries a lifetime (``revert_after_s``): if the console dies
mid-drill the lab reverts by itself (the dead man's switch, at the fault).

``takeover_plugin(...)`` is a small lab emulation giving a service a standby:
when the primary is down the address clients use (the VIP) goes down too, and
comes back ``delay_s`` later served by the standby. So the RTO a drill
measures in the lab is a real measurement of that delay through the checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field

from console.inventory.model import Inventory
from console.lab.faults import FaultBook, FaultError
from console.plugin import (
    ActionContext,
    ActionInputs,
    ActionSpec,
    CommandReply,
    LabHostContext,
    Outcome,
    Plugin,
    Preview,
    Target,
)

LAB_TARGET = "lab-target"


class FaultInputs(ActionInputs):
    fault: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    revert_after_s: float | None = Field(default=None, gt=0)


class ClearInputs(ActionInputs):
    fault: str = Field(min_length=1)


def _no_targets(inventory: Inventory, config: Any) -> Sequence[Target]:
    return ()


def lab_fault_actions(faults: FaultBook) -> tuple[ActionSpec, ActionSpec]:
    """``lab.fault`` (destructive: typed confirmation) and ``lab.fault_clear``."""

    async def preview(ctx: ActionContext, target: Target, inputs: Any) -> Preview:
        assert isinstance(inputs, FaultInputs)
        if inputs.fault not in faults.names():
            return Preview((), refuse=f"the lab knows no fault {inputs.fault!r}")
        life = (
            f", reverts by itself after {inputs.revert_after_s:g} s"
            if inputs.revert_after_s
            else ""
        )
        return Preview((f"lab: inject {inputs.fault} on {target.name}{life}",))

    async def execute(ctx: ActionContext, target: Target, inputs: Any) -> Outcome:
        assert isinstance(inputs, FaultInputs)
        try:
            fid = faults.inject(inputs.fault, target.name, inputs.params, inputs.revert_after_s)
        except FaultError as exc:
            return Outcome(False, str(exc))
        return Outcome(True, f"fault {fid} {inputs.fault} on {target.name}")

    async def verify(ctx: ActionContext, target: Target, inputs: Any, outcome: Outcome) -> Outcome:
        assert isinstance(inputs, FaultInputs)
        if not outcome.ok:
            return outcome
        active = faults.get(inputs.fault, target.name) is not None
        return Outcome(active, outcome.detail + ("" if active else ": not active"))

    async def preview_clear(ctx: ActionContext, target: Target, inputs: Any) -> Preview:
        assert isinstance(inputs, ClearInputs)
        return Preview((f"lab: clear {inputs.fault} on {target.name}",))

    async def execute_clear(ctx: ActionContext, target: Target, inputs: Any) -> Outcome:
        assert isinstance(inputs, ClearInputs)
        ids = [f.id for f in faults.active() if f.name == inputs.fault and f.target == target.name]
        for fid in ids:
            faults.clear(fid)
        return Outcome(True, f"cleared {len(ids)} {inputs.fault} fault(s) on {target.name}")

    async def verify_clear(
        ctx: ActionContext, target: Target, inputs: Any, outcome: Outcome
    ) -> Outcome:
        assert isinstance(inputs, ClearInputs)
        gone = faults.get(inputs.fault, target.name) is None
        return Outcome(gone, outcome.detail + ("" if gone else ": still active"))

    inject = ActionSpec(
        id="lab.fault",
        label="Inject a lab fault",
        target_kind=LAB_TARGET,
        targets=_no_targets,
        preview=preview,
        execute=execute,
        verify=verify,
        destructive=True,
        inputs=FaultInputs,
        timeout=10.0,
    )
    clear = ActionSpec(
        id="lab.fault_clear",
        label="Clear a lab fault",
        target_kind=LAB_TARGET,
        targets=_no_targets,
        preview=preview_clear,
        execute=execute_clear,
        verify=verify_clear,
        inputs=ClearInputs,
        timeout=10.0,
    )
    return inject, clear


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
