"""The lab's disruption controller and taint manager, as kube-controller-manager runs them.

- PodDisruptionBudgets (``pkg/controller/disruption``): ``desiredHealthy``
  from an integer ``minAvailable`` (expected pods = the pods the selector
  matches), or from a percentage ``minAvailable`` / any ``maxUnavailable``
  scaled on the controllers' replicas with ``GetScaledValueFromIntOrPercent(...,
  roundUp=true)`` (7 pods at ``minAvailable: 50%`` need 4). ``disruptionsAllowed``
  is ``currentHealthy - desiredHealthy``, 0 when negative or nothing is expected.
- Taint-based eviction (``pkg/controller/tainteviction``): a pod on a node with
  a ``NoExecute`` taint it does not tolerate is deleted at once; one it
  tolerates for ``tolerationSeconds`` (the DefaultTolerationSeconds admission
  plugin gives every pod 300 s for ``not-ready`` and ``unreachable``) is
  deleted when that time has passed since the taint was seen, with the
  ``DisruptionTarget`` condition and a ``TaintManagerEviction`` event. A pod
  tolerating forever (DaemonSets) stays. On a dead kubelet the deletion never
  completes: the pod stays Terminating while its controller replaces it.
- MarkPodsNotReady (node lifecycle controller): pods on a node that is not
  Ready lose their Ready condition, so they stop counting as healthy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plugins.kubernetes.parse import format_time

if TYPE_CHECKING:  # pragma: no cover
    from plugins.kubernetes.lab_api import ApiStore


def scaled_value(value: Any, total: int) -> int:
    """``intstr.GetScaledValueFromIntOrPercent(value, total, roundUp=true)``.

    Raises:
        ValueError: neither an integer nor an ``N%`` string (the controller's sync fails).
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.endswith("%"):
        percent = int(value[:-1])
        return -(-percent * total // 100)  # ceil without floats
    raise ValueError(f"invalid value for IntOrString: {value!r}")


@dataclass(frozen=True, slots=True)
class Budget:
    """A PDB's numbers as the disruption controller writes them to its status."""

    desired: int
    healthy: int
    expected: int

    @property
    def allowed(self) -> int:
        allowed = self.healthy - self.desired
        return allowed if self.expected > 0 and allowed > 0 else 0


def budget(spec: dict[str, Any], matched: int, healthy: int, scale: int) -> Budget:
    """``getExpectedPodCount`` of the disruption controller.

    Args:
        spec: the PDB's spec.
        matched: pods its selector matches (the expected count of an integer minAvailable).
        healthy: of those, the Ready ones not being deleted.
        scale: replicas of the controllers owning them (the base of percentages).

    Raises:
        ValueError: an invalid minAvailable / maxUnavailable.
    """
    if spec.get("maxUnavailable") is not None:
        unavailable = scaled_value(spec["maxUnavailable"], scale)
        return Budget(max(0, scale - unavailable), healthy, scale)
    min_available = spec.get("minAvailable")
    if isinstance(min_available, int) and not isinstance(min_available, bool):
        return Budget(min_available, healthy, matched)
    if min_available is not None:
        return Budget(scaled_value(min_available, scale), healthy, scale)
    return Budget(0, healthy, 0)


def tolerates(toleration: dict[str, Any], taint: dict[str, Any]) -> bool:
    """``Toleration.ToleratesTaint``: effect, then key/operator/value."""
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("key") and toleration["key"] != taint.get("key"):
        return False
    if toleration.get("operator") == "Exists":
        return True
    return bool(toleration.get("key")) and toleration.get("value", "") == taint.get("value", "")


def toleration_window(
    tolerations: list[dict[str, Any]], taints: list[dict[str, Any]]
) -> float | None:
    """Seconds a pod may stay on a node with these NoExecute taints; None: forever.

    Each taint takes the first toleration matching it; the window is the
    smallest ``tolerationSeconds`` of those (negative counts as 0). A taint
    no toleration matches means 0: evicted at once.
    """
    used = []
    for taint in taints:
        match = next((t for t in tolerations if tolerates(t, taint)), None)
        if match is None:
            return 0.0
        used.append(match)
    seconds = [t["tolerationSeconds"] for t in used if t.get("tolerationSeconds") is not None]
    if not seconds:
        return None
    return float(max(0, min(seconds)))


def no_execute(node: dict[str, Any] | None) -> list[dict[str, Any]]:
    if node is None:
        return []
    return [t for t in node["spec"].get("taints") or [] if t.get("effect") == "NoExecute"]


class TaintEviction:
    """Which pods the taint manager deletes now; remembers when it first saw each tainted pod."""

    def __init__(self) -> None:
        self.since: dict[str, float] = {}

    def due(
        self, pods: list[dict[str, Any]], nodes: dict[str, dict[str, Any]], now: float
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for pod in pods:
            meta = pod["metadata"]
            taints = no_execute(nodes.get(pod["spec"].get("nodeName") or ""))
            if "deletionTimestamp" in meta or not taints:
                continue
            window = toleration_window(pod["spec"].get("tolerations") or [], taints)
            if window is None:
                continue
            key = f"{meta['namespace']}/{meta['name']}"
            seen.add(key)
            start = self.since.setdefault(key, now)
            if now >= start + window:
                out.append(pod)
        # A taint gone (node Ready again) or a pod gone cancels the scheduled eviction.
        for key in set(self.since) - seen:
            del self.since[key]
        return out


def set_condition(pod: dict[str, Any], cond: dict[str, Any], now: float) -> bool:
    """``UpdatePodCondition``: set one condition, keeping lastTransitionTime unless it changed."""
    conds = pod["status"].setdefault("conditions", [])
    old = next((c for c in conds if c["type"] == cond["type"]), None)
    if old is not None and all(old.get(k) == v for k, v in cond.items()):
        return False
    stamp = (
        old["lastTransitionTime"]
        if old is not None and old.get("status") == cond["status"]
        else format_time(now)
    )
    new = {"lastProbeTime": None, **cond, "lastTransitionTime": stamp}
    if old is None:
        conds.append(new)
    else:
        conds[conds.index(old)] = new
    return True


def disruption_target(pod: dict[str, Any], reason: str, message: str, now: float) -> None:
    set_condition(
        pod,
        {"type": "DisruptionTarget", "status": "True", "reason": reason, "message": message},
        now,
    )


def sync_pod_ready(pod: dict[str, Any], node_ready: bool, now: float) -> bool:
    """A running pod's Ready condition: its containers' readiness while the node is Ready,
    False otherwise (MarkPodsNotReady). True when it changed."""
    if pod["status"].get("phase") != "Running" or "deletionTimestamp" in pod["metadata"]:
        return False
    containers = pod["status"].get("containerStatuses") or []
    ready = node_ready and bool(containers) and all(c.get("ready") for c in containers)
    current = next((c for c in pod["status"].get("conditions") or [] if c["type"] == "Ready"), None)
    want = "True" if ready else "False"
    if current is not None and current.get("status") == want:
        return False
    return set_condition(pod, {"type": "Ready", "status": want}, now)


def pdb_status(old: dict[str, Any], b: Budget | None, now: float) -> dict[str, Any]:
    """The PDB status for these numbers; None: the sync failed (an invalid spec).

    A failed sync writes what the controller's ``failSafe`` does: no disruption
    allowed, condition ``SyncFailed``.
    """
    allowed = b.allowed if b is not None else 0
    if b is None:
        reason, message = "SyncFailed", "invalid minAvailable or maxUnavailable"
    elif allowed > 0:
        reason, message = "SufficientPods", ""
    else:
        reason, message = "InsufficientPods", ""
    status = "True" if allowed > 0 else "False"
    prev = next(
        (c for c in old.get("conditions") or [] if c.get("type") == "DisruptionAllowed"), None
    )
    stamp = (
        prev["lastTransitionTime"]
        if prev is not None and prev.get("status") == status
        else format_time(now)
    )
    return {
        "currentHealthy": b.healthy if b is not None else old.get("currentHealthy", 0),
        "desiredHealthy": b.desired if b is not None else old.get("desiredHealthy", 0),
        "disruptionsAllowed": allowed,
        "expectedPods": b.expected if b is not None else old.get("expectedPods", 0),
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "DisruptionAllowed",
                "status": status,
                "reason": reason,
                "message": message,
                "observedGeneration": 1,
                "lastTransitionTime": stamp,
            }
        ],
    }


class DisruptionMixin:
    """The PDB half of ``ClusterSim`` (it provides ``store``, ``workloads`` and ``pods``)."""

    store: ApiStore
    workloads: list[Any]

    def pods(self) -> list[dict[str, Any]]:  # pragma: no cover - ClusterSim's
        raise NotImplementedError

    def selected(self, selector: dict[str, str], ns: str) -> list[dict[str, Any]]:
        return [
            p
            for p in self.pods()
            if p["metadata"]["namespace"] == ns
            and all(p["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())
        ]

    @staticmethod
    def is_healthy(pod: dict[str, Any]) -> bool:
        return (
            "deletionTimestamp" not in pod["metadata"]
            and pod["status"].get("phase") == "Running"
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in pod["status"].get("conditions", [])
            )
        )

    def healthy(self, selector: dict[str, str], ns: str) -> list[dict[str, Any]]:
        return [p for p in self.selected(selector, ns) if self.is_healthy(p)]

    def budget_of(self, pdb: dict[str, Any]) -> Budget:
        """The PDB's numbers now. Raises ValueError for an invalid spec."""
        ns = pdb["metadata"]["namespace"]
        sel = pdb["spec"]["selector"]["matchLabels"]
        pods = self.selected(sel, ns)
        owners = {p["metadata"].get("labels", {}).get("app") for p in pods}
        scale = sum(w.replicas for w in self.workloads if w.namespace == ns and w.name in owners)
        healthy = sum(1 for p in pods if self.is_healthy(p))
        return budget(pdb["spec"], len(pods), healthy, scale)

    def pdb_status(self, now: float) -> None:
        for pdb in list(self.store.objects["pdbs"].values()):
            try:
                b: Budget | None = self.budget_of(pdb)
            except ValueError:
                b = None
            st = pdb_status(pdb["status"], b, now)
            if pdb["status"] != st:
                pdb["status"] = st
                self.store.put("pdbs", pdb)

    def pdbs_for(self, pod: dict[str, Any]) -> list[dict[str, Any]]:
        labels = pod["metadata"].get("labels", {})
        return [
            d
            for d in self.store.objects["pdbs"].values()
            if d["metadata"]["namespace"] == pod["metadata"]["namespace"]
            and all(labels.get(k) == v for k, v in d["spec"]["selector"]["matchLabels"].items())
        ]
