"""Involuntary and voluntary disruption in the lab API, seen through kubernetes-asyncio:
taint-based eviction from a dead node, and PodDisruptionBudgets given as percentages."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from console.inventory.load import inventory_from_data
from console.lab import Lab
from plugins.kubernetes.client import api_client
from plugins.kubernetes.config import clusters_of
from plugins.kubernetes.lab import KubernetesLab
from plugins.kubernetes.lab_objects import pdb_object
from tests.integration.support import eventually
from tests.integration.test_kubernetes_lab import emulation, k8s_lab

TOLERATION_S = 2


def inventory(gpu_nodes: str, cpu_nodes: str) -> Any:
    return inventory_from_data(
        {
            "site": {"name": "k8s-disruption"},
            "ssh": {"user": "ops"},
            "nodes": [
                {
                    "nodes": gpu_nodes,
                    "role": "gpu-infer",
                    "hardware": {"gpu_count": 4, "gpu_model": "NVIDIA A30"},
                    "clusters": {"kubernetes": "k1"},
                },
                {"nodes": cpu_nodes, "role": "cpu", "clusters": {"kubernetes": "k1"}},
            ],
            "clusters": {"kubernetes": {"k1": {"context": "k1-admin"}}},
        },
        None,
    )


def started(tmp_path: Path, gpu_nodes: str, cpu_nodes: str) -> AbstractAsyncContextManager[Lab]:
    emu = KubernetesLab(bookmark_s=0.2, toleration_s=TOLERATION_S)
    return k8s_lab(tmp_path / "lab", inventory(gpu_nodes, cpu_nodes), emu)


@pytest.fixture
async def api_of() -> AsyncIterator[Callable[[Lab], Awaitable[client.ApiClient]]]:
    opened: list[client.ApiClient] = []

    async def make(lab: Lab) -> client.ApiClient:
        api = await api_client(clusters_of(lab.inventory)["k1"])
        opened.append(api)
        return api

    yield make
    for api in opened:
        await api.close()


def ready(obj: Any) -> str | None:
    return next((c.status for c in obj.status.conditions or [] if c.type == "Ready"), None)


async def test_pods_of_a_powered_off_node_are_evicted_after_their_toleration_and_replaced(
    tmp_path: Path, api_of: Callable[[Lab], Awaitable[client.ApiClient]]
):
    async with started(tmp_path, "gpu01", "cpu[01-03]") as lab:
        v1 = client.CoreV1Api(await api_of(lab))
        web = (await v1.list_namespaced_pod("default", label_selector="app=web")).items
        (dead,) = {p.spec.node_name for p in web}  # cpu01 is the tainted control plane
        for pod in web:  # what DefaultTolerationSeconds gives every pod, here shortened
            tols = {(t.key, t.effect): t.toleration_seconds for t in pod.spec.tolerations}
            assert tols[("node.kubernetes.io/unreachable", "NoExecute")] == TOLERATION_S
            assert tols[("node.kubernetes.io/not-ready", "NoExecute")] == TOLERATION_S

        lab.faults.inject("host.power_off", dead)

        async def unknown() -> bool:
            return ready(await v1.read_node(dead)) == "Unknown"

        await eventually(unknown, f"{dead} Ready=Unknown", 5)
        seen_unknown = time.monotonic()
        node = await v1.read_node(dead)
        assert {(t.key, t.effect) for t in node.spec.taints} >= {
            ("node.kubernetes.io/unreachable", "NoExecute"),
            ("node.kubernetes.io/unreachable", "NoSchedule"),
        }
        # Within the toleration the pods stay, marked not Ready by the node controller.
        on_dead = (await v1.list_namespaced_pod("default", label_selector="app=web")).items
        assert [p.metadata.deletion_timestamp for p in on_dead] == [None, None]
        assert [ready(p) for p in on_dead] == ["False", "False"]

        async def terminating() -> list[Any]:
            pods = (await v1.list_namespaced_pod("default", label_selector="app=web")).items
            gone = [p for p in pods if p.spec.node_name == dead and p.metadata.deletion_timestamp]
            return gone if len(gone) == 2 else []

        evicted = await eventually(terminating, "the taint manager's evictions", TOLERATION_S + 5)
        assert time.monotonic() - seen_unknown >= TOLERATION_S - 1.1  # 1 s lab ticks
        for pod in evicted:
            (cond,) = [c for c in pod.status.conditions if c.type == "DisruptionTarget"]
            assert (cond.status, cond.reason) == ("True", "DeletionByTaintManager")
        events = (
            await v1.list_event_for_all_namespaces(field_selector="reason=TaintManagerEviction")
        ).items
        assert {e.message for e in events} >= {
            f"Marking for deletion Pod default/{p.metadata.name}" for p in evicted
        }
        assert all(e.type == "Normal" for e in events)

        # The Deployment replaces them on the node left; the dead kubelet never confirms.
        async def replaced() -> list[Any]:
            pods = (await v1.list_namespaced_pod("default", label_selector="app=web")).items
            fresh = [
                p
                for p in pods
                if p.metadata.deletion_timestamp is None
                and p.status.phase == "Running"
                and ready(p) == "True"
            ]
            return fresh if len(fresh) == 2 else []

        fresh = await eventually(replaced, "two replacement web pods Running", 8)
        assert {p.spec.node_name for p in fresh} == {"cpu03"}
        pods = (await v1.list_namespaced_pod("default", label_selector="app=web")).items
        stuck = {p.metadata.name for p in pods if p.metadata.deletion_timestamp is not None}
        assert stuck == {p.metadata.name for p in evicted}
        # DaemonSet pods tolerate the taint forever: kube-proxy stays on the dead node.
        proxy = (
            await v1.list_namespaced_pod("kube-system", field_selector=f"spec.nodeName={dead}")
        ).items
        assert proxy and all(p.metadata.deletion_timestamp is None for p in proxy)


async def test_percentage_budgets_round_up_as_the_disruption_controller_does(
    tmp_path: Path, api_of: Callable[[Lab], Awaitable[client.ApiClient]]
):
    async with started(tmp_path, "gpu[01-03]", "cpu[01-02]") as lab:
        api = await api_of(lab)
        v1, policy = client.CoreV1Api(api), client.PolicyV1Api(api)
        store = emulation(lab).clusters["k1"].store
        now = lab.clock.now()
        # 3 triton replicas at minAvailable 50%: 2 must stay (1.5 rounded up).
        store.put(
            "pdbs",
            pdb_object("inference", "triton", {"app": "triton"}, created=now, min_available="50%"),
        )
        # 1 vllm replica at maxUnavailable 50%: 1 may go (0.5 rounded up), so none must stay.
        store.put(
            "pdbs",
            pdb_object("inference", "vllm", {"app": "vllm"}, created=now, max_unavailable="50%"),
        )

        async def statuses() -> dict[str, Any]:
            pdbs = (await policy.list_namespaced_pod_disruption_budget("inference")).items
            got = {p.metadata.name: p for p in pdbs}
            return got if got["triton"].status.desired_healthy == 2 else {}

        pdbs = await eventually(statuses, "the disruption controller's status", 5)
        triton, vllm = pdbs["triton"].status, pdbs["vllm"].status
        assert (triton.expected_pods, triton.current_healthy, triton.disruptions_allowed) == (
            3,
            3,
            1,
        )
        assert pdbs["triton"].spec.min_available == "50%"
        (cond,) = triton.conditions
        assert (cond.type, cond.status, cond.reason) == (
            "DisruptionAllowed",
            "True",
            "SufficientPods",
        )
        assert (vllm.expected_pods, vllm.desired_healthy, vllm.disruptions_allowed) == (1, 0, 1)

        pods = (await v1.list_namespaced_pod("inference", label_selector="app=triton")).items
        first, second = sorted(p.metadata.name for p in pods)[:2]

        def eviction(name: str) -> client.V1Eviction:
            return client.V1Eviction(
                api_version="policy/v1",
                kind="Eviction",
                metadata=client.V1ObjectMeta(name=name, namespace="inference"),
            )

        await v1.create_namespaced_pod_eviction(first, "inference", eviction(first))
        with pytest.raises(ApiException) as err:
            await v1.create_namespaced_pod_eviction(second, "inference", eviction(second))
        assert err.value.status == 429
        body = json.loads(err.value.body)
        assert body["details"]["causes"] == [
            {
                "reason": "DisruptionBudget",
                "message": "The disruption budget triton needs 2 healthy pods and has 2 currently",
            }
        ]
        evicted = await v1.read_namespaced_pod(first, "inference")
        assert evicted.metadata.deletion_timestamp is not None
        (cond,) = [c for c in evicted.status.conditions if c.type == "DisruptionTarget"]
        assert cond.reason == "EvictionByEvictionAPI"
        # maxUnavailable 50% of one replica lets the only vllm pod go.
        (vllm_pod,) = (await v1.list_namespaced_pod("inference", label_selector="app=vllm")).items
        name = vllm_pod.metadata.name
        await v1.create_namespaced_pod_eviction(name, "inference", eviction(name))
