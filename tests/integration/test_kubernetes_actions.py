"""Cordon, uncordon, drain and delete-pod through the real ActionRunner against the lab API."""

from __future__ import annotations

import time

import pytest

from console.actions import ActionRunner
from console.lab import Lab
from console.plugin import Role, Target
from plugins.kubernetes import watch
from plugins.kubernetes.node_actions import CORDON, DRAIN, UNCORDON
from plugins.kubernetes.pod_actions import DELETE_POD, pod_targets
from tests.integration.conftest import wait_for
from tests.integration.support import runner_fixture
from tests.integration.test_kubernetes_lab import collect, emulation, k8s_lab_fixture

lab = k8s_lab_fixture()
runner = runner_fixture()


def node(name: str) -> Target:
    return Target("node", name, node=name, attrs={"cluster": "k1"})


def api_node(lab: Lab, name: str) -> dict:
    found = emulation(lab).clusters["k1"].store.get("nodes", name)
    assert found is not None
    return found


def pods_of(lab: Lab, name: str, app: str | None = None) -> list[dict]:
    return [
        p
        for p in emulation(lab).clusters["k1"].store.objects["pods"].values()
        if p["spec"].get("nodeName") == name
        and (app is None or p["metadata"]["labels"].get("app") == app)
    ]


def vllm_node(lab: Lab) -> str:
    (pod,) = [
        p
        for p in emulation(lab).clusters["k1"].store.objects["pods"].values()
        if p["metadata"]["labels"].get("app") == "vllm"
    ]
    return str(pod["spec"]["nodeName"])


async def test_cordon_records_why_and_who_then_uncordon_clears_it(lab: Lab, runner: ActionRunner):
    plan = await runner.plan(CORDON, [node("cpu02")], {"reason": "disk errors"})
    assert plan.confirm_text is None  # kubectl cordon is not destructive
    assert (
        plan.previews[0]
        .lines[0]
        .startswith("PATCH /api/v1/nodes/cpu02 spec.unschedulable=true (cordon")
    )
    assert "cluster k1 (k1-admin, https://127.0.0.1:" in plan.previews[0].lines[0]
    (result,) = await runner.execute(plan, None)
    assert result.outcome == "ok", result.detail
    assert result.detail == "cpu02 is Ready,SchedulingDisabled"
    ann = api_node(lab, "cpu02")["metadata"]["annotations"]
    assert ann["dcconsole.io/cordon-reason"] == "disk errors"
    assert ann["dcconsole.io/cordoned-by"] == "alice"
    r = await collect(lab)
    assert r[("cpu02", "kubernetes.allocation")].value == "cordoned"  # web pods still run
    assert r[("cpu02", "kubernetes.reason")].value == "disk errors"
    assert r[("cpu02", "kubernetes.reason_by")].value == "alice"
    assert abs(float(r[("cpu02", "kubernetes.reason_since")].value or 0) - time.time()) < 60

    (result,) = await runner.execute(await runner.plan(UNCORDON, [node("cpu02")], {}), None)
    assert result.outcome == "ok", result.detail
    assert "dcconsole.io/cordon-reason" not in api_node(lab, "cpu02")["metadata"]["annotations"]
    assert not api_node(lab, "cpu02")["spec"].get("unschedulable")
    rows = runner.audit.page(newest_first=False)
    assert [(r.phase, r.action, r.outcome) for r in rows] == [
        ("intent", "kubernetes.cordon", ""),
        ("result", "kubernetes.cordon", "ok"),
        ("intent", "kubernetes.uncordon", ""),
        ("result", "kubernetes.uncordon", "ok"),
    ]


