"""The steps of one node in a rollout, and the pieces they need from the plugins.

Every change goes through the ActionRunner (audited, leased): the drain and
resume actions of the schedulers found by id in the registry (``slurm.drain``,
``kubernetes.drain`` ...), the change itself (a plugin action, or the
``rollout.command`` action defined here for a command over SSH). Checks are
CheckSpecs evaluated over the Store after a fresh poll of the node.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from console.actions import ActionRefused, ActionRunner
from console.inventory.model import Inventory
from console.plugin import (
    ActionContext,
    ActionInputs,
    ActionSpec,
    CheckSpec,
    Outcome,
    Preview,
    Role,
    Severity,
    Target,
)
from console.wizards.rollout_model import ChangeStep, CheckRef, check_label
from console.wizards.rollout_plan import NodeDomains

Refresh = Callable[[Sequence[str]], Awaitable[None]]
"""Polls every collector about these nodes once, so the Store is fresh (the console's
poller: ``poller.poll_once(predicate)``)."""

TargetMap = Mapping[tuple[str, str], Target]
"""(kind, name) -> the plugin's Target, as the collectors and actions list them."""

OUTPUT_CAP = 4000


class CommandInputs(ActionInputs):
    command: str = Field(min_length=1)
    timeout_s: float = Field(gt=0)


async def _command_preview(ctx: ActionContext, target: Target, inputs: Any) -> Preview:
    node = ctx.inventory.nodes.get(target.name)
    if node is None:
        return Preview((), refuse=f"{target.name} is not in the inventory")
    return Preview((f"run over SSH on {target.name} ({node.ssh.user}): {inputs.command}",))


async def _command_execute(ctx: ActionContext, target: Target, inputs: Any) -> Outcome:
    node = ctx.inventory.nodes[target.name]
    result = await ctx.transports.ssh.run(node, inputs.command, timeout=inputs.timeout_s)
    output = (result.stdout + result.stderr)[-OUTPUT_CAP:]
    if result.exit_status is None:
        return Outcome(False, "the command ended without an exit status", output)
    return Outcome(result.exit_status == 0, f"exit status {result.exit_status}", output)


async def _command_verify(
    ctx: ActionContext, target: Target, inputs: Any, outcome: Outcome
) -> Outcome:
    return outcome  # the rollout's post-checks are the verification


def _node_targets(inventory: Inventory, config: Any) -> list[Target]:
    return [Target("node", n, node=n) for n in inventory.nodes]


COMMAND_ACTION = ActionSpec(
    id="rollout.command",
    label="Rollout: run the change command over SSH",
    target_kind="node",
    targets=_node_targets,
    preview=_command_preview,
    execute=_command_execute,
    verify=_command_verify,
    destructive=True,
    role=Role.OPERATOR,
    inputs=CommandInputs,
)


@dataclass(frozen=True, slots=True)
class StepResult:
    ok: bool
    detail: str
    output: str = ""
    unknown: bool = False


def node_target(name: str) -> Target:
    return Target("node", name, node=name)


K8S_DRAIN_MAX_S = 3600.0
"""The kubernetes drain action's own upper bound for its timeout input."""


