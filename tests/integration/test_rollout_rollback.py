"""Rolling back the completed waves (newest first, through the same node pipeline, durable
and audited), site-level checks as rollout steps, approving past a failed gate, and a
change that a dead console committed as started but never began."""

from __future__ import annotations

import asyncio

import pytest

from console.wizards.rollout_model import SiteCheck, rollout_from_data
from console.wizards.rollout_plan import plan_rollout
from console.wizards.rollout_run import RolloutRefused
from console.wizards.rollout_steps import evaluate, run_action
from tests.integration.test_rollout_lab import ROLLOUT, Rig, rig, rollout_rows

__all__ = ["rig"]  # the lab fixture, shared with test_rollout_lab

NAME = "driver 560"


async def test_completed_waves_roll_back_newest_first_and_a_killed_rollback_resumes(
    rig: Rig,
) -> None:
    fault = rig.lab.faults.inject("rolltest.bad_install", "gpu03")
    run = rig.rollout()
    assert await asyncio.wait_for(run.start(NAME), 120) == "halted"
    await run.abort_stopped("the new driver loses GPUs: back out")
    assert (await rig.state.get(run.id)).status == "aborted"  # type: ignore[union-attr]
    with pytest.raises(RolloutRefused, match="aborted"):
        await rig.rollout(run.id).resume()

    rig.lab.faults.clear(fault)
    # The canary's rollback hangs and the console dies in it: the rollback resumes later.
    rig.lab.faults.inject("rolltest.slow_install", "gpu01", {"seconds": 60})
    task = asyncio.create_task(run.rollback_waves())
    deadline = asyncio.get_running_loop().time() + 60
    while ("gpu01", "550") not in rig.emu.installs:
        assert asyncio.get_running_loop().time() < deadline, "the canary's rollback never started"
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await rig.state.get(run.id)).mode == "rollback"  # type: ignore[union-attr]
    assert (await rig.state.steps(run.id))[("gpu01", "rb_change")].state == "started"

    rig.lab.faults.clear_all()
    assert await asyncio.wait_for(rig.rollout(run.id).resume(), 120) == "rolled_back"
    # Wave 1 (gpu02, gpu03) was undone before the canary; gpu04 was never changed.
    assert rig.emu.installs[0] == ("gpu01", "560")
    undone = [n for n, v in rig.emu.installs if v == "550"]
    assert sorted(undone[:2]) == ["gpu02", "gpu03"] and undone[2:] == ["gpu01"]  # once each
    assert all(n != "gpu04" for n, _ in rig.emu.installs)
    nodes = await rig.state.nodes(run.id)
    assert {n: s for n, (_, s, _) in nodes.items()} == {
        "gpu01": "rolled_back",
        "gpu02": "rolled_back",
        "gpu03": "rolled_back",
        "gpu04": "pending",
    }
    for node in ("gpu01", "gpu02", "gpu03"):
        assert rig.runner.store.value(node, "slurm.drained") is False  # back in service
    steps = await rig.state.steps(run.id)
    assert "outcome unknown after a restart" in steps[("gpu01", "rb_change")].detail
    events = rollout_rows(rig.runner)
    names = [e[0] for e in events]
    assert names.index("rollout.aborted") < names.index("rollout.rollback_start")
    assert ("rollout.verify", ("gpu01",), "ok") in events
    assert events[-1][0] == "rollout.rolled_back"
    assert rig.runner.audit.verify().ok


async def test_a_site_check_halts_before_any_node_is_touched_and_approval_passes_the_gate(
    rig: Rig,
) -> None:
    rig.plan = plan_rollout(
        rollout_from_data(
            dict(ROLLOUT, pre_checks=[{"check": "slurm.controller", "target": "train"}])
        ),
        rig.lab.inventory,
    )
    rig.lab.faults.inject("host.down", "ctl01")  # Slurm's controller stops answering
    run = rig.rollout()
    assert await asyncio.wait_for(run.start(NAME), 120) == "halted"
    nodes = await rig.state.nodes(run.id)
    assert nodes["gpu01"][1] == "failed"
    assert "slurm.controller@train" in nodes["gpu01"][2] and "node not touched" in nodes["gpu01"][2]
    assert rig.emu.installs == [] and rig.slurm_commands("gpu01") == []

    with pytest.raises(RolloutRefused, match="reason"):
        await run.override_gate("")
    rig.lab.faults.clear_all()
    checks = {c.id: c for p in rig.plugins for c in p.checks}
    site = [SiteCheck(check="slurm.controller", target="train")]
    deadline = asyncio.get_running_loop().time() + 30
    while evaluate(rig.runner.store, checks, site, "gpu01"):  # the controller answers again
        assert asyncio.get_running_loop().time() < deadline, "the controller stayed down"
        await rig.poller.poll_once()
    assert await run.override_gate("controller restarted: OPS-12") == 0
    assert await asyncio.wait_for(rig.rollout(run.id).resume(), 120) == "done"
    nodes = await rig.state.nodes(run.id)
    assert nodes["gpu01"][1] == "failed"  # accepted, not changed
    assert sorted(n for n, _ in rig.emu.installs) == ["gpu02", "gpu03", "gpu04"]
    assert ("rollout.override", ("gpu01",), "ok") in rollout_rows(rig.runner)


async def test_a_change_that_never_reached_the_audit_log_runs_on_resume_exactly_once(
    rig: Rig,
) -> None:
    # A console died between committing "change started" and writing the action's intent.
    run = rig.rollout()
    await run.record_start()
    drained = await run_action(
        rig.runner, run.actions["slurm.drain"], "gpu01", {"reason": "rollout test"}
    )
    assert drained.ok, drained.detail
    for step in ("pre_check", "drain"):
        await rig.state.set_step(run.id, "gpu01", step, "done", "ok")
    await rig.state.set_step(run.id, "gpu01", "change", "started")
    await rig.state.set_node(run.id, "gpu01", "running")
    status = await asyncio.wait_for(rig.rollout(run.id).resume(), 120)
    assert status == "done", await rig.state.nodes(run.id)
    assert sorted(n for n, _ in rig.emu.installs) == ["gpu01", "gpu02", "gpu03", "gpu04"]
    (verify,) = [r for r in rig.runner.audit.page() if r.action == "rollout.verify"]
    assert "no intent in the audit log): it never ran, and runs now" in verify.detail
