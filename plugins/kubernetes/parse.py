"""Pure parsers: Kubernetes API JSON (Node, Pod, Event, PodDisruptionBudget, Status).

No I/O here. The collectors get raw JSON from kubernetes-asyncio (lists read
with ``_preload_content=False``, watch events' ``raw_object``) and turn it into
these frozen records. Parsers raise only ``console.plugin.ParseError``; a
field that is missing or odd becomes ``None`` (unknown), never a zero.
"""

from __future__ import annotations

import calendar
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from console.plugin import ParseError

__all__ = ["ParseError"]  # re-exported for the collectors

GPU = "nvidia.com/gpu"
MIG_PREFIX = "nvidia.com/mig-"

# Annotations the console writes when it cordons a node, so "why and by whom"
# survives the console and is visible to kubectl users (`kubectl describe node`).
ANN_REASON = "dcconsole.io/cordon-reason"
ANN_BY = "dcconsole.io/cordoned-by"
ANN_AT = "dcconsole.io/cordoned-at"

UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"

# Node conditions where "True" means trouble; Ready is the opposite. Unknown types
# (node-problem-detector's KernelDeadlock, GPU checks) follow the NPD convention:
# True is a problem, except the few known to be good news.
NEGATIVE_CONDITIONS = frozenset(
    {"MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable"}
)
POSITIVE_CONDITIONS = frozenset({"Ready", "EtcdIsVoter"})


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def parse_time(value: Any) -> float | None:
    """RFC 3339 (``2025-03-19T20:41:16Z``, with fractions or an offset) to epoch seconds."""
    if not isinstance(value, str):
        return None
    m = re.match(
        r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$", value
    )
    if not m:
        return None
    try:
        base = calendar.timegm((*(int(m.group(i)) for i in range(1, 7)), 0, 0, 0))
    except (ValueError, OverflowError):
        return None
    frac = float(m.group(7)) if m.group(7) else 0.0
    zone = m.group(8)
    offset = 0
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset = sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return base + frac - offset


def format_time(ts: float) -> str:
    """Epoch seconds as the API writes them (``2025-03-19T20:41:16Z``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def parse_count(value: Any) -> int | None:
    """A count-like quantity (``"8"``, ``8``, ``"2k"``) as an int; odd values are unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if not isinstance(value, str):
        return None
    m = re.fullmatch(r"(\d+)(k|M|G|Ki|Mi|Gi)?", value.strip())
    if not m:
        return None
    mult = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    return int(m.group(1)) * mult[m.group(2)]


def _gpu_resources(resources: Mapping[str, Any]) -> dict[str, int]:
    """``nvidia.com/gpu`` and ``nvidia.com/mig-*`` counts from a resource map."""
    out: dict[str, int] = {}
    for key, raw in resources.items():
        if key == GPU or key.startswith(MIG_PREFIX):
            n = parse_count(raw)
            if n is not None:
                out[key] = n
    return out


