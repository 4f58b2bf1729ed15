"""The rollout executor: waves, node steps, gates, operator choices; durable and audited.

Per node: pre-checks -> drain (the node's schedulers, waiting for jobs) ->
change -> settle -> post-checks (after a fresh poll, until they pass or time
out) -> resume. Nodes of a wave run together; waves one after another. After
each wave the gate decides: failures *more than* p% of the wave or of all done
so far, or an already-changed node no longer healthy, halt the rollout and
nothing in later waves is touched.

Every step is committed to ``RolloutState`` before and after it runs, so a
console killed mid-rollout resumes from the last committed step: a completed
step is never repeated; a step that started without finishing is verified
first, before anything else runs (a change: by its post-checks, never by
running it again; a drain or resume is safe to repeat and runs again).

Every change goes through the ActionRunner; rollout events (start, node
outcome, gate, operator choices, verifications) are audit rows of phase
``rollout``. One node's steps are in ``rollout_node``; rolling back completed
waves is in ``rollout_rollback``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from console.actions import ActionRunner
from console.audit import AuditWriteError
from console.plugin import ActionSpec, CheckSpec, Role
from console.wizards import rollout_choices as choices
from console.wizards.rollout_model import CheckRef
from console.wizards.rollout_node import run_node
from console.wizards.rollout_plan import Plan, gate_verdict
from console.wizards.rollout_state import FINISHED, RolloutState, StepRow
from console.wizards.rollout_steps import (
    Refresh,
    StepResult,
    TargetMap,
    check_nodes,
    evaluate,
    release_dead_leases,
)

if TYPE_CHECKING:  # pragma: no cover
    from console.approvals import ApprovalRequest, Approvals

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RolloutEvent:
    """What happened, for a live view: ``step`` (a node entered a step) or an audit event."""

    kind: str
    nodes: tuple[str, ...]
    outcome: str
    text: str


Listener = Callable[[RolloutEvent], None]


class RolloutRefused(Exception):
    """The rollout may not start or resume; the message says why (audited)."""


def confirm_text(plan: Plan) -> str:
    """What the operator types to start: the rollout's name, read from the plan shown."""
    return plan.name


