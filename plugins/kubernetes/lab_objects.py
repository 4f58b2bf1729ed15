"""Kubernetes objects as the API serves them, for the lab (shapes of the real samples).

Complete enough that kubernetes-asyncio's models accept them (its models
refuse a Node whose ``nodeInfo`` lacks a field), with the GPU Operator / GFD
labels and ``nvidia.com/gpu`` / ``nvidia.com/mig-*`` resources of real nodes.
"""

from __future__ import annotations

import hashlib
from typing import Any

from plugins.kubernetes.parse import format_time

STATUS_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}


def uid(*parts: str) -> str:
    h = hashlib.sha256("/".join(parts).encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def status(
    code: int, message: str, reason: str | None = None, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A v1 Status, as every API error body is."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure" if code >= 400 else "Success",
        "message": message,
        "reason": reason or STATUS_REASONS.get(code, ""),
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def pdb_429(pdb: str, needs: int, has: int) -> dict[str, Any]:
    """The exact body the eviction API answers when a disruption budget blocks."""
    return status(
        429,
        "Cannot evict pod as it would violate the pod's disruption budget.",
        "TooManyRequests",
        {
            "causes": [
                {
                    "reason": "DisruptionBudget",
                    "message": f"The disruption budget {pdb} needs {needs} healthy pods "
                    f"and has {has} currently",
                }
            ]
        },
    )


def gfd_product(model: str | None) -> str | None:
    """GPU Feature Discovery's product label (``NVIDIA H100 80GB HBM3`` -> dashes)."""
    return model.strip().replace(" ", "-") if model else None


def node_object(
    name: str,
    *,
    created: float,
    gpus: int,
    gpu_model: str | None,
    mig: dict[str, int] | None,
    mig_gpus: int = 0,
    control_plane: bool,
    boot: str,
    role: str,
) -> dict[str, Any]:
    labels: dict[str, str] = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "dcconsole.io/role": role,
    }
    capacity: dict[str, str] = {
        "cpu": "128" if gpus else "64",
        "ephemeral-storage": "3748905808Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": "2113442532Ki" if gpus else "528282424Ki",
        "pods": "110",
    }
    taints: list[dict[str, Any]] = []
    if control_plane:
        labels["node-role.kubernetes.io/control-plane"] = ""
        taints.append({"effect": "NoSchedule", "key": "node-role.kubernetes.io/control-plane"})
    if gpus:
        product = gfd_product(gpu_model) or "NVIDIA-GPU"
        labels |= {
            "nvidia.com/gpu.present": "true",
            "nvidia.com/gpu.product": product,
            "nvidia.com/gpu.count": str(gpus),
            "nvidia.com/gpu.family": "hopper" if "H100" in product else "ampere",
            "nvidia.com/gpu.memory": "81559" if "H100" in product else "24576",
            "nvidia.com/gpu.replicas": "1",
            "nvidia.com/gpu.sharing-strategy": "none",
            "nvidia.com/mig.capable": "true",
            "nvidia.com/mps.capable": "false",
            "nvidia.com/cuda.driver-version.full": "550.90.07",
            "nvidia.com/gpu.deploy.device-plugin": "true",
            "nvidia.com/gpu.deploy.driver": "true",
        }
        whole = gpus
        if mig:
            # Mixed strategy: some GPUs partitioned, each profile its own resource.
            labels |= {
                "nvidia.com/mig.strategy": "mixed",
                "nvidia.com/mig.config": "custom-mixed",
                "nvidia.com/mig.config.state": "success",
            }
            whole = gpus - mig_gpus
            for profile, n in mig.items():
                capacity[f"nvidia.com/mig-{profile}"] = str(n)
        else:
            labels |= {
                "nvidia.com/mig.strategy": "single",
                "nvidia.com/mig.config": "all-disabled",
                "nvidia.com/mig.config.state": "success",
            }
        capacity["nvidia.com/gpu"] = str(whole)
    stamp = format_time(created)
    conditions = [
        _cond(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
            stamp,
        ),
        _cond(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
            stamp,
        ),
        _cond(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
            stamp,
        ),
        _cond("Ready", "True", "KubeletReady", "kubelet is posting ready status", stamp),
    ]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "uid": uid("node", name),
            "creationTimestamp": stamp,
            "labels": labels,
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {"podCIDR": "10.42.0.0/24", "podCIDRs": ["10.42.0.0/24"], "taints": taints},
        "status": {
            "addresses": [
                {"address": "10.0.0.1", "type": "InternalIP"},
                {"address": name, "type": "Hostname"},
            ],
            "allocatable": dict(capacity),
            "capacity": capacity,
            "conditions": conditions,
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": boot,
                "containerRuntimeVersion": "containerd://1.7.13",
                "kernelVersion": "5.15.0-113-generic",
                "kubeProxyVersion": "v1.30.2",
                "kubeletVersion": "v1.30.2",
                "machineID": uid("machine", name).replace("-", ""),
                "operatingSystem": "linux",
                "osImage": "Ubuntu 22.04.4 LTS",
                "systemUUID": uid("system", name),
            },
        },
    }