def _object(data: Any, kind: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ParseError(f"a {kind} must be a JSON object, got {type(data).__name__}")
    meta = data.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        raise ParseError(f"a {kind} without metadata.name")
    if "kind" in data and data["kind"] not in (kind, None):
        raise ParseError(f"expected a {kind}, got kind {data['kind']!r}")
    return data


def _rv(meta: Mapping[str, Any]) -> str | None:
    raw = meta.get("resourceVersion")
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return str(raw)
    return _str(raw)


def items_of(data: Any, kind: str) -> tuple[list[Any], str | None, str | None]:
    """(items, list resourceVersion, continue token) of a ``<Kind>List`` or a kubectl ``List``."""
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"a {kind}List is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ParseError(f"a {kind}List must be a JSON object")
    if data.get("kind") not in (f"{kind}List", "List", None):
        raise ParseError(f"expected a {kind}List, got kind {data.get('kind')!r}")
    items = data.get("items")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise ParseError(f"{kind}List.items is not a list")
    meta = _dict(data.get("metadata"))
    return items, _rv(meta), _str(meta.get("continue"))


# --------------------------------------------------------------------------- nodes


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
    obj = _object(data, "Node")
    meta, spec, status = obj["metadata"], _dict(obj.get("spec")), _dict(obj.get("status"))
    labels = {str(k): str(v) for k, v in _dict(meta.get("labels")).items()}
    annotations = {str(k): str(v) for k, v in _dict(meta.get("annotations")).items()}
    taints = []
    for raw in spec.get("taints") or []:
        if isinstance(raw, dict) and isinstance(raw.get("key"), str):
            taints.append(
                Taint(
                    raw["key"],
                    _str(raw.get("value")),
                    _str(raw.get("effect")),
                    parse_time(raw.get("timeAdded")),
                )
            )
    conditions = []
    for raw in status.get("conditions") or []:
        if isinstance(raw, dict) and isinstance(raw.get("type"), str):
            conditions.append(
                Condition(
                    raw["type"],
                    _str(raw.get("status")),
                    _str(raw.get("reason")),
                    _str(raw.get("message")),
                    parse_time(raw.get("lastTransitionTime")),
                )
            )
    return NodeInfo(
        name=meta["name"],
        uid=_str(meta.get("uid")),
        resource_version=_rv(meta),
        labels=labels,
        annotations=annotations,
        unschedulable=spec.get("unschedulable") is True,
        taints=tuple(taints),
        conditions=tuple(conditions),
        capacity=_gpu_resources(_dict(status.get("capacity"))),
        allocatable=_gpu_resources(_dict(status.get("allocatable"))),
        kubelet=_str(_dict(status.get("nodeInfo")).get("kubeletVersion")),
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


# --------------------------------------------------------------------------- pods


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
    res = _dict(_dict(container).get("resources"))
    # Extended resources cannot be overcommitted: a limit alone is also the request.
    merged = {**_dict(res.get("limits")), **_dict(res.get("requests"))}
    return _gpu_resources(merged)


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
    obj = _object(data, "Pod")
    meta, spec, status = obj["metadata"], _dict(obj.get("spec")), _dict(obj.get("status"))
    namespace = _str(meta.get("namespace")) or "default"
    owner_kind = owner_name = None
    for ref in meta.get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller") is True:
            owner_kind, owner_name = _str(ref.get("kind")), _str(ref.get("name"))
    annotations = _dict(meta.get("annotations"))
    sched_reason = sched_msg = None
    for cond in status.get("conditions") or []:
        if (
            isinstance(cond, dict)
            and cond.get("type") == "PodScheduled"
            and cond.get("status") == "False"
        ):
            sched_reason, sched_msg = _str(cond.get("reason")), _str(cond.get("message"))
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
            cs = _dict(cs)
            n = cs.get("restartCount")
            if isinstance(n, int) and not isinstance(n, bool):
                restarts += n
            w = _str(_dict(_dict(cs.get("state")).get("waiting")).get("reason"))
            if waiting is None and w is not None:
                waiting = w
    grace = spec.get("terminationGracePeriodSeconds")
    return PodInfo(
        namespace=namespace,
        name=meta["name"],
        uid=_str(meta.get("uid")),
        resource_version=_rv(meta),
        node=_str(spec.get("nodeName")),
        phase=_str(status.get("phase")),
        created=parse_time(meta.get("creationTimestamp")),
        deleting_since=parse_time(meta.get("deletionTimestamp")),
        owner_kind=owner_kind,
        owner_name=owner_name,
        mirror="kubernetes.io/config.mirror" in annotations,
        empty_dir=any(isinstance(v, dict) and "emptyDir" in v for v in spec.get("volumes") or []),
        labels={str(k): str(v) for k, v in _dict(meta.get("labels")).items()},
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


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class EventInfo:
    namespace: str
    name: str
    reason: str | None
    message: str | None
    type: str | None
    object_kind: str | None
    object_namespace: str | None
    object_name: str | None
    object_uid: str | None
    count: int | None
    last_seen: float | None


def parse_event(data: Any) -> EventInfo:
    obj = _object(data, "Event")
    meta, inv = obj["metadata"], _dict(obj.get("involvedObject"))
    last = (
        parse_time(obj.get("lastTimestamp"))
        or parse_time(_dict(obj.get("series")).get("lastObservedTime"))
        or parse_time(obj.get("eventTime"))
        or parse_time(obj.get("firstTimestamp"))
    )
    count = obj.get("count")
    return EventInfo(
        namespace=_str(meta.get("namespace")) or "default",
        name=meta["name"],
        reason=_str(obj.get("reason")),
        message=_str(obj.get("message")),
        type=_str(obj.get("type")),
        object_kind=_str(inv.get("kind")),
        object_namespace=_str(inv.get("namespace")),
        object_name=_str(inv.get("name")),
        object_uid=_str(inv.get("uid")),
        count=count if isinstance(count, int) and not isinstance(count, bool) else None,
        last_seen=last,
    )


def parse_event_list(data: Any) -> tuple[list[EventInfo], str | None]:
    items, rv, _ = items_of(data, "Event")
    return [parse_event(i) for i in items], rv


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


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_pdb(data: Any) -> PdbInfo:
    obj = _object(data, "PodDisruptionBudget")
    meta, spec, status = obj["metadata"], _dict(obj.get("spec")), _dict(obj.get("status"))
    sel = _dict(_dict(spec.get("selector")).get("matchLabels"))
    return PdbInfo(
        namespace=_str(meta.get("namespace")) or "default",
        name=meta["name"],
        selector={str(k): str(v) for k, v in sel.items()},
        min_available=_int_or_str(spec.get("minAvailable")),
        max_unavailable=_int_or_str(spec.get("maxUnavailable")),
        disruptions_allowed=_int(status.get("disruptionsAllowed")),
        current_healthy=_int(status.get("currentHealthy")),
        desired_healthy=_int(status.get("desiredHealthy")),
        expected_pods=_int(status.get("expectedPods")),
    )


def parse_pdb_list(data: Any) -> list[PdbInfo]:
    items, _, _ = items_of(data, "PodDisruptionBudget")
    return [parse_pdb(i) for i in items]


# --------------------------------------------------------------------------- Status


@dataclass(frozen=True, slots=True)
class ApiStatus:
    """A ``v1 Status`` as the API answers an error (429 eviction, 404, 409, 410 ...)."""

    code: int | None
    reason: str | None
    message: str | None
    causes: tuple[tuple[str | None, str | None], ...] = ()

    def pdb_block(self, namespace: str) -> str | None:
        """``blocked by PDB ns/name (...)`` for an eviction refused by a disruption budget."""
        if self.code != 429:
            return None
        for reason, message in self.causes:
            if reason == "DisruptionBudget" and message:
                m = re.search(r"disruption budget (\S+) (.*)$", message)
                if m:
                    return f"blocked by PDB {namespace}/{m.group(1)} ({m.group(2)})"
                return f"blocked by a PDB: {message}"
        if self.message and "disruption budget" in self.message:
            return f"blocked by a PDB: {self.message}"
        return None


def parse_status(body: Any) -> ApiStatus:
    """A Status from its JSON text or object."""
    if isinstance(body, (str, bytes)):
        try:
            body = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"a Status is not JSON: {exc}") from None
    if not isinstance(body, dict) or body.get("kind") != "Status":
        raise ParseError("not a v1 Status object")
    causes = []
    for c in _dict(body.get("details")).get("causes") or []:
        if isinstance(c, dict):
            causes.append((_str(c.get("reason")), _str(c.get("message"))))
    return ApiStatus(
        _int(body.get("code")), _str(body.get("reason")), _str(body.get("message")), tuple(causes)
    )


# --------------------------------------------------------------------------- scheduling


_COUNTED = re.compile(r"^(\d+)\s+(.*)$")


def scheduling_reasons(message: str | None) -> list[tuple[int | None, str]]:
    """The scheduler's per-node reasons: ``0/5 nodes are available: 2 Insufficient
    nvidia.com/gpu, 3 node(s) were unschedulable.`` -> [(2, ...), (3, ...)]."""
    if not message:
        return []
    text = message.split(" preemption:", 1)[0].strip()
    if "are available:" in text:
        text = text.split("are available:", 1)[1]
    text = text.strip().rstrip(".")
    out: list[tuple[int | None, str]] = []
    for part in re.split(r",\s+(?=\d+\s)", text):
        part = part.strip()
        if not part:
            continue
        m = _COUNTED.match(part)
        out.append((int(m.group(1)), m.group(2).strip()) if m else (None, part))
    return out


def short_reason(message: str | None) -> str | None:
    """One reason to group pending pods by: an ``Insufficient ...`` first, else the commonest."""
    reasons = scheduling_reasons(message)
    if not reasons:
        return None
    insufficient = [r for n, r in reasons if r.startswith("Insufficient")]
    if insufficient:
        return " + ".join(insufficient)
    return max(reasons, key=lambda r: r[0] or 0)[1]
