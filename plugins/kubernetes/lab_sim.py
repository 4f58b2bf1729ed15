"""The lab's cluster model: nodes coupled to the simulated hosts, workloads, a scheduler.

- A node is Ready while its SimHost is powered; powered off, the node goes
  Ready=Unknown ("Kubelet stopped posting node status.") with the unreachable
  taints, and its pods cannot finish terminating (a stuck pod).
- Deployments keep their replicas; the scheduler binds pending pods to Ready,
  schedulable (not cordoned) nodes with free GPUs, answering the real
  ``0/N nodes are available: ...`` message and a FailedScheduling event.
- Evictions honour PodDisruptionBudgets (429 with the real Status body).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from plugins.kubernetes.lab_api import ApiStore
from plugins.kubernetes.lab_disruption import (
    DisruptionMixin,
    TaintEviction,
    disruption_target,
    sync_pod_ready,
)
from plugins.kubernetes.lab_objects import (
    event_object,
    node_object,
    pdb_object,
    pod_object,
    uid,
)
from plugins.kubernetes.parse import GPU, format_time, parse_time
from plugins.kubernetes.parse_pods import pod_gpu_requests

MIG_PROFILES = {"A30": ("1g.6gb", 4), "H100": ("1g.10gb", 7), "A100": ("1g.10gb", 7)}
OPERATOR_NS = "gpu-operator"
OPERATOR_DS = (
    "nvidia-driver-daemonset",
    "nvidia-container-toolkit-daemonset",
    "nvidia-device-plugin-daemonset",
    "nvidia-dcgm-exporter",
    "gpu-feature-discovery",
)


@dataclass
class Workload:
    namespace: str
    name: str
    kind: str  # Deployment (via a ReplicaSet) or Job
    replicas: int
    gpus: dict[str, int]
    image: str
    spread: bool = False
    cpu_only: bool = False
    hash: str = ""


class ClusterSim(DisruptionMixin):
    def __init__(
        self,
        name: str,
        members: list[Any],
        store: ApiStore,
        now: float,
        seed: int,
        toleration_s: int = 300,
    ) -> None:
        self.name = name
        self.store = store
        self.toleration_s = toleration_s
        """What the apiserver's DefaultTolerationSeconds gives every pod for the
        ``not-ready`` / ``unreachable`` NoExecute taints (real default 300 s)."""
        self.taint_eviction = TaintEviction()
        self.rng = random.Random(f"{seed}:k8s:{name}")
        self.workloads: list[Workload] = []
        self._last_event: dict[str, tuple[str, float]] = {}
        self._build(members, now)

    def _suffix(self, n: int = 5) -> str:
        return "".join(self.rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(n))

    # ------------------------------------------------------------------ building

    def _build(self, members: list[Any], now: float) -> None:
        created = now - 40 * 86400
        gpu_nodes = [n for n in members if n.hardware.gpu_count and n.role.startswith("gpu")]
        mig_node = (
            gpu_nodes[-1].name if gpu_nodes and gpu_nodes[-1].hardware.gpu_count >= 2 else None
        )
        control = next((n.name for n in members if n.role == "cpu"), None)
        mig_res: str | None = None
        for node in members:
            gpus = node.hardware.gpu_count if node.role.startswith("gpu") else 0
            mig = None
            mig_gpus = 0
            if node.name == mig_node:
                model = node.hardware.gpu_model or ""
                profile, per = next(
                    (v for k, v in MIG_PROFILES.items() if k in model), ("1g.5gb", 7)
                )
                mig_gpus = max(1, gpus // 2)
                mig = {profile: per * mig_gpus}
                mig_res = f"nvidia.com/mig-{profile}"
            obj = node_object(
                node.name,
                created=created,
                gpus=gpus,
                gpu_model=node.hardware.gpu_model,
                mig=mig,
                mig_gpus=mig_gpus,
                control_plane=node.name == control,
                boot=uid("boot", node.name),
                role=node.role,
            )
            self.store.put("nodes", obj)
            self._daemon_pod(
                "kube-system",
                "kube-proxy",
                node.name,
                created,
                "registry.k8s.io/kube-proxy:v1.30.2",
            )
            if gpus:
                for ds in OPERATOR_DS:
                    self._daemon_pod(
                        OPERATOR_NS, ds, node.name, created, f"nvcr.io/nvidia/{ds}:v24.3.0"
                    )
        if control is not None:
            mirror = pod_object(
                "kube-system",
                f"kube-apiserver-{control}",
                created=created,
                image="registry.k8s.io/kube-apiserver:v1.30.2",
                labels={"component": "kube-apiserver"},
                owner=("Node", control, "v1"),
                tolerate_all=True,
            )
            mirror["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "x"}
            self._bind(mirror, control, running=True)
        if gpu_nodes:
            self.workloads.append(
                Workload(
                    "inference",
                    "triton",
                    "Deployment",
                    len(gpu_nodes),
                    {GPU: 1},
                    "nvcr.io/nvidia/tritonserver:24.05-py3",
                    spread=True,
                )
            )
            self.workloads.append(
                Workload("inference", "vllm", "Deployment", 1, {GPU: 2}, "vllm/vllm-openai:v0.5.0")
            )
            biggest = max(n.hardware.gpu_count for n in gpu_nodes)
            self.workloads.append(
                Workload(
                    "ml",
                    "llm-finetune",
                    "Job",
                    1,
                    {GPU: 2 * biggest},
                    "nvcr.io/nvidia/pytorch:24.05-py3",
                )
            )
            self.store.put(
                "pdbs",
                pdb_object(
                    "inference", "triton", {"app": "triton"}, created=created, max_unavailable=1
                ),
            )
            self.store.put(
                "pdbs",
                pdb_object("inference", "vllm", {"app": "vllm"}, created=created, min_available=1),
            )
        if mig_res is not None:
            self.workloads.append(
                Workload(
                    "ml",
                    "notebook",
                    "Deployment",
                    1,
                    {mig_res: 1},
                    "jupyter/pytorch-notebook:latest",
                )
            )
        if any(n.role == "cpu" for n in members):
            self.workloads.append(
                Workload("default", "web", "Deployment", 2, {}, "nginx:1.27", cpu_only=True)
            )
        for w in self.workloads:
            w.hash = self._suffix(9) if w.kind == "Deployment" else ""
        # Settle: schedule and start everything once, as a cluster running for weeks.
        for _ in range(3):
            self.tick(created + 60)
        # The pods started long ago; the pending job has waited a while.
        for pod in list(self.store.objects["pods"].values()):
            if pod["metadata"]["name"].startswith("llm-finetune"):
                pod["metadata"]["creationTimestamp"] = format_time(now - 1500)
                self.store.put("pods", pod)

    def _daemon_pod(self, ns: str, ds: str, node: str, created: float, image: str) -> None:
        pod = pod_object(
            ns,
            f"{ds}-{self._suffix()}",
            created=created,
            image=image,
            labels={"app": ds},
            owner=("DaemonSet", ds, "apps/v1"),
            tolerate_all=True,
        )
        self._bind(pod, node, running=True)

    def _bind(self, pod: dict[str, Any], node: str, running: bool) -> None:
        pod["spec"]["nodeName"] = node
        pod["status"]["conditions"] = [
            {
                "type": "PodScheduled",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": pod["metadata"]["creationTimestamp"],
            }
        ]
        self._set_running(pod, running)
        self.store.put("pods", pod)

    @staticmethod
    def _set_running(
        pod: dict[str, Any], running: bool, waiting: str = "ContainerCreating", restarts: int = 0
    ) -> None:
        c = pod["spec"]["containers"][0]
        state: dict[str, Any] = (
            {"running": {"startedAt": pod["metadata"]["creationTimestamp"]}}
            if running
            else {"waiting": {"reason": waiting}}
        )
        pod["status"]["phase"] = (
            "Running" if running or waiting != "ContainerCreating" else "Pending"
        )
        pod["status"]["containerStatuses"] = [
            {
                "name": c["name"],
                "image": c["image"],
                "imageID": "",
                "ready": running,
                "restartCount": restarts,
                "started": running,
                "state": state,
            }
        ]
        conds = [x for x in pod["status"].get("conditions", []) if x["type"] == "PodScheduled"]
        conds.append(
            {
                "type": "Ready",
                "status": "True" if running else "False",
                "lastProbeTime": None,
                "lastTransitionTime": pod["metadata"]["creationTimestamp"],
            }
        )
        pod["status"]["conditions"] = conds

    # ------------------------------------------------------------------ dynamics

    def pods(self) -> list[dict[str, Any]]:
        return list(self.store.objects["pods"].values())

    def node_ok(self, node: dict[str, Any]) -> bool:
        return any(
            c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"]
        )

    def set_node_health(
        self, name: str, ready: str, reason: str, message: str, now: float, gpu_ok: bool
    ) -> None:
        node = self.store.get("nodes", name)
        if node is None:
            return
        cond = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        changed = False
        if cond["status"] != ready:
            cond.update(
                status=ready, reason=reason, message=message, lastTransitionTime=format_time(now)
            )
            changed = True
        taints = [
            t
            for t in node["spec"].get("taints", [])
            if t["key"] not in ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")
        ]
        if ready != "True":
            key = "unreachable" if ready == "Unknown" else "not-ready"
            old = [t for t in node["spec"].get("taints", []) if t["key"].endswith(key)]
            taints += old or [
                {"key": f"node.kubernetes.io/{key}", "effect": e, "timeAdded": format_time(now)}
                for e in ("NoSchedule", "NoExecute")
            ]
        if taints != node["spec"].get("taints", []):
            node["spec"]["taints"] = taints
            changed = True
        cap = node["status"]["capacity"].get(GPU)
        want = cap if gpu_ok else "0"
        if cap is not None and node["status"]["allocatable"].get(GPU) != want:
            node["status"]["allocatable"][GPU] = want
            changed = True
        if changed:
            self.store.put("nodes", node)

    def set_device_plugin(self, node: str, crashing: bool) -> None:
        for pod in self.pods():
            if pod["spec"].get("nodeName") == node and pod["metadata"]["name"].startswith(
                "nvidia-device-plugin-daemonset"
            ):
                is_crashing = (
                    pod["status"].get("phase") == "Running"
                    and not pod["status"]["containerStatuses"][0]["ready"]
                )
                if crashing and not is_crashing:
                    self._set_running(pod, False, "CrashLoopBackOff", restarts=5)
                    self.store.put("pods", pod)
                elif not crashing and is_crashing:
                    self._set_running(pod, True)
                    self.store.put("pods", pod)

    def tick(self, now: float) -> None:
        nodes = {n["metadata"]["name"]: n for n in self.store.objects["nodes"].values()}
        for pod in self.pods():
            node = nodes.get(pod["spec"].get("nodeName") or "")
            deleting = parse_time(pod["metadata"].get("deletionTimestamp"))
            if deleting is not None:
                if node is None or self._kubelet_confirms(node, deleting, now):
                    self.store.delete("pods", ApiStore.key(pod))
                continue
            if node is not None and pod["status"]["phase"] == "Pending" and self.node_ok(node):
                self._set_running(pod, True)
                self.store.put("pods", pod)
            elif node is not None and sync_pod_ready(pod, self.node_ok(node), now):
                self.store.put("pods", pod)
        for pod in self.taint_eviction.due(self.pods(), nodes, now):
            self._taint_evict(pod, now)
        self._controllers(now)
        self._schedule(now, nodes)
        self.pdb_status(now)

    @staticmethod
    def _kubelet_confirms(node: dict[str, Any], deleting: float, now: float) -> bool:
        """Whether the node's kubelet ends a Terminating pod now: at once on a Ready node
        (the lab's containers stop fast); after the grace period on a NotReady one whose
        kubelet still posts status; never on an unreachable node (Ready=Unknown)."""
        ready = next(
            (c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready"), "Unknown"
        )
        return ready == "True" or (ready == "False" and now >= deleting)

    def _taint_evict(self, pod: dict[str, Any], now: float) -> None:
        """The taint manager's graceful delete, its condition and its event."""
        meta = pod["metadata"]
        disruption_target(
            pod, "DeletionByTaintManager", "Taint manager: deleting due to NoExecute taint", now
        )
        grace = int(pod["spec"].get("terminationGracePeriodSeconds", 30))
        meta["deletionTimestamp"] = format_time(now + grace)
        meta["deletionGracePeriodSeconds"] = grace
        self.store.put("pods", pod)
        message = f"Marking for deletion Pod {meta['namespace']}/{meta['name']}"
        self.store.put(
            "events",
            event_object(
                pod,
                "TaintManagerEviction",
                message,
                now,
                1,
                now,
                type_="Normal",
                component="taint-eviction-controller",
            ),
        )

    def _owned(self, w: Workload) -> list[dict[str, Any]]:
        return [
            p
            for p in self.pods()
            if p["metadata"]["namespace"] == w.namespace
            and p["metadata"].get("labels", {}).get("app") == w.name
            and "deletionTimestamp" not in p["metadata"]
        ]

    def _controllers(self, now: float) -> None:
        for w in self.workloads:
            for _ in range(w.replicas - len(self._owned(w))):
                if w.kind == "Deployment":
                    name, owner = (
                        f"{w.name}-{w.hash}-{self._suffix()}",
                        ("ReplicaSet", f"{w.name}-{w.hash}", "apps/v1"),
                    )
                else:
                    name, owner = f"{w.name}-{self._suffix()}", ("Job", w.name, "batch/v1")
                pod = pod_object(
                    w.namespace,
                    name,
                    created=now,
                    image=w.image,
                    labels={"app": w.name},
                    owner=owner,
                    gpus=w.gpus,
                    empty_dir=w.kind == "Job",
                    toleration_s=self.toleration_s,
                )
                self.store.put("pods", pod)

    def _schedule(self, now: float, nodes: dict[str, dict[str, Any]]) -> None:
        for pod in self.pods():
            if pod["spec"].get("nodeName") or "deletionTimestamp" in pod["metadata"]:
                continue
            want = pod_gpu_requests(pod["spec"])
            app = pod["metadata"].get("labels", {}).get("app")
            w = next((x for x in self.workloads if x.name == app), None)
            reasons: dict[str, int] = {}
            chosen = None
            for name, node in sorted(nodes.items()):
                why = self._unfit(node, want, w, pod)
                if why is None:
                    chosen = name
                    break
                reasons[why] = reasons.get(why, 0) + 1
            if chosen is not None:
                self._bind(pod, chosen, running=False)
                continue
            parts = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
            message = (
                f"0/{len(nodes)} nodes are available: {parts}. preemption: 0/{len(nodes)} "
                f"nodes are available: {len(nodes)} Preemption is not helpful for "
                f"scheduling."
            )
            self._unschedulable(pod, message, now)

    def _unfit(
        self, node: dict[str, Any], want: dict[str, int], w: Workload | None, pod: dict[str, Any]
    ) -> str | None:
        name = node["metadata"]["name"]
        if node["spec"].get("unschedulable"):
            return "node(s) were unschedulable"
        for t in node["spec"].get("taints", []):
            if (
                t["effect"] in ("NoSchedule", "NoExecute")
                and t["key"] != "node.kubernetes.io/unschedulable"
            ):
                return f"node(s) had untolerated taint {{{t['key']}: {t.get('value', '')}}}"
        if w is not None and w.cpu_only and node["status"]["capacity"].get(GPU):
            return "node(s) didn't match Pod's node affinity/selector"
        used: dict[str, int] = {}
        for p in self.pods():
            if p["spec"].get("nodeName") == name and p["status"].get("phase") not in (
                "Succeeded",
                "Failed",
            ):
                for k, v in pod_gpu_requests(p["spec"]).items():
                    used[k] = used.get(k, 0) + v
        for k, v in want.items():
            have = int(node["status"]["allocatable"].get(k, "0"))
            if have - used.get(k, 0) < v:
                return f"Insufficient {k}"
        if w is not None and w.spread:
            for p in self._owned(w):
                if p["spec"].get("nodeName") == name and p is not pod:
                    return "node(s) didn't match pod topology spread constraints"
        return None

    def _unschedulable(self, pod: dict[str, Any], message: str, now: float) -> None:
        key = ApiStore.key(pod)
        cond = {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastProbeTime": None,
            "lastTransitionTime": format_time(now),
        }
        if pod["status"].get("conditions") != [cond] and (
            not pod["status"].get("conditions")
            or pod["status"]["conditions"][0].get("message") != message
        ):
            pod["status"]["conditions"] = [cond]
            self.store.put("pods", pod)
        last = self._last_event.get(key)
        # The scheduler retries with backoff; one event update per 10 s keeps the demo calm.
        if last is None or last[0] != message or now - last[1] >= 10:
            ev_key = (
                f"{pod['metadata']['namespace']}/"
                + event_object(pod, "FailedScheduling", message, now, 1, now)["metadata"]["name"]
            )
            old = self.store.get("events", ev_key)
            count = (old["count"] + 1) if old else 1
            first = parse_time(old["firstTimestamp"]) if old else now
            self.store.put(
                "events", event_object(pod, "FailedScheduling", message, now, count, first or now)
            )
            self._last_event[key] = (message, now)
