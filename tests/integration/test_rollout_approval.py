"""The two-person rule on a rollout's start: a rollout that declares it (or whose plan is
larger than its declared cap) starts only once a different operator approved it from
their own console; a rejection starts nothing."""

from __future__ import annotations

import asyncio

import pytest

from console.approvals import ApprovalRefused, Approvals
from console.identity import Operator
from console.wizards.rollout_model import rollout_from_data
from console.wizards.rollout_plan import plan_rollout
from console.wizards.rollout_run import RolloutRefused
from tests.integration.test_rollout_lab import ROLLOUT, Rig, rig, rollout_rows

__all__ = ["rig"]  # the lab fixture, shared with test_rollout_lab

NAME = "driver 560"


async def pending(approvals: Approvals) -> int:
    deadline = asyncio.get_running_loop().time() + 30
    while not (found := await approvals.pending_async()):
        assert asyncio.get_running_loop().time() < deadline, "no approval was requested"
        await asyncio.sleep(0.05)
    return found[0].id


async def test_a_start_waits_for_a_second_operator_and_a_rejection_starts_nothing(
    rig: Rig,
) -> None:
    audit = rig.runner.audit
    alice = Approvals(audit, rig.runner.operator, poll_s=0.05)
    bob = Approvals(audit, Operator(user="bob"), poll_s=0.05)
    rig.plan = plan_rollout(
        rollout_from_data(dict(ROLLOUT, approval={"above_targets": 2})), rig.lab.inventory
    )

    # Bob rejects: nothing is recorded as started, nothing is touched.
    run = rig.rollout()
    run.approvals = alice
    task = asyncio.create_task(run.start(NAME))
    rid = await pending(bob)
    with pytest.raises(ApprovalRefused, match="second operator"):
        await alice.decide(rid, True, "my own")  # the requester may not approve
    await bob.decide(rid, False, "not in this change window")
    with pytest.raises(RolloutRefused, match="rejected by bob: not in this change window"):
        await asyncio.wait_for(task, 30)
    assert await rig.state.get(run.id) is None and rig.emu.installs == []

    # Bob approves: the rollout runs, and its start names who approved.
    run = rig.rollout()
    run.approvals = alice
    task = asyncio.create_task(run.start(NAME))
    rid = await pending(bob)
    assert not rig.emu.installs  # waiting: nothing runs before the approval
    await bob.decide(rid, True, "reviewed the plan")
    assert await asyncio.wait_for(task, 120) == "done"
    start = [r for r in audit.page(newest_first=False) if r.action == "rollout.start"]
    assert len(start) == 1 and f"start approved by bob (request #{rid})" in start[0].detail
    events = rollout_rows(rig.runner)
    assert events[0][0] == "rollout.refused" and events[-1][0] == "rollout.done"
    decisions = [
        (r.params.get("requested_by"), r.operator, r.outcome)
        for r in audit.page(newest_first=False)
        if r.phase == "approval" and r.outcome in ("approved", "rejected")
    ]
    assert decisions == [("alice", "bob", "rejected"), ("alice", "bob", "approved")]
