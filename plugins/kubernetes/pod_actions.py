"""Pod actions: delete a stuck pod (Terminating, crash-looping, Failed, Unknown).

The preview reads the pod; the delete carries a uid precondition so a pod
recreated under the same name is never deleted by mistake; verification
waits for the pod to be gone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import Field

from console.plugin import ActionContext, ActionInputs, ActionSpec, Outcome, Preview, Role, Target
from plugins.kubernetes import sdk
from plugins.kubernetes.action_api import cluster_api
from plugins.kubernetes.client import describe_api, raw_json
from plugins.kubernetes.config import clusters_of, inventory_name
from plugins.kubernetes.parse_pods import PodInfo, parse_pod
from plugins.kubernetes.watch import current

if TYPE_CHECKING:  # pragma: no cover
    from kubernetes_asyncio import client

    from console.inventory.model import Inventory

VERIFY_S = 30.0
STUCK_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "CreateContainerConfigError",
        "CreateContainerError",
        "Unknown",
    }
)


class DeletePodInputs(ActionInputs):
    force: bool = Field(
        default=False,
        description="Grace 0: the API forgets the pod at once (for pods stuck on a dead node)",
    )
    grace_period_s: int | None = Field(
        default=None, ge=0, le=3600, description="Termination grace (default: the pod's)"
    )


def stuck(pod: PodInfo) -> bool:
    return (
        pod.deleting_since is not None
        or pod.phase in ("Unknown", "Failed")
        or pod.waiting_reason in STUCK_REASONS
    )


def pod_targets(inventory: Inventory, config: Any) -> Sequence[Target]:
    """Stuck pods of the watched clusters (Terminating, crash-looping, Failed, Unknown)."""
    out = []
    for name in clusters_of(inventory):
        w = current(name)
        if w is None:
            continue
        for pod in sorted(w.state.pods.values(), key=lambda p: p.key):
            if stuck(pod):
                node = inventory_name(pod.node, inventory.nodes) if pod.node else None
                out.append(
                    Target("pod", pod.key, node=node, attrs={"cluster": name, "uid": pod.uid})
                )
    return out


async def _read_pod(v1: client.CoreV1Api, key: str, limit_s: float) -> PodInfo | None:
    ns, _, name = key.partition("/")
    try:
        return parse_pod(
            await raw_json(
                v1.read_namespaced_pod(name, ns, _preload_content=False, _request_timeout=limit_s)
            )
        )
    except sdk.ApiException as exc:
        if exc.status == 404:
            return None
        raise


async def preview_delete(ctx: ActionContext, target: Target, inputs: Any) -> Preview:
    inp = inputs if isinstance(inputs, DeletePodInputs) else DeletePodInputs()
    async with cluster_api(ctx, target) as (v1, api, ref, cfg):
        pod = await _read_pod(v1, target.name, cfg.request_timeout_s)
        where = describe_api(api, ref)
    if pod is None:
        return Preview((), refuse=f"pod {target.name} is already gone")
    grace = 0 if inp.force else inp.grace_period_s
    grace_text = "the pod's own" if grace is None else f"{grace}s"
    lines = (
        f"DELETE /api/v1/namespaces/{pod.namespace}/pods/{pod.name} "
        f"(precondition uid {pod.uid}, grace {grace_text}) on {where}",
        f"now: {pod.status_text} on {pod.node or 'no node'}"
        + (f", owner {pod.owner_kind}/{pod.owner_name}" if pod.owner_kind else ""),
    )
    warnings = []
    if pod.owner_kind is None:
        warnings.append("no controller manages this pod: it will not be recreated")
    if inp.force:
        warnings.append(
            "force: the API forgets the pod at once; if its node is alive its "
            "containers may keep running until the kubelet notices"
        )
    return Preview(lines, tuple(warnings))


async def execute_delete(ctx: ActionContext, target: Target, inputs: Any) -> Outcome:
    inp = inputs if isinstance(inputs, DeletePodInputs) else DeletePodInputs()
    ns, _, name = target.name.partition("/")
    async with cluster_api(ctx, target) as (v1, _a, _r, cfg):
        pod = await _read_pod(v1, target.name, cfg.request_timeout_s)
        if pod is None:
            return Outcome(True, f"{target.name} was already gone")
        body: dict[str, Any] = {"preconditions": {"uid": pod.uid}}
        grace = 0 if inp.force else inp.grace_period_s
        kwargs: dict[str, Any] = {} if grace is None else {"grace_period_seconds": grace}
        if grace is not None:
            body["gracePeriodSeconds"] = grace
        try:
            await raw_json(
                v1.delete_namespaced_pod(
                    name,
                    ns,
                    body=body,  # type: ignore[arg-type]
                    _preload_content=False,
                    _request_timeout=cfg.request_timeout_s,
                    **kwargs,
                )
            )
        except sdk.ApiException as exc:
            if exc.status == 404:
                return Outcome(True, f"{target.name} was already gone")
            if exc.status == 409:
                return Outcome(
                    False, f"{target.name} was replaced by a new pod (uid changed): nothing deleted"
                )
            raise
    return Outcome(
        True,
        f"delete of {target.name} accepted (grace {grace if grace is not None else 'default'})",
    )


async def verify_delete(ctx: ActionContext, target: Target, inputs: Any, o: Outcome) -> Outcome:
    inp = inputs if isinstance(inputs, DeletePodInputs) else DeletePodInputs()
    limit = min(VERIFY_S, (0 if inp.force else (inp.grace_period_s or 20)) + 5.0)
    deadline = time.monotonic() + limit
    async with cluster_api(ctx, target) as (v1, _a, _r, cfg):
        while True:
            pod = await _read_pod(v1, target.name, cfg.request_timeout_s)
            if pod is None or (target.attrs.get("uid") and pod.uid != target.attrs["uid"]):
                return Outcome(True, f"{target.name} is gone")
            if time.monotonic() >= deadline:
                hint = "" if inp.force else "; its node may be down: delete with force"
                return Outcome(
                    False, f"{target.name} still {pod.status_text} after {limit:g}s{hint}"
                )
            await asyncio.sleep(0.25)


DELETE_POD = ActionSpec(
    id="kubernetes.delete_pod",
    label="Delete stuck pod (Kubernetes)",
    target_kind="pod",
    targets=pod_targets,
    preview=preview_delete,
    execute=execute_delete,
    verify=verify_delete,
    inputs=DeletePodInputs,
    destructive=True,
    role=Role.OPERATOR,
    timeout=90.0,
    description="Deletes a Terminating, crash-looping or failed pod (force: grace 0).",
)
