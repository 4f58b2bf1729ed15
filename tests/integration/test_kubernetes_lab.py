"""The kubernetes collector and watches against the lab's API server (kubernetes-asyncio, HTTPS)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from console.inventory.load import inventory_from_data
from console.inventory.model import Inventory
from console.lab import Lab
from console.plugin import Plugin, Reading, Target
from plugins.kubernetes import watch
from plugins.kubernetes.client import api_client
from plugins.kubernetes.collect import collect_cluster
from plugins.kubernetes.config import KubernetesConfig, clusters_of
from plugins.kubernetes.lab import KubernetesLab
from tests.integration.conftest import wait_for
from tests.integration.support import ctx_for, lab_fixture, running_lab
from tests.integration.support import emulation as emulation_of


def k8s_inventory() -> Inventory:
    return inventory_from_data(
        {
            "site": {"name": "k8s-test"},
            "ssh": {"user": "ops"},
            "nodes": [
                {
                    "nodes": "gpu[01-02]",
                    "role": "gpu-infer",
                    "hardware": {"gpu_count": 4, "gpu_model": "NVIDIA A30"},
                    "clusters": {"kubernetes": "k1"},
                },
                {"nodes": "cpu[01-02]", "role": "cpu", "clusters": {"kubernetes": "k1"}},
            ],
            "clusters": {"kubernetes": {"k1": {"context": "k1-admin"}}},
            "plugins": {"kubernetes": {"eviction_retry_s": 0.2}},
        },
        None,
    )


def k8s_plugin(emu: KubernetesLab) -> Plugin:
    return Plugin(
        name="kubernetes", description="k8s", lab=lambda: emu, config_model=KubernetesConfig
    )


def k8s_lab(
    state_dir: Path, inventory: Inventory | None = None, emu: KubernetesLab | None = None
) -> AbstractAsyncContextManager[Lab]:
    """A running kubernetes lab (seed 3); its watches end before it stops."""
    return running_lab(
        inventory or k8s_inventory(),
        state_dir,
        [k8s_plugin(emu or KubernetesLab(bookmark_s=0.2))],
        3,
        before_stop=watch.stop_all,
    )


def k8s_lab_fixture() -> Any:
    """The ``lab`` fixture of the kubernetes tests: a fresh emulation per test."""
    return lab_fixture(
        k8s_inventory,
        lambda: [k8s_plugin(KubernetesLab(bookmark_s=0.2))],
        3,
        before_stop=watch.stop_all,
    )


lab = k8s_lab_fixture()


async def collect(lab: Lab) -> dict[tuple[str, str], Reading]:
    ctx = ctx_for(lab.inventory, None, "kubernetes")
    readings = await collect_cluster(ctx, Target("cluster", "k1"))
    return {(r.target, r.metric): r for r in readings}


def emulation(lab: Lab) -> KubernetesLab:
    return emulation_of(lab, "kubernetes", KubernetesLab)


async def test_the_inventory_points_the_cluster_at_the_lab_over_https(lab: Lab):
    ref = clusters_of(lab.inventory)["k1"]
    assert ref.context == "k1-admin" and ref.kubeconfig is not None
    assert ref.kubeconfig.stat().st_mode & 0o077 == 0
    assert emulation(lab).clusters["k1"].url.startswith("https://127.0.0.1:")


async def test_kubernetes_asyncio_models_accept_the_lab_objects(lab: Lab):
    # The client's own models refuse incomplete objects: the lab must serve real shapes.
    api = await api_client(clusters_of(lab.inventory)["k1"])
    try:
        v1 = client.CoreV1Api(api)
        nodes = await v1.list_node(limit=2)
        assert nodes.metadata._continue  # paged: 4 nodes, 2 per page
        more = await v1.list_node(limit=2, _continue=nodes.metadata._continue)
        names = [n.metadata.name for n in nodes.items + more.items]
        assert names == ["cpu01", "cpu02", "gpu01", "gpu02"]
        gpu = (await v1.read_node("gpu01")).status
        assert gpu.capacity["nvidia.com/gpu"] == "4"
        pods = await v1.list_pod_for_all_namespaces(field_selector="spec.nodeName=gpu01")
        assert pods.items and all(p.spec.node_name == "gpu01" for p in pods.items)
        pdbs = await client.PolicyV1Api(api).list_pod_disruption_budget_for_all_namespaces()
        assert {p.metadata.name for p in pdbs.items} == {"triton", "vllm"}
        with pytest.raises(ApiException) as err:
            await v1.read_namespaced_pod("nope", "ml")
        assert err.value.status == 404
    finally:
        await api.close()


async def test_collector_publishes_nodes_gpus_mig_and_the_queue(lab: Lab):
    r = await collect(lab)
    assert r[("gpu01", "kubernetes.allocation")].value == "ready"
    assert r[("gpu01", "kubernetes.gpu_capacity")].value == 4
    assert r[("gpu01", "kubernetes.gpu_product")].value == "NVIDIA-A30"
    # The last GPU node is partitioned (mixed strategy): 2 whole GPUs and 8 MIG slices.
    assert r[("gpu02", "kubernetes.gpu_capacity")].value == 2
    assert r[("gpu02", "kubernetes.mig")].value == "mig-1g.6gb 1/8"
    assert r[("cpu01", "kubernetes.gpu_capacity")].value is None  # no device plugin: unknown
    assert "control-plane" in str(r[("cpu01", "kubernetes.taints")].value)
    assert r[("k8s:k1", "kubernetes.gpus_total")].value == 6
    assert r[("k8s:k1", "kubernetes.pending")].value == 1
    assert r[("k8s:k1", "kubernetes.pending_reasons")].value == "1\tInsufficient nvidia.com/gpu"
    waits = str(r[("k8s:k1", "kubernetes.longest_waits")].value)
    assert "ml/llm-finetune-" in waits and "\t8\t" in waits
    assert r[("k8s:k1", "kubernetes.operator_unhealthy")].value == 0
    assert "DaemonSet" in str(r[("gpu01", "kubernetes.workloads")].value)


async def test_changes_arrive_through_the_watch_without_a_new_list(lab: Lab):
    await collect(lab)
    w = watch.current("k1")
    assert w is not None
    lists_before = sum(
        1
        for m, p in emulation(lab).clusters["k1"].store.requests
        if m == "GET" and "watch" not in p
    )
    lab.faults.inject("kubernetes.device_plugin_crash", "gpu01")
    await wait_for(lambda: w.state.nodes["gpu01"].gpu_allocatable == 0, 5, "allocatable 0")
    r = await collect(lab)
    assert r[("k8s:k1", "kubernetes.operator_unhealthy")].value == 1
    assert "nvidia-device-plugin-daemonset" in str(r[("k8s:k1", "kubernetes.operator_pods")].value)
    assert "CrashLoopBackOff" in str(r[("k8s:k1", "kubernetes.operator_pods")].value)
    lists_after = sum(
        1
        for m, p in emulation(lab).clusters["k1"].store.requests
        if m == "GET" and "watch" not in p
    )
    assert lists_after == lists_before
    assert w.bookmarks > 0 or w.resource_versions["nodes"]


async def test_a_dropped_watch_resumes_and_a_compacted_history_relists(lab: Lab):
    await collect(lab)
    w = watch.current("k1")
    assert w is not None
    store = emulation(lab).clusters["k1"].store
    await wait_for(lambda: len(store.watchers) == 3, 5, "three watches open")
    lab.faults.inject("kubernetes.watch_drop", "k1")
    await wait_for(lambda: w.rewatches >= 3, 5, "three watches resumed")
    assert w.relists == 0
    await wait_for(lambda: len(store.watchers) == 3, 5, "three watches open again")
    lab.faults.inject("kubernetes.compact", "k1")
    await wait_for(lambda: w.relists >= 3, 5, "410 Gone -> three relists")
    assert w.error is None
    # Still live after the resync: a power-off shows up.
    lab.faults.inject("host.power_off", "gpu02")
    await wait_for(lambda: w.state.nodes["gpu02"].ready is None, 5, "gpu02 Unknown")
    r = await collect(lab)
    assert r[("gpu02", "kubernetes.allocation")].value == "not-ready"
    assert r[("gpu02", "kubernetes.reason")].value == (
        "Unknown: Kubelet stopped posting node status."
    )
    assert r[("k8s:k1", "kubernetes.nodes_not_ready")].value == 1


async def test_an_unreachable_api_fails_the_collector_with_its_error(lab: Lab):
    await collect(lab)
    w = watch.current("k1")
    assert w is not None
    lab.faults.inject("kubernetes.api_down", "k1")
    await wait_for(lambda: w.error is not None, 8, "watcher error")
    with pytest.raises(RuntimeError, match="503"):
        await collect(lab)