class RolloutRunner:
    """Runs one rollout plan. ``start`` a new one or ``resume`` an interrupted one."""

    def __init__(
        self,
        plan: Plan,
        runner: ActionRunner,
        state: RolloutState,
        *,
        actions: Mapping[str, ActionSpec],
        checks: Mapping[str, CheckSpec],
        refresh: Refresh,
        targets: TargetMap | None = None,
        approvals: Approvals | None = None,
        rollout_id: str | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.plan = plan
        self.doc = plan.rollout.doc
        self.runner = runner
        self.state = state
        self.actions = actions
        self.checks = checks
        self.refresh = refresh
        self.targets: TargetMap = targets or {}
        """Targets of the SiteChecks ((kind, name) -> Target)."""
        self.approvals = approvals
        """The two-person rule (``console.approvals``), when the console has it."""
        self.approval: ApprovalRequest | None = None
        """The second operator's request for this start, once asked (then decided)."""
        self.id = rollout_id or uuid.uuid4().hex[:12]
        self.sleep = sleep
        self.clock = clock
        self.abort_reason: str | None = None
        self.current: dict[str, str] = {}
        """node -> the step it is in (for the progress view)."""
        self.listeners: list[Listener] = []
        self.running = False
        """True while waves (or a rollback) execute in this process."""
        self._approved = asyncio.Event()
        self._steps: dict[tuple[str, str], StepRow] = {}

    # ------------------------------------------------------------------ events and audit

    def _emit(self, kind: str, nodes: Sequence[str], outcome: str, text: str) -> None:
        event = RolloutEvent(kind, tuple(nodes), outcome, text)
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # a view's bug must never stop a rollout
                log.exception("rollout listener failed")

    async def _audit(self, event: str, targets: list[str], outcome: str, detail: str) -> None:
        self._emit(event, targets, outcome, detail)
        try:
            await self.runner.audit.append_async(
                "rollout",
                action=f"rollout.{event}",
                targets=targets,
                params={
                    "rollout": self.id,
                    "name": self.doc.name,
                    "plan_hash": self.plan.plan_hash,
                },
                outcome=outcome,
                detail=detail[:2000],
                operator=self.runner.operator,
            )
        except AuditWriteError as exc:
            log.error("%s", exc)
            self.runner.audit.write_fallback(exc.event)

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.plan.targets]

    # ------------------------------------------------------------------ start / resume

    async def refuse(self, reason: str) -> RolloutRefused:
        """Audit a refusal and return the exception to raise."""
        await self._audit("refused", self.names, "refused", reason)
        return RolloutRefused(reason)

    async def start(self, typed: str) -> str:
        """Start a new rollout: the operator typed its name. Returns the final status."""
        await self.begin(typed)
        return await self.proceed()

    async def begin(self, typed: str) -> None:
        """Check the confirmation and the operator's right, and record the start.

        Raises:
            RolloutRefused: the typed text is not the name, read-only, or not an
                operator (audited; nothing recorded as started).
        """
        expected = confirm_text(self.plan)
        if typed != expected:
            raise await self.refuse(
                f"typed confirmation {typed!r} does not match the rollout name {expected!r}"
            )
        problem = self._may_not_act("start")
        if problem is not None:
            raise await self.refuse(problem)
        from console.wizards.rollout_verify import second_operator

        await second_operator(self)
        await self.record_start()

    async def proceed(self) -> str:
        """Run the waves of a rollout ``begin`` recorded. Returns the final status."""
        return await self._run(self._execute)

    async def record_start(self) -> None:
        """Create the durable rollout and audit its start (nothing runs yet)."""
        waves = [(w.index, w.nodes) for w in self.plan.waves]
        plan_data = {
            "waves": [list(w.nodes) for w in self.plan.waves],
            "file": self.plan.rollout.label,
        }
        await self.state.create(
            self.id, self.doc.name, self.plan.plan_hash, self.runner.operator.user, plan_data, waves
        )
        approved = (
            f"; start approved by {self.approval.decided_by} (request #{self.approval.id})"
            if self.approval is not None and self.approval.status == "approved"
            else ""
        )
        await self._audit(
            "start",
            self.names,
            "",
            f"{len(self.names)} nodes in {len(self.plan.waves)} waves{approved}",
        )

    async def resume(self) -> str:
        """Continue an interrupted or halted rollout from its last committed step.

        A step that started in an earlier console without finishing is verified
        before anything else runs.

        Raises:
            RolloutRefused: unknown id, finished, or the plan changed since it was
                confirmed (inventory or file: the hash differs).
        """
        row = await self.state.get(self.id)
        reason = None
        if row is None:
            reason = f"no rollout {self.id} in {self.state.path}"
        elif row.status in FINISHED:
            reason = f"rollout {self.id} is {row.status.replace('_', ' ')}"
        elif row.plan_hash != self.plan.plan_hash:
            reason = (
                "the plan changed since it was confirmed (inventory or rollout file): "
                "plan it again and confirm the new plan"
            )
        else:
            reason = self._may_not_act("resume")
        if reason is not None:
            raise await self.refuse(reason)
        assert row is not None
        rollback = row.mode == "rollback"
        await self.state.set_status(self.id, "rolling_back" if rollback else "running")
        await self._audit("resume", self.names, "", "resumed from the last committed step")

        from console.wizards.rollout_verify import verify_in_flight

        async def go() -> str:
            freed = await release_dead_leases(self.runner, self.names)
            if freed:
                await self._audit(
                    "lease",
                    self.names,
                    "ok",
                    "freed the leases of a dead console: " + "; ".join(freed),
                )
            await verify_in_flight(self)
            if rollback:
                from console.wizards.rollout_rollback import execute_rollback

                return await execute_rollback(self)
            return await self._execute()

        return await self._run(go)

    def _may_not_act(self, verb: str) -> str | None:
        """Why this operator may not start or resume a rollout here (or None)."""
        runner = self.runner
        if runner.read_only:
            return f"the console is read-only: a rollout cannot {verb}"
        if runner.role < Role.OPERATOR:
            return (
                f"{runner.operator.user} has role {runner.role.name.lower()}: "
                f"a rollout needs operator to {verb}"
            )
        if runner.shutting_down:
            return f"the console is shutting down: a rollout cannot {verb}"
        return None

    async def _run(self, body: Callable[[], Awaitable[str]]) -> str:
        self.running = True
        try:
            return await body()
        finally:
            self.running = False

    async def in_flight(self) -> list[StepRow]:
        """Steps an earlier console started and never finished (outcome unknown)."""
        return [s for s in (await self.state.steps(self.id)).values() if s.state == "started"]

    # ------------------------------------------------------------------ operator choices

    def abort(self, reason: str) -> None:
        """Stop: no new node step starts (within one host boundary)."""
        self.abort_reason = reason or "aborted by the operator"
        self._approved.set()

    def approve(self) -> None:
        """Let the next wave start (when the gate asks for approval)."""
        self._approved.set()

    async def abort_stopped(self, reason: str) -> None:
        """Abort a rollout that is not executing (halted, or interrupted): nothing runs."""
        await choices.abort_stopped(self, reason)

    async def override_gate(self, reason: str) -> int:
        """Let a halted gate pass (reason required, audited); returns the wave."""
        return await choices.override_gate(self, reason)

    async def skip(self, node: str, reason: str) -> None:
        """Leave a failed node out (it stays drained); the gate no longer counts it."""
        await choices.skip(self, node, reason)

    async def retry(self, node: str) -> None:
        """Run a failed node again from its first step (of the rollback, when rolling back)."""
        await choices.retry(self, node)

    async def rollback(self, node: str) -> StepResult:
        """Undo the change on one node (if declared), check it and return it to service."""
        from console.wizards.rollout_rollback import rollback_node

        return await rollback_node(self, node)

    async def rollback_waves(self) -> str:
        """Roll back every changed node, newest wave first (see ``rollout_rollback``)."""
        from console.wizards.rollout_rollback import rollback_completed

        if self.running:
            raise await self.refuse("stop the rollout (abort) before rolling it back")
        return await self._run(lambda: rollback_completed(self))

    def _label(self, index: int) -> str:
        return next((w.label for w in self.plan.waves if w.index == index), f"wave {index}")

    # ------------------------------------------------------------------ the waves

    async def _execute(self) -> str:
        self._steps = await self.state.steps(self.id)
        gate = self.doc.gate
        for wave in self.plan.waves:
            if self.abort_reason is not None:
                return await self._finish("aborted", self.abort_reason)
            nodes = await self.state.nodes(self.id)
            todo = [n for n in wave.nodes if nodes[n][1] in ("pending", "running")]
            if todo and gate.approval and not wave.canary:
                await self.state.set_status(self.id, "awaiting_approval")
                self._emit("awaiting_approval", todo, "", f"{wave.label} waits for approval")
                self._approved.clear()
                await self._approved.wait()
                if self.abort_reason is not None:
                    return await self._finish("aborted", self.abort_reason)
                await self.state.set_status(self.id, "running")
                await self._audit("approve", list(todo), "ok", f"{wave.label} approved")
            await asyncio.gather(*(run_node(self, n) for n in todo))
            verdict = await self._gate(wave.index)
            if verdict is not None:
                await self.state.set_gate(
                    self.id, wave.index, "halted", self.runner.operator.user, verdict
                )
                await self.state.set_status(self.id, "halted", verdict)
                await self._audit("gate", list(wave.nodes), "failed", f"{wave.label}: {verdict}")
                return "halted"
            await self._audit("gate", list(wave.nodes), "ok", f"{wave.label} passed")
        return await self._finish("done", "")

    async def _finish(self, status: str, reason: str) -> str:
        await self.state.set_status(self.id, status, reason)  # type: ignore[arg-type]
        outcome = "ok" if status in ("done", "rolled_back") else status
        await self._audit(status, self.names, outcome, reason or status.replace("_", " "))
        return status

    async def _gate(self, index: int) -> str | None:
        nodes = await self.state.nodes(self.id)
        gates = await self.state.gates(self.id)
        passed = {w for w, g in gates.items() if g.decision == "override"}
        if index in passed:
            return None
        counted = ("skipped", "rolled_back")
        wave = [s for w, s, _ in nodes.values() if w == index and s not in counted]
        done = [
            s
            for w, s, _ in nodes.values()
            if w <= index and s not in counted and not (w in passed and s == "failed")
        ]
        verdict = gate_verdict(
            wave.count("failed"), len(wave), done.count("failed"), len(done), self.doc.gate
        )
        if verdict is not None or not self.doc.gate.check_changed:
            return verdict
        changed = [n for n, (w, s, _) in nodes.items() if w <= index and s == "done"]
        refs: list[CheckRef] = [*self.doc.post_checks, *self.doc.resume_checks]
        if changed:
            await self.refresh([*changed, *check_nodes(refs, self.checks, self.targets)])
        for node in changed:
            failing = evaluate(self.runner.store, self.checks, refs, node, self.targets)
            if failing:
                return f"{node} was changed and is no longer healthy: {'; '.join(failing)}"
        return None
