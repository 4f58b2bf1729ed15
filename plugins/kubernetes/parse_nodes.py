"""Kubernetes Nodes: conditions, taints, GPU resources and the GPU Operator's labels."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from console.plugin import ParseError
from plugins.kubernetes.parse import (
    GPU,
    MIG_PREFIX,
    api_object,
    as_dict,
    gpu_resources,
    items_of,
    nonempty_str,
    parse_count,
    parse_time,
    resource_version_of,
)

# Node conditions where "True" means trouble; Ready is the opposite. Unknown types
# (node-problem-detector's KernelDeadlock, GPU checks) follow the NPD convention:
# True is a problem, except the few known to be good news.
NEGATIVE_CONDITIONS = frozenset(
    {"MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable"}
)
POSITIVE_CONDITIONS = frozenset({"Ready", "EtcdIsVoter"})


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: str | None
    reason: str | None = None
    message: str | None = None
    since: float | None = None

    @property
    def bad(self) -> bool:
        if self.type in POSITIVE_CONDITIONS:
            return self.status != "True"
        return self.status == "True"


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str | None
    effect: str | None
    since: float | None = None

    def __str__(self) -> str:
        value = f"={self.value}" if self.value else ""
        return f"{self.key}{value}:{self.effect or '?'}"


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """One Node, as much as the console needs."""

    name: str
    uid: str | None = None
    resource_version: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    unschedulable: bool = False
    taints: tuple[Taint, ...] = ()
    conditions: tuple[Condition, ...] = ()
    capacity: Mapping[str, int] = field(default_factory=dict)
    """GPU resources only: ``nvidia.com/gpu`` and ``nvidia.com/mig-*``."""
    allocatable: Mapping[str, int] = field(default_factory=dict)
    kubelet: str | None = None

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)

    @property
    def ready(self) -> bool | None:
        """Ready condition True/False; None when missing or Unknown (kubelet silent)."""
        cond = self.condition("Ready")
        if cond is None or cond.status not in ("True", "False"):
            return None
        return cond.status == "True"

    @property
    def bad_conditions(self) -> tuple[Condition, ...]:
        return tuple(c for c in self.conditions if c.bad)

    @property
    def gpu_capacity(self) -> int | None:
        return self.capacity.get(GPU)

    @property
    def gpu_allocatable(self) -> int | None:
        return self.allocatable.get(GPU)

    @property
    def mig_capacity(self) -> dict[str, int]:
        return {k: v for k, v in self.capacity.items() if k.startswith(MIG_PREFIX)}

    @property
    def mig_allocatable(self) -> dict[str, int]:
        return {k: v for k, v in self.allocatable.items() if k.startswith(MIG_PREFIX)}

    @property
    def gpu_product(self) -> str | None:
        return self.labels.get("nvidia.com/gpu.product")

    @property
    def gpu_count_label(self) -> int | None:
        return parse_count(self.labels.get("nvidia.com/gpu.count"))

    @property
    def mig_strategy(self) -> str | None:
        return self.labels.get("nvidia.com/mig.strategy")

    @property
    def mig_config(self) -> str | None:
        return self.labels.get("nvidia.com/mig.config")

    @property
    def mig_config_state(self) -> str | None:
        return self.labels.get("nvidia.com/mig.config.state")


def parse_node(data: Any) -> NodeInfo:
    obj = api_object(data, "Node")
    meta, spec, status = obj["metadata"], as_dict(obj.get("spec")), as_dict(obj.get("status"))
    labels = {str(k): str(v) for k, v in as_dict(meta.get("labels")).items()}
    annotations = {str(k): str(v) for k, v in as_dict(meta.get("annotations")).items()}
    taints = []
    for raw in spec.get("taints") or []:
        if isinstance(raw, dict) and isinstance(raw.get("key"), str):
            taints.append(
                Taint(
                    raw["key"],
                    nonempty_str(raw.get("value")),
                    nonempty_str(raw.get("effect")),
                    parse_time(raw.get("timeAdded")),
                )
            )
    conditions = []
    for raw in status.get("conditions") or []:
        if isinstance(raw, dict) and isinstance(raw.get("type"), str):
            conditions.append(
                Condition(
                    raw["type"],
                    nonempty_str(raw.get("status")),
                    nonempty_str(raw.get("reason")),
                    nonempty_str(raw.get("message")),
                    parse_time(raw.get("lastTransitionTime")),
                )
            )
    return NodeInfo(
        name=meta["name"],
        uid=nonempty_str(meta.get("uid")),
        resource_version=resource_version_of(meta),
        labels=labels,
        annotations=annotations,
        unschedulable=spec.get("unschedulable") is True,
        taints=tuple(taints),
        conditions=tuple(conditions),
        capacity=gpu_resources(as_dict(status.get("capacity"))),
        allocatable=gpu_resources(as_dict(status.get("allocatable"))),
        kubelet=nonempty_str(as_dict(status.get("nodeInfo")).get("kubeletVersion")),
    )


def parse_node_list(data: Any) -> tuple[list[NodeInfo], str | None]:
    items, rv, _ = items_of(data, "Node")
    return [parse_node(i) for i in items], rv


def parse_labels_fragment(text: str) -> dict[str, str]:
    """Node labels as ``kubectl get node -o jsonpath={.metadata.labels} | jq .`` prints them.

    Accepts the whole object or a fragment of ``"key": "value"`` lines (as the
    GPU Operator docs publish them).
    """
    body = text.strip().rstrip(",")
    if not body.startswith("{"):
        body = "{" + body
    if not body.endswith("}"):
        body = body + "}"
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise ParseError(f"node labels are not JSON: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ParseError("node labels must map names to strings")
    return {str(k): v for k, v in data.items()}
