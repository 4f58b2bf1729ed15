"""The ``plugins.kubernetes`` section of the inventory, and the clusters it reads.

The clusters themselves (kubeconfig file and context) are declared under
``clusters.kubernetes.<name>`` in the inventory; nodes join one with
``clusters: {kubernetes: <name>}``. This section only tunes the plugin.

Example::

    plugins:
      kubernetes:
        gpu_operator_namespace: gpu-operator
        drain_timeout_s: 300
        pending_warn_s: 900
        source: direct          # or prometheus: kube-state-metrics (plugins.kubernetes.prom)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict, Field

from console.sources.config import SourceFields, uses_prometheus

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory


class KubernetesConfig(SourceFields):
    """The section; ``source: prometheus`` reads kube-state-metrics' series instead of the API
    (``plugins.kubernetes.prom``; fields in ``console.sources.config.SourceFields``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gpu_operator_namespace: str = Field(default="gpu-operator", min_length=1)
    """Where the NVIDIA GPU Operator runs (its pods are watched for health)."""
    interval: float = Field(default=2.0, ge=0.5, le=300)
    """Seconds between two publications of the watched state to the Store."""
    watch_timeout_s: int = Field(default=300, ge=1, le=3600)
    """Server-side timeout of one watch request; it is then resumed from its resourceVersion."""
    read_timeout_s: float = Field(default=90.0, gt=0, le=3600)
    """A watch silent this long (no event, no bookmark) is dropped and resumed."""
    request_timeout_s: float = Field(default=15.0, gt=0, le=300)
    """Limit of one list, get, patch, eviction or delete request."""
    drain_timeout_s: float = Field(default=300.0, gt=0, le=7200)
    """Default time a drain keeps retrying evictions before it stops (node left cordoned)."""
    eviction_retry_s: float = Field(default=5.0, gt=0, le=120)
    """First wait before retrying an eviction a PodDisruptionBudget refused (doubles, capped)."""
    pending_warn_s: float = Field(default=900.0, gt=0)
    """A pod pending longer than this raises a warning."""


def config_of(config: Any) -> KubernetesConfig:
    return config if isinstance(config, KubernetesConfig) else KubernetesConfig()


@dataclass(frozen=True, slots=True)
class ClusterRef:
    """Where one cluster's API is: its kubeconfig file and context."""

    name: str
    kubeconfig: Path | None
    """None: the client's default (``$KUBECONFIG`` or ``~/.kube/config``)."""
    context: str | None

    @property
    def key(self) -> str:
        return f"{self.name}|{self.kubeconfig}|{self.context}"


def clusters_of(inventory: Inventory) -> dict[str, ClusterRef]:
    """Every cluster by name, whatever it is read from: actions always go to its API."""
    out = {}
    for name, cluster in inventory.doc.clusters.kubernetes.items():
        path = inventory.resolve_path(cluster.kubeconfig) if cluster.kubeconfig else None
        out[name] = ClusterRef(name, path, cluster.context)
    return out


def reads_prometheus(inventory: Inventory, config: Any, cluster: str) -> bool:
    """Whether ``cluster`` is read from kube-state-metrics in Prometheus: the plugin section
    says so for every cluster, or the cluster itself (``clusters.kubernetes.<name>.source``)."""
    found = inventory.doc.clusters.kubernetes.get(cluster)
    return uses_prometheus(config) or (found is not None and found.source == "prometheus")


def member_nodes(inventory: Inventory, cluster: str) -> list[str]:
    """Inventory nodes that declare membership of ``cluster``."""
    return [n.name for n in inventory.nodes.values() if n.clusters.kubernetes == cluster]


def inventory_name(k8s_name: str, inventory_nodes: Any) -> str | None:
    """The inventory node a Kubernetes node is: same name, else its short name (FQDN nodes)."""
    if k8s_name in inventory_nodes:
        return k8s_name
    short = k8s_name.split(".", 1)[0]
    return short if short in inventory_nodes else None
