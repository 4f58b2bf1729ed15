"""The runbook engine: runs a runbook's steps on one target, durable and audited.

Per step (``console.wizards.runbook_exec``): record ``running`` (audited
``runbook.step.start``) -> the step's body (``console.wizards.runbook_steps``) ->
record the result (``runbook.step.result``).
A failed step waits for the operator: **retry** (runs it again), **bypass** with a
reason (goes on; an approval cannot be bypassed), or **abort** -- each choice is an
audit row (``runbook.retry``/``bypass``/``abort``). While a check or an approval is
waited on the operator may bypass or abort at once (``interrupt``).

Every state change is committed to ``RunbookState`` before the run goes on, so a
run stopped (console closed, killed) is continued with ``resume``: finished steps
are not repeated; an action that was handed to the ActionRunner when the console
stopped is *not* run again by itself -- its outcome is unknown, and the operator
decides (retry, bypass, abort) after looking. A lease on the run (in the audit
database) keeps two consoles from driving one run at once.

The operator is a ``Driver``: the TUI's runbook screen, or a script in tests.
A run belongs to the target's open incident, if there is one: its steps and
choices go to that incident's timeline too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from console.action_plan import Plan
from console.audit import AuditWriteError
from console.plugin import Role, Target
from console.wizards.runbook_env import IncidentLink, RunbookEnv
from console.wizards.runbook_exec import run_step
from console.wizards.runbook_model import Runbook, Step
from console.wizards.runbook_state import FINISHED_STEP, RunRow, StepState
from console.wizards.runbook_steps import Decision, LiveCheck

log = logging.getLogger(__name__)

LEASE_TTL_S = 90.0
LEASE_RENEW_S = 30.0

__all__ = ["Decision", "Driver", "LiveCheck", "RunbookRefused", "RunbookRun", "StepView"]


class RunbookRefused(Exception):
    """The run may not start, continue, or take that choice; the message says why."""


class Driver(Protocol):
    """The operator: confirms actions, answers notes, decides on failures."""

    async def confirm_action(self, run: RunbookRun, step: Step, plan: Plan) -> str | None:
        """The typed confirmation (``plan.confirm_text`` for a destructive action, any
        text otherwise), or None: not confirmed."""

    async def answer_note(self, run: RunbookRun, step: Step, text: str) -> str | None:
        """The answer (empty: acknowledged), or None: not acknowledged."""

    async def decide(self, run: RunbookRun, step: Step, failure: str, can_bypass: bool) -> Decision:
        """Retry, bypass (with a reason) or abort a failed step."""


@dataclass(frozen=True, slots=True)
class StepView:
    state: str = "pending"
    detail: str = ""
    answer: str | None = None
    approval_id: int | None = None
    attempts: int = 0


class RunbookRun:
    """One run of a runbook on one target."""

    def __init__(
        self,
        runbook: Runbook,
        target: Target,
        env: RunbookEnv,
        driver: Driver,
        *,
        run_id: str | None = None,
        incident_id: int | None = None,
        alert: str = "",
        on_change: Callable[[RunbookRun], None] | None = None,
    ) -> None:
        self.runbook = runbook
        self.target = target
        self.env = env
        self.driver = driver
        self.id = run_id or uuid.uuid4().hex[:10]
        self.incident = IncidentLink(env.incidents, incident_id)
        """The open incident this run belongs to (its id is on every audit row)."""
        self.alert = alert
        self.on_change = on_change
        self.operator = env.runner.operator.user
        self.status = "new"
        self.reason = ""
        self.current: str | None = None
        """The step being run (or waiting for the operator)."""
        self.views: dict[str, StepView] = {s.id: StepView() for s in runbook.steps}
        self.live: LiveCheck | None = None
        self.preview: tuple[str, ...] = ()
        self.warnings: tuple[str, ...] = ()
        self.waiting_for = ""
        """What the run waits on now (``confirmation``, ``decision``, ``approval #3 ...``)."""
        self.failure = ""
        """Why the current step failed, while the operator decides."""
        self.can_bypass = True
        self.notice = ""
        """The last refusal (a bypass without a reason ...), for the screen."""
        self._interrupt: Decision | None = None
        self._wake = asyncio.Event()
        self._lease_key = f"runbook-run:{self.id}"
        self._lease_at: float | None = None

    @property
    def incident_id(self) -> int | None:
        return self.incident.id

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_row(
        cls,
        row: RunRow,
        env: RunbookEnv,
        driver: Driver,
        on_change: Callable[[RunbookRun], None] | None = None,
    ) -> RunbookRun:
        """A stored run, to ``resume`` (its runbook as it was when it started)."""
        runbook = Runbook.model_validate(row.doc)
        target = env.target(row.target_kind, row.target) or Target(
            row.target_kind, row.target, node=row.node or None
        )
        run = cls(runbook, target, env, driver, run_id=row.id, incident_id=row.incident_id,
                  alert=row.alert, on_change=on_change)  # fmt: skip
        run.status = row.status
        return run

    # ------------------------------------------------------------------ values

    def values(self) -> dict[str, str]:
        """What the runbook's texts may name."""
        node = self.env.node_of(self.target)
        index = self.target.attrs.get("index")
        if index is None and "/" in self.target.name:
            index = self.target.name.rsplit("/", 1)[1]
        rack = self.target.name if self.target.kind == "rack" else (node.rack if node else None)
        out = {
            "target": self.target.name,
            "node": node.name if node else (self.target.node or ""),
            "index": "" if index is None else str(index),
            "rack": rack or "",
            "runbook": self.runbook.id,
            "run": self.id,
            "operator": self.operator,
            "alert": self.alert,
        }
        for sid, view in self.views.items():
            if view.answer is not None:
                out[f"steps.{sid}.answer"] = view.answer
        return out

    # ------------------------------------------------------------------ operator

    def interrupt(self, decision: Decision) -> None:
        """Bypass or abort the step that is waiting (a check, an approval) now.

        Raises:
            RunbookRefused: a bypass without a reason, or of a step that may not be bypassed.
        """
        if decision.kind == "bypass":
            step = self.runbook.step(self.current or "")
            if step is not None and step.kind == "approval":
                raise RunbookRefused("an approval cannot be bypassed: wait for it, or abort")
            if not decision.reason.strip():
                raise RunbookRefused("a bypass needs a reason")
        self._interrupt = decision
        self._wake.set()

    def take_interrupt(self) -> Decision | None:
        decision, self._interrupt = self._interrupt, None
        return decision

    async def wait(self, seconds: float) -> None:
        """Sleep between two looks, waking at once on an interrupt."""
        if self.env.sleep is not None:
            await self.env.sleep(seconds)
            return
        self._wake.clear()
        if self._interrupt is not None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    # ------------------------------------------------------------------ start / resume

    async def start(self) -> str:
        """Start a new run; returns the final status (``done``, ``aborted``)."""
        runner = self.env.runner
        problem = None
        if runner.read_only:
            problem = "the console is read-only"
        elif runner.role < Role.OPERATOR:
            problem = f"{self.operator} is a viewer: running a runbook needs role operator"
        if problem is not None:
            await self.audit("refused", "refused", f"runbook {self.runbook.id} refused: {problem}")
            raise RunbookRefused(problem)
        if self.incident.id is None:
            node = self.env.node_of(self.target)
            await self.incident.join([self.target.name, *([node.name] if node else [])])
        await self._take_lease()
        node = self.env.node_of(self.target)
        await self.env.state.create(
            self.id,
            self.runbook.model_dump(mode="json"),
            self.target.kind,
            self.target.name,
            node.name if node else (self.target.node or ""),
            self.operator,
            self.incident.id,
            self.alert,
            [s.id for s in self.runbook.steps],
        )
        ev = await self.audit("start", "", f"{self.runbook.title} on {self.target.name}"
                              + (f" (alert: {self.alert})" if self.alert else ""))  # fmt: skip
        await self.timeline(
            "runbook step", f"runbook {self.runbook.title!r} started on {self.target.name}", ev
        )
        return await self._loop()

    async def resume(self) -> str:
        """Continue a stored run from its first unfinished step."""
        row = await self.env.state.get(self.id)
        if row is None or row.status in ("done", "aborted"):
            why = "no such run" if row is None else f"the run is {row.status}"
            await self.audit("refused", "refused", f"cannot continue run {self.id}: {why}")
            raise RunbookRefused(why)
        await self._take_lease()
        await self.incident.load_target()
        for sid, r in (await self.env.state.steps(self.id)).items():
            self.views[sid] = StepView(r.state, r.detail, r.answer, r.approval_id, r.attempts)
        ev = await self.audit("resume", "", f"continued by {self.operator}")
        await self.timeline("runbook step", f"runbook {self.runbook.title!r} continued", ev)
        return await self._loop()

    async def _take_lease(self) -> None:
        runner = self.env.runner
        got = await runner.audit.acquire_lease_async(self._lease_key, runner.holder, LEASE_TTL_S)
        if not got:
            other = await asyncio.to_thread(runner.audit.lease_holder, self._lease_key)
            raise RunbookRefused(f"run {self.id} is being driven by another console ({other})")
        self._lease_at = self.env.clock()

    async def renew_lease(self) -> None:
        if self._lease_at is not None and self.env.clock() - self._lease_at >= LEASE_RENEW_S:
            await self._take_lease()

    async def _release_lease(self) -> None:
        runner = self.env.runner
        try:
            await runner.audit.release_lease_async(self._lease_key, runner.holder)
        except Exception:  # it expires by itself
            log.exception("could not release the lease of run %s", self.id)
        self._lease_at = None

    # ------------------------------------------------------------------ the steps

    async def _loop(self) -> str:
        self.status = "running"
        await self.env.state.set_status(self.id, "running")
        self.changed()
        try:
            for step in self.runbook.steps:
                if self.views[step.id].state in FINISHED_STEP:
                    continue
                self.current = step.id
                if not await run_step(self, step):
                    return await self._finish("aborted", self.reason or "aborted by the operator")
            self.current = None
            return await self._finish("done", "")
        except asyncio.CancelledError:
            # The screen went away (or the console is stopping): keep the run to continue.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._pause())
            raise
        finally:
            await self._release_lease()

    async def _pause(self) -> None:
        self.status = "paused"
        await self.env.state.set_status(self.id, "paused", f"left at step {self.current}")
        await self.audit("paused", "", f"left at step {self.current}: continue it later")
        self.changed()

    async def _finish(self, status: str, reason: str) -> str:
        self.status = status
        self.reason = reason
        self.live = None
        await self.env.state.set_status(self.id, "done" if status == "done" else "aborted", reason)
        outcome = "ok" if status == "done" else "aborted"
        ev = await self.audit("done" if status == "done" else "aborted", outcome, reason or status)
        await self.timeline("runbook step", f"runbook {self.runbook.title!r} {status}"
                            + (f": {reason}" if reason else ""), ev)  # fmt: skip
        self.changed()
        return status

    # ------------------------------------------------------------------ records

    async def mark(
        self,
        step: Step,
        state: StepState,
        detail: str,
        *,
        answer: str | None = None,
        approval: int | None = None,
        attempt: bool = False,
    ) -> None:
        """Commit the step's state, then show it."""
        await self.env.state.set_step(self.id, step.id, state, detail, answer=answer,
                                      approval_id=approval, attempt=attempt)  # fmt: skip
        old = self.views[step.id]
        self.views[step.id] = replace(
            old,
            state=state,
            detail=detail,
            answer=answer if answer is not None else old.answer,
            approval_id=approval if approval is not None else old.approval_id,
            attempts=old.attempts + (1 if attempt else 0),
        )
        self.changed()

    async def forget_approval(self, step: Step) -> None:
        """The request was decided or withdrawn: a retry asks anew."""
        await self.env.state.set_step(self.id, step.id, "running", "", keep_approval=False)
        self.views[step.id] = replace(self.views[step.id], approval_id=None)

    async def audit(
        self, event: str, outcome: str, detail: str, step: Step | None = None
    ) -> int | None:
        """Record a runbook event (phase ``runbook``); its audit row id, None if not written."""
        runner = self.env.runner
        params: dict[str, Any] = {"run": self.id, "runbook": self.runbook.id}
        if step is not None:
            params["step"] = step.id
        if self.incident.id is not None:
            params["incident"] = self.incident.id
        try:
            row = await runner.audit.append_async(
                "runbook",
                action=f"runbook.{event}",
                targets=[self.target.name],
                params=params,
                outcome=outcome,
                detail=detail[:2000],
                operator=runner.operator,
            )
        except AuditWriteError as exc:
            log.error("%s", exc)
            runner.audit.write_fallback(exc.event)
            return None
        return row.id

    async def timeline(
        self, kind: str, text: str, event: int | None = None, action_uid: str = ""
    ) -> None:
        """Add to the incident's timeline (``kind``: runbook step, action, note, approval),
        naming the audit row (``event``) or action (``action_uid``) the line is about."""
        await self.incident.add(self.target.name, kind, text, event=event, action_uid=action_uid)

    def changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change(self)
            except Exception:  # a display bug must not stop a run mid-step
                log.exception("runbook listener failed")
