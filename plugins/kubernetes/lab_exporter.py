"""What the lab's kube-state-metrics serves: its node and pod families for one cluster.

One KSM per cluster (a cluster-level exporter, one ``ExporterSet`` entry on a
control-plane node), rendered from the very objects the lab's API server lists
and watches (``ApiStore``), so both sources read the same cluster. Metric
names, label sets, value conventions and HELP texts are kube-state-metrics
v2's (``docs/metrics/cluster/node-metrics.md``, ``workload/pod-metrics.md``):
a condition is three series (``status`` true/false/unknown, 1 on the current
one), a phase five; resources are sanitised (``nvidia.com/gpu`` ->
``nvidia_com_gpu``, unit ``integer``); a waiting reason, an unschedulable pod or
a deletion timestamp is a series only while it holds.

The lab's KSM runs as a site should configure it for the console: node labels
of the GPU Operator and the console's cordon annotations allowlisted
(``--metric-labels-allowlist``, ``--metric-annotations-allowlist``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from console.sources.exposition import format_family
from plugins.kubernetes.parse import ANN_AT, ANN_BY, ANN_REASON, as_dict, parse_count, parse_time

if TYPE_CHECKING:  # pragma: no cover
    from plugins.kubernetes.lab import KubernetesLab, LabCluster

Rows = list[tuple[dict[str, str], Any]]
LABELS_ALLOWLIST = (
    "nvidia.com/gpu.product",
    "nvidia.com/gpu.count",
    "nvidia.com/mig.strategy",
    "nvidia.com/mig.config",
    "nvidia.com/mig.config.state",
)
ANNOTATIONS_ALLOWLIST = (ANN_REASON, ANN_BY, ANN_AT)
PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
HELP = {
    "kube_node_info": "[STABLE] Information about a cluster node.",
    "kube_node_labels": "[STABLE] Kubernetes labels converted to Prometheus labels.",
    "kube_node_annotations": "Kubernetes annotations converted to Prometheus labels.",
    "kube_node_spec_unschedulable": "[STABLE] Whether a node can schedule new pods.",
    "kube_node_spec_taint": "[STABLE] The taint of a cluster node.",
    "kube_node_status_condition": "[STABLE] The condition of a cluster node.",
    "kube_node_status_capacity": "[STABLE] The capacity for different resources of a node.",
    "kube_node_status_allocatable": "[STABLE] The allocatable for different resources of a "
    "node that are available for scheduling.",
    "kube_pod_info": "[STABLE] Information about pod.",
    "kube_pod_owner": "[STABLE] Information about the Pod's owner.",
    "kube_pod_status_phase": "[STABLE] The pods current phase.",
    "kube_pod_status_unschedulable": "[STABLE] Describes the unschedulable status for the pod.",
    "kube_pod_container_status_waiting_reason": "[STABLE] Describes the reason the container "
    "is currently in waiting state.",
    "kube_pod_container_resource_requests": "The number of requested request resource by a "
    "container. It is recommended to use the kube_pod_resource_requests metric exposed by "
    "kube-scheduler instead, as it is more precise.",
    "kube_pod_init_container_resource_requests": "The number of requested request resource "
    "by an init container.",
    "kube_pod_created": "[STABLE] Unix creation timestamp",
    "kube_pod_deletion_timestamp": "Unix deletion timestamp",
}


def sanitize(name: str) -> str:
    """KSM's label-name sanitising: anything not ``[a-zA-Z0-9_]`` becomes ``_``."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def _unit(resource: str) -> str:
    if resource == "cpu":
        return "core"
    if resource in ("memory", "ephemeral-storage") or resource.startswith("hugepages-"):
        return "byte"
    return "integer"


def _resources(raw: Mapping[str, Any]) -> Iterable[tuple[str, str, int]]:
    """(sanitised resource, unit, value) for the quantities the lab writes as counts."""
    for name, quantity in sorted(raw.items()):
        n = parse_count(quantity)
        if n is not None:
            yield sanitize(name), _unit(name), n


def ksm_text(lc: LabCluster) -> str:
    """One scrape of the cluster's kube-state-metrics."""
    rows: dict[str, Rows] = {name: [] for name in HELP}
    for obj in sorted(lc.store.objects["nodes"].values(), key=lambda o: o["metadata"]["name"]):
        _node(obj, rows)
    pods = lc.store.objects["pods"].values()
    for obj in sorted(
        pods, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"])
    ):
        _pod(obj, rows)
    return "".join(format_family(name, "gauge", HELP[name], rows[name]) for name in HELP)


