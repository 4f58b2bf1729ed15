"""Rolling back: one failed node, or every changed node of the completed waves.

When the rollout declares ``rollback`` (how to undo the change on one node),
the operator may undo it:

- on one node (a failed node at a halted gate): drain -> rollback -> settle ->
  post-checks -> resume -> resume-checks; the node is then ``rolled_back`` and
  no longer counts against the gate, so the rollout can go on;
- on every node the rollout changed: the waves in reverse order (newest first,
  the same caps since each wave's nodes are the same; a node the operator
  skipped is left as it is), each node through the same pipeline. A node whose
  rollback fails halts the rollback (the operator retries, skips with a reason,
  or aborts); a resumed rollback goes on from its last committed step, like a
  rollout.

The steps are recorded as ``rb_<step>`` so they are never confused with the
forward steps, and never repeated once done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final

from console.wizards.rollout_node import post_checks, resume_checks, run_steps, schedulers
from console.wizards.rollout_steps import StepResult, change_action, run_action

ROLLBACK_STEPS = ("rb_drain", "rb_change", "rb_post_check", "rb_resume", "rb_resume_check")

if TYPE_CHECKING:  # pragma: no cover
    from console.wizards.rollout_run import RolloutRunner

ROLLED_BACK: Final = "rolled_back"


def _steps(run: RolloutRunner, node: str) -> list[tuple[str, Callable[[], Awaitable[StepResult]]]]:
    async def change() -> StepResult:
        assert run.doc.rollback is not None
        spec, inputs = change_action(run.doc.rollback, run.actions)
        return await run_action(run.runner, spec, node, inputs)

    return [
        ("rb_drain", lambda: schedulers(run, node, "drain")),
        ("rb_change", change),
        ("rb_post_check", lambda: post_checks(run, node, settle=True)),
        ("rb_resume", lambda: schedulers(run, node, "resume")),
        ("rb_resume_check", lambda: resume_checks(run, node)),
    ]


async def _refuse_without_rollback(run: RolloutRunner) -> None:
    from console.wizards.rollout_run import RolloutRefused

    if run.doc.rollback is None:
        raise await run.refuse("this rollout declares no rollback")
    if run.runner.read_only:
        raise RolloutRefused("the console is read-only: nothing can be rolled back")


async def rollback_node(run: RolloutRunner, node: str) -> StepResult:
    """Undo the change on one node, check it and return it to service (audited)."""
    await _refuse_without_rollback(run)
    run._steps = await run.state.steps(run.id)
    result = await run_steps(
        run, node, _steps(run, node), "rolled back and in service", ROLLED_BACK
    )
    await run._audit(
        "rollback",
        [node],
        "ok" if result.ok else "failed",
        result.detail if result.ok else f"rollback: {result.detail}",
    )
    if result.ok:
        await run.state.set_node(run.id, node, ROLLED_BACK, "rollback: rolled back")
    else:
        await run.state.set_node(run.id, node, "failed", f"rollback: {result.detail}")
    return result


async def changed_nodes(run: RolloutRunner) -> list[str]:
    """Nodes whose change ran (or may have run: started, outcome unknown), in plan order."""
    steps = await run.state.steps(run.id)
    return [
        t.name
        for t in run.plan.targets
        if (t.name, "change") in steps and steps[(t.name, "change")].state in ("done", "started")
    ]


async def rollback_completed(run: RolloutRunner) -> str:
    """Start rolling back every changed node, newest wave first. Returns the final status."""
    await _refuse_without_rollback(run)
    row = await run.state.get(run.id)
    if row is None or row.status == "rolled_back":
        raise await run.refuse(f"rollout {run.id} has nothing to roll back")
    if row.plan_hash != run.plan.plan_hash:
        raise await run.refuse("the plan changed since it was confirmed: roll back by hand")
    nodes = await run.state.nodes(run.id)
    todo = [n for n in await changed_nodes(run) if nodes[n][1] not in (ROLLED_BACK, "skipped")]
    if not todo:
        raise await run.refuse("no node was changed (or all are rolled back): nothing to undo")
    for node in todo:
        await run.state.set_node(run.id, node, "pending", "to roll back")
    await run.state.set_status(run.id, "rolling_back", mode="rollback")
    waves = sorted({nodes[n][0] for n in todo}, reverse=True)
    await run._audit(
        "rollback_start",
        todo,
        "",
        f"rolling back {len(todo)} changed node(s) in {len(waves)} wave(s), newest first",
    )
    return await execute_rollback(run)


async def execute_rollback(run: RolloutRunner) -> str:
    """Roll back the pending nodes wave by wave, newest first; halt on a failure."""
    run._steps = await run.state.steps(run.id)
    changed = set(await changed_nodes(run))  # a node never changed has nothing to undo
    for wave in reversed(run.plan.waves):
        if run.abort_reason is not None:
            return await run._finish("aborted", run.abort_reason)
        nodes = await run.state.nodes(run.id)
        todo = [n for n in wave.nodes if n in changed and nodes[n][1] in ("pending", "running")]
        for node in todo:
            await run.state.set_node(run.id, node, "running", "rolling back")
        await asyncio.gather(
            *(
                run_steps(run, n, _steps(run, n), "rolled back and in service", ROLLED_BACK)
                for n in todo
            )
        )
        nodes = await run.state.nodes(run.id)
        failed = [
            n
            for n in wave.nodes
            if nodes[n][1] == "failed" and any((n, s) in run._steps for s in ROLLBACK_STEPS)
        ]
        if failed:
            reason = f"rollback of {', '.join(failed)} failed in {wave.label}"
            await run.state.set_gate(run.id, wave.index, "halted", run.runner.operator.user, reason)
            await run.state.set_status(run.id, "halted", reason)
            await run._audit("gate", list(wave.nodes), "failed", f"rollback: {reason}")
            return "halted"
        if todo:
            await run._audit("gate", list(wave.nodes), "ok", f"{wave.label} rolled back")
    return await run._finish("rolled_back", "")
