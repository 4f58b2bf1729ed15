"""The runbook engine on a scripted world: a real ActionRunner, audit log, approvals and
incidents on one SQLite file, the runbook state beside it. The probe writes what the
world looks like into the Store at each refresh, as the poller would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from console.action_plan import Plan
from console.actions import ActionRunner
from console.approvals import Approvals
from console.audit import AuditEvent, AuditLog
from console.identity import Operator
from console.incidents import Incidents
from console.inventory.load import inventory_from_data
from console.plugin import (
    ActionContext,
    ActionSpec,
    CheckSpec,
    Finding,
    Outcome,
    Plugin,
    Preview,
    Reading,
    Role,
    Severity,
    Target,
)
from console.store import Store, StoreView
from console.transports import Transports
from console.wizards.runbook_env import RunbookEnv, build_env
from console.wizards.runbook_model import Runbook, Step, runbook_from_data
from console.wizards.runbook_run import Decision, RunbookRefused, RunbookRun
from console.wizards.runbook_state import RunbookState

ALICE = Operator("alice", None, "/dev/pts/1", "jump1", 101)
BOB = Operator("bob", None, "/dev/pts/2", "jump1", 202)


@dataclass
class World:
    state: dict[str, str] = field(default_factory=lambda: {"n01": "broken", "n02": "broken"})
    fixes: list[str] = field(default_factory=list)
    fail_fix: int = 0
    block: asyncio.Event | None = None
    """While set to an unset event, a fix hangs (the console dies mid-action)."""


def rbtest_plugin(world: World) -> Plugin:
    def check(store: StoreView, target: Target) -> Finding:
        v = store.value(target.name, "rbtest.state")
        sev = Severity.UNKNOWN if v is None else Severity.OK if v == "ok" else Severity.CRITICAL
        return Finding(sev, target.name, f"{target.name} is {v}")

    async def preview(ctx: ActionContext, target: Target, inputs: Any) -> Preview:
        return Preview((f"fix {target.name}",))

    async def execute(ctx: ActionContext, target: Target, inputs: Any) -> Outcome:
        if world.block is not None:
            await world.block.wait()
        world.fixes.append(target.name)
        if world.fail_fix > 0:
            world.fail_fix -= 1
            return Outcome(False, "the fix tool crashed")
        world.state[target.name] = "ok"
        return Outcome(True, "fixed")

    async def verify(ctx: ActionContext, target: Target, inputs: Any, o: Outcome) -> Outcome:
        return o

    def nodes(inventory: Any, config: Any) -> list[Target]:
        return [Target("node", n, node=n) for n in inventory.nodes]

    return Plugin(
        name="rbtest",
        description="a world to fix",
        checks=(CheckSpec("rbtest.ok", "it is ok", "node", check, metrics=("rbtest.state",)),),
        actions=(ActionSpec("rbtest.fix", "Fix it", "node", nodes, preview, execute, verify),),
    )


@dataclass
class WorldProbe:
    world: World
    store: Store

    async def refresh(self, names: frozenset[str]) -> bool:
        self.store.put([Reading(n, "rbtest.state", v) for n, v in self.world.state.items()])
        return True


@dataclass
class Script:
    """The operator: confirms, answers notes, and takes the decisions given (in order)."""

    decisions: list[Decision] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)
    on_note: Callable[[], Any] | None = None

    async def confirm_action(self, run: RunbookRun, step: Step, plan: Plan) -> str | None:
        return plan.confirm_text or "yes"

    async def answer_note(self, run: RunbookRun, step: Step, text: str) -> str | None:
        if self.on_note is not None:
            await self.on_note()
        return f"answer to {text}"

    async def decide(self, run: RunbookRun, step: Step, failure: str, can_bypass: bool) -> Decision:
        self.asked.append(f"{step.id}: {failure}")
        return self.decisions.pop(0)


@dataclass
class Rig:
    world: World
    env: RunbookEnv
    db: Path
    logs: list[AuditLog]

    @property
    def runner(self) -> ActionRunner:
        return self.env.runner

    def run(self, doc: dict[str, Any], target: str, driver: Script, **kw: Any) -> RunbookRun:
        doc = {"id": "rb", "title": "Fix it", "target_kind": "node", "poll_s": 0.02, **doc}
        tgt = self.env.target("node", target)
        assert tgt is not None
        return RunbookRun(runbook_from_data(doc), tgt, self.env, driver, **kw)

    def rows(self, run: RunbookRun | None = None) -> list[AuditEvent]:
        return [
            r
            for r in self.runner.audit.page(newest_first=False)
            if r.phase == "runbook" and (run is None or r.params.get("run") == run.id)
        ]

    def events(self, run: RunbookRun) -> list[tuple[str, str | None, str]]:
        return [(r.action, r.params.get("step"), r.outcome) for r in self.rows(run)]

    def approvals_for(self, op: Operator) -> Approvals:
        log = AuditLog(self.db, operator=op, fallback_path=self.db.with_name(f"fb-{op.user}"))
        self.logs.append(log)
        return Approvals(log, op, poll_s=0.02)


async def until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for ``cond`` with a deadline (never a bare sleep to synchronise)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


INVENTORY = {
    "site": {"name": "rb"},
    "rooms": [{"name": "h", "racks": [{"name": "R01", "power_budget_kw": 10}]}],
    "nodes": [
        {"nodes": "n01", "role": "cpu", "rack": "R01", "clusters": {"slurm": "c1"}},
        {"nodes": "n02", "role": "cpu", "rack": "R01"},
    ],
    "clusters": {"slurm": {"c1": {"controller": "n01"}}},
}


async def make_rig(tmp_path: Path, role: Role = Role.OPERATOR) -> AsyncIterator[Rig]:
    world = World()
    plugin = rbtest_plugin(world)
    db = tmp_path / "audit" / "audit.db"
    audit = AuditLog(db, operator=ALICE, fallback_path=tmp_path / "fb.jsonl")
    transports = Transports.create()
    store = Store()
    inventory = inventory_from_data(INVENTORY, None)
    runner = ActionRunner(audit, inventory, transports, store, ALICE, role, False, {})
    state = RunbookState.beside(db)
    rig = Rig(world, build_env([plugin], runner, store, WorldProbe(world, store), state), db, [])
    rig.env.approvals = Approvals(audit, ALICE, poll_s=0.02)
    rig.env.incidents = Incidents(audit, ALICE)
    try:
        yield rig
    finally:
        state.close()
        for log in rig.logs:
            log.close()
        audit.close()
        await transports.close()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async for r in make_rig(tmp_path):
        yield r


FIX_AND_CHECK: dict[str, Any] = {
    "steps": [
        {"id": "confirm", "check": "rbtest.ok", "expect": "fail", "timeout_s": 5},
        {"id": "fix", "action": "rbtest.fix"},
        {"id": "fixed", "check": "rbtest.ok", "timeout_s": 5},
        {"id": "slurm-only", "note": "resume {node} in Slurm", "if_cluster": "slurm"},
    ]
}


async def test_a_check_passes_by_itself_when_the_store_shows_the_condition(rig: Rig) -> None:
    doc = {"steps": [{"id": "wait", "check": "rbtest.ok", "timeout_s": 10}]}
    run = rig.run(doc, "n02", Script())
    task = asyncio.create_task(run.start())
    await until(lambda: run.live is not None)  # the check is watched, and does not hold yet
    assert run.live is not None
    assert run.live.holds is False and run.live.readings[0].startswith("rbtest.state = broken")
    assert run.views["wait"].state == "running"
    rig.world.state["n02"] = "ok"  # someone fixed it: the step passes by itself
    assert await asyncio.wait_for(task, 10) == "done"
    assert rig.events(run) == [
        ("runbook.start", None, ""),
        ("runbook.step.start", "wait", ""),
        ("runbook.step.result", "wait", "ok"),
        ("runbook.done", None, "ok"),
    ]


async def test_a_failed_action_retried_is_audited_and_runs_again(rig: Rig) -> None:
    rig.world.fail_fix = 1
    script = Script([Decision("retry")])
    run = rig.run(FIX_AND_CHECK, "n01", script)
    assert await asyncio.wait_for(run.start(), 10) == "done"
    assert script.asked == ["fix: rbtest.fix n01: failed (the fix tool crashed)"]
    assert rig.world.fixes == ["n01", "n01"]
    events = rig.events(run)
    fix = [e for e in events if e[1] == "fix"]
    assert fix == [
        ("runbook.step.start", "fix", ""),
        ("runbook.step.result", "fix", "failed"),
        ("runbook.retry", "fix", ""),
        ("runbook.step.start", "fix", ""),
        ("runbook.step.result", "fix", "ok"),
    ]
    assert ("runbook.step.result", "slurm-only", "ok") in events  # n01 is in Slurm
    results = [(r.action, r.outcome) for r in rig.runner.audit.page(newest_first=False)
               if r.phase == "result"]  # fmt: skip
    assert results == [("rbtest.fix", "failed"), ("rbtest.fix", "ok")]
    assert rig.runner.audit.verify().ok


async def test_bypass_needs_a_reason_an_approval_cannot_be_bypassed_and_abort_stops(
    rig: Rig,
) -> None:
    rig.env.approvals = None  # this console has no second operator to ask
    doc = {
        "steps": [
            {"id": "stuck", "check": "rbtest.ok", "timeout_s": 0.1},
            {"id": "approve", "approval": "go on with {node}?"},
            {"id": "never", "action": "rbtest.fix"},
        ]
    }
    script = Script([
        Decision("bypass", "  "),
        Decision("bypass", "n02 is being rebuilt: TKT-9"),
        Decision("bypass", "in a hurry"),
        Decision("abort", "no second operator on shift"),
    ])  # fmt: skip
    run = rig.run(doc, "n02", script)
    assert await asyncio.wait_for(run.start(), 10) == "aborted"
    assert [a.split(":")[0] for a in script.asked] == ["stuck", "stuck", "approve", "approve"]
    assert rig.world.fixes == []
    events = rig.events(run)
    assert events[-1] == ("runbook.aborted", None, "aborted")
    by = {(r.action, r.params.get("step"), r.detail) for r in rig.rows(run)}
    assert ("runbook.refused", "stuck", "a bypass needs a reason") in by
    assert ("runbook.bypass", "stuck", "n02 is being rebuilt: TKT-9") in by
    assert (
        "runbook.refused",
        "approve",
        "approval by a second operator cannot be bypassed: retry it or abort",
    ) in by
    assert ("runbook.abort", "approve", "no second operator on shift") in by
    assert ("runbook.step.start", "never", "action rbtest.fix") not in by
    stored = await rig.env.state.get(run.id)
    assert stored is not None and stored.status == "aborted"
    assert (await rig.env.state.steps(run.id))["stuck"].state == "bypassed"


async def test_two_person_steps_wait_for_a_second_operator_on_the_same_database(
    rig: Rig,
) -> None:
    bob = rig.approvals_for(BOB)
    doc = {
        "steps": [
            {"id": "approve", "approval": "fix {node} during the job?"},
            {"id": "fix", "action": "rbtest.fix", "two_person": True},
        ]
    }
    script = Script([Decision("abort", "bob said not now")])
    run = rig.run(doc, "n01", script)
    task = asyncio.create_task(run.start())

    async def next_request() -> Any:
        while True:
            pending = await bob.pending_async()
            if pending:
                return pending[0]
            await asyncio.sleep(0.02)

    first = await asyncio.wait_for(next_request(), 10)
    assert first.subject == "fix n01 during the job?" and first.requested_by == "alice"
    await until(lambda: run.waiting_for == f"approval #{first.id} by another operator")
    await bob.decide(first.id, True, "go ahead")
    second = await asyncio.wait_for(next_request(), 10)
    assert second.subject == "Fix it on n01" and "fix n01" in second.detail  # the preview
    await bob.decide(second.id, False, "not now: the job ends at 16:00")
    assert await asyncio.wait_for(task, 10) == "aborted"
    assert script.asked == [
        f"fix: approval #{second.id} rejected by bob: not now: the job ends at 16:00"
    ]
    assert rig.world.fixes == []  # the rejected action never ran
    approvals = [(r.action, r.outcome) for r in rig.rows(run) if r.action == "runbook.approval"]
    assert approvals == [
        ("runbook.approval", "requested"),
        ("runbook.approval", "ok"),
        ("runbook.approval", "requested"),
        ("runbook.approval", "rejected"),
    ]
    decided = [
        (r.action, r.operator, r.outcome)
        for r in rig.runner.audit.page(newest_first=False)
        if r.phase == "approval" and r.action in ("approval.approve", "approval.reject")
    ]
    assert decided == [
        ("approval.approve", "bob", "approved"),
        ("approval.reject", "bob", "rejected"),
    ]


async def test_a_run_stopped_mid_action_continues_without_repeating_and_asks_first(
    rig: Rig,
) -> None:
    rig.world.block = asyncio.Event()
    run = rig.run(FIX_AND_CHECK, "n01", Script())
    task = asyncio.create_task(run.start())
    await until(lambda: run.views["fix"].state == "executing")
    task.cancel()  # the console goes away while the fix runs
    with pytest.raises(asyncio.CancelledError):
        await task
    stored = await rig.env.state.get(run.id)
    assert stored is not None and stored.status == "paused"
    assert (await rig.env.state.steps(run.id))["fix"].state == "executing"
    assert [r.id for r in await rig.env.state.unfinished()] == [run.id]

    # A new console continues it: the finished check is not repeated; the action whose
    # outcome is unknown is not run again by itself: the operator looks, then retries.
    rig.world.block = None
    script = Script([Decision("retry")])
    again = RunbookRun.from_row(stored, rig.env, script)
    assert await asyncio.wait_for(again.resume(), 10) == "done"
    assert script.asked[0].startswith("fix: the console stopped while this action ran")
    assert rig.world.fixes == ["n01"]
    events = rig.events(again)
    assert [e for e in events if e[1] == "confirm"] == [
        ("runbook.step.start", "confirm", ""),
        ("runbook.step.result", "confirm", "ok"),
    ]
    assert ("runbook.paused", None, "") in events and ("runbook.resume", None, "") in events
    assert ("runbook.step.result", "fix", "unknown") in events
    assert events[-1] == ("runbook.done", None, "ok")


async def test_a_run_joins_the_open_incident_on_its_node(rig: Rig) -> None:
    incidents = rig.env.incidents
    assert isinstance(incidents, Incidents)
    incident = await incidents.open_incident_async("n01 keeps breaking", "n01")
    run = rig.run(FIX_AND_CHECK, "n01", Script())
    assert await asyncio.wait_for(run.start(), 10) == "done"
    assert run.incident_id == incident.id
    assert all(r.params.get("incident") == incident.id for r in rig.rows(run))
    timeline = await incidents.timeline_async(incident.id)
    texts = [t.text for t in timeline if t.kind == "runbook step"]
    assert any(t.startswith("runbook.start n01") for t in texts), texts
    assert any(t.startswith("runbook.done n01 ok") for t in texts), texts
    assert not [t for t in timeline if t.source == "incident" and t.kind == "runbook step"]


async def test_a_viewer_may_not_run_a_runbook(tmp_path: Path) -> None:
    async for rig in make_rig(tmp_path, Role.VIEWER):
        run = rig.run(FIX_AND_CHECK, "n01", Script())
        with pytest.raises(RunbookRefused, match="viewer"):
            await run.start()
        assert [(r.action, r.outcome) for r in rig.rows()] == [("runbook.refused", "refused")]
        assert await rig.env.state.unfinished() == []


def test_a_runbook_round_trips_through_its_stored_form() -> None:
    rb = runbook_from_data({"id": "x", "title": "X", "target_kind": "node", **FIX_AND_CHECK})
    assert Runbook.model_validate(rb.model_dump(mode="json")) == rb