def _node(obj: dict[str, Any], rows: dict[str, Rows]) -> None:
    meta, spec, status = obj["metadata"], as_dict(obj.get("spec")), as_dict(obj.get("status"))
    node = {"node": meta["name"]}
    info = as_dict(status.get("nodeInfo"))
    ip = next(
        (
            a.get("address", "")
            for a in status.get("addresses") or []
            if a.get("type") == "InternalIP"
        ),
        "",
    )
    rows["kube_node_info"].append(
        (
            {
                **node,
                "kernel_version": info.get("kernelVersion", ""),
                "os_image": info.get("osImage", ""),
                "container_runtime_version": info.get("containerRuntimeVersion", ""),
                "kubelet_version": info.get("kubeletVersion", ""),
                "kubeproxy_version": info.get("kubeProxyVersion", ""),
                "provider_id": spec.get("providerID", ""),
                "pod_cidr": spec.get("podCIDR", ""),
                "system_uuid": info.get("systemUUID", ""),
                "internal_ip": ip,
            },
            1,
        )
    )
    labels = as_dict(meta.get("labels"))
    annotations = as_dict(meta.get("annotations"))
    rows["kube_node_labels"].append(
        (
            {
                **node,
                **{f"label_{sanitize(k)}": labels[k] for k in LABELS_ALLOWLIST if k in labels},
            },
            1,
        )
    )
    rows["kube_node_annotations"].append(
        (
            {
                **node,
                **{
                    f"annotation_{sanitize(k)}": annotations[k]
                    for k in ANNOTATIONS_ALLOWLIST
                    if k in annotations
                },
            },
            1,
        )
    )
    rows["kube_node_spec_unschedulable"].append((node, spec.get("unschedulable") is True))
    for t in spec.get("taints") or []:
        rows["kube_node_spec_taint"].append(
            ({**node, "key": t.get("key", ""), "value": t.get("value", ""),
              "effect": t.get("effect", "")}, 1)
        )  # fmt: skip
    for c in status.get("conditions") or []:
        current = str(c.get("status", "")).lower()
        for st in ("true", "false", "unknown"):
            rows["kube_node_status_condition"].append(
                ({**node, "condition": c.get("type", ""), "status": st}, current == st)
            )
    for family, key in (
        ("kube_node_status_capacity", "capacity"),
        ("kube_node_status_allocatable", "allocatable"),
    ):
        for resource, unit, n in _resources(as_dict(status.get(key))):
            rows[family].append(({**node, "resource": resource, "unit": unit}, n))


def _owner(meta: Mapping[str, Any]) -> tuple[str, str]:
    for ref in meta.get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller") is True:
            return str(ref.get("kind", "")), str(ref.get("name", ""))
    return "", ""


def _pod(obj: dict[str, Any], rows: dict[str, Rows]) -> None:
    meta, spec, status = obj["metadata"], as_dict(obj.get("spec")), as_dict(obj.get("status"))
    pod = {
        "namespace": meta.get("namespace") or "default",
        "pod": meta["name"],
        "uid": meta.get("uid", ""),
    }
    node = spec.get("nodeName") or ""
    kind, owner = _owner(meta)
    rows["kube_pod_info"].append(
        (
            {
                **pod,
                "host_ip": status.get("hostIP", ""),
                "pod_ip": status.get("podIP", ""),
                "node": node,
                "created_by_kind": kind,
                "created_by_name": owner,
                "priority_class": spec.get("priorityClassName", ""),
                "host_network": "true" if spec.get("hostNetwork") else "false",
            },
            1,
        )
    )
    rows["kube_pod_owner"].append(
        ({**pod, "owner_kind": kind or "<none>", "owner_name": owner or "<none>",
          "owner_is_controller": "true" if kind else "<none>"}, 1)
    )  # fmt: skip
    phase = status.get("phase") or ""
    for p in PHASES:
        rows["kube_pod_status_phase"].append(({**pod, "phase": p}, phase == p))
    for cond in status.get("conditions") or []:
        if (
            cond.get("type") == "PodScheduled"
            and cond.get("status") == "False"
            and cond.get("reason") == "Unschedulable"
        ):
            rows["kube_pod_status_unschedulable"].append((pod, 1))
    for cs in status.get("containerStatuses") or []:
        reason = as_dict(as_dict(cs.get("state")).get("waiting")).get("reason")
        if reason:
            rows["kube_pod_container_status_waiting_reason"].append(
                ({**pod, "container": cs.get("name", ""), "reason": reason}, 1)
            )
    for family, key in (
        ("kube_pod_container_resource_requests", "containers"),
        ("kube_pod_init_container_resource_requests", "initContainers"),
    ):
        for c in spec.get(key) or []:
            res = as_dict(c.get("resources"))
            # The API server defaults a request to its limit when only the limit is given.
            merged = {**as_dict(res.get("limits")), **as_dict(res.get("requests"))}
            for resource, unit, n in _resources(merged):
                rows[family].append(
                    ({**pod, "container": c.get("name", ""), "node": node,
                      "resource": resource, "unit": unit}, n)
                )  # fmt: skip
    created = parse_time(meta.get("creationTimestamp"))
    if created is not None:
        rows["kube_pod_created"].append((pod, created))
    deleting = parse_time(meta.get("deletionTimestamp"))
    if deleting is not None:
        rows["kube_pod_deletion_timestamp"].append((pod, deleting))


def ksm_host(members: Iterable[Any]) -> str | None:
    """Where the cluster's KSM runs: its first control-plane (cpu) node, else any member."""
    names = sorted(members, key=lambda n: (n.role != "cpu", n.name))
    return names[0].name if names else None


async def start_exporters(k8s_lab: KubernetesLab, lab: Any) -> None:
    """Serve one kube-state-metrics per cluster (unless the lab serves no exporters)."""
    from console.lab.exporters import ExporterSet, exporters_enabled, host_addresses, host_answers

    if not exporters_enabled(lab) or not k8s_lab.clusters:
        return
    on_host: dict[str, LabCluster] = {}
    for name, lc in k8s_lab.clusters.items():
        members = [n for n in lab.source.nodes.values() if n.clusters.kubernetes == name]
        host = ksm_host(members)
        if host is not None:
            on_host[host] = lc

    def render(name: str) -> str | None:
        lc, host = on_host.get(name), lab.hosts.get(name)
        if lc is None or host is None or not host_answers(host):
            return None
        return ksm_text(lc)

    exporter = ExporterSet("kube-state-metrics", render)
    k8s_lab.exporters["kube-state-metrics"] = exporter
    await exporter.start(host_addresses(lab, on_host))
