"""Executing one step of a runbook run until it is settled.

An attempt records the step ``running`` (audited ``runbook.step.start``), runs
its body (``console.wizards.runbook_steps``) and records the result; a failed
step then waits for the operator's decision -- retry, bypass with a reason, or
abort -- and a refused choice is audited and asked again. A step an earlier
console left ``executing`` is never run again by itself: its outcome is unknown
and the operator decides.

``RunbookRun`` (``runbook_run``) owns the run: start, resume, the lease, the
order of the steps and the records; what happens inside one step is here, so
each reads on its own. Every function takes the run it serves.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from console.wizards.runbook_model import Step, render
from console.wizards.runbook_steps import (
    Decision,
    StepOutcome,
    action_step,
    approval_step,
    check_step,
    note_step,
)

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Node
    from console.wizards.runbook_run import RunbookRun

log = logging.getLogger(__name__)


async def run_step(run: RunbookRun, step: Step) -> bool:
    """Run one step until it is ok, skipped or bypassed (True) or aborted (False)."""
    prior = run.views[step.id]
    out: StepOutcome | None = None
    if prior.state == "executing":
        why = "the console stopped while this action ran: its outcome is unknown"
        out = StepOutcome(False, f"{why}. Look at the target, then retry, bypass or abort")
        await run.mark(step, "failed", out.detail)
        await run.audit("step.result", "unknown", out.detail, step)
    elif prior.state == "failed":
        out = StepOutcome(False, prior.detail, can_bypass=step.kind != "approval")
    while True:
        if out is None:
            out = await _attempt(run, step)
            if out.ok or out.skipped:
                return True
        decision = await _decision(run, step, out)
        if decision.kind == "retry":
            ev = await run.audit("retry", "", out.detail, step)
            await run.timeline("runbook step", f"{step.label}: retry", ev)
            out = None
            continue
        if decision.kind == "bypass":
            reason = decision.reason.strip()
            await run.mark(step, "bypassed", f"bypassed: {reason}")
            ev = await run.audit("bypass", "bypassed", reason, step)
            await run.timeline(
                "runbook step", f"{step.label}: bypassed by {run.operator}: {reason}", ev
            )
            return True
        run.reason = decision.reason.strip() or "aborted by the operator"
        await run.audit("abort", "aborted", run.reason, step)
        return False


async def _attempt(run: RunbookRun, step: Step) -> StepOutcome:
    run.live, run.preview, run.warnings, run.failure = None, (), (), ""
    await run.mark(step, "running", "", attempt=True)
    await run.audit("step.start", "", f"{step.kind} {step.label}", step)
    out = await _body(run, step)
    if out.skipped:
        await run.mark(step, "skipped", out.detail)
        await run.audit("step.result", "skipped", out.detail, step)
    elif out.ok:
        await run.mark(step, "ok", out.detail, answer=out.answer)
        ev = await run.audit("step.result", "ok", out.detail, step)
        await run.timeline("runbook step", f"✓ {step.label}: {out.detail}", ev)
    else:
        await run.mark(step, "failed", out.detail)
        ev = await run.audit("step.result", "failed", out.detail, step)
        await run.timeline("runbook step", f"✗ {step.label}: {out.detail}", ev)
    return out


async def _body(run: RunbookRun, step: Step) -> StepOutcome:
    if step.if_cluster is not None:
        node = _step_node(run, step)
        member = getattr(node.clusters, step.if_cluster, None) if node else None
        if not member:
            where = node.name if node else run.target.name
            return StepOutcome(False, f"{where} is in no {step.if_cluster} cluster", skipped=True)
    if step.two_person and step.kind != "action":
        subject = f"{run.runbook.title} on {run.target.name}: {step.label}"
        approved = await approval_step(run, step, subject, render(step.note or "", run.values()))
        if not approved.ok:
            return approved
    try:
        if step.kind == "check":
            return await check_step(run, step)
        if step.kind == "action":
            return await action_step(run, step)
        if step.kind == "note":
            return await note_step(run, step)
        assert step.approval is not None
        return await approval_step(
            run, step, render(step.approval, run.values()), _approval_detail(run)
        )
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a bug in a step must leave the run to the operator
        log.exception("runbook step %s failed", step.id)
        return StepOutcome(False, f"{type(exc).__name__}: {exc}",
                           can_bypass=step.kind != "approval")  # fmt: skip


def _step_node(run: RunbookRun, step: Step) -> Node | None:
    """The node a step acts on: its own target's, else the run's target's."""
    if step.target is not None:
        name = render(step.target, run.values())
        found = run.env.inventory.nodes.get(name)
        if found is not None:
            return found
    return run.env.node_of(run.target)


def _approval_detail(run: RunbookRun) -> str:
    done = [f"{s.id}: {run.views[s.id].state} {run.views[s.id].detail}".strip()
            for s in run.runbook.steps if run.views[s.id].state != "pending"]  # fmt: skip
    return f"runbook {run.runbook.id} on {run.target.name}, run {run.id}\n" + "\n".join(done)


async def _decision(run: RunbookRun, step: Step, out: StepOutcome) -> Decision:
    """The operator's choice for a failed step; refusals are audited and asked again."""
    run.failure, run.can_bypass = out.detail, out.can_bypass
    decision = out.decision
    while True:
        if decision is None:
            run.waiting_for = "decision"
            run.changed()
            decision = await run.driver.decide(run, step, out.detail, out.can_bypass)
            run.waiting_for = ""
        problem = None
        if decision.kind == "bypass" and not out.can_bypass:
            problem = f"{step.label} cannot be bypassed: retry it or abort"
        elif decision.kind == "bypass" and not decision.reason.strip():
            problem = "a bypass needs a reason"
        if problem is None:
            run.failure, run.notice = "", ""
            return decision
        run.notice = problem
        await run.audit("refused", "refused", problem, step)
        decision = None
