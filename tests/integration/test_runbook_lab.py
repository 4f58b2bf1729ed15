"""The XID 79 runbook in the lab, end to end: a GPU falls off the bus, its alert offers the
runbook, and the run drains the node in Slurm, resets the GPU, checks it answers and
resumes the node -- real SSH, the real gpu and slurm plugins through the ActionRunner,
checks over the Store after real polls, all of it in the audit log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from console.action_plan import Plan
from console.actions import ActionRunner
from console.health import evaluate
from console.inventory.load import inventory_from_data
from console.inventory.model import Inventory
from console.lab import Lab
from console.plugin import Role
from console.poller import Poller
from console.store import Store
from console.wizards.runbook_env import PollerProbe, RunbookEnv, build_env
from console.wizards.runbook_library import load_library
from console.wizards.runbook_model import Step, runbook_from_data
from console.wizards.runbook_run import Decision, RunbookRun
from console.wizards.runbook_state import RunbookState
from plugins.gpu.lab import GpuLab
from plugins.gpu.manifest import plugin as gpu_plugin
from plugins.slurm.lab import SlurmLab
from plugins.slurm.manifest import plugin as slurm_plugin
from tests.integration.support import action_runner, emulation

LAB_SPEED = 2000.0
"""Lab time runs fast so the jobs on the drained node finish within a second or two."""
PLUGINS = [gpu_plugin, slurm_plugin]


def xid_inventory() -> Inventory:
    return inventory_from_data(
        {
            "site": {"name": "runbook-test"},
            "rooms": [{"name": "hall", "racks": [{"name": "R01", "power_budget_kw": 40}]}],
            "ssh": {"user": "ops"},
            "nodes": [
                {
                    "nodes": "gpu[01-02]",
                    "role": "gpu-train",
                    "rack": "R01",
                    "hardware": {"gpu_count": 4, "gpu_model": "NVIDIA H100 80GB HBM3"},
                    "clusters": {"slurm": "train", "partitions": ["gpu"]},
                },
                {
                    "nodes": "ctl01",
                    "role": "cpu",
                    "rack": "R01",
                    "clusters": {"slurm": "train", "partitions": ["cpu"]},
                },
            ],
            "clusters": {"slurm": {"train": {"controller": "ctl01"}}},
        },
        None,
    )


@dataclass
class Operator:
    """Confirms what the runbook shows, answers notes; any failed step is a test failure."""

    confirmed: list[tuple[str, str | None]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    async def confirm_action(self, run: RunbookRun, step: Step, plan: Plan) -> str | None:
        self.confirmed.append((plan.spec.id, plan.confirm_text))
        return plan.confirm_text or "yes"

    async def answer_note(self, run: RunbookRun, step: Step, text: str) -> str | None:
        return "none: first time"

    async def decide(self, run: RunbookRun, step: Step, failure: str, can_bypass: bool) -> Decision:
        self.failures.append(f"{step.id}: {failure}")
        return Decision("abort", f"unexpected failure: {failure}")


@dataclass
class Rig:
    lab: Lab
    runner: ActionRunner
    poller: Poller
    env: RunbookEnv

    @property
    def store(self) -> Store:
        assert isinstance(self.runner.store, Store)
        return self.runner.store

    async def poll_alerts(self) -> None:
        await self.poller.poll_once()
        self.store.set_findings(evaluate(self.store, self.lab.inventory, PLUGINS))


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    lab = Lab(xid_inventory(), tmp_path / "lab", PLUGINS, seed=5, speed=LAB_SPEED)
    await lab.start()
    try:
        async with action_runner(
            lab.inventory, None, tmp_path / "audit.db", role=Role.ADMIN
        ) as runner:
            assert isinstance(runner.store, Store)
            poller = Poller(
                runner.store,
                lab.inventory,
                runner.transports,
                [(p, c) for p in PLUGINS for c in p.collectors],
            )
            state = RunbookState.beside(tmp_path / "audit.db")
            env = build_env(PLUGINS, runner, runner.store, PollerProbe(poller), state)
            try:
                yield Rig(lab, runner, poller, env)
            finally:
                state.close()
    finally:
        await lab.stop()


async def test_xid79_alert_offers_the_runbook_that_drains_resets_verifies_and_resumes(
    rig: Rig,
) -> None:
    gpus = emulation(rig.lab, "gpu", GpuLab).hosts["gpu01"].gpus
    slurm = emulation(rig.lab, "slurm", SlurmLab)
    rig.lab.faults.inject("gpu.fell_off_bus", "gpu01", params={"gpu": 2})

    # The alert appears (after real polls over SSH) and offers the XID 79 runbook, on that GPU.
    deadline = asyncio.get_running_loop().time() + 30
    while not any(a.key == "gpu.health:gpu01/2:lost" for a in rig.store.alerts()):
        assert asyncio.get_running_loop().time() < deadline, "no XID 79 alert"
        await rig.poll_alerts()
    lib = load_library(PLUGINS, None)
    offers = lib.offers(a.finding for a in rig.store.alerts())
    offer = next(o for o in offers if o.runbook.id == "gpu-xid79")
    assert offer.target == "gpu01/2"
    target = rig.env.target(offer.runbook.target_kind, offer.target)
    assert target is not None and target.node == "gpu01"

    operator = Operator()
    assert offer.finding is not None
    run = RunbookRun(offer.runbook, target, rig.env, operator, alert=offer.finding.message)
    status = await asyncio.wait_for(run.start(), 90)
    assert operator.failures == []
    assert status == "done"

    # The world changed as the runbook said: drained, GPU back, node resumed.
    assert [spec for spec, _ in operator.confirmed] == ["slurm.drain", "gpu.reset", "slurm.resume"]
    assert ("gpu.reset", "gpu01/2") in operator.confirmed  # typed, as a destructive action
    assert gpus[2].lost is False and gpus[2].resets == 1
    verbs = [c.lower() for _, c in slurm.commands if "nodename=gpu01" in c.lower()]
    assert any("state=drain" in v and "xid 79 on gpu 2" in v for v in verbs), verbs
    assert any("state=resume" in v for v in verbs), verbs
    assert rig.store.value("gpu01/2", "gpu.state") == "ok"
    assert rig.store.value("gpu01", "slurm.drained") is False

    # The audit log has every step, its result and the actions' own intent/result rows.
    rows = list(rig.runner.audit.page(newest_first=False))
    steps = [
        (r.action, r.params.get("step"), r.outcome)
        for r in rows
        if r.phase == "runbook" and r.params.get("run") == run.id
    ]
    assert steps[0] == ("runbook.start", None, "")
    results = {s: o for a, s, o in steps if a == "runbook.step.result"}
    assert results == {
        "confirm": "ok",
        "drain-slurm": "ok",
        "drain-k8s": "skipped",
        "drained-slurm": "ok",
        "drained-k8s": "skipped",
        "reset": "ok",
        "verify": "ok",
        "resume-slurm": "ok",
        "resume-k8s": "skipped",
        "in-service": "ok",
        "ticket": "ok",
    }
    starts = [s for a, s, _ in steps if a == "runbook.step.start"]
    assert starts == list(results)  # each started once, in order
    assert ("runbook.note", "ticket", "ok") in steps
    assert steps[-1] == ("runbook.done", None, "ok")
    actions = [(r.action, r.phase, r.outcome) for r in rows if r.phase in ("intent", "result")]
    assert actions == [
        ("slurm.drain", "intent", ""),
        ("slurm.drain", "result", "ok"),
        ("gpu.reset", "intent", ""),
        ("gpu.reset", "result", "ok"),
        ("slurm.resume", "intent", ""),
        ("slurm.resume", "result", "ok"),
    ]
    assert rig.runner.audit.verify().ok
    stored = await rig.env.state.get(run.id)
    assert stored is not None and stored.status == "done"


async def test_a_gpu_lost_for_good_fails_the_reset_and_the_bypass_reason_is_on_record(
    rig: Rig,
) -> None:
    rig.lab.faults.inject("gpu.fell_off_bus", "gpu02", params={"gpu": 1, "hard": True})
    await rig.poll_alerts()
    lib = load_library(PLUGINS, None)
    entry = lib.get("gpu-xid79")
    assert entry is not None
    target = rig.env.target("gpu", "gpu02/1")
    assert target is not None

    @dataclass
    class Bypasser(Operator):
        async def decide(
            self, run: RunbookRun, step: Step, failure: str, can_bypass: bool
        ) -> Decision:
            self.failures.append(f"{step.id}: {failure}")
            if step.id == "reset":
                return Decision("bypass", "reset cannot reach it: cold boot in the next window")
            return Decision("abort", "the GPU stays lost: hardware ticket HW-7")

    # The verify step waits 3 s here, not 3 minutes.
    doc = entry.runbook.model_dump(mode="json")
    for step in doc["steps"]:
        if step["id"] == "verify":
            step["timeout_s"] = 3
    operator = Bypasser()
    run = RunbookRun(runbook_from_data(doc), target, rig.env, operator)
    assert await asyncio.wait_for(run.start(), 90) == "aborted"
    assert operator.failures[0].startswith("reset: gpu.reset gpu02/1: failed")
    assert "GPU is lost. Reboot the system" in operator.failures[0]
    assert operator.failures[1].startswith("verify: gpu.answers gpu02/1 did not come to hold")
    rows = [r for r in rig.runner.audit.page(newest_first=False) if r.phase == "runbook"]
    by = {(r.action, r.params.get("step")): r for r in rows}
    assert by[("runbook.bypass", "reset")].detail == (
        "reset cannot reach it: cold boot in the next window"
    )
    assert by[("runbook.bypass", "reset")].outcome == "bypassed"
    assert by[("runbook.abort", "verify")].detail == "the GPU stays lost: hardware ticket HW-7"
    assert rows[-1].action == "runbook.aborted"
    # Nothing after the abort ran: the node stays drained.
    assert ("runbook.step.start", "resume-slurm") not in by