async def test_drain_evicts_workload_pods_leaves_daemonsets_and_verifies(
    lab: Lab, runner: ActionRunner
):
    target = "gpu02" if vllm_node(lab) == "gpu01" else "gpu01"
    plan = await runner.plan(DRAIN, [node(target)], {"reason": "GPU swap", "timeout_s": 20})
    assert plan.confirm_text == target  # destructive: typed confirmation
    lines = plan.previews[0].lines
    assert any("POST pods/eviction (policy/v1)" in line for line in lines)
    assert any("PDB inference/triton: 1 disruptions allowed now" in line for line in lines)
    assert any("leave 6 DaemonSet/mirror pods" in line for line in lines)
    (result,) = await runner.execute(plan, target)
    assert result.outcome == "ok", result.detail
    assert f"{target} drained:" in result.detail and "no evictable pods" in result.detail
    assert pods_of(lab, target, "triton") == []
    assert len(pods_of(lab, target)) == 6  # kube-proxy and the GPU Operator DaemonSets
    assert api_node(lab, target)["spec"]["unschedulable"] is True
    r = await collect(lab)
    assert r[(target, "kubernetes.allocation")].value == "drained"
    assert r[(target, "kubernetes.drained")].value is True
    assert r[(target, "kubernetes.reason")].value == "GPU swap"
    # The evicted triton replica cannot go back (spread, and the node is cordoned).
    reasons = str(r[("k8s:k1", "kubernetes.pending_reasons")].value)
    assert "Insufficient nvidia.com/gpu" in reasons
    rows = runner.audit.page(newest_first=False)
    assert [r.phase for r in rows] == ["intent", "result"]
    assert rows[1].outcome == "ok" and "POST pods/eviction" in rows[0].detail


async def test_drain_blocked_by_a_pdb_reports_it_times_out_and_leaves_the_node_cordoned(
    lab: Lab, runner: ActionRunner
):
    target = vllm_node(lab)
    plan = await runner.plan(DRAIN, [node(target)], {"timeout_s": 1.5})
    assert any(
        "PDB inference/vllm allows no disruption now" in w for w in plan.previews[0].warnings
    )
    started = time.monotonic()
    (result,) = await runner.execute(plan, target)
    took = time.monotonic() - started
    assert result.outcome == "failed"
    assert 1.5 <= took < 8, took
    assert f"drain of {target} stopped after 1.5s, node left cordoned" in result.detail
    assert "blocked by PDB inference/vllm (needs 1 healthy pods and has 1 currently)" in (
        result.detail
    )
    assert "could not evict inference/vllm-" in result.detail
    # The retries happened (429 each time) and the log says so.
    requests = emulation(lab).clusters["k1"].store.requests
    evictions = [p for m, p in requests if m == "POST" and "/eviction" in p and "vllm" in p]
    assert len(evictions) >= 3
    assert "blocked by PDB inference/vllm" in result.output
    assert api_node(lab, target)["spec"]["unschedulable"] is True
    assert len(pods_of(lab, target, "vllm")) == 1  # still running: never deleted
    rows = runner.audit.page(newest_first=False)
    assert rows[-1].phase == "result" and rows[-1].outcome == "failed"
    assert "blocked by PDB inference/vllm" in rows[-1].detail


async def test_deleting_a_pod_stuck_on_a_dead_node_needs_force(lab: Lab, runner: ActionRunner):
    await collect(lab)
    lab.faults.inject("host.power_off", "gpu01")
    (pod,) = pods_of(lab, "gpu01", "triton")
    key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
    ns, name = key.split("/")
    # Deleted gracefully, it stays Terminating: the dead kubelet never confirms.
    w = watch.current("k1")
    assert w is not None
    await wait_for(lambda: w.state.nodes["gpu01"].ready is None, 5, "gpu01 Unknown")
    target = Target(
        "pod", key, node="gpu01", attrs={"cluster": "k1", "uid": pod["metadata"]["uid"]}
    )
    plan = await runner.plan(DELETE_POD, [target], {"grace_period_s": 1})
    assert plan.confirm_text == key
    assert plan.previews[0].lines[0].startswith(f"DELETE /api/v1/namespaces/{ns}/pods/{name}")
    (result,) = await runner.execute(plan, key)
    assert result.outcome == "failed"
    assert "still Terminating" in result.detail and "delete with force" in result.detail
    await wait_for(
        lambda: any(t.name == key for t in pod_targets(lab.inventory, None)),
        5,
        "the Terminating pod offered as stuck",
    )
    plan = await runner.plan(DELETE_POD, [target], {"force": True})
    assert any("force" in w for w in plan.previews[0].warnings)
    (result,) = await runner.execute(plan, key)
    assert result.outcome == "ok", result.detail
    assert emulation(lab).clusters["k1"].store.get("pods", key) is None


async def test_a_viewer_may_not_drain(lab: Lab, runner: ActionRunner):
    from console.actions import ActionRefused

    runner.role = Role.VIEWER
    with pytest.raises(ActionRefused):
        await runner.plan(DRAIN, [node("gpu01")], {})
    assert not api_node(lab, "gpu01")["spec"].get("unschedulable")