def _cond(type_: str, status_: str, reason: str, message: str, stamp: str) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status_,
        "reason": reason,
        "message": message,
        "lastHeartbeatTime": stamp,
        "lastTransitionTime": stamp,
    }


def pod_object(
    namespace: str,
    name: str,
    *,
    created: float,
    image: str,
    labels: dict[str, str],
    owner: tuple[str, str, str] | None,
    gpus: dict[str, int] | None = None,
    node_selector: dict[str, str] | None = None,
    tolerate_all: bool = False,
    empty_dir: bool = False,
    grace: int = 30,
    toleration_s: int = 300,
) -> dict[str, Any]:
    """A Pod as created (Pending, not scheduled); the lab's scheduler binds it.

    Unless it tolerates everything (DaemonSet, static pods), it carries the two
    NoExecute tolerations the DefaultTolerationSeconds admission plugin adds,
    for ``toleration_s`` (kube-apiserver's ``--default-not-ready-toleration-seconds``
    and ``--default-unreachable-toleration-seconds``, 300 by default).
    """
    resources: dict[str, Any] = {"requests": {"cpu": "500m", "memory": "1Gi"}}
    if gpus:
        resources["limits"] = {k: str(v) for k, v in gpus.items()}
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": uid("pod", namespace, name, str(created)),
        "creationTimestamp": format_time(created),
        "labels": labels,
    }
    if owner is not None:
        kind, oname, api = owner
        meta["ownerReferences"] = [
            {
                "apiVersion": api,
                "kind": kind,
                "name": oname,
                "uid": uid(kind, namespace, oname),
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    volumes: list[dict[str, Any]] = [{"name": "kube-api-access", "projected": {"sources": []}}]
    if empty_dir:
        volumes.append({"name": "scratch", "emptyDir": {}})
    tolerations = (
        [{"operator": "Exists"}]
        if tolerate_all
        else [
            {
                "effect": "NoExecute",
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "tolerationSeconds": toleration_s,
            },
            {
                "effect": "NoExecute",
                "key": "node.kubernetes.io/unreachable",
                "operator": "Exists",
                "tolerationSeconds": toleration_s,
            },
        ]
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {
            "containers": [
                {
                    "name": name.rsplit("-", 2)[0][:40] or "main",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "resources": resources,
                }
            ],
            "nodeSelector": node_selector or {},
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "terminationGracePeriodSeconds": grace,
            "tolerations": tolerations,
            "volumes": volumes,
            "priority": 0,
        },
        "status": {"phase": "Pending", "qosClass": "Burstable"},
    }


def pdb_object(
    namespace: str,
    name: str,
    selector: dict[str, str],
    *,
    created: float,
    min_available: int | str | None = None,
    max_unavailable: int | str | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": {"matchLabels": selector}}
    if min_available is not None:
        spec["minAvailable"] = min_available
    if max_unavailable is not None:
        spec["maxUnavailable"] = max_unavailable
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid("pdb", namespace, name),
            "creationTimestamp": format_time(created),
            "generation": 1,
        },
        "spec": spec,
        "status": {
            "currentHealthy": 0,
            "desiredHealthy": 0,
            "disruptionsAllowed": 0,
            "expectedPods": 0,
            "observedGeneration": 1,
        },
    }


def event_object(
    pod: dict[str, Any],
    reason: str,
    message: str,
    now: float,
    count: int,
    first: float,
    type_: str = "Warning",
    component: str = "default-scheduler",
) -> dict[str, Any]:
    meta = pod["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{meta['name']}.{uid('ev', meta['uid'], reason)[:16]}",
            "namespace": meta["namespace"],
            "uid": uid("event", meta["uid"], reason),
            "creationTimestamp": format_time(first),
        },
        "involvedObject": {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
        },
        "reason": reason,
        "message": message,
        "type": type_,
        "count": count,
        "firstTimestamp": format_time(first),
        "lastTimestamp": format_time(now),
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": "",
    }
