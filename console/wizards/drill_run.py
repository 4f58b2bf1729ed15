"""The drill engine: preflight -> arm -> inject -> observe (stopwatch) -> restore -> postflight.

- Preflight: the steady-state checks hold (the Store is refreshed through the
  probe until they do, or the preflight times out: nothing is injected); where
  the scenario has a data check, markers start being written and one must land.
- Arm: the scenario's dead man's switch is scheduled on the target side (audited)
  so a console that dies mid-drill still gets the fault restored; not armed,
  not injected.
- Inject: the scenario's action through the ActionRunner (planned, typed-confirmed
  by the operator, audited like any other change).
- Observe: the probe refreshes the drill's targets every ``poll_interval_s``; the
  stopwatch marks *detect*, *failover*, *recovered* when their signals hold; at
  the failover the surviving markers are read (the RPO). Stop conditions are
  watched the whole time: more failures than expected, the maximum duration, an
  operator abort, or no contact with the targets for ``contact_lost_s`` abort the
  drill -- and every abort restores automatically.
- Restore: the scenario's restore action (confirmed by the drill itself: a
  revert must not wait for a human), the dead man's switch cancelled, then
  postflight: the steady state again.

Every step lands in the report's timeline; the report is saved at each step
(a console that dies mid-drill leaves the trace), and two audit rows (phase
``drill``) bracket the drill around the actions' own intent/result rows.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from console.action_plan import ActionRefused, Plan
from console.plugin import Severity
from console.wizards.drill_env import DrillEnv
from console.wizards.drill_model import Phase, Scenario
from console.wizards.drill_report import DrillReport, Measure, Result
from console.wizards.drill_steps import AUTO, DrillSteps, iso
from console.wizards.drill_view import stopwatch_lines

__all__ = ["AUTO", "DrillRun", "stopwatch_lines"]

log = logging.getLogger(__name__)


class DrillRun(DrillSteps):
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
        self.fault_wall: float | None = None
        self.phases: dict[Phase, float | None] = {p: None for p in scenario.phases}
        self.abort_reason: str | None = None
        self.unexpected: list[str] = []
        """Watched checks failing beyond the expected ones, at the last poll."""
        self.contact_age: float | None = None
        """Seconds since the targets last answered (observe only)."""
        self.markers = None
        self.deadman_armed = False
        self._inject_outcome = "ok"
        self._inject_detail = ""
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
            started=iso(env.wall()),
            rto=Measure(name="RTO", target_s=scenario.targets.rto_s, measured_s=None),
            rpo=Measure(name="RPO", target_s=scenario.targets.rpo_s, measured_s=None),
            # Which process runs it: a console starting while it runs is told "running in
            # another console (pid N)", not "stopped mid-drill".
            console_host=socket.gethostname(),
            pid=os.getpid(),
        )
        names = {r.target for r in (*scenario.steady_state, *scenario.signals)}
        names |= {r.target for r in scenario.stop.watch}
        names |= {scenario.inject.target}
        nodes = {self._check_target(r).node for r in (*scenario.steady_state, *scenario.signals)}
        inject = env.actions.get(scenario.inject.action)
        if inject is not None:  # e.g. a switch port: read through the fabric node
            nodes.add(
                env.target(scenario.inject.kind or inject.target_kind, scenario.inject.target).node
            )
        self._names = frozenset(names | {n for n in nodes if n})

    # ------------------------------------------------------------------ public

    def abort(self, reason: str = "aborted by the operator") -> None:
        """Stop the drill: before the fault goes in, nothing is injected (a switch armed
        is cancelled); after, the observation stops and the restore follows."""
        self._abort_requested = reason

    async def refuse(self, reason: str) -> None:
        """Record a drill refused before it ran (e.g. a wrong typed confirmation given on
        the command line): one audit row; nothing ran, so no report."""
        await self._audit("refused", reason)

    @property
    def elapsed(self) -> float | None:
        """Seconds since the injection (the stopwatch), None before it."""
        return None if self.injected_at is None else self.env.clock() - self.injected_at

    async def refresh(self) -> bool:
        """Read the drill's targets now (the preflight view); False when none answered."""
        return await self.env.probe.refresh(self._names)

    async def plan_inject(self) -> Plan:
        """The injection's plan (previews, what to type), for the operator before the start.

        Raises:
            ActionRefused: the action is unknown, not allowed, or its preview refuses.
        """
        return await self._plan(self.scenario.inject)

    async def run(self, typed: str | None) -> DrillReport:
        """Run the drill; ``typed`` is the operator's typed confirmation of the injection."""
        await self._audit("started", f"drill {self.report.id} scope {self.scenario.scope}")
        self._note(self.operator, "start", f"drill {self.scenario.id} started")
        result: Result = "failed"
        restored: bool | None = None
        try:
            refused = await self._preflight(typed)
            if refused is not None:
                self.report.deviations.append(refused)
                result = "aborted" if self.abort_reason is not None else "refused"
                return self.report
            self.injected_at = self.env.clock()
            self.fault_wall = self.env.wall()
            self.report.fault_at = iso(self.fault_wall)
            if self._inject_outcome != "ok":
                # "unknown" may have happened: restore all the same.
                self.abort_reason = f"inject {self._inject_outcome}: {self._inject_detail}"
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
            await self._stop_markers()
            self.report.restored = restored
            self._finish(result)
            await self._audit(result, "; ".join(self.report.deviations)[:2000])

    # ------------------------------------------------------------------ steps

    async def _preflight(self, typed: str | None) -> str | None:
        """Steady state, markers, plan, arm, inject; the refusal text, or None if injected."""
        if self.scenario.data is not None:
            problem = self._start_markers()
            if problem is not None:
                return problem
        ok, text = await self._steady("preflight", self.scenario.preflight_timeout_s)
        if not ok and self._abort_requested is None:
            return f"preflight: steady state does not hold: {text}"
        if ok and self.markers is not None:
            problem = await self._warm_up()
            if problem is not None:
                return problem
        if self._abort_requested is not None:  # an abort during the preflight: nothing is in
            return self._aborted_before_inject()
        try:
            plan = await self._plan(self.scenario.inject)
            if plan.confirm_text is not None and typed != plan.confirm_text:
                await self.env.runner.execute(plan, typed)  # refuses, on the record
            if self.scenario.deadman is not None:
                problem = await self._arm()
                if problem is not None:
                    return problem
            if self._abort_requested is not None:  # the last moment nothing is in yet
                await self._cancel_deadman()
                return self._aborted_before_inject()
            results = await self._execute("inject", plan, typed, self.operator)
        except ActionRefused as exc:
            return f"inject refused: {exc}"
        bad = [r for r in results if r.outcome != "ok"]
        self._inject_outcome = bad[0].outcome if bad else "ok"
        self._inject_detail = "; ".join(f"{r.target.name}: {r.detail}" for r in bad)
        return None

    def _aborted_before_inject(self) -> str:
        assert self._abort_requested is not None
        self.abort_reason = self._abort_requested
        self._note(self.operator, "abort", f"{self.abort_reason}: nothing was injected")
        return f"aborted before the fault went in: {self.abort_reason}"

    async def _steady(self, step: str, within_s: float) -> tuple[bool, str]:
        self._set_step(step)
        deadline = self.env.clock() + within_s
        failing: list[str] = []
        while True:
            if step == "preflight" and self._abort_requested is not None:
                return False, "aborted"  # waiting on the steady state: stop now
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
        rpo_done = s.data is None
        while True:
            contact = await self.env.probe.refresh(self._names)
            now = self.env.clock()
            since = now - self.injected_at
            if contact:
                last_contact = now
            self.contact_age = now - last_contact
            self._mark_phases(since)
            if not rpo_done and self.phases.get(s.rpo_phase) is not None:
                rpo_done = True
                await self._measure_rpo()
            if self.phases.get(s.rto_phase) is not None:
                return
            unexpected = [
                ref.key for ref in s.watched() if ref.target not in expected and self._failing(ref)
            ]
            self.unexpected = unexpected
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

    # ------------------------------------------------------------------ verdict

    def _verdict(self, restored: bool, post_ok: bool) -> Result:
        s = self.scenario
        rto = self.phases.get(s.rto_phase)
        self.report.rto.measured_s = rto
        for phase, at in self.phases.items():
            if at is None:
                self.report.deviations.append(f"{phase} was never observed")
        if rto is not None and rto > s.targets.rto_s:
            self.report.deviations.append(f"RTO {rto:.1f} s over the target {s.targets.rto_s:g} s")
        rpo = self.report.rpo
        if s.data is not None and rpo.measured_s is None:
            why = self.report.rpo_detail or "the drill ended before the failover"
            self.report.deviations.append(f"RPO not measured: {why}")
        elif rpo.met is False and rpo.measured_s is not None and rpo.target_s is not None:
            self.report.deviations.append(
                f"RPO {rpo.measured_s:.1f} s over the target {rpo.target_s:g} s"
            )
        if self._unexpected_seen and self.abort_reason is None:
            self.report.deviations.append(
                f"unexpected failures within the tolerance ({s.stop.max_unexpected_failures}): "
                + ", ".join(sorted(self._unexpected_seen))
            )
        if self.abort_reason is not None:
            self.report.deviations.insert(0, f"aborted: {self.abort_reason}")
            return "aborted"
        passed = (
            restored
            and post_ok
            and self.report.rto.met is True
            and rpo.met is not False
            and all(v is not None for v in self.phases.values())
        )
        return "passed" if passed else "failed"

    def _finish(self, result: Result) -> None:
        self.report.result = result
        self.report.phases = {str(k): v for k, v in self.phases.items()}
        self.report.ended = iso(self.env.wall())
        self._set_step(result)
        self._note(AUTO, "end", f"drill {result}")
