"""The drill engine's steps that are not the flow itself: RPO markers, actions
(arm, restore, cancel), check evaluation, the timeline and the audit rows.

``DrillRun`` (drill_run.py) inherits them; the flow -- preflight, observe, the
verdict -- is there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from console.action_plan import ActionRefused, ActionResult, Plan
from console.audit import AuditWriteError
from console.plugin import Severity, Target
from console.wizards.drill_env import DrillEnv
from console.wizards.drill_model import ActionRef, CheckRef, Phase, Scenario, Signal
from console.wizards.drill_report import DrillReport, TimelineEntry
from console.wizards.drill_rpo import Markers, ProbeContext

log = logging.getLogger(__name__)

AUTO = "drill"
"""Who the timeline names for what the engine did by itself."""


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


class DrillSteps:
    """State and steps shared by the drill flow (see ``DrillRun``)."""

    scenario: Scenario
    env: DrillEnv
    report: DrillReport
    operator: str
    step: str
    t0: float
    fault_wall: float | None
    phases: dict[Phase, float | None]
    abort_reason: str | None
    markers: Markers | None
    deadman_armed: bool
    on_change: Callable[[Any], None] | None
    _seen_failing: set[str]

    # ------------------------------------------------------------------ RPO

    def _start_markers(self) -> str | None:
        data = self.scenario.data
        assert data is not None
        spec = self.env.probes.get(data.probe)
        if spec is None:
            return f"preflight: no plugin declares the data probe {data.probe!r}"
        try:
            inputs = spec.inputs.model_validate(data.inputs)
        except ValueError as exc:
            return f"preflight: data probe {data.probe}: invalid inputs: {exc}"
        runner = self.env.runner
        ctx = ProbeContext(
            runner.inventory,
            runner.transports,
            self.env.store,
            runner.plugin_configs.get(data.probe.split(".", 1)[0]),
            self.operator,
        )
        self.markers = Markers(
            spec,
            ctx,
            self.env.target(spec.target_kind, data.target),
            self.env.target(spec.target_kind, data.read_target or data.target),
            inputs,
            f"dcc-drill/{self.report.id}/",
            data.interval_s,
            wall=self.env.wall,
        )
        self._note(
            AUTO,
            "preflight",
            f"RPO markers every {data.interval_s:g} s to {data.target} ({data.probe}), "
            f"under dcc-drill/{self.report.id}/",
        )
        self.markers.start()
        return None

    async def _warm_up(self) -> str | None:
        """Markers for ``warmup_s`` before the fault; at least one must be acknowledged."""
        assert self.markers is not None and self.scenario.data is not None
        deadline = self.env.clock() + self.scenario.data.warmup_s
        while self.env.clock() < deadline:
            await self._sleep(min(self.scenario.poll_interval_s, deadline - self.env.clock()))
        if not self.markers.acked and not await self.markers.write_one():
            return f"preflight: no RPO marker could be written: {self.markers.last_error}"
        self._note(
            AUTO,
            "preflight",
            f"RPO markers written: {len(self.markers.acked)}, refused: {self.markers.failed}",
        )
        return None

    async def _measure_rpo(self) -> None:
        assert self.markers is not None and self.scenario.data is not None
        assert self.fault_wall is not None
        result = await self.markers.measure(self.fault_wall, self.scenario.data.read_timeout_s)
        await self._stop_markers()
        self.report.rpo.measured_s = result.measured_s
        self.report.rpo_detail = (
            f"{result.detail}; {len(self.markers.acked)} marker(s) acknowledged, "
            f"{self.markers.failed} refused"
        )
        self._note(AUTO, "rpo", self.report.rpo_detail)

    async def _stop_markers(self) -> None:
        if self.markers is not None:
            await self.markers.stop()

    # ------------------------------------------------------------------ actions

    async def _arm(self) -> str | None:
        dm = self.scenario.deadman
        assert dm is not None
        inputs = {**dm.arm.inputs, "after_s": self.scenario.deadman_after_s, "key": self.report.id}
        ref = dm.arm.model_copy(update={"inputs": inputs})
        try:
            results = await self._execute("arm", await self._plan(ref), None, AUTO)
        except ActionRefused as exc:
            return f"dead man's switch refused: {exc}"
        bad = [r for r in results if r.outcome != "ok"]
        self.deadman_armed = len(bad) < len(results)
        if bad:
            # Nothing is injected: disarm what did arm, so it cannot act on a healthy target.
            await self._cancel_deadman()
            return f"dead man's switch not armed: {bad[0].target.name}: {bad[0].detail}"
        self.report.deadman = (
            f"{dm.arm.action} {dm.arm.target}: restores by itself after "
            f"{self.scenario.deadman_after_s:g} s unless cancelled"
        )
        return None

    async def _cancel_deadman(self) -> None:
        dm = self.scenario.deadman
        if dm is None or not self.deadman_armed:
            return
        if dm.cancel is None:
            self.report.deadman += "; left to expire (no cancel action)"
            return
        ref = dm.cancel.model_copy(update={"inputs": {**dm.cancel.inputs, "key": self.report.id}})
        try:
            results = await self._execute("disarm", await self._plan(ref), None, AUTO)
        except ActionRefused as exc:
            self.report.deviations.append(f"dead man's switch not cancelled: {exc}")
            return
        if all(r.outcome == "ok" for r in results):
            self.deadman_armed = False
            self.report.deadman += "; cancelled after the restore"
        else:
            self.report.deviations.append("dead man's switch not cancelled: it will fire")

    async def _restore_regardless(self) -> bool:
        """Restore even while being cancelled (again): the fault must not stay in."""
        restore = asyncio.ensure_future(self._restore())
        while not restore.done():
            try:
                await asyncio.shield(restore)
            except asyncio.CancelledError:
                log.warning("drill %s: restoring before stopping", self.report.id)
        return restore.result()

    async def _restore(self) -> bool:
        self._set_step("restore")
        why = f" ({self.abort_reason})" if self.abort_reason else ""
        self._note(AUTO, "restore", f"restoring{why}")
        try:
            results = await self._execute(
                "restore", await self._plan(self.scenario.restore), None, AUTO
            )
        except ActionRefused as exc:
            self._note(AUTO, "restore", f"restore refused: {exc}")
            self.report.deviations.append(f"restore refused: {exc}")
            if self.deadman_armed:
                self.report.deadman += "; left armed: the target restores by itself"
            return False
        bad = [r for r in results if r.outcome != "ok"]
        for r in bad:
            self.report.deviations.append(f"restore {r.outcome}: {r.target.name}: {r.detail}")
        if not bad:
            await self._cancel_deadman()
        elif self.deadman_armed:
            self.report.deadman += "; left armed: the target restores by itself"
        return not bad

    async def _plan(self, ref: ActionRef) -> Plan:
        spec = self.env.actions.get(ref.action)
        if spec is None:
            raise ActionRefused(f"no plugin declares the action {ref.action!r}")
        targets = self.env.action_targets(ref.target, ref.kind or spec.target_kind)
        return await self.env.runner.plan(spec, targets, ref.inputs)

    async def _execute(
        self, step: str, plan: Plan, typed: str | None, who: str
    ) -> list[ActionResult]:
        self._set_step(step)
        if typed is None:
            # The drill confirms its own arm/restore: a revert never waits for a human.
            typed = plan.confirm_text
        results = await self.env.runner.execute(plan, typed)
        for r in results:
            self._note(who, step, f"{plan.spec.id} {r.target.name}: {r.outcome} {r.detail}")
        return results

    # ------------------------------------------------------------------ helpers

    def _check_target(self, ref: CheckRef) -> Target:
        spec = self.env.checks.get(ref.check)
        kind = spec.target_kind if spec is not None else "node"
        return self.env.target(kind, ref.target)

    def _eval(self, ref: CheckRef) -> tuple[Severity, str]:
        spec = self.env.checks.get(ref.check)
        if spec is None:
            return Severity.UNKNOWN, f"no plugin declares the check {ref.check!r}"
        try:
            finding = spec.check(self.env.store, self._check_target(ref))
        except Exception as exc:  # a check's bug is an unknown, not a crash of the drill
            log.exception("check %s failed", ref.key)
            return Severity.UNKNOWN, f"check failed: {exc}"
        return finding.severity, finding.message

    def check_status(self, ref: CheckRef) -> tuple[Severity, str]:
        """A check's current finding (for the screens)."""
        return self._eval(ref)

    def _failing(self, ref: CheckRef) -> bool:
        return self._eval(ref)[0] >= Severity.WARNING

    def _holds(self, sig: Signal) -> bool:
        sev = self._eval(sig)[0]
        if sig.expect == "fail":
            return sev >= Severity.WARNING
        if sig.expect == "recover":
            return sig.key in self._seen_failing and sev == Severity.OK
        return sev == Severity.OK

    async def _sleep(self, seconds: float) -> None:
        if self.env.sleep is not None:
            await self.env.sleep(seconds)
        else:
            await asyncio.sleep(seconds)

    def _note(self, who: str, step: str, text: str) -> None:
        self.report.timeline.append(
            TimelineEntry(
                at=round(self.env.clock() - self.t0, 3),
                wall=iso(self.env.wall()),
                who=who,
                step=step,
                text=text,
            )
        )
        self._save()
        self._changed()

    def _set_step(self, step: str) -> None:
        self.step = step
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change(self)
            except Exception:  # a display bug must not stop a drill mid-fault
                log.exception("drill listener failed")

    def _save(self) -> None:
        try:
            self.report.phases = {str(k): v for k, v in self.phases.items()}
            self.env.drills.save(self.report)
        except Exception:  # the drill (and its restore) goes on; the audit has the actions
            log.exception("could not save drill report %s", self.report.id)

    async def _audit(self, outcome: str, detail: str) -> None:
        runner = self.env.runner
        try:
            await runner.audit.append_async(
                "drill",
                action=f"drill.{self.scenario.id}",
                targets=[self.scenario.inject.target],
                params={"drill_id": self.report.id, "scope": self.scenario.scope},
                outcome=outcome,
                detail=detail,
                operator=runner.operator,
            )
        except AuditWriteError as exc:
            log.error("%s", exc)
            runner.audit.write_fallback(exc.event)