def scheduler_actions(
    domains: NodeDomains, verb: str, reason: str = "", wait_s: float | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """The scheduler actions (id, inputs) to drain or resume a node, by its clusters.

    Drains carry the reason (Slurm records it; Kubernetes annotates); Kubernetes
    cordons first then evicts (its drain action does both, never disabling eviction,
    so PodDisruptionBudgets hold). A Kubernetes drain gives up after ``wait_s`` (the
    rollout's ``drain.wait_jobs_s``): a PDB that blocks an eviction then fails the
    node with the PDB named, and the node stays cordoned.
    """
    drain = verb == "drain"
    out: list[tuple[str, dict[str, Any]]] = []
    if domains.slurm:
        out.append(("slurm.drain", {"reason": reason}) if drain else ("slurm.resume", {}))
    if domains.kubernetes:
        k8s: dict[str, Any] = {"reason": reason}
        if wait_s is not None:
            k8s["timeout_s"] = min(K8S_DRAIN_MAX_S, max(1.0, wait_s))
        out.append(("kubernetes.drain", k8s) if drain else ("kubernetes.uncordon", {}))
    return out


DRAINED_CHECKS = {"slurm.drain": "slurm.drained", "kubernetes.drain": "kubernetes.node_drained"}
"""The check that says a drain has finished (running jobs gone)."""


async def run_action(
    runner: ActionRunner,
    spec: ActionSpec,
    node: str,
    inputs: Mapping[str, Any],
) -> StepResult:
    """Plan and execute one action on one node through the runner (audited).

    The operator confirmed the rollout as a whole (typed count); each destructive
    step's own confirmation is the node's name, which the plan shows.
    """
    try:
        plan = await runner.plan(spec, [node_target(node)], inputs)
        (result,) = await runner.execute(plan, plan.confirm_text)
    except ActionRefused as exc:
        return StepResult(False, f"{spec.id} refused: {exc}")
    detail = f"{spec.id}: {result.outcome}" + (f" ({result.detail})" if result.detail else "")
    return StepResult(
        result.outcome == "ok", detail, result.output[-OUTPUT_CAP:], result.outcome == "unknown"
    )


async def release_dead_leases(runner: ActionRunner, nodes: Sequence[str]) -> list[str]:
    """Free the node leases a dead console on this host left (see the ActionRunner's)."""
    return await runner.release_dead_leases([f"node:{n}" for n in nodes])


def change_action(
    step: ChangeStep, actions: Mapping[str, ActionSpec]
) -> tuple[ActionSpec, dict[str, Any]]:
    """The action and inputs for a change (or rollback) step."""
    if step.command is not None:
        spec = dataclasses.replace(COMMAND_ACTION, timeout=step.timeout_s + 30)
        return spec, {"command": step.command, "timeout_s": step.timeout_s}
    assert step.action is not None  # the model guarantees one of them
    spec = actions[step.action]
    return dataclasses.replace(spec, timeout=max(spec.timeout, step.timeout_s)), dict(step.inputs)


def site_target(ref: CheckRef, checks: Mapping[str, CheckSpec], targets: TargetMap) -> Target:
    """The Target a SiteCheck names (the plugin's own, with its attrs), or a bare one."""
    assert not isinstance(ref, str)
    spec = checks.get(ref.check)
    kind = spec.target_kind if spec is not None else "node"
    found = targets.get((kind, ref.target))
    if found is not None:
        return found
    return Target(kind, ref.target, node=ref.target if kind == "node" else None)


def check_nodes(
    refs: Sequence[CheckRef], checks: Mapping[str, CheckSpec], targets: TargetMap
) -> list[str]:
    """The nodes whose readings the SiteChecks among ``refs`` need (to refresh them)."""
    out: list[str] = []
    for ref in refs:
        if not isinstance(ref, str):
            node = site_target(ref, checks, targets).node
            if node and node not in out:
                out.append(node)
    return out


def evaluate(
    store: Any,
    checks: Mapping[str, CheckSpec],
    refs: Sequence[CheckRef],
    node: str,
    targets: TargetMap | None = None,
) -> list[str]:
    """The failing checks (empty when all pass); UNKNOWN is a failure.

    A check id runs on ``node``; a SiteCheck on its own target, whatever the node.
    """
    failing = []
    for ref in refs:
        label = check_label(ref)
        check_id = ref if isinstance(ref, str) else ref.check
        spec = checks.get(check_id)
        if spec is None:
            failing.append(f"{label}: check not installed")
            continue
        target = (
            node_target(node) if isinstance(ref, str) else site_target(ref, checks, targets or {})
        )
        try:
            finding = spec.check(store, target)
        except Exception as exc:  # a plugin bug is a failed check, never a crash
            failing.append(f"{label}: check raised {exc!r}")
            continue
        if finding.severity != Severity.OK:
            failing.append(f"{label}: {finding.message}")
    return failing
