"""One node's pipeline in a rollout: its steps, each committed before and after it runs.

Forward: pre-checks -> drain -> change -> settle + post-checks -> resume ->
resume-checks (``run_node``); the rollback runs its own list of steps through
the same ``run_steps`` (``rollout_rollback``). A step already ``done`` in
``RolloutState`` is never repeated, which is what makes a resumed rollout safe.

The wave loop, the gates and the operator's choices are the executor's
(``rollout_run.RolloutRunner``); what one node goes through is here, so each
reads on its own. Every function takes the runner whose rollout it serves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from console.wizards.rollout_model import CheckRef
from console.wizards.rollout_progress import STEP_NAMES
from console.wizards.rollout_state import StepRow
from console.wizards.rollout_steps import (
    DRAINED_CHECKS,
    StepResult,
    change_action,
    check_nodes,
    evaluate,
    run_action,
    scheduler_actions,
)

if TYPE_CHECKING:  # pragma: no cover
    from console.wizards.rollout_run import RolloutRunner

FORWARD_STEPS = ("pre_check", "drain", "change", "post_check", "resume", "resume_check")

StepFn = Callable[[], Awaitable[StepResult]]


async def run_node(run: RolloutRunner, node: str) -> None:
    """Take one node through the forward steps (from its first unfinished one)."""
    await run.state.set_node(run.id, node, "running")
    steps: list[tuple[str, StepFn]] = [
        ("pre_check", lambda: _pre_checks(run, node)),
        ("drain", lambda: schedulers(run, node, "drain")),
        ("change", lambda: _change(run, node)),
        ("post_check", lambda: post_checks(run, node, settle=True)),
        ("resume", lambda: schedulers(run, node, "resume")),
        ("resume_check", lambda: resume_checks(run, node)),
    ]
    await run_steps(run, node, steps, "changed, checked and back in service", "done")


async def run_steps(
    run: RolloutRunner,
    node: str,
    steps: Sequence[tuple[str, StepFn]],
    success: str,
    final: str,
) -> StepResult:
    """Run a node's pipeline step by step (durably); record and audit the outcome."""
    for name, step in steps:
        if run.abort_reason is not None:
            await run.state.set_node(run.id, node, "pending", f"aborted before {name}")
            return StepResult(False, f"aborted before {name}")
        result = await _step(run, node, name, step)
        if not result.ok:
            label = STEP_NAMES.get(name, name)
            detail = f"{label} failed: {result.detail}"
            await run.state.set_node(run.id, node, "failed", detail + _tail(result.output))
            await run._audit("node", [node], "failed", detail + _tail(result.output))
            run.current[node] = f"failed at {label}"
            return StepResult(False, detail, result.output)
    await run.state.set_node(run.id, node, final)  # type: ignore[arg-type]
    await run._audit("node", [node], "ok", success)
    run.current[node] = final.replace("_", " ")
    return StepResult(True, success)


async def _step(run: RolloutRunner, node: str, name: str, step: StepFn) -> StepResult:
    prior = run._steps.get((node, name))
    if prior is not None and prior.state == "done":
        return StepResult(True, f"already done: {prior.detail}")  # never repeated
    run.current[node] = STEP_NAMES.get(name, name)
    run._emit("step", [node], "", run.current[node])
    await run.state.set_step(run.id, node, name, "started")
    result = await step()
    await run.state.set_step(run.id, node, name, "done" if result.ok else "failed", result.detail)
    run._steps[(node, name)] = StepRow(node, name, "done" if result.ok else "failed", result.detail)
    return result


async def _pre_checks(run: RolloutRunner, node: str) -> StepResult:
    refs = run.doc.pre_checks
    if not refs:
        return StepResult(True, "no pre-checks")
    # Two polls' grace: a reading that failed once (a dropped connection) is read
    # again, but a node that is not healthy halts within seconds, untouched.
    limit = min(run.doc.check_timeout_s, 2 * run.doc.poll_s)
    result = await until(run, node, refs, limit)
    if not result.ok:
        return StepResult(False, result.detail + " (node not touched)")
    return StepResult(True, "pre-checks pass")


async def schedulers(run: RolloutRunner, node: str, verb: str) -> StepResult:
    """Drain or resume the node in each of its schedulers (a drain waits for the jobs)."""
    if verb == "drain" and not run.doc.drain.enabled:
        return StepResult(True, "drain disabled by the rollout")
    reason = run.doc.drain.reason.replace("{name}", run.doc.name)
    wait = run.doc.drain.wait_jobs_s
    todo = scheduler_actions(run.plan.domains(node), verb, reason, wait)
    details = []
    for action_id, inputs in todo:
        spec = run.actions.get(action_id)
        if spec is None:
            return StepResult(False, f"cannot {verb}: action {action_id} is not installed")
        result = await run_action(run.runner, spec, node, inputs)
        if not result.ok:
            return result
        details.append(result.detail)
        drained = DRAINED_CHECKS.get(action_id)
        if verb == "drain" and drained is not None and drained in run.checks:
            waited = await until(run, node, [drained], wait)
            if not waited.ok:
                return StepResult(False, f"jobs still running: {waited.detail}")
    return StepResult(True, "; ".join(details) or f"no scheduler to {verb}")


async def _change(run: RolloutRunner, node: str) -> StepResult:
    spec, inputs = change_action(run.doc.change, run.actions)
    return await run_action(run.runner, spec, node, inputs)


async def post_checks(run: RolloutRunner, node: str, settle: bool = False) -> StepResult:
    """The post-checks until they pass or time out (after the settle time, if ``settle``)."""
    if settle and run.doc.settle_s:
        run.current[node] = f"post-check (settle {run.doc.settle_s:g}s)"
        await run.sleep(run.doc.settle_s)
    return await until(run, node, run.doc.post_checks, run.doc.check_timeout_s)


async def resume_checks(run: RolloutRunner, node: str) -> StepResult:
    """The resume checks until they pass or time out."""
    if not run.doc.resume_checks:
        return StepResult(True, "no resume checks")
    return await until(run, node, run.doc.resume_checks, run.doc.check_timeout_s)


async def until(
    run: RolloutRunner, node: str, refs: Sequence[CheckRef], limit: float
) -> StepResult:
    """Poll the node and evaluate ``refs`` until they pass or ``limit`` seconds pass."""
    deadline = run.clock() + limit
    extra = check_nodes(refs, run.checks, run.targets)
    while True:
        await run.refresh([node, *extra])
        failing = evaluate(run.runner.store, run.checks, refs, node, run.targets)
        if not failing:
            return StepResult(True, "checks pass")
        if run.clock() >= deadline or run.abort_reason is not None:
            return StepResult(False, "; ".join(failing))
        await run.sleep(min(run.doc.poll_s, max(0.0, deadline - run.clock())))


def _tail(output: str) -> str:
    return f"\n{output[-1000:]}" if output else ""
