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
first (a change: by its post-checks, never by running it again).

Every change goes through the ActionRunner; rollout events (start, node
outcome, gate, operator choices) are audit rows of phase ``rollout``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from console.actions import ActionRunner
from console.audit import AuditWriteError
from console.plugin import ActionSpec, CheckSpec
from console.wizards.rollout_plan import Plan, gate_verdict
from console.wizards.rollout_state import RolloutState, StepRow
from console.wizards.rollout_steps import (
    DRAINED_CHECKS,
    Refresh,
    StepResult,
    change_action,
    evaluate,
    run_action,
    scheduler_actions,
)

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


class RolloutRefused(Exception):
    """The rollout may not start or resume; the message says why (audited)."""


def confirm_text(plan: Plan) -> str:
    """What the operator types to start: the number of target nodes (the blast radius)."""
    return str(len(plan.targets))


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
        self.id = rollout_id or uuid.uuid4().hex[:12]
        self.sleep = sleep
        self.clock = clock
        self.abort_reason: str | None = None
        self.current: dict[str, str] = {}
        """node -> the step it is in (for the progress view)."""
        self._approved = asyncio.Event()
        self._steps: dict[tuple[str, str], StepRow] = {}

    # ------------------------------------------------------------------ audit

    async def _audit(self, event: str, targets: list[str], outcome: str, detail: str) -> None:
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

    # ------------------------------------------------------------------ start / resume

    async def start(self, typed: str) -> str:
        """Start a new rollout: the operator typed the target count. Returns the final status."""
        names = [t.name for t in self.plan.targets]
        expected = confirm_text(self.plan)
        if typed != expected:
            reason = f"typed confirmation {typed!r} does not match the target count {expected}"
            await self._audit("refused", names, "refused", reason)
            raise RolloutRefused(reason)
        waves = [(w.index, w.nodes) for w in self.plan.waves]
        plan_data = {
            "waves": [list(w.nodes) for w in self.plan.waves],
            "file": self.plan.rollout.label,
        }
        await self.state.create(
            self.id, self.doc.name, self.plan.plan_hash, self.runner.operator.user, plan_data, waves
        )
        await self._audit("start", names, "", f"{len(names)} nodes in {len(self.plan.waves)} waves")
        return await self._execute()

    async def resume(self) -> str:
        """Continue an interrupted or halted rollout from its last committed step.

        Raises:
            RolloutRefused: unknown id, finished, or the plan changed since it was
                confirmed (inventory or file: the hash differs).
        """
        row = await self.state.get(self.id)
        names = [t.name for t in self.plan.targets]
        reason = None
        if row is None:
            reason = f"no rollout {self.id} in {self.state.path}"
        elif row.status in ("done", "aborted"):
            reason = f"rollout {self.id} is {row.status}"
        elif row.plan_hash != self.plan.plan_hash:
            reason = (
                "the plan changed since it was confirmed (inventory or rollout file): "
                "plan it again and confirm the new plan"
            )
        if reason is not None:
            await self._audit("refused", names, "refused", reason)
            raise RolloutRefused(reason)
        await self.state.set_status(self.id, "running")
        await self._audit("resume", names, "", "resumed from the last committed step")
        return await self._execute()

    # ------------------------------------------------------------------ operator choices

    def abort(self, reason: str) -> None:
        """Stop: no new node step starts (within one host boundary)."""
        self.abort_reason = reason or "aborted by the operator"
        self._approved.set()

    def approve(self) -> None:
        """Let the next wave start (when the gate asks for approval)."""
        self._approved.set()

    async def skip(self, node: str, reason: str) -> None:
        """Leave a failed node out (it stays drained); the gate no longer counts it."""
        if not reason.strip():
            raise RolloutRefused("skipping a node needs a reason")
        await self.state.set_node(self.id, node, "skipped", reason)
        await self._audit("skip", [node], "ok", reason)

    async def retry(self, node: str) -> None:
        """Run a failed node again from its first step."""
        await self.state.clear_steps(self.id, node)
        await self.state.set_node(self.id, node, "pending", "retry")
        await self._audit("retry", [node], "ok", "retry from the first step")

    async def rollback(self, node: str) -> StepResult:
        """Undo the change on one node (if declared), check it and return it to service."""
        if self.doc.rollback is None:
            raise RolloutRefused("this rollout declares no rollback")
        spec, inputs = change_action(self.doc.rollback, self.actions)
        result = await run_action(self.runner, spec, node, inputs)
        if result.ok:
            result = await self._post_checks(node)
        if result.ok:
            result = await self._schedulers(node, "resume")
        if result.ok:
            result = await self._resume_checks(node)
        detail = f"rollback: {result.detail}"
        if result.ok:
            await self.state.set_node(self.id, node, "skipped", detail)
        else:
            await self.state.set_node(self.id, node, "failed", detail)
        await self._audit("rollback", [node], "ok" if result.ok else "failed", result.detail)
        return result

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
                self._approved.clear()
                await self._approved.wait()
                if self.abort_reason is not None:
                    return await self._finish("aborted", self.abort_reason)
                await self.state.set_status(self.id, "running")
                await self._audit("approve", list(todo), "ok", f"{wave.label} approved")
            await asyncio.gather(*(self._node(n) for n in todo))
            verdict = await self._gate(wave.index)
            if verdict is not None:
                await self.state.set_status(self.id, "halted", verdict)
                await self._audit("gate", list(wave.nodes), "failed", f"{wave.label}: {verdict}")
                return "halted"
            await self._audit("gate", list(wave.nodes), "ok", f"{wave.label} passed")
        return await self._finish("done", "")

    async def _finish(self, status: str, reason: str) -> str:
        await self.state.set_status(self.id, status, reason)  # type: ignore[arg-type]
        names = [t.name for t in self.plan.targets]
        await self._audit(status, names, "ok" if status == "done" else status, reason or status)
        return status

    async def _gate(self, index: int) -> str | None:
        nodes = await self.state.nodes(self.id)
        wave = [s for w, s, _ in nodes.values() if w == index and s != "skipped"]
        done = [s for w, s, _ in nodes.values() if w <= index and s != "skipped"]
        verdict = gate_verdict(
            wave.count("failed"), len(wave), done.count("failed"), len(done), self.doc.gate
        )
        if verdict is not None or not self.doc.gate.check_changed:
            return verdict
        changed = [n for n, (w, s, _) in nodes.items() if w <= index and s == "done"]
        if changed:
            await self.refresh(changed)
        ids = [*self.doc.post_checks, *self.doc.resume_checks]
        for node in changed:
            failing = evaluate(self.runner.store, self.checks, ids, node)
            if failing:
                return f"{node} was changed and is no longer healthy: {'; '.join(failing)}"
        return None

    # ------------------------------------------------------------------ one node

    async def _node(self, node: str) -> None:
        await self.state.set_node(self.id, node, "running")
        steps: list[tuple[str, Callable[[], Awaitable[StepResult]]]] = [
            ("pre_check", lambda: self._pre_checks(node)),
            ("drain", lambda: self._schedulers(node, "drain")),
            ("change", lambda: self._change(node)),
            ("post_check", lambda: self._post_checks(node, settle=True)),
            ("resume", lambda: self._schedulers(node, "resume")),
            ("resume_check", lambda: self._resume_checks(node)),
        ]
        for name, run in steps:
            if self.abort_reason is not None:
                await self.state.set_node(self.id, node, "pending", f"aborted before {name}")
                return
            result = await self._step(node, name, run)
            if not result.ok:
                detail = f"{name} failed: {result.detail}"
                await self.state.set_node(self.id, node, "failed", detail)
                await self._audit("node", [node], "failed", detail + _tail(result.output))
                self.current[node] = f"failed at {name}"
                return
        await self.state.set_node(self.id, node, "done")
        await self._audit("node", [node], "ok", "changed, checked and back in service")
        self.current[node] = "done"

    async def _step(
        self, node: str, name: str, run: Callable[[], Awaitable[StepResult]]
    ) -> StepResult:
        prior = self._steps.get((node, name))
        if prior is not None and prior.state == "done":
            return StepResult(True, f"already done: {prior.detail}")  # never repeated
        self.current[node] = name
        if prior is not None and prior.state == "started" and name == "change":
            # The console died while the change ran: its outcome is unknown. Verify it
            # by the post-checks instead of running it a second time.
            result = await self._post_checks(node)
            result = StepResult(
                result.ok,
                "outcome unknown after a restart; "
                + ("post-checks pass" if result.ok else f"not verified: {result.detail}"),
            )
        else:
            await self.state.set_step(self.id, node, name, "started")
            result = await run()
        await self.state.set_step(
            self.id, node, name, "done" if result.ok else "failed", result.detail
        )
        return result

    async def _pre_checks(self, node: str) -> StepResult:
        if not self.doc.pre_checks:
            return StepResult(True, "no pre-checks")
        await self.refresh([node])
        failing = evaluate(self.runner.store, self.checks, self.doc.pre_checks, node)
        if failing:
            return StepResult(False, "; ".join(failing) + " (node not touched)")
        return StepResult(True, "pre-checks pass")

    async def _schedulers(self, node: str, verb: str) -> StepResult:
        if verb == "drain" and not self.doc.drain.enabled:
            return StepResult(True, "drain disabled by the rollout")
        reason = self.doc.drain.reason.replace("{name}", self.doc.name)
        todo = scheduler_actions(self.plan.domains(node), verb, reason)
        details = []
        for action_id, inputs in todo:
            spec = self.actions.get(action_id)
            if spec is None:
                return StepResult(False, f"cannot {verb}: action {action_id} is not installed")
            result = await run_action(self.runner, spec, node, inputs)
            if not result.ok:
                return result
            details.append(result.detail)
            drained = DRAINED_CHECKS.get(action_id)
            if verb == "drain" and drained is not None and drained in self.checks:
                waited = await self._until(node, [drained], self.doc.drain.wait_jobs_s)
                if not waited.ok:
                    return StepResult(False, f"jobs still running: {waited.detail}")
        return StepResult(True, "; ".join(details) or f"no scheduler to {verb}")

    async def _change(self, node: str) -> StepResult:
        spec, inputs = change_action(self.doc.change, self.actions)
        return await run_action(self.runner, spec, node, inputs)

    async def _post_checks(self, node: str, settle: bool = False) -> StepResult:
        if settle and self.doc.settle_s:
            self.current[node] = f"post-check (settle {self.doc.settle_s:g}s)"
            await self.sleep(self.doc.settle_s)
        return await self._until(node, self.doc.post_checks, self.doc.check_timeout_s)

    async def _resume_checks(self, node: str) -> StepResult:
        if not self.doc.resume_checks:
            return StepResult(True, "no resume checks")
        return await self._until(node, self.doc.resume_checks, self.doc.check_timeout_s)

    async def _until(self, node: str, ids: list[str], limit: float) -> StepResult:
        """Poll the node and evaluate ``ids`` until they pass or ``limit`` seconds pass."""
        deadline = self.clock() + limit
        while True:
            await self.refresh([node])
            failing = evaluate(self.runner.store, self.checks, ids, node)
            if not failing:
                return StepResult(True, f"{', '.join(ids)} pass")
            if self.clock() >= deadline or self.abort_reason is not None:
                return StepResult(False, "; ".join(failing))
            await self.sleep(min(self.doc.poll_s, max(0.0, deadline - self.clock())))


def _tail(output: str) -> str:
    return f"\n{output[-1000:]}" if output else ""


def describe(status: str, nodes: Mapping[str, tuple[int, str, str]]) -> dict[str, Any]:
    """Counts for a one-line summary (ok / failed / skipped / pending)."""
    states = [s for _, s, _ in nodes.values()]
    return {
        "status": status,
        "ok": states.count("done"),
        "failed": states.count("failed"),
        "skipped": states.count("skipped"),
        "pending": states.count("pending") + states.count("running"),
    }
