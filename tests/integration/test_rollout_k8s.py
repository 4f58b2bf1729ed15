"""A rollout over Kubernetes nodes in the lab: each node cordoned and drained through the
kubernetes plugin's own drain action (found by id), a PodDisruptionBudget that blocks
an eviction named before the first wave (pre-flight) and halting that node cleanly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from console.actions import ActionRunner
from console.lab import Lab
from console.poller import Poller
from console.store import Store
from console.wizards.rollout_env import RolloutEnv, build_env
from console.wizards.rollout_model import rollout_from_data
from console.wizards.rollout_plan import plan_rollout
from console.wizards.rollout_preflight import preflight, render_preflight
from plugins.kubernetes import watch
from plugins.kubernetes.lab import KubernetesLab
from plugins.kubernetes.manifest import plugin as k8s_plugin
from tests.integration.support import action_runner, lab_fixture
from tests.integration.test_kubernetes_actions import api_node, pods_of, vllm_node
from tests.integration.test_kubernetes_lab import k8s_inventory
from tests.integration.test_kubernetes_lab import k8s_plugin as k8s_lab_plugin

lab = lab_fixture(
    k8s_inventory,
    lambda: [k8s_lab_plugin(KubernetesLab(bookmark_s=0.2))],
    3,
    before_stop=watch.stop_all,
)


def rollout(first: str, second: str) -> dict[str, object]:
    return {
        "name": "kernel params",
        "targets": f"{first},{second}",
        "canary": first,
        "change": {"command": "true"},
        "post_checks": ["kubernetes.node_ready"],
        "resume_checks": ["kubernetes.node_ready"],
        "settle_s": 0,
        "poll_s": 0.2,
        "check_timeout_s": 10,
        "drain": {"wait_jobs_s": 3},
        "caps": {"max_pool_pct": 50},
    }


@pytest.fixture
async def env(lab: Lab, tmp_path: Path) -> AsyncIterator[RolloutEnv]:
    async with action_runner(lab.inventory, None, tmp_path / "audit.db") as runner:
        assert isinstance(runner.store, Store)
        poller = Poller(runner.store, lab.inventory, runner.transports, [
            (k8s_plugin, c) for c in k8s_plugin.collectors
        ])  # fmt: skip
        built = build_env([k8s_plugin], runner, poller, None)
        try:
            yield built
        finally:
            built.close()


def events(runner: ActionRunner) -> list[tuple[str, tuple[str, ...], str]]:
    return [
        (r.action, r.targets, r.outcome)
        for r in runner.audit.page(newest_first=False)
        if r.phase == "rollout"
    ]


async def test_nodes_are_drained_through_kubernetes_and_a_pdb_blocks_one_cleanly(
    lab: Lab, env: RolloutEnv
) -> None:
    blocked = vllm_node(lab)  # runs the only vllm replica: its PDB allows no disruption
    free = "gpu02" if blocked == "gpu01" else "gpu01"
    plan = plan_rollout(rollout_from_data(rollout(free, blocked)), env.inventory)
    assert [w.nodes for w in plan.waves] == [(free,), (blocked,)]

    # Before the first wave: the live pre-flight names the PDB that would block the drain.
    items = await preflight(plan, env.runner, env.actions)
    by_node = {i.node: i for i in items}
    assert by_node[blocked].blocked and "PDB inference/vllm" in by_node[blocked].detail
    assert not by_node[free].blocked
    text = "\n".join(render_preflight(items))
    assert f"✖ blocked {blocked}" in text
    assert [r for r in env.runner.audit.page() if r.phase == "intent"] == []  # read only

    run = env.runner_for(plan)
    status = await asyncio.wait_for(run.start("kernel params"), 120)
    assert status == "halted"
    nodes = await env.state.nodes(run.id)
    assert nodes[free][1] == "done"
    assert nodes[blocked][1] == "failed"
    assert nodes[blocked][2].startswith("drain failed:")
    assert "blocked by PDB inference/vllm" in nodes[blocked][2]
    steps = await env.state.steps(run.id)
    assert (blocked, "change") not in steps  # the change never ran on it
    # Left cordoned with its vllm pod still running (never deleted); the canary is back.
    assert api_node(lab, blocked)["spec"]["unschedulable"] is True
    assert len(pods_of(lab, blocked, "vllm")) == 1
    assert not api_node(lab, free)["spec"].get("unschedulable")

    rows = list(env.runner.audit.page(newest_first=False))
    drains = [r for r in rows if r.action == "kubernetes.drain" and r.phase == "result"]
    assert [(r.targets, r.outcome) for r in drains] == [((free,), "ok"), ((blocked,), "failed")]
    uncordons = [r for r in rows if r.action == "kubernetes.uncordon" and r.phase == "result"]
    assert [r.targets for r in uncordons] == [(free,)]
    assert ("rollout.gate", (blocked,), "failed") in events(env.runner)
    assert env.runner.audit.verify().ok
