"""Node actions: cordon, uncordon and drain (the eviction loop is in ``drain``).

Previews say which API call goes to which cluster (and read the live state:
the pods a drain would evict, the PDBs that would block it); verification
reads the node back. A cordon records why, by whom and when as node
annotations (``dcconsole.io/cordon-reason``, ``-by``, ``-at``), visible to
kubectl users.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import Field

from console.plugin import ActionContext, ActionInputs, ActionSpec, Outcome, Preview, Role, Target
from plugins.kubernetes import progress, sdk
from plugins.kubernetes.action_api import cluster_api
from plugins.kubernetes.client import describe_api, raw_json
from plugins.kubernetes.config import clusters_of, inventory_name
from plugins.kubernetes.drain import evict_all, plan_drain, pods_on
from plugins.kubernetes.parse import ANN_AT, ANN_BY, ANN_REASON, format_time
from plugins.kubernetes.parse_nodes import NodeInfo, parse_node, parse_node_list
from plugins.kubernetes.parse_pods import parse_pdb_list
from plugins.kubernetes.state import evictable

if TYPE_CHECKING:  # pragma: no cover
    from kubernetes_asyncio import client

    from console.inventory.model import Inventory


def node_targets(inventory: Inventory, config: Any) -> Sequence[Target]:
    clusters = clusters_of(inventory)
    return [
        Target(
            "node",
            n.name,
            node=n.name,
            attrs={"cluster": n.clusters.kubernetes, "gpu_count": n.hardware.gpu_count},
        )
        for n in inventory.nodes.values()
        if n.clusters.kubernetes in clusters
    ]


async def read_node(v1: client.CoreV1Api, name: str, limit_s: float) -> NodeInfo:
    """The node called ``name`` in the inventory: same name, else its FQDN in the cluster."""
    try:
        return parse_node(
            await raw_json(v1.read_node(name, _preload_content=False, _request_timeout=limit_s))
        )
    except sdk.ApiException as exc:
        if exc.status != 404:
            raise
    nodes, _ = parse_node_list(
        await raw_json(v1.list_node(_preload_content=False, _request_timeout=limit_s))
    )
    for node in nodes:
        if inventory_name(node.name, {name}) == name:
            return node
    raise LookupError(f"{name} is not a node of the cluster")


def node_state(node: NodeInfo) -> str:
    """``Ready,SchedulingDisabled``: the STATUS ``kubectl get nodes`` shows."""
    ready = {True: "Ready", False: "NotReady", None: "Unknown"}[node.ready]
    return ready + (",SchedulingDisabled" if node.unschedulable else "")


# --------------------------------------------------------------------------- cordon


class CordonInputs(ActionInputs):
    reason: str = Field(
        default="",
        max_length=200,
        description="Why (kept on the node as an annotation; shown on-call)",
    )


def cordon_patch(on: bool, reason: str = "", by: str = "") -> dict[str, Any]:
    if on:
        return {
            "spec": {"unschedulable": True},
            "metadata": {
                "annotations": {
                    ANN_REASON: reason or "cordoned",
                    ANN_BY: by,
                    ANN_AT: format_time(time.time()),
                }
            },
        }
    return {
        "spec": {"unschedulable": False},
        "metadata": {"annotations": {ANN_REASON: None, ANN_BY: None, ANN_AT: None}},
    }


def _patch_line(node: str, on: bool, where: str) -> str:
    verb = "cordon" if on else "uncordon"
    return (
        f"PATCH /api/v1/nodes/{node} spec.unschedulable={str(on).lower()} ({verb}, "
        f"dcconsole.io annotations {'set' if on else 'removed'}) on {where}"
    )


async def _preview_cordon(ctx: ActionContext, target: Target, inputs: Any, on: bool) -> Preview:
    async with cluster_api(ctx, target) as (v1, api, ref, cfg):
        node = await read_node(v1, target.name, cfg.request_timeout_s)
        pods = [p for p in await pods_on(v1, node.name, cfg.request_timeout_s) if evictable(p)]
        lines = [_patch_line(node.name, on, describe_api(api, ref)), f"now: {node_state(node)}"]
    warnings = []
    if on:
        lines.append(f"{len(pods)} pods keep running there (cordon only stops new ones)")
    if on and node.unschedulable:
        warnings.append(f"{node.name} is already cordoned: only the reason changes")
    if not on and node.ready is not True:
        warnings.append(f"{node.name} is not Ready: pods will not start there until it is")
    return Preview(tuple(lines), tuple(warnings))


async def _execute_cordon(ctx: ActionContext, target: Target, inputs: Any, on: bool) -> Outcome:
    reason = getattr(inputs, "reason", "")
    async with cluster_api(ctx, target) as (v1, _api_client, ref, cfg):
        node = await read_node(v1, target.name, cfg.request_timeout_s)
        try:
            await raw_json(
                v1.patch_node(
                    node.name,
                    cordon_patch(on, reason, ctx.operator),
                    _preload_content=False,
                    _request_timeout=cfg.request_timeout_s,
                )
            )
        except TimeoutError:
            return Outcome(False, f"PATCH of {node.name}: no answer in time, outcome unknown")
    return Outcome(True, f"{'cordoned' if on else 'uncordoned'} {node.name} on {ref.name}")


async def _verify_cordon(ctx: ActionContext, target: Target, on: bool) -> Outcome:
    async with cluster_api(ctx, target) as (v1, _a, _r, cfg):
        node = await read_node(v1, target.name, cfg.request_timeout_s)
    if node.unschedulable != on:
        return Outcome(False, f"{node.name} reads back as {node_state(node)}")
    return Outcome(True, f"{node.name} is {node_state(node)}")


async def preview_cordon(ctx: ActionContext, target: Target, inputs: Any) -> Preview:
    return await _preview_cordon(ctx, target, inputs, True)


async def execute_cordon(ctx: ActionContext, target: Target, inputs: Any) -> Outcome:
    return await _execute_cordon(ctx, target, inputs, True)


async def verify_cordon(ctx: ActionContext, target: Target, inputs: Any, o: Outcome) -> Outcome:
    return await _verify_cordon(ctx, target, True)


async def preview_uncordon(ctx: ActionContext, target: Target, inputs: Any) -> Preview:
    return await _preview_cordon(ctx, target, inputs, False)


async def execute_uncordon(ctx: ActionContext, target: Target, inputs: Any) -> Outcome:
    return await _execute_cordon(ctx, target, inputs, False)


async def verify_uncordon(ctx: ActionContext, target: Target, inputs: Any, o: Outcome) -> Outcome:
    return await _verify_cordon(ctx, target, False)


# --------------------------------------------------------------------------- drain


class DrainInputs(ActionInputs):
    reason: str = Field(default="", max_length=200, description="Why (kept on the node)")
    timeout_s: float | None = Field(
        default=None,
        gt=0,
        le=3600,
        description="Give up after this many seconds (default: the plugin's drain_timeout_s)",
    )
    grace_period_s: int | None = Field(
        default=None, ge=0, le=3600, description="Override the pods' termination grace"
    )
    delete_emptydir_data: bool = Field(
        default=False, description="Evict pods with emptyDir data (it is lost)"
    )
    force: bool = Field(
        default=False, description="Also delete pods no controller manages (they are lost)"
    )
    disable_eviction: bool = Field(
        default=False, description="DELETE instead of evict: bypasses PodDisruptionBudgets"
    )


async def preview_drain(ctx: ActionContext, target: Target, inputs: Any) -> Preview:
    inp = inputs if isinstance(inputs, DrainInputs) else DrainInputs()
    async with cluster_api(ctx, target) as (v1, api, ref, cfg):
        node = await read_node(v1, target.name, cfg.request_timeout_s)
        pods = await pods_on(v1, node.name, cfg.request_timeout_s)
        policy = sdk.client.PolicyV1Api(api)
        pdbs = parse_pdb_list(
            await raw_json(
                policy.list_pod_disruption_budget_for_all_namespaces(
                    _preload_content=False, _request_timeout=cfg.request_timeout_s
                )
            )
        )
        where = describe_api(api, ref)
    plan = plan_drain(pods, inp.force, inp.delete_emptydir_data)
    if plan.refused:
        return Preview((), refuse="; ".join(plan.refused))
    timeout = inp.timeout_s or cfg.drain_timeout_s
    verb = "DELETE pod" if inp.disable_eviction else "POST pods/eviction (policy/v1)"
    lines = [
        _patch_line(node.name, True, where),
        f"now: {node_state(node)}",
        f"then {verb} for {len(plan.evict)} pods:",
    ]
    warnings = []
    for pod in plan.evict:
        covering = [d for d in pdbs if d.matches(pod)]
        note = ""
        if covering:
            d = covering[0]
            note = f" [PDB {d.key}: {d.disruptions_allowed} disruptions allowed now]"
            if d.disruptions_allowed == 0 and not inp.disable_eviction:
                warnings.append(
                    f"{pod.key}: PDB {d.key} allows no disruption now: its "
                    f"eviction will be refused (429) and retried"
                )
        lines.append(f"  {pod.key} ({pod.status_text}){note}")
    lines.append(f"leave {len(plan.skipped)} DaemonSet/mirror pods")
    lines.append(
        f"refused evictions retried every {cfg.eviction_retry_s:g}s (doubling, max 30s) "
        f"for up to {timeout:g}s; then stop, leaving {node.name} cordoned"
    )
    if inp.disable_eviction:
        warnings.append(
            "disable_eviction: pods are deleted and PodDisruptionBudgets are NOT respected"
        )
    return Preview(tuple(lines), tuple(warnings))


async def execute_drain(ctx: ActionContext, target: Target, inputs: Any) -> Outcome:
    inp = inputs if isinstance(inputs, DrainInputs) else DrainInputs()
    prog = progress.begin(target.name)
    try:
        async with cluster_api(ctx, target) as (v1, _a, _ref, cfg):
            timeout = inp.timeout_s or cfg.drain_timeout_s
            node = await read_node(v1, target.name, cfg.request_timeout_s)
            plan = plan_drain(
                await pods_on(v1, node.name, cfg.request_timeout_s),
                inp.force,
                inp.delete_emptydir_data,
            )
            if plan.refused:
                return Outcome(False, "not drained (nothing changed): " + "; ".join(plan.refused))
            await raw_json(
                v1.patch_node(
                    node.name,
                    cordon_patch(True, inp.reason or "drain", ctx.operator),
                    _preload_content=False,
                    _request_timeout=cfg.request_timeout_s,
                )
            )
            prog.note(f"cordoned {node.name}")
            # Listed again after the cordon: nothing new can land now.
            plan = plan_drain(await pods_on(v1, node.name, cfg.request_timeout_s), True, True)
            result = await evict_all(
                v1,
                node.name,
                target.name,
                list(plan.evict),
                give_up_s=timeout,
                retry_s=cfg.eviction_retry_s,
                request_timeout=cfg.request_timeout_s,
                grace=inp.grace_period_s,
                disable_eviction=inp.disable_eviction,
            )
        output = "\n".join(prog.log)
        return Outcome(result.ok, result.report(timeout), output)
    finally:
        progress.end(target.name)


async def verify_drain(ctx: ActionContext, target: Target, inputs: Any, o: Outcome) -> Outcome:
    async with cluster_api(ctx, target) as (v1, _a, _r, cfg):
        node = await read_node(v1, target.name, cfg.request_timeout_s)
        left = [p for p in await pods_on(v1, node.name, cfg.request_timeout_s) if evictable(p)]
    if not node.unschedulable:
        return Outcome(False, f"{node.name} is not cordoned ({node_state(node)})")
    if left:
        return Outcome(
            False, f"{len(left)} pods still on {node.name}: {', '.join(p.key for p in left[:5])}"
        )
    return Outcome(True, f"{o.detail}; read back: {node_state(node)}, no evictable pods")


CORDON = ActionSpec(
    id="kubernetes.cordon",
    label="Cordon node (Kubernetes)",
    target_kind="node",
    targets=node_targets,
    preview=preview_cordon,
    execute=execute_cordon,
    verify=verify_cordon,
    inputs=CordonInputs,
    role=Role.OPERATOR,
    timeout=60.0,
    description="Marks the node unschedulable (kubectl cordon), recording why and by whom.",
)
UNCORDON = ActionSpec(
    id="kubernetes.uncordon",
    label="Uncordon node (Kubernetes)",
    target_kind="node",
    targets=node_targets,
    preview=preview_uncordon,
    execute=execute_uncordon,
    verify=verify_uncordon,
    role=Role.OPERATOR,
    timeout=60.0,
    description="Lets the scheduler place pods on the node again (kubectl uncordon).",
)
DRAIN = ActionSpec(
    id="kubernetes.drain",
    label="Drain node (Kubernetes)",
    target_kind="node",
    targets=node_targets,
    preview=preview_drain,
    execute=execute_drain,
    verify=verify_drain,
    inputs=DrainInputs,
    destructive=True,
    role=Role.OPERATOR,
    timeout=3600.0 + 120.0,
    description="Cordons the node, then evicts its pods through the Eviction API "
    "(PodDisruptionBudgets respected), retrying refused evictions until a timeout.",
)
