"""Full rollouts in the lab: real SSH, the real slurm plugin's drain/resume through the
ActionRunner, checks over the Store after a real poll, durable state, the audit log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from console.actions import ActionRunner
from console.inventory.load import inventory_from_data
from console.inventory.model import Inventory
from console.lab import Lab
from console.plugin import (
    CheckSpec,
    CollectContext,
    CollectorSpec,
    CommandReply,
    Finding,
    LabHostContext,
    Plugin,
    Reading,
    Severity,
    Target,
)
from console.poller import Job, Poller
from console.store import Store, StoreView
from console.wizards.rollout_model import rollout_from_data
from console.wizards.rollout_plan import Plan, plan_rollout
from console.wizards.rollout_run import RolloutRefused, RolloutRunner, confirm_text
from console.wizards.rollout_state import RolloutState
from plugins.slurm.lab import SlurmLab
from plugins.slurm.manifest import plugin as slurm_plugin
from tests.integration.support import action_runner

LAB_SPEED = 2000.0
"""Lab time runs fast so the jobs on a drained node finish within a second or two."""


def rollout_inventory() -> Inventory:
    return inventory_from_data(
        {
            "site": {"name": "rollout-test"},
            "rooms": [
                {
                    "name": "hall",
                    "racks": [
                        {"name": "R01", "power_budget_kw": 40},
                        {"name": "R02", "power_budget_kw": 40},
                    ],
                }
            ],
            "ssh": {"user": "ops"},
            "nodes": [
                {
                    "nodes": "gpu[01-02]",
                    "role": "gpu-train",
                    "rack": "R01",
                    "hardware": {"gpu_count": 8},
                    "clusters": {"slurm": "train", "partitions": ["gpu"]},
                },
                {
                    "nodes": "gpu[03-04]",
                    "role": "gpu-train",
                    "rack": "R02",
                    "hardware": {"gpu_count": 8},
                    "clusters": {"slurm": "train", "partitions": ["gpu"]},
                },
                {
                    "nodes": "ctl01",
                    "role": "cpu",
                    "rack": "R02",
                    "clusters": {"slurm": "train", "partitions": ["cpu"]},
                },
            ],
            "clusters": {"slurm": {"train": {"controller": "ctl01"}}},
            "plugins": {"slurm": {"interval": 5}},
        },
        None,
    )


# --------------------------------------------------------------------------- a driver to change


@dataclass
class DriverLab:
    """Emulates a driver installer and a version probe on each host."""

    versions: dict[str, str] = field(default_factory=dict)
    gpus: dict[str, int] = field(default_factory=dict)
    installs: list[tuple[str, str]] = field(default_factory=list)

    async def start(self, lab: Any) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def command(self, host: LabHostContext, command: str) -> CommandReply | None:
        if command.startswith("dcc-driver-install --version "):
            version = command.split()[-1]
            self.installs.append((host.name, version))
            self.versions[host.name] = version
            # with the fault a GPU falls off the bus after the install; without, all 8 answer
            self.gpus[host.name] = 7 if host.fault("rolltest.bad_install") is not None else 8
            slow = host.fault("rolltest.slow_install")
            delay = float(slow.get("seconds", 30)) if slow is not None else 0.0
            return CommandReply(stdout=f"installed {version}\n", delay=delay)
        if command == "dcc-driver-version":
            name = host.name
            return CommandReply(
                stdout=f"{self.versions.get(name, '550')} {self.gpus.get(name, 8)}\n"
            )
        return None

    def tick(self, now: float) -> None:
        return None

    def rewrite_config(self, section: dict[str, Any]) -> dict[str, Any]:
        return section

    def fault_names(self) -> Sequence[str]:
        return ("rolltest.bad_install", "rolltest.slow_install")


def _driver_targets(inventory: Inventory, config: Any) -> list[Target]:
    return [Target("node", n, node=n) for n, node in inventory.nodes.items() if node.role != "cpu"]


async def _collect_driver(ctx: CollectContext, target: Target) -> list[Reading]:
    node = ctx.inventory.nodes[target.name]
    result = await ctx.transports.ssh.run(node, "dcc-driver-version", timeout=10)
    version, gpus = result.stdout.split()
    return [
        Reading(target.name, "rolltest.driver", version, source="ssh"),
        Reading(target.name, "rolltest.gpus", int(gpus), source="ssh"),
    ]


def _check_driver(store: StoreView, target: Target) -> Finding:
    gpus = store.value(target.name, "rolltest.gpus")
    if gpus is None:
        return Finding(Severity.UNKNOWN, target.name, f"{target.name}: GPU count unknown")
    if gpus != 8:
        return Finding(Severity.CRITICAL, target.name, f"GPU count {gpus} != 8")
    return Finding(Severity.OK, target.name, "8 GPUs")


DRIVER_CHECK = CheckSpec("rolltest.driver_ok", "all GPUs present", "node", _check_driver)


def driver_plugin(emu: DriverLab) -> Plugin:
    return Plugin(
        name="rolltest",
        description="a driver to roll out",
        collectors=(CollectorSpec("rolltest.driver", _driver_targets, _collect_driver),),
        checks=(DRIVER_CHECK,),
        lab=lambda: emu,
    )


ROLLOUT = {
    "name": "driver 560",
    "targets": "gpu[01-04]",
    "expect_count": 4,
    "change": {"command": "dcc-driver-install --version 560", "timeout_s": 30},
    "rollback": {"command": "dcc-driver-install --version 550", "timeout_s": 30},
    "pre_checks": ["rolltest.driver_ok"],
    "post_checks": ["rolltest.driver_ok"],
    "resume_checks": ["slurm.in_service"],
    "settle_s": 0,
    "poll_s": 0.2,
    "check_timeout_s": 3,
    "drain": {"wait_jobs_s": 60},
    "caps": {"per_rack": 1, "max_pool_pct": 50},
    "gate": {"max_fail_pct": 0},
}


@dataclass
class Rig:
    lab: Lab
    emu: DriverLab
    runner: ActionRunner
    plan: Plan
    state: RolloutState
    poller: Poller
    plugins: list[Plugin]

    def rollout(self, rollout_id: str | None = None) -> RolloutRunner:
        def wanted(job: Job, nodes: Sequence[str]) -> bool:
            return job.target.kind != "node" or job.target.name in nodes

        async def refresh(nodes: Sequence[str]) -> None:
            await self.poller.poll_once(lambda job: wanted(job, nodes))

        return RolloutRunner(
            self.plan,
            self.runner,
            self.state,
            actions={a.id: a for p in self.plugins for a in p.actions},
            checks={c.id: c for p in self.plugins for c in p.checks},
            refresh=refresh,
            rollout_id=rollout_id,
        )

    def slurm_commands(self, node: str) -> list[str]:
        emu = self.lab.emulations["slurm"]
        assert isinstance(emu, SlurmLab)
        return [c for _, c in emu.commands if f"nodename={node}" in c.lower()]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    emu = DriverLab()
    plugins = [slurm_plugin, driver_plugin(emu)]
    lab = Lab(rollout_inventory(), tmp_path / "lab", plugins, seed=11, speed=LAB_SPEED)
    await lab.start()
    try:
        async with action_runner(lab.inventory, None, tmp_path / "audit.db") as runner:
            assert isinstance(runner.store, Store)
            poller = Poller(
                runner.store,
                lab.inventory,
                runner.transports,
                [(p, c) for p in plugins for c in p.collectors],
            )
            state = RolloutState.beside(tmp_path / "audit.db")
            plan = plan_rollout(rollout_from_data(ROLLOUT), lab.inventory)
            try:
                yield Rig(lab, emu, runner, plan, state, poller, plugins)
            finally:
                state.close()
    finally:
        await lab.stop()


def rollout_rows(runner: ActionRunner) -> list[tuple[str, tuple[str, ...], str]]:
    return [
        (r.action, r.targets, r.outcome)
        for r in runner.audit.page(newest_first=False)
        if r.phase == "rollout"
    ]


async def test_the_plan_is_canary_then_one_node_per_rack(rig: Rig) -> None:
    assert [w.nodes for w in rig.plan.waves] == [("gpu01",), ("gpu02", "gpu03"), ("gpu04",)]


async def test_a_clean_rollout_drains_changes_checks_and_resumes_every_node(rig: Rig) -> None:
    run = rig.rollout()
    with pytest.raises(RolloutRefused, match="does not match the rollout name 'driver 560'"):
        await run.start("4")
    assert rig.emu.installs == []

    status = await asyncio.wait_for(run.start(confirm_text(rig.plan)), 120)
    assert status == "done"
    assert sorted(rig.emu.installs) == [(f"gpu0{i}", "560") for i in range(1, 5)]
    assert rig.emu.installs[0] == ("gpu01", "560")  # the canary first
    for node in ("gpu01", "gpu02", "gpu03", "gpu04"):
        verbs = rig.slurm_commands(node)
        assert any("state=drain" in v.lower() and "reason=" in v.lower() for v in verbs), verbs
        assert any("state=resume" in v.lower() for v in verbs), verbs
        assert rig.runner.store.value(node, "slurm.drained") is False  # back in service
    nodes = await rig.state.nodes(run.id)
    assert {n: s for n, (_, s, _) in nodes.items()} == dict.fromkeys(nodes, "done")
    assert (await rig.state.get(run.id)).status == "done"  # type: ignore[union-attr]

    rows = list(rig.runner.audit.page(newest_first=False))
    changes = [r for r in rows if r.action == "rollout.command" and r.phase == "result"]
    assert sorted(r.targets[0] for r in changes) == ["gpu01", "gpu02", "gpu03", "gpu04"]
    assert all(r.outcome == "ok" for r in changes)
    for action in ("slurm.drain", "slurm.resume"):
        assert len([r for r in rows if r.action == action and r.phase == "result"]) == 4
    events = rollout_rows(rig.runner)
    assert events[0][0] == "rollout.refused" and events[1][0] == "rollout.start"
    assert [e for e in events if e[0] == "rollout.gate"] == [
        ("rollout.gate", w.nodes, "ok") for w in rig.plan.waves
    ]
    assert events[-1] == ("rollout.done", tuple(t.name for t in rig.plan.targets), "ok")
    assert rig.runner.audit.verify().ok


async def test_a_node_failing_its_post_check_halts_the_gate_and_later_waves_are_untouched(
    rig: Rig,
) -> None:
    rig.lab.faults.inject("rolltest.bad_install", "gpu03")
    run = rig.rollout()
    status = await asyncio.wait_for(run.start("driver 560"), 120)
    assert status == "halted"
    assert ("gpu04", "560") not in rig.emu.installs  # wave 2 never started
    assert rig.slurm_commands("gpu04") == []
    row = await rig.state.get(run.id)
    assert row is not None and row.status == "halted"
    assert "1 of 2 node(s) failed in this wave: more than 0%" in row.halt_reason
    nodes = await rig.state.nodes(run.id)
    assert nodes["gpu03"][1] == "failed"
    assert "post-check failed" in nodes["gpu03"][2] and "GPU count 7 != 8" in nodes["gpu03"][2]
    assert nodes["gpu02"][1] == "done" and nodes["gpu04"][1] == "pending"
    assert rig.runner.store.value("gpu03", "slurm.drained") is not False  # left out of service
    events = rollout_rows(rig.runner)
    assert ("rollout.node", ("gpu03",), "failed") in events
    assert ("rollout.gate", ("gpu02", "gpu03"), "failed") in events

    # The operator skips the broken node with a reason and resumes: the rest goes on,
    # and nothing already done is repeated.
    with pytest.raises(RolloutRefused, match="reason"):
        await run.skip("gpu03", " ")
    await run.skip("gpu03", "GPU lost on the bus: ticket HW-1234")
    again = rig.rollout(run.id)
    assert await asyncio.wait_for(again.resume(), 120) == "done"
    installs = [n for n, _ in rig.emu.installs]
    assert sorted(installs) == ["gpu01", "gpu02", "gpu03", "gpu04"]  # each exactly once
    events = rollout_rows(rig.runner)
    assert ("rollout.skip", ("gpu03",), "ok") in events
    assert events[-1][0] == "rollout.done"
    assert rig.runner.audit.verify().ok


async def test_a_rollout_resumed_on_a_changed_inventory_is_refused(rig: Rig) -> None:
    run = rig.rollout()
    rig.lab.faults.inject("rolltest.bad_install", "gpu01")
    assert await asyncio.wait_for(run.start("driver 560"), 120) == "halted"
    # Between the confirmation and the resume, someone moved gpu04 to another rack.
    inv = rig.lab.inventory
    nodes = dict(inv.nodes)
    nodes["gpu04"] = nodes["gpu04"].model_copy(update={"rack": "R01"})
    moved = inv.model_copy(update={"nodes": nodes})
    changed = RolloutRunner(
        plan_rollout(rollout_from_data(ROLLOUT), moved),
        rig.runner,
        rig.state,
        actions={},
        checks={},
        refresh=run.refresh,
        rollout_id=run.id,
    )
    with pytest.raises(RolloutRefused, match="plan changed"):
        await changed.resume()
    assert ("rollout.refused", tuple(f"gpu0{i}" for i in range(1, 5)), "refused") in rollout_rows(
        rig.runner
    )


async def test_a_rollout_killed_mid_change_resumes_without_repeating_a_completed_step(
    rig: Rig, tmp_path: Path
) -> None:
    # gpu02's install hangs; the console dies while it runs (the task is cancelled
    # mid-step, as a killed process leaves it: the change step started, not finished).
    rig.lab.faults.inject("rolltest.slow_install", "gpu02", {"seconds": 60})
    run = rig.rollout()
    task = asyncio.create_task(run.start("driver 560"))
    deadline = asyncio.get_running_loop().time() + 60
    while ("gpu02", "560") not in rig.emu.installs or "gpu03" not in {
        n for n, (_, s, _) in (await rig.state.nodes(run.id)).items() if s == "done"
    }:
        assert asyncio.get_running_loop().time() < deadline, "gpu02's install never started"
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    steps = await rig.state.steps(run.id)
    assert steps[("gpu02", "change")].state == "started"  # in flight: outcome unknown
    assert (await rig.state.get(run.id)).status == "running"  # type: ignore[union-attr]
    assert [r.id for r in await rig.state.unfinished()] == [run.id]

    # A new console (new runner, same audit DB and rollout DB) resumes it.
    rig.lab.faults.clear_all()
    async with action_runner(rig.lab.inventory, None, tmp_path / "audit.db") as runner2:
        pending = await runner2.reconcile_on_start()
        assert [p.action for p in pending] == ["rollout.command"]
        rig.runner = runner2
        assert isinstance(runner2.store, Store)
        rig.poller = Poller(
            runner2.store,
            rig.lab.inventory,
            runner2.transports,
            [(p, c) for p in rig.plugins for c in p.collectors],
        )
        resumed = rig.rollout(run.id)
        assert await asyncio.wait_for(resumed.resume(), 120) == "done"
        steps = await rig.state.steps(run.id)
        assert (
            "outcome unknown after a restart; post-checks pass" in steps[("gpu02", "change")].detail
        )
        installs = [n for n, _ in rig.emu.installs]
        assert sorted(installs) == ["gpu01", "gpu02", "gpu03", "gpu04"]  # none repeated
        rows = list(runner2.audit.page(newest_first=False))
        resumes = [r for r in rows if r.action == "rollout.resume"]
        assert len(resumes) == 1
        assert runner2.audit.verify().ok


async def test_a_failed_node_rolled_back_returns_to_service_and_the_rollout_goes_on(
    rig: Rig,
) -> None:
    fault = rig.lab.faults.inject("rolltest.bad_install", "gpu03")
    run = rig.rollout()
    assert await asyncio.wait_for(run.start("driver 560"), 120) == "halted"
    rig.lab.faults.clear(fault)  # the cause is fixed; the old driver goes back
    result = await run.rollback("gpu03")
    assert result.ok, result.detail
    assert rig.emu.installs.count(("gpu03", "550")) == 1
    assert rig.runner.store.value("gpu03", "slurm.drained") is False  # back in service
    nodes = await rig.state.nodes(run.id)
    assert nodes["gpu03"][1] == "rolled_back" and nodes["gpu03"][2].startswith("rollback: ")
    assert ("rollout.rollback", ("gpu03",), "ok") in rollout_rows(rig.runner)
    assert await asyncio.wait_for(rig.rollout(run.id).resume(), 120) == "done"
    assert ("gpu04", "560") in rig.emu.installs


async def test_approval_gates_each_wave_and_an_abort_touches_nothing_more(rig: Rig) -> None:
    rig.plan = plan_rollout(
        rollout_from_data(dict(ROLLOUT, gate={"max_fail_pct": 0, "approval": True})),
        rig.lab.inventory,
    )
    run = rig.rollout()
    task = asyncio.create_task(run.start("driver 560"))

    async def status() -> str:
        row = await rig.state.get(run.id)
        return row.status if row is not None else ""

    deadline = asyncio.get_running_loop().time() + 60
    while await status() != "awaiting_approval":
        assert asyncio.get_running_loop().time() < deadline, "never asked for approval"
        await asyncio.sleep(0.05)
    assert [n for n, _ in rig.emu.installs] == ["gpu01"]  # only the canary ran
    run.approve()
    while await status() != "awaiting_approval" or len(rig.emu.installs) < 3:
        assert asyncio.get_running_loop().time() < deadline, "wave 1 did not finish"
        await asyncio.sleep(0.05)
    run.abort("change window closed")
    assert await asyncio.wait_for(task, 30) == "aborted"
    assert ("gpu04", "560") not in rig.emu.installs
    assert rig.slurm_commands("gpu04") == []
    events = rollout_rows(rig.runner)
    assert ("rollout.approve", ("gpu02", "gpu03"), "ok") in events
    assert events[-1][0] == "rollout.aborted"
    assert (await rig.state.get(run.id)).halt_reason == "change window closed"  # type: ignore[union-attr]
