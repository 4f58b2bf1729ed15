"""The Kubernetes API of an action's target: which cluster, and a client for it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from console.plugin import ActionContext, Target
from plugins.kubernetes import sdk
from plugins.kubernetes.client import api_client
from plugins.kubernetes.config import ClusterRef, KubernetesConfig, clusters_of, config_of

if TYPE_CHECKING:  # pragma: no cover
    from kubernetes_asyncio import client


def cluster_ref(ctx: ActionContext, target: Target) -> ClusterRef:
    """The inventory cluster the target belongs to (LookupError when none)."""
    clusters = clusters_of(ctx.inventory)
    name = target.attrs.get("cluster")
    if name is None and target.node in ctx.inventory.nodes:
        name = ctx.inventory.nodes[target.node].clusters.kubernetes
    if not isinstance(name, str) or name not in clusters:
        raise LookupError(f"{target.name} is in no Kubernetes cluster of the inventory")
    return clusters[name]


@contextlib.asynccontextmanager
async def cluster_api(
    ctx: ActionContext, target: Target
) -> AsyncIterator[tuple[client.CoreV1Api, client.ApiClient, ClusterRef, KubernetesConfig]]:
    """(CoreV1Api, ApiClient, cluster, plugin config) for the target's cluster; closed after."""
    ref = cluster_ref(ctx, target)
    api = await api_client(ref)
    try:
        yield sdk.client.CoreV1Api(api), api, ref, config_of(ctx.config)
    finally:
        await api.close()
