"""The body of each kind of runbook step: a live check, an action, a note, an approval.

Each returns a ``StepOutcome``; the run (``console.wizards.runbook_run``) records
it, audits it and, on a failure, asks the operator to retry, bypass or abort.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from console.action_plan import ActionRefused
from console.plugin import CheckSpec, Severity, Target
from console.sanitize import clean
from console.wizards.runbook_model import Step, default_step_target, render, render_inputs

if TYPE_CHECKING:  # pragma: no cover
    from console.store import StoreView
    from console.wizards.runbook_run import RunbookRun

log = logging.getLogger(__name__)

DecisionKind = Literal["retry", "bypass", "abort"]
APPROVAL_SLICE_S = 1.0
"""An approval is waited on in slices this long, so an abort is heard at once."""


@dataclass(frozen=True, slots=True)
class Decision:
    """What the operator chose for a failed step (or while a step was waiting)."""

    kind: DecisionKind
    reason: str = ""


@dataclass(frozen=True, slots=True)
class StepOutcome:
    ok: bool
    detail: str
    skipped: bool = False
    can_bypass: bool = True
    """False for an approval: going on without it would defeat the two-person rule."""
    decision: Decision | None = None
    """A choice the operator made while the step waited (it ended the step)."""
    answer: str | None = None


@dataclass(frozen=True, slots=True)
class LiveCheck:
    """A check step as it stands now, for the screen."""

    check: str
    label: str
    target: str
    expect: str
    severity: Severity
    message: str
    holds: bool
    readings: tuple[str, ...]
    waited_s: float
    timeout_s: float
    held_s: float
    hold_s: float
    pane: str | None


def fail(detail: str, **kw: Any) -> StepOutcome:
    return StepOutcome(False, detail, **kw)


def _age(ts: float) -> str:
    secs = max(0.0, time.time() - ts)
    return f"{secs:.0f}s" if secs < 120 else f"{secs / 60:.0f}m"


def readings_for(store: StoreView, spec: CheckSpec, target: Target, limit: int = 6) -> list[str]:
    """The readings a check judges (its ``metrics``; else its plugin's readings of the
    target), each with its value, age and detail."""
    plugin = spec.id.split(".", 1)[0] + "."
    places = [target.name] + ([target.node] if target.node and target.node != target.name else [])
    out: list[str] = []
    if spec.metrics:
        for metric in spec.metrics:
            reading = next(
                (r for r in (store.latest(p, metric) for p in places) if r is not None), None
            )
            if reading is None:
                out.append(f"{metric} = unknown (not read yet)")
                continue
            value = "unknown" if reading.value is None else str(reading.value)
            extra = f"  {reading.detail}" if reading.detail else ""
            out.append(f"{metric} = {value} ({_age(reading.ts)} ago){extra}")
        return [clean(x)[:120] for x in out]
    for place in places:
        for metric, reading in sorted(store.readings_for(place).items()):
            if metric.startswith(plugin) and len(out) < limit:
                value = "unknown" if reading.value is None else str(reading.value)
                out.append(f"{metric} = {value} ({_age(reading.ts)} ago)")
    return [clean(x)[:120] for x in out]


def evaluate(store: StoreView, spec: CheckSpec, target: Target) -> tuple[Severity, str]:
    try:
        finding = spec.check(store, target)
    except Exception as exc:  # a check's bug is an unknown, never a crash of the run
        log.exception("check %s on %s failed", spec.id, target.name)
        return Severity.UNKNOWN, f"the check failed: {exc}"
    return finding.severity, finding.message


def step_target(run: RunbookRun, step: Step, kind: str) -> Target | None:
    name = render(default_step_target(step, run.runbook.target_kind, kind), run.values())
    if kind == run.target.kind and name == run.target.name:
        return run.target
    return run.env.target(kind, name)


# --------------------------------------------------------------------------- check


async def check_step(run: RunbookRun, step: Step) -> StepOutcome:
    """Passes by itself once the check holds (for ``hold_s`` without a break)."""
    assert step.check is not None
    spec = run.env.checks.get(step.check)
    if spec is None:
        return fail(f"no plugin declares the check {step.check!r}")
    target = step_target(run, step, spec.target_kind)
    if target is None:
        return fail(f"no {spec.target_kind} target for {step.check}")
    env = run.env
    names = frozenset({target.name, *([target.node] if target.node else [])})
    start = env.clock()
    held_from: float | None = None
    while True:
        interrupted = run.take_interrupt()
        if interrupted is not None:
            return fail(f"stopped while waiting: {run.live.message if run.live else ''}",
                        decision=interrupted)  # fmt: skip
        try:
            await env.probe.refresh(names)
        except Exception as exc:  # the Store keeps what it has; the check judges that
            log.warning("refresh for %s failed: %s", step.id, exc)
        sev, msg = evaluate(env.store, spec, target)
        holds = sev == Severity.OK if step.expect == "pass" else sev >= Severity.WARNING
        now = env.clock()
        held_from = (held_from if held_from is not None else now) if holds else None
        held = 0.0 if held_from is None else now - held_from
        run.live = LiveCheck(
            spec.id, spec.label, target.name, step.expect, sev, clean(msg), holds,
            tuple(readings_for(env.store, spec, target)), now - start, step.timeout_s,
            held, step.hold_s, spec.pane,
        )  # fmt: skip
        run.changed()
        if holds and held >= step.hold_s:
            what = "holds" if step.expect == "pass" else "shows the problem"
            return StepOutcome(True, f"{spec.id} {target.name} {what}: {clean(msg)}")
        if now - start >= step.timeout_s:
            want = "to hold" if step.expect == "pass" else "to show the problem"
            return fail(f"{spec.id} {target.name} did not come {want} within "
                        f"{step.timeout_s:g}s: {clean(msg)}")  # fmt: skip
        await run.renew_lease()
        await run.wait(min(run.runbook.poll_s, max(0.05, step.timeout_s - (now - start))))


# --------------------------------------------------------------------------- action


async def action_step(run: RunbookRun, step: Step) -> StepOutcome:
    """Plan (preview) -> approval when two-person -> confirmation -> the ActionRunner."""
    assert step.action is not None
    env = run.env
    spec = env.actions.get(step.action)
    if spec is None:
        return fail(f"no plugin declares the action {step.action!r}")
    target = step_target(run, step, spec.target_kind)
    if target is None:
        return fail(f"no {spec.target_kind} target for {step.action}")
    inputs = render_inputs(step.inputs, run.values())
    try:
        plan = await env.runner.plan(spec, [target], inputs)
    except ActionRefused as exc:  # audited by the runner (a bad input is not: nothing ran)
        return fail(str(exc))
    run.preview = tuple(line for p in plan.previews for line in p.lines)
    run.warnings = tuple(plan.warnings)
    run.changed()
    if step.two_person:
        detail = "\n".join((*run.preview, *(f"warning: {w}" for w in run.warnings)))
        approved = await approval_step(run, step, f"{spec.label} on {target.name}", detail)
        if not approved.ok:
            return StepOutcome(False, approved.detail, decision=approved.decision)
    run.waiting_for = "confirmation"
    run.changed()
    typed = await run.driver.confirm_action(run, step, plan)
    run.waiting_for = ""
    if typed is None:
        env.runner.cancel(plan)
        return fail(f"{spec.id} {target.name} not confirmed: nothing was done")
    await run.mark(step, "executing", f"{spec.id} {target.name} handed to the ActionRunner")
    try:
        (result,) = await env.runner.execute(plan, typed if plan.confirm_text else None)
    except ActionRefused as exc:
        return fail(str(exc))
    detail = f"{spec.id} {target.name}: {result.outcome}" + (
        f" ({result.detail})" if result.detail else ""
    )
    if result.outcome == "unknown":
        detail += ": verify the target before going on"
    await run.timeline("action", detail, action_uid=result.action_uid)
    return StepOutcome(result.outcome == "ok", detail)


# --------------------------------------------------------------------------- note


async def note_step(run: RunbookRun, step: Step) -> StepOutcome:
    assert step.note is not None
    text = render(step.note, run.values())
    run.waiting_for = "answer" if step.answer else "acknowledgement"
    run.changed()
    answer = await run.driver.answer_note(run, step, text)
    run.waiting_for = ""
    if answer is None:
        return fail("not acknowledged")
    answer = clean(answer).strip()[:500]
    if step.answer and not answer:
        return fail("this note needs an answer")
    if step.answer:
        ev = await run.audit("note", "ok", answer, step)
        await run.timeline("note", f"{step.label}: {answer}", ev)
        return StepOutcome(True, f"answered: {answer}", answer=answer)
    return StepOutcome(True, "acknowledged")


# --------------------------------------------------------------------------- approval


def _status(got: Any) -> str:
    return str(getattr(got, "status", "pending") or "pending")


async def approval_step(run: RunbookRun, step: Step, subject: str, detail: str) -> StepOutcome:
    """Ask another operator (the two-person rule) and wait for their decision."""
    env = run.env
    can_bypass = step.kind != "approval"
    if env.approvals is None:
        return fail(
            "the two-person rule needs approvals on this console's audit database, and "
            "none are available here",
            can_bypass=can_bypass,
        )
    approval_id = run.views[step.id].approval_id
    if approval_id is None:
        request = await env.approvals.request(
            subject, detail, incident_id=run.incident_id, targets=[run.target.name]
        )
        approval_id = int(request.id)
        await run.mark(step, "running", f"approval #{approval_id} requested", approval=approval_id)
        ev = await run.audit("approval", "requested", f"#{approval_id}: {subject}", step)
        await run.timeline("approval", f"{step.label}: approval #{approval_id} requested", ev)
    run.waiting_for = f"approval #{approval_id} by another operator"
    run.changed()
    deadline = env.clock() + step.timeout_s
    try:
        while True:
            interrupted = run.take_interrupt()
            if interrupted is not None and (interrupted.kind != "bypass" or can_bypass):
                await env.approvals.withdraw(approval_id, interrupted.reason or interrupted.kind)
                await run.forget_approval(step)
                return fail(f"approval #{approval_id} withdrawn", decision=interrupted,
                            can_bypass=can_bypass)  # fmt: skip
            remaining = deadline - env.clock()
            if remaining <= 0:
                await env.approvals.withdraw(approval_id, "nobody approved in time")
                await run.forget_approval(step)
                return fail(f"no second operator approved #{approval_id} within "
                            f"{step.timeout_s:g}s", can_bypass=can_bypass)  # fmt: skip
            try:
                got = await env.approvals.wait(
                    approval_id, timeout=min(APPROVAL_SLICE_S, remaining)
                )
            except TimeoutError:
                got = None
            status = _status(got)
            if status == "pending":
                await run.renew_lease()
                continue
            by = getattr(got, "decided_by", None) or "?"
            note = getattr(got, "note", None) or ""
            said = f"#{approval_id} {status}" + (f" by {by}" if by != "?" else "")
            said += f": {clean(str(note))}" if note else ""
            ev = await run.audit("approval", "ok" if status == "approved" else status, said, step)
            await run.timeline("approval", f"{step.label}: approval {said}", ev)
            if status == "approved" and by not in ("?", run.operator):
                return StepOutcome(True, f"approval {said}")
            await run.forget_approval(step)
            if status == "approved":
                said += ": not a second operator"
            return fail(f"approval {said}", can_bypass=can_bypass)
    finally:
        run.waiting_for = ""
