"""The slurm plugin against the lab over real SSH: collector, coupling, actions via the runner."""

from __future__ import annotations

import json
from typing import Any

import pytest

from console.actions import ActionRunner
from console.inventory.load import inventory_from_data
from console.inventory.model import Inventory
from console.lab import Lab
from console.plugin import Reading, Target
from console.store import Store
from plugins.slurm.actions import ACTIONS, live_job_targets, node_targets
from plugins.slurm.collect import collect_cluster, read_cluster, read_command
from plugins.slurm.lab import SlurmLab
from plugins.slurm.manifest import plugin as slurm_plugin
from plugins.slurm.parse_json import parse_nodes_json
from tests.integration.support import (
    CollectCtx,
    ctx_for,
    emulation,
    lab_fixture,
    runner_fixture,
)

SPECS = {a.id: a for a in ACTIONS}


def slurm_inventory() -> Inventory:
    return inventory_from_data(
        {
            "site": {"name": "slurm-test"},
            "rooms": [{"name": "hall", "racks": [{"name": "R01", "power_budget_kw": 40}]}],
            "ssh": {"user": "ops"},
            "nodes": [
                {
                    "nodes": "gpu[01-03]",
                    "role": "gpu-train",
                    "rack": "R01",
                    "u_start": 1,
                    "u_height": 4,
                    "hardware": {"gpu_count": 8},
                    "clusters": {"slurm": "train", "partitions": ["gpu"]},
                },
                {
                    "nodes": "ctl01",
                    "role": "cpu",
                    "rack": "R01",
                    "u_start": 20,
                    "clusters": {"slurm": "train", "partitions": ["cpu"]},
                },
            ],
            "clusters": {"slurm": {"train": {"controller": "ctl01"}}},
            "plugins": {"slurm": {"interval": 5}},
        },
        None,
    )


lab = lab_fixture(slurm_inventory, [slurm_plugin], seed=11)


runner = runner_fixture()


def emu(lab: Lab) -> SlurmLab:
    return emulation(lab, "slurm", SlurmLab)


def ctx_of(lab: Lab, runner: ActionRunner) -> CollectCtx:
    return ctx_for(lab.inventory, runner.transports, "slurm")


def values(readings: list[Reading] | Any) -> dict[tuple[str, str], Any]:
    return {(r.target, r.metric): r.value for r in readings}


async def test_one_ssh_round_trip_on_the_controller_reads_nodes_jobs_and_queue(
    lab: Lab, runner: ActionRunner
) -> None:
    before = len(lab.hosts["ctl01"].commands)
    readings = await collect_cluster(ctx_of(lab, runner), Target("cluster", "train", node="ctl01"))
    assert lab.hosts["ctl01"].commands[before:] == [read_command("auto")]
    got = values(readings)
    assert got[("gpu01", "slurm.gpus_total")] == 8
    assert got[("gpu01", "slurm.allocation")] in ("idle", "mixed", "alloc")
    assert got[("slurm:train", "slurm.gpus_total")] == 24
    queue = json.loads(got[("slurm:train", "slurm.queue")])
    assert queue["jobs_running"] + queue["jobs_pending"] > 0
    running = [r for r in readings if r.metric == "slurm.workloads" and r.value]
    assert running and all(str(r.value).startswith("job ") for r in running)


async def test_the_lab_answers_in_the_real_22_05_json_shape(lab: Lab, runner: ActionRunner) -> None:
    node = lab.inventory.nodes["ctl01"]
    result = await runner.transports.ssh.run(node, "sinfo --json", timeout=10)
    doc = json.loads(result.stdout)
    assert doc["meta"]["plugin"]["type"] == "openapi/v0.0.38"
    peer_keys = {
        "name",
        "state",
        "state_flags",
        "reason",
        "reason_changed_at",
        "reason_set_by_user",
        "gres",
        "gres_used",
        "partitions",
        "next_state_after_reboot",
    }
    assert peer_keys <= set(doc["nodes"][0])
    assert {n.name for n in parse_nodes_json(result.stdout)} == {"gpu01", "gpu02", "gpu03", "ctl01"}


async def test_text_format_reads_the_same_states(lab: Lab, runner: ActionRunner) -> None:
    ctx = ctx_of(lab, runner)
    lab.faults.inject("slurm.gpu_failure", "gpu02")
    emu(lab).tick(lab.clock.now())
    from plugins.slurm.collect import read_ssh

    as_json = await read_ssh(ctx, "train", "json", 10)
    as_text = await read_ssh(ctx, "train", "text", 10)
    assert {n.name: n.allocation for n in as_json.nodes} == {
        n.name: n.allocation for n in as_text.nodes
    }
    assert {j.job_id for j in as_json.jobs} == {j.job_id for j in as_text.jobs}


async def test_a_gpu_failure_drains_the_node_with_a_reason_that_outlives_the_fault(
    lab: Lab, runner: ActionRunner
) -> None:
    fid = lab.faults.inject("slurm.gpu_failure", "gpu03")
    emu(lab).tick(lab.clock.now())
    snap = await read_cluster(ctx_of(lab, runner), "train")
    gpu03 = next(n for n in snap.nodes if n.name == "gpu03")
    assert "DRAIN" in gpu03.flags and gpu03.reason_by == "slurm"
    assert gpu03.reason and "gres/gpu count reported lower" in gpu03.reason
    lab.faults.clear(fid)
    emu(lab).tick(lab.clock.now())
    snap = await read_cluster(ctx_of(lab, runner), "train")
    assert "DRAIN" in next(n for n in snap.nodes if n.name == "gpu03").flags


