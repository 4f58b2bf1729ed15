"""The operator's choices at a halted gate (through the engine, each audited): abort a
rollout that is not running, approve past the gate, skip or retry a failed node.

Rolling back is in ``rollout_rollback``; approving the next wave of a running
rollout and aborting it are ``RolloutRunner.approve`` / ``abort``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from console.wizards.rollout_state import FINISHED

if TYPE_CHECKING:  # pragma: no cover
    from console.wizards.rollout_run import RolloutRunner


def _refused(reason: str) -> Exception:
    from console.wizards.rollout_run import RolloutRefused

    return RolloutRefused(reason)


async def abort_stopped(run: RolloutRunner, reason: str) -> None:
    """Abort a rollout that is not executing (halted, or interrupted): nothing runs."""
    row = await run.state.get(run.id)
    if row is None or row.status in FINISHED:
        raise await run.refuse(f"rollout {run.id} cannot be aborted: it is not open")
    await run._finish("aborted", reason or "aborted by the operator")


async def override_gate(run: RolloutRunner, reason: str) -> int:
    """Let a halted gate pass (the operator accepts the failures); returns the wave.

    Its failures no longer count in later gates. A reason is required and audited.
    """
    if not reason.strip():
        raise _refused("approving past a failed gate needs a reason")
    gates = await run.state.gates(run.id)
    halted = sorted(w for w, g in gates.items() if g.decision == "halted")
    if not halted:
        raise _refused("no gate has halted this rollout")
    wave = halted[-1]
    user = run.runner.operator.user
    await run.state.set_gate(run.id, wave, "override", user, reason)
    nodes = [n for w in run.plan.waves if w.index == wave for n in w.nodes]
    await run._audit("override", nodes, "ok", f"{run._label(wave)} gate passed: {reason}")
    return wave


async def skip(run: RolloutRunner, node: str, reason: str) -> None:
    """Leave a failed node out (it stays drained); the gate no longer counts it."""
    if not reason.strip():
        raise _refused("skipping a node needs a reason")
    await run.state.set_node(run.id, node, "skipped", reason)
    await run._audit("skip", [node], "ok", reason)


async def retry(run: RolloutRunner, node: str) -> None:
    """Run a failed node again from its first step (of the rollback, when rolling back)."""
    row = await run.state.get(run.id)
    if row is not None and row.mode == "rollback":
        await run.state.clear_steps(run.id, node, prefix="rb_")
        await run.state.set_node(run.id, node, "pending", "retry the rollback")
        await run._audit("retry", [node], "ok", "retry the rollback from its first step")
        return
    await run.state.clear_steps(run.id, node)
    await run.state.set_node(run.id, node, "pending", "retry")
    await run._audit("retry", [node], "ok", "retry from the first step")
