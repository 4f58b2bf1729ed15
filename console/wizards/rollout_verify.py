"""What happens before a rollout runs: a second operator's approval of its start, and on
resume the verification of any step an earlier console left in flight.

Both are part of the engine (``RolloutRunner`` calls them); they live here to keep
the executor readable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from console.approvals import ApprovalRefused
from console.wizards.rollout_node import post_checks
from console.wizards.rollout_progress import STEP_NAMES
from console.wizards.rollout_state import StepRow
from console.wizards.rollout_steps import change_action

if TYPE_CHECKING:  # pragma: no cover
    from console.wizards.rollout_run import RolloutRunner

CHANGE_STEPS = ("change", "rb_change")
"""Steps whose outcome, when unknown, is verified by the post-checks and never repeated."""


async def second_operator(run: RolloutRunner) -> None:
    """When the file or the plan's size asks for it, wait for a different operator's
    approval (``console.approvals``); nothing is recorded as started before it."""
    why = run.doc.needs_second_operator(len(run.names))
    if why is None:
        return
    if run.approvals is None:
        raise await run.refuse(f"{why}, and this console cannot ask for approvals")
    waves = " | ".join(f"{w.label}: {','.join(w.nodes)}" for w in run.plan.waves)
    detail = (
        f"{why}. Plan {run.plan.plan_hash[:16]}: {len(run.names)} nodes in "
        f"{len(run.plan.waves)} waves ({waves}); change: {run.doc.change.describe()}"
    )
    timeout = run.doc.approval.timeout_s
    req = await run.approvals.request(
        f"start rollout {run.doc.name!r}", detail, targets=run.names, expire_after_s=timeout
    )
    run.approval = req
    run._emit(
        "approval",
        run.names,
        "pending",
        f"waiting for a second operator: request #{req.id} (another operator approves "
        "it from their own console)",
    )
    try:
        got = await run.approvals.wait(req.id, timeout=timeout)
    except asyncio.CancelledError:
        with contextlib.suppress(ApprovalRefused):
            await run.approvals.withdraw(req.id, "the start was cancelled")
        raise
    if got.pending:
        with contextlib.suppress(ApprovalRefused):
            got = await run.approvals.withdraw(req.id, "no decision in time")
    run.approval = got
    if got.status != "approved":
        by = f" by {got.decided_by}" if got.decided_by else ""
        note = f": {got.note}" if got.note else ""
        raise await run.refuse(
            f"a second operator's approval is needed: request #{req.id} {got.status}{by}{note}"
        )
    run._emit("approval", run.names, "ok", f"approved by {got.decided_by} (#{req.id})")


async def recorded_outcome(run: RolloutRunner, step: StepRow) -> str | None:
    """What the audit log says of a change step an earlier console left in flight.

    ``never`` (no intent of its action on the node since the step started: it
    never ran), ``ok`` / ``failed`` (its result was recorded, the step was not),
    or None (an intent without a result: the outcome is unknown).
    """
    source = run.doc.change if step.step == "change" else run.doc.rollback
    if source is None or step.started is None:
        return None
    action = change_action(source, run.actions)[0].id
    since = (
        datetime.fromtimestamp(step.started, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )
    targets = json.dumps([step.node])

    def query(conn: sqlite3.Connection) -> str | None:
        intent = conn.execute(
            "SELECT action_uid FROM events WHERE phase = 'intent' AND action = ? AND targets = ? "
            "AND ts >= ? ORDER BY id DESC LIMIT 1",
            (action, targets, since),
        ).fetchone()
        if intent is None:
            return "never"
        result = conn.execute(
            "SELECT outcome FROM events WHERE phase = 'result' AND action_uid = ? LIMIT 1",
            (intent[0],),
        ).fetchone()
        if result is None or result[0] not in ("ok", "failed"):
            return None
        return str(result[0])

    return await run.runner.audit.read_with_async(query)


async def verify_in_flight(run: RolloutRunner) -> None:
    """Before anything else on resume, settle each step an earlier console left in flight.

    A change (or a rollback's change) is never run a second time: the audit log
    says whether it never started (then it runs now, as if never begun) or has a
    recorded result; otherwise its outcome is unknown and the post-checks decide.
    Any other step (a check, a drain, a resume) is safe to repeat and runs again.
    """
    for step in await run.in_flight():
        node, name = step.node, step.step
        label = STEP_NAMES.get(name, name)
        if name not in CHANGE_STEPS:
            await run._audit(
                "verify",
                [node],
                "ok",
                f"{label} was in flight when the console stopped; it is safe to repeat "
                "and runs again",
            )
            continue
        recorded = await recorded_outcome(run, step)
        if recorded == "never":
            await run.state.clear_step(run.id, node, name)
            await run._audit(
                "verify",
                [node],
                "ok",
                f"{label} was about to start when the console stopped (no intent in the audit "
                "log): it never ran, and runs now",
            )
            continue
        if recorded is not None:
            ok = recorded == "ok"
            detail = f"the audit log holds its result ({recorded}) from before the restart"
        else:
            run.current[node] = f"verify {label} (outcome unknown)"
            run._emit("step", [node], "", run.current[node])
            result = await post_checks(run, node)
            ok = result.ok
            detail = "outcome unknown after a restart; " + (
                "post-checks pass" if ok else f"not verified: {result.detail}"
            )
        await run.state.set_step(run.id, node, name, "done" if ok else "failed", detail)
        if not ok:
            await run.state.set_node(run.id, node, "failed", f"{label} failed: {detail}")
            run.current[node] = f"failed at {label}"
        await run._audit(
            "verify",
            [node],
            "ok" if ok else "failed",
            f"{label} was in flight when the console stopped: {detail} (verified, not run again)",
        )
