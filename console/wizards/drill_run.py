"""The drill engine: preflight -> inject -> observe (stopwatch) -> restore -> postflight.

- Preflight: the steady-state checks hold (the Store is refreshed through the
  probe until they do, or the preflight times out: nothing is injected).
- Inject: the scenario's action through the ActionRunner (planned, typed-confirmed
  by the operator, audited like any other change).
- Observe: the probe refreshes the drill's targets every ``poll_interval_s``; the
  stopwatch marks *detect*, *failover*, *recovered* when their signals hold. Stop
  conditions are watched the whole time: more failures than expected, the
  maximum duration, an operator abort, or no contact with the targets for
  ``contact_lost_s`` abort the drill -- and every abort restores automatically.
- Restore: the scenario's restore action (confirmed by the drill itself: a
  revert must not wait for a human), then postflight: the steady state again.

Every step lands in the report's timeline; the report is saved at each step
(a console that dies mid-drill leaves the trace), and two audit rows (phase
``drill``) bracket the drill around the actions' own intent/result rows.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from console.action_plan import ActionRefused, ActionResult
from console.audit import AuditWriteError
from console.plugin import Severity, Target
from console.wizards.drill_env import DrillEnv
from console.wizards.drill_model import ActionRef, CheckRef, Phase, Scenario, Signal
from console.wizards.drill_report import DrillReport, Measure, Result, TimelineEntry

log = logging.getLogger(__name__)

AUTO = "drill"
"""Who the timeline names for what the engine did by itself."""


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


class DrillRun:
    """One run of one scenario by one operator. ``await run(typed)`` returns the report."""

    def __init__(
        self,
        scenario: Scenario,
        env: DrillEnv,
        on_change: Callable[[DrillRun], None] | None = None,
    ) -> None:
        self.scenario = scenario
        self.env = env
        self.on_change = on_change
        self.operator = env.runner.operator.user
        self.step = "ready"
        self.t0 = env.clock()
        self.injected_at: float | None = None
        self.phases: dict[Phase, float | None] = {p: None for p in scenario.phases}
        self.abort_reason: str | None = None
        self._abort_requested: str | None = None
        self._seen_failing: set[str] = set()
        self._unexpected_seen: set[str] = set()
        self.report = DrillReport(
            id=f"{scenario.id}-{datetime.fromtimestamp(env.wall(), UTC):%Y%m%dT%H%M%S}-"
            f"{uuid.uuid4().hex[:6]}",
            scenario=scenario.id,
            title=scenario.title,
            scope=scenario.scope,
            operator=self.operator,
            started=_iso(env.wall()),
            rto=Measure(name="RTO", target_s=scenario.targets.rto_s, measured_s=None),
            rpo=Measure(name="RPO", target_s=scenario.targets.rpo_s, measured_s=None),
        )
        names = {r.target for r in (*scenario.steady_state, *scenario.signals)}
        names |= {r.target for r in scenario.stop.watch}
        names |= {scenario.inject.target}
        nodes = {self._check_target(r).node for r in (*scenario.steady_state, *scenario.signals)}
        self._names = frozenset(names | {n for n in nodes if n})

    # ------------------------------------------------------------------ public

    def abort(self, reason: str = "aborted by the operator") -> None:
        """Ask the observation to stop now; the restore follows automatically."""
        self._abort_requested = reason

    @property
    def elapsed(self) -> float | None:
        """Seconds since the injection (the stopwatch), None before it."""
        return None if self.injected_at is None else self.env.clock() - self.injected_at

    async def run(self, typed: str | None) -> DrillReport:
        """Run the drill; ``typed`` is the operator's typed confirmation of the injection."""
        await self._audit("started", f"drill {self.report.id} scope {self.scenario.scope}")
        self._note(self.operator, "start", f"drill {self.scenario.id} started")
        result: Result = "failed"
        restored: bool | None = None
        try:
            ok, text = await self._steady("preflight", self.scenario.preflight_timeout_s)
            if not ok:
                self.report.deviations.append(f"preflight: steady state does not hold: {text}")
                result = "refused"
                return self.report
            try:
                outcome = await self._act("inject", self.scenario.inject, typed, self.operator)
            except ActionRefused as exc:
                self.report.deviations.append(f"inject refused: {exc}")
                result = "refused"
                return self.report
            self.injected_at = self.env.clock()
            if outcome.outcome != "ok":
                # "unknown" may have happened: restore all the same.
                self.abort_reason = f"inject {outcome.outcome}: {outcome.detail}"
            else:
                await self._observe()
            restored = await self._restore()
            post_ok, post_text = await self._steady(
                "postflight", self.scenario.postflight_timeout_s
            )
            if not post_ok:
                self.report.deviations.append(f"postflight: steady state not back: {post_text}")
            result = self._verdict(restored, post_ok)
            return self.report
        except BaseException:
            if self.injected_at is not None and restored is None:
                # Cancelled or crashed mid-drill: the fault must not stay in.
                self.abort_reason = self.abort_reason or "the drill was interrupted"
                restored = await self._restore_regardless()
            result = "aborted"
            raise
        finally:
            self.report.restored = restored
            self._finish(result)
            await self._audit(result, "; ".join(self.report.deviations)[:2000])

    # ------------------------------------------------------------------ steps

    async def _steady(self, step: str, within_s: float) -> tuple[bool, str]:
        self._set_step(step)
        deadline = self.env.clock() + within_s
        failing: list[str] = []
        while True:
            await self.env.probe.refresh(self._names)
            failing = [
                f"{ref.key}: {msg}"
                for ref in self.scenario.steady_state
                for sev, msg in [self._eval(ref)]
                if sev != Severity.OK
            ]
            if not failing:
                self._note(AUTO, step, "steady state holds")
                return True, ""
            if self.env.clock() >= deadline:
                text = "; ".join(failing)
                self._note(AUTO, step, f"steady state does not hold: {text}")
                return False, text
            await self._sleep(self.scenario.poll_interval_s)

    async def _observe(self) -> None:
        self._set_step("observe")
        s = self.scenario
        assert self.injected_at is not None
        last_contact = self.injected_at
        expected = set(s.stop.expected_failures) | {s.inject.target}
        while True:
            contact = await self.env.probe.refresh(self._names)
            now = self.env.clock()
            since = now - self.injected_at
            if contact:
                last_contact = now
            self._mark_phases(since)
            if self.phases.get(s.rto_phase) is not None:
                return
            unexpected = [
                ref.key for ref in s.watched() if ref.target not in expected and self._failing(ref)
            ]
            self._unexpected_seen.update(unexpected)
            reason = self._abort_requested
            if reason is None and len(unexpected) > s.stop.max_unexpected_failures:
                reason = (
                    f"stop condition: {len(unexpected)} unexpected failure(s) "
                    f"(> {s.stop.max_unexpected_failures}): {', '.join(unexpected)}"
                )
            if reason is None and now - last_contact > s.stop.contact_lost_s:
                reason = f"lost contact with the targets for {now - last_contact:.1f} s"
            if reason is None and since > s.max_duration_s:
                reason = f"maximum duration {s.max_duration_s:g} s exceeded"
            if reason is not None:
                self.abort_reason = reason
                who = self.operator if self._abort_requested else AUTO
                self._note(who, "abort", reason)
                return
            self._changed()
            await self._sleep(s.poll_interval_s)

    def _mark_phases(self, since: float) -> None:
        for ref in self.scenario.signals:
            if ref.expect == "recover" and self._failing(ref):
                self._seen_failing.add(ref.key)
        previous_reached = True
        for phase in self.scenario.phases:
            if self.phases[phase] is None:
                if previous_reached and all(
                    self._holds(sig) for sig in self.scenario.signals_of(phase)
                ):
                    self.phases[phase] = since
                    signals = ", ".join(
                        f"{s.key} {s.expect}" for s in self.scenario.signals_of(phase)
                    )
                    self._note(AUTO, phase, f"{phase} after {since:.1f} s ({signals})")
                else:
                    previous_reached = False
            # a phase reached earlier stays reached

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
            result = await self._act("restore", self.scenario.restore, None, AUTO)
        except ActionRefused as exc:
            self._note(AUTO, "restore", f"restore refused: {exc}")
            self.report.deviations.append(f"restore refused: {exc}")
            return False
        if result.outcome != "ok":
            self.report.deviations.append(f"restore {result.outcome}: {result.detail}")
        return result.outcome == "ok"

    async def _act(self, step: str, ref: ActionRef, typed: str | None, who: str) -> ActionResult:
        spec = self.env.actions.get(ref.action)
        if spec is None:
            raise ActionRefused(f"no plugin declares the action {ref.action!r}")
        target = self._action_target(ref, spec.target_kind)
        self._set_step(step)
        plan = await self.env.runner.plan(spec, [target], ref.inputs)
        if typed is None:
            # The drill confirms its own restore: a revert never waits for a human.
            typed = plan.confirm_text
        (result,) = await self.env.runner.execute(plan, typed)
        self._note(who, step, f"{ref.action} {target.name}: {result.outcome} {result.detail}")
        return result

    # ------------------------------------------------------------------ helpers

    def _verdict(self, restored: bool, post_ok: bool) -> Result:
        s = self.scenario
        rto = self.phases.get(s.rto_phase)
        self.report.rto.measured_s = rto
        for phase, at in self.phases.items():
            if at is None:
                self.report.deviations.append(f"{phase} was never observed")
        if rto is not None and rto > s.targets.rto_s:
            self.report.deviations.append(f"RTO {rto:.1f} s over the target {s.targets.rto_s:g} s")
        if self._unexpected_seen and self.abort_reason is None:
            self.report.deviations.append(
                f"unexpected failures within the tolerance ({s.stop.max_unexpected_failures}): "
                + ", ".join(sorted(self._unexpected_seen))
            )
        if s.targets.rpo_s is not None:
            self.report.deviations.append("RPO not measured: the scenario has no data check")
        if self.abort_reason is not None:
            self.report.deviations.insert(0, f"aborted: {self.abort_reason}")
            return "aborted"
        passed = (
            restored
            and post_ok
            and self.report.rto.met is True
            and self.report.rpo.met is not False
            and all(v is not None for v in self.phases.values())
        )
        return "passed" if passed else "failed"

    def _finish(self, result: Result) -> None:
        self.report.result = result
        self.report.phases = {str(k): v for k, v in self.phases.items()}
        self.report.ended = _iso(self.env.wall())
        self._set_step(result)
        self._note(AUTO, "end", f"drill {result}")

    def _check_target(self, ref: CheckRef) -> Target:
        spec = self.env.checks.get(ref.check)
        kind = spec.target_kind if spec is not None else "node"
        return self.env.target(kind, ref.target)

    def _action_target(self, ref: ActionRef, kind: str) -> Target:
        if ref.kind is not None:
            return self.env.target(ref.kind, ref.target)
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
                wall=_iso(self.env.wall()),
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


def stopwatch_lines(run: DrillRun) -> list[str]:
    """The drill stopwatch as SCREENS.md draws it (plain text, for the TUI and logs)."""
    s = run.scenario
    lines = [
        f'Drill "{s.title}" · target RTO {s.targets.rto_s:g}s'
        + (f" RPO {s.targets.rpo_s:g}" if s.targets.rpo_s is not None else "")
        + f" · stop if > {s.stop.max_unexpected_failures} unexpected failures"
    ]
    marks = "   ".join(f"{p} {'—' if v is None else f'{v:.1f}s'}" for p, v in run.phases.items())
    elapsed = run.elapsed
    clock = "—" if elapsed is None else f"{int(elapsed // 60):02d}:{elapsed % 60:04.1f}"
    lines.append(f"{run.step}  {marks}   ▶ {clock}")
    lines.append("A abort and restore")
    return lines
