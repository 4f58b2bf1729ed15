"""Kubernetes Pods (with their effective GPU requests) and the PodDisruptionBudgets over them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from plugins.kubernetes.parse import (
    GPU,
    api_object,
    as_dict,
    gpu_resources,
    items_of,
    nonempty_str,
    parse_time,
    plain_int,
    resource_version_of,
)


@dataclass(frozen=True, slots=True)
class PodInfo:
    namespace: str
    name: str
    uid: str | None = None
    resource_version: str | None = None
    node: str | None = None
    phase: str | None = None
    created: float | None = None
    deleting_since: float | None = None
    owner_kind: str | None = None
    owner_name: str | None = None
    mirror: bool = False
    """A static pod mirrored by the kubelet: the API cannot evict it."""
    empty_dir: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    gpus: Mapping[str, int] = field(default_factory=dict)
    """Effective GPU requests (``nvidia.com/gpu``, ``nvidia.com/mig-*``) of the pod."""
    unschedulable_reason: str | None = None
    """PodScheduled=False reason (``Unschedulable``) and message, when not scheduled."""
    unschedulable_message: str | None = None
    waiting_reason: str | None = None
    """The first container's waiting reason (CrashLoopBackOff, ContainerCreating ...)."""
    ready: bool | None = None
    restarts: int | None = None
    grace_s: int | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def terminated(self) -> bool:
        return self.phase in ("Succeeded", "Failed")

    @property
    def daemonset(self) -> bool:
        return self.owner_kind == "DaemonSet"

    @property
    def gpu(self) -> int:
        return self.gpus.get(GPU, 0)

    @property
    def status_text(self) -> str:
        """What ``kubectl get pods`` shows in STATUS."""
        if self.deleting_since is not None:
            return "Terminating"
        if self.waiting_reason and self.phase in ("Pending", "Running"):
            return self.waiting_reason
        return self.phase or "Unknown"


def _requests(container: Any) -> dict[str, int]:
    res = as_dict(as_dict(container).get("resources"))
    # Extended resources cannot be overcommitted: a limit alone is also the request.
    merged = {**as_dict(res.get("limits")), **as_dict(res.get("requests"))}
    return gpu_resources(merged)


def pod_gpu_requests(spec: Mapping[str, Any]) -> dict[str, int]:
    """The scheduler's effective request: max(sum of containers, largest init container)."""
    total: dict[str, int] = {}
    for c in spec.get("containers") or []:
        for k, v in _requests(c).items():
            total[k] = total.get(k, 0) + v
    for c in spec.get("initContainers") or []:
        for k, v in _requests(c).items():
            total[k] = max(total.get(k, 0), v)
    return {k: v for k, v in total.items() if v > 0}


def parse_pod(data: Any) -> PodInfo:
    obj = api_object(data, "Pod")
    meta, spec, status = obj["metadata"], as_dict(obj.get("spec")), as_dict(obj.get("status"))
    namespace = nonempty_str(meta.get("namespace")) or "default"
    owner_kind = owner_name = None
    for ref in meta.get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller") is True:
            owner_kind, owner_name = nonempty_str(ref.get("kind")), nonempty_str(ref.get("name"))
    annotations = as_dict(meta.get("annotations"))
    sched_reason = sched_msg = None
    for cond in status.get("conditions") or []:
        if (
            isinstance(cond, dict)
            and cond.get("type") == "PodScheduled"
            and cond.get("status") == "False"
        ):
            sched_reason, sched_msg = (
                nonempty_str(cond.get("reason")),
                nonempty_str(cond.get("message")),
            )
    ready = None
    for cond in status.get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            ready = cond.get("status") == "True"
    waiting = None
    restarts: int | None = None
    statuses = status.get("containerStatuses")
    if isinstance(statuses, list):
        restarts = 0
        for cs in statuses:
            cs = as_dict(cs)
            n = cs.get("restartCount")
            if isinstance(n, int) and not isinstance(n, bool):
                restarts += n
            w = nonempty_str(as_dict(as_dict(cs.get("state")).get("waiting")).get("reason"))
            if waiting is None and w is not None:
                waiting = w
    grace = spec.get("terminationGracePeriodSeconds")
    return PodInfo(
        namespace=namespace,
        name=meta["name"],
        uid=nonempty_str(meta.get("uid")),
        resource_version=resource_version_of(meta),
        node=nonempty_str(spec.get("nodeName")),
        phase=nonempty_str(status.get("phase")),
        created=parse_time(meta.get("creationTimestamp")),
        deleting_since=parse_time(meta.get("deletionTimestamp")),
        owner_kind=owner_kind,
        owner_name=owner_name,
        mirror="kubernetes.io/config.mirror" in annotations,
        empty_dir=any(isinstance(v, dict) and "emptyDir" in v for v in spec.get("volumes") or []),
        labels={str(k): str(v) for k, v in as_dict(meta.get("labels")).items()},
        gpus=pod_gpu_requests(spec),
        unschedulable_reason=sched_reason,
        unschedulable_message=sched_msg,
        waiting_reason=waiting,
        ready=ready,
        restarts=restarts,
        grace_s=grace if isinstance(grace, int) and not isinstance(grace, bool) else None,
    )


def parse_pod_list(data: Any) -> tuple[list[PodInfo], str | None]:
    items, rv, _ = items_of(data, "Pod")
    return [parse_pod(i) for i in items], rv


# --------------------------------------------------------------------------- PDBs


@dataclass(frozen=True, slots=True)
class PdbInfo:
    namespace: str
    name: str
    selector: Mapping[str, str]
    min_available: int | str | None
    max_unavailable: int | str | None
    disruptions_allowed: int | None
    current_healthy: int | None
    desired_healthy: int | None
    expected_pods: int | None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def matches(self, pod: PodInfo) -> bool:
        return (
            pod.namespace == self.namespace
            and bool(self.selector)
            and all(pod.labels.get(k) == v for k, v in self.selector.items())
        )


def _int_or_str(value: Any) -> int | str | None:
    if isinstance(value, bool):
        return None
    return value if isinstance(value, int | str) else None


def parse_pdb(data: Any) -> PdbInfo:
    obj = api_object(data, "PodDisruptionBudget")
    meta, spec, status = obj["metadata"], as_dict(obj.get("spec")), as_dict(obj.get("status"))
    sel = as_dict(as_dict(spec.get("selector")).get("matchLabels"))
    return PdbInfo(
        namespace=nonempty_str(meta.get("namespace")) or "default",
        name=meta["name"],
        selector={str(k): str(v) for k, v in sel.items()},
        min_available=_int_or_str(spec.get("minAvailable")),
        max_unavailable=_int_or_str(spec.get("maxUnavailable")),
        disruptions_allowed=plain_int(status.get("disruptionsAllowed")),
        current_healthy=plain_int(status.get("currentHealthy")),
        desired_healthy=plain_int(status.get("desiredHealthy")),
        expected_pods=plain_int(status.get("expectedPods")),
    )


def parse_pdb_list(data: Any) -> list[PdbInfo]:
    items, _, _ = items_of(data, "PodDisruptionBudget")
    return [parse_pdb(i) for i in items]
