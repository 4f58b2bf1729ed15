"""Live pre-flight checks of a plan, before its first wave: would the drains go through?

The planner is pure (the inventory only); this asks the live systems, read-only,
what would stop a node's drain: for a node in Kubernetes, the drain action's own
preview reads the pods on the node and the PodDisruptionBudgets over them (the
same reading ``kubectl drain`` would hit), so a PDB that allows no disruption now,
or a pod the drain would refuse (no controller, emptyDir data), is shown in the
plan before anything runs. Nothing is audited or changed: a preview only reads.

A blocked node is not refused here: the operator sees it, and the rollout halts
that node cleanly (left cordoned, the PDB named) if it is still blocked then.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import ValidationError

from console.plugin import ActionSpec
from console.wizards.rollout_plan import Plan
from console.wizards.rollout_steps import node_target, scheduler_actions

if TYPE_CHECKING:  # pragma: no cover
    from console.actions import ActionRunner

log = logging.getLogger(__name__)

PREVIEWED = ("kubernetes.drain",)
"""Drain actions whose preview reads what would block them (Slurm waits for jobs instead)."""


@dataclass(frozen=True, slots=True)
class PreflightItem:
    node: str
    action: str
    blocked: bool
    """The drain would be refused or held (a PDB allowing no disruption now)."""
    detail: str


def _blocking(warning: str) -> bool:
    return "PDB" in warning and "no disruption" in warning


async def preflight(
    plan: Plan,
    runner: ActionRunner,
    actions: Mapping[str, ActionSpec],
    timeout_s: float = 20.0,
) -> list[PreflightItem]:
    """What the live systems say about draining each planned node (read-only)."""
    doc = plan.rollout.doc
    if not doc.drain.enabled:
        return []
    reason = doc.drain.reason.replace("{name}", doc.name)
    jobs = []
    for wave in plan.waves:
        for name in wave.nodes:
            for action_id, inputs in scheduler_actions(
                plan.domains(name), "drain", reason, doc.drain.wait_jobs_s
            ):
                spec = actions.get(action_id)
                if action_id in PREVIEWED and spec is not None:
                    jobs.append(_one(runner, spec, name, inputs, timeout_s))
    return [item for found in await asyncio.gather(*jobs) for item in found]


async def _one(
    runner: ActionRunner,
    spec: ActionSpec,
    node: str,
    inputs: Mapping[str, object],
    timeout_s: float,
) -> list[PreflightItem]:
    try:
        validated = spec.inputs.model_validate(dict(inputs))
    except ValidationError as exc:
        return [PreflightItem(node, spec.id, True, f"inputs refused: {exc.errors()[0]['msg']}")]
    try:
        async with asyncio.timeout(timeout_s):
            preview = await spec.preview(runner.context_for(spec), node_target(node), validated)
    except TimeoutError:
        return [PreflightItem(node, spec.id, False, f"no answer in {timeout_s:g}s: unknown")]
    except Exception as exc:  # a plugin's failure is shown, never a crash of the plan
        log.info("preflight of %s on %s failed: %s", spec.id, node, exc)
        return [PreflightItem(node, spec.id, False, f"could not read: {exc}")]
    if preview.refuse:
        return [PreflightItem(node, spec.id, True, f"the drain would be refused: {preview.refuse}")]
    blocking = [w for w in preview.warnings if _blocking(w)]
    if blocking:
        return [PreflightItem(node, spec.id, True, w) for w in blocking]
    evict = next((line for line in preview.lines if "for " in line and "pods" in line), "")
    return [PreflightItem(node, spec.id, False, f"drain not blocked now ({evict.strip()})")]


def render_preflight(items: list[PreflightItem]) -> list[str]:
    """Lines for the plan: every blocked node first."""
    if not items:
        return []
    lines = ["Pre-flight (live, read-only):"]
    for item in sorted(items, key=lambda i: (not i.blocked, i.node)):
        mark = "✖ blocked" if item.blocked else "● ok     "
        lines.append(f"  {mark} {item.node:<10} {item.detail}")
    return lines