async def test_a_powered_off_host_goes_down_and_its_jobs_are_requeued(lab: Lab) -> None:
    sim = emu(lab).clusters["train"]
    on_gpu01 = [j for j in sim.jobs.values() if j.state == "RUNNING" and "gpu01" in j.nodes]
    lab.faults.inject("host.power_off", "gpu01")
    emu(lab).tick(lab.clock.now())
    node = sim.nodes["gpu01"]
    assert node.down and node.reason == "Not responding"
    assert all(j.state == "PENDING" and "gpu01" not in j.nodes for j in on_gpu01)


async def test_a_drained_node_gets_no_new_job(lab: Lab) -> None:
    sim = emu(lab).clusters["train"]
    lab_emu = emu(lab)
    sim.nodes["gpu02"].drain = True
    for job in list(sim.jobs.values()):  # free everything: only the drain keeps gpu02 empty
        if job.state == "RUNNING" and "gpu02" in job.nodes:
            job.state, job.nodes = "COMPLETED", []
    for _ in range(20):
        lab_emu._submit(sim, lab.clock.now())
    lab_emu.tick(lab.clock.now())
    assert sim.used("gpu02") == 0
    assert any(j.state == "RUNNING" for j in sim.jobs.values())


async def test_drain_previews_signs_the_reason_audits_and_verifies(
    lab: Lab, runner: ActionRunner
) -> None:
    spec = SPECS["slurm.drain"]
    (target,) = [t for t in node_targets(lab.inventory, None) if t.name == "gpu01"]
    plan = await runner.plan(spec, [target], {"reason": "replace GPU 3"})
    assert (
        plan.previews[0]
        .lines[0]
        .startswith(
            "scontrol update nodename=gpu01 state=drain 'reason=alice: replace GPU 3' on ctl01 ("
        )
    )
    (result,) = await runner.execute(plan, None)
    assert result.outcome == "ok", result.detail
    assert "gpu01" in result.detail and "alice: replace GPU 3" in result.detail
    node = emu(lab).clusters["train"].nodes["gpu01"]
    assert node.drain and node.reason == "alice: replace GPU 3"
    rows = runner.audit.page(newest_first=False)
    assert [r.phase for r in rows] == ["intent", "result"]
    assert rows[0].action == "slurm.drain" and rows[0].targets == ("gpu01",)
    assert rows[1].outcome == "ok"

    resume = await runner.plan(SPECS["slurm.resume"], [target], {})
    (result,) = await runner.execute(resume, None)
    assert result.outcome == "ok", result.detail
    assert not node.drain and node.reason == ""


async def test_drain_without_a_reason_is_refused_before_anything_runs(
    lab: Lab, runner: ActionRunner
) -> None:
    from console.actions import ActionInputError

    (target,) = [t for t in node_targets(lab.inventory, None) if t.name == "gpu01"]
    with pytest.raises(ActionInputError, match="reason"):
        await runner.plan(SPECS["slurm.drain"], [target], {})
    assert emu(lab).commands == []


async def test_reboot_asap_needs_the_next_state_and_typed_confirmation(
    lab: Lab, runner: ActionRunner
) -> None:
    from console.actions import ActionInputError

    (target,) = [t for t in node_targets(lab.inventory, None) if t.name == "gpu02"]
    with pytest.raises(ActionInputError, match="next_state"):
        await runner.plan(SPECS["slurm.reboot"], [target], {"reason": "firmware"})
    plan = await runner.plan(
        SPECS["slurm.reboot"], [target], {"next_state": "drain", "reason": "firmware"}
    )
    assert plan.confirm_text == "gpu02"
    assert "nextstate=drain" in plan.previews[0].lines[0]
    (result,) = await runner.execute(plan, "gpu02")
    assert result.outcome == "ok", result.detail
    assert ("ctl01", "scontrol reboot ASAP nextstate=drain reason=alice: firmware gpu02") in emu(
        lab
    ).commands


async def test_job_hold_release_and_cancel_are_verified_in_squeue(
    lab: Lab, runner: ActionRunner
) -> None:
    ctx = ctx_of(lab, runner)
    sim = emu(lab).clusters["train"]
    for _ in range(12):  # more GPU work than the three nodes hold: some of it waits
        emu(lab)._submit(sim, lab.clock.now())
    emu(lab).tick(lab.clock.now())
    store = Store()
    store.put(await collect_cluster(ctx, Target("cluster", "train", node="ctl01")))
    pending = next(j for j in sim.jobs.values() if j.state == "PENDING")
    targets = {t.name: t for t in live_job_targets(store, lab.inventory, None)}
    target = targets[f"train:{pending.job_id}"]
    (held,) = await runner.execute(await runner.plan(SPECS["slurm.hold_job"], [target], {}), None)
    assert held.outcome == "ok", held.detail
    assert "JobHeldAdmin" in held.detail and pending.held
    (rel,) = await runner.execute(await runner.plan(SPECS["slurm.release_job"], [target], {}), None)
    assert rel.outcome == "ok", rel.detail
    plan = await runner.plan(SPECS["slurm.cancel_job"], [target], {})
    (cancelled,) = await runner.execute(plan, plan.confirm_text)
    assert cancelled.outcome == "ok", cancelled.detail
    assert pending.state == "CANCELLED"


async def test_a_silent_controller_makes_the_collector_fail_clearly(
    lab: Lab, runner: ActionRunner
) -> None:
    lab.faults.inject("slurm.controller_down", "train")
    with pytest.raises(Exception, match="Unable to contact slurm controller"):
        await read_cluster(ctx_of(lab, runner), "train")
