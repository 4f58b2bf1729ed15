"""Reading back interrupted actions after a restart (console.action_reconcile, RELIABILITY F11).

A console "dies" at a FAULTPOINT (an exception that is not an Exception stands
for the kill), a second runner on the same audit database reconciles, and the
spec's own verify reads a small in-memory world the test action changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import console.actions as actions_mod
from console.action_reconcile import pending_message, verify_interrupted
from console.actions import ActionRunner
from console.audit import AuditLog, PendingAction
from console.plugin import ActionContext, ActionSpec, Outcome, Preview, Role, Target
from tests.unit.test_actions import OP, RebootInputs, make_runner, node, rows

NODES = ("gpu001", "gpu002")


class Crash(BaseException):
    """Stands for the process dying at a fault point."""


@dataclass
class World:
    """What the test action changes and its verify reads."""

    lit: set[str] = field(default_factory=set)
    executed: list[str] = field(default_factory=list)
    verified: list[tuple[str, str]] = field(default_factory=list)
    """(target, the inputs' reason) per verify call."""


VerifyFn = Callable[[World, Target, Any, Outcome], Awaitable[Outcome]]


async def reads_the_world(world: World, target: Target, inputs: Any, o: Outcome) -> Outcome:
    if not o.ok:
        return o
    if target.name in world.lit:
        return Outcome(True, f"{target.name} LED reads on")
    return Outcome(False, f"{target.name} LED reads off")


def led_spec(world: World, verify: VerifyFn = reads_the_world, **kw: Any) -> ActionSpec:
    async def preview(ctx: ActionContext, target: Target, inputs: Any) -> Preview:
        return Preview((f"light {target.name}",))

    async def execute(ctx: ActionContext, target: Target, inputs: Any) -> Outcome:
        world.executed.append(target.name)
        world.lit.add(target.name)
        return Outcome(True, "lit")

    async def check(ctx: ActionContext, target: Target, inputs: Any, o: Outcome) -> Outcome:
        world.verified.append((target.name, getattr(inputs, "reason", "?")))
        return await verify(world, target, inputs, o)

    return ActionSpec(
        id=kw.pop("id", "testplug.led"),
        label="Identify LED",
        target_kind="node",
        targets=lambda inv, cfg: [node(n) for n in NODES],
        preview=preview,
        execute=execute,
        verify=check,
        inputs=RebootInputs,
        **kw,
    )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


async def die_at(
    db_path: Path,
    spec: ActionSpec,
    fault: str,
    monkeypatch: pytest.MonkeyPatch,
    inputs: dict[str, Any] | None = None,
    targets: tuple[str, ...] = ("gpu001",),
) -> None:
    """A first console runs ``spec`` on ``targets`` and dies at ``fault``.

    Several targets only with a fault before any target starts: the runner runs
    targets as tasks, and a raised "kill" would not stop the others as a real one does.
    """
    assert len(targets) == 1 or fault == "intent.committed"
    log = AuditLog(db_path, operator=OP)
    runner = make_runner(log)
    plan = await runner.plan(spec, [node(n) for n in targets], inputs or {"reason": "find it"})

    def crash(name: str) -> None:
        if name == fault:
            raise Crash(name)

    monkeypatch.setattr(actions_mod, "FAULTPOINT", crash)
    with pytest.raises(Crash):
        await runner.execute(plan, None)
    monkeypatch.undo()
    log.close()


async def restart(
    db_path: Path, spec: ActionSpec | None, **kw: Any
) -> tuple[ActionRunner, list[PendingAction], list[Any]]:
    """A second console: the start-up reconcile, then the read-back of what it found."""
    log = AuditLog(db_path, operator=OP)
    runner = make_runner(log, role=kw.pop("role", Role.ADMIN), read_only=kw.pop("read_only", False))
    pending = await runner.reconcile_on_start()
    specs = {} if spec is None else {spec.id: spec}
    verdicts = await verify_interrupted(runner, pending, specs, **kw)
    return runner, pending, verdicts


def reconcile_rows(db_path: Path) -> list[tuple[str, str, str]]:
    return [
        (r["targets"], r["outcome"], r["detail"])
        for r in rows(db_path, "reconcile")
        if r["action"] != "lease.release"
    ]


async def test_a_change_done_before_the_kill_is_recorded_verified_applied_and_not_run_again(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World()
    spec = led_spec(world)
    await die_at(db_path, spec, "target.executed", monkeypatch)  # gpu001 lit, no result
    runner, [p], [verdict] = await restart(db_path, spec)
    try:
        assert p.targets == ("gpu001",) and world.executed == ["gpu001"]
        assert (verdict.target, verdict.outcome) == ("gpu001", "verified-applied")
        # The verify got the intent's inputs back, validated.
        assert world.verified == [("gpu001", "find it")]
        # The "unknown" row first (at once), then the row with what was read.
        assert reconcile_rows(db_path) == [
            (
                '["gpu001"]',
                "unknown",
                "console stopped before the result was recorded: verify the target",
            ),
            ('["gpu001"]', "verified-applied", "gpu001 LED reads on"),
        ]
        assert all(r["action_uid"] == p.action_uid for r in rows(db_path, "reconcile"))
        assert pending_message(p, {(verdict.action_uid, "gpu001"): verdict}) == (
            "testplug.led of gpu001 interrupted: verified done (gpu001 LED reads on)"
        )
        assert world.executed == ["gpu001"]  # read back, never run again
        assert len(rows(db_path, "intent")) == 1
        assert await runner.audit.pending_actions_async() == []
        assert runner.audit.verify().ok
    finally:
        runner.audit.close()


async def test_nothing_done_before_the_kill_is_recorded_per_target_as_the_state_reads(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World(lit={"gpu002"})  # lit by someone else before: the wanted state holds
    spec = led_spec(world)
    await die_at(db_path, spec, "intent.committed", monkeypatch, targets=NODES)
    runner, [p], verdicts = await restart(db_path, spec)
    try:
        assert world.executed == [] and p.targets == NODES
        assert pending_message(p, {}).startswith("outcome unknown: testplug.led")
        assert [(v.target, v.outcome) for v in verdicts] == [
            ("gpu001", "verified-not-applied"),
            ("gpu002", "verified-applied"),
        ]
        assert sorted(reconcile_rows(db_path)[1:]) == [
            ('["gpu001"]', "verified-not-applied", "gpu001 LED reads off"),
            ('["gpu002"]', "verified-applied", "gpu002 LED reads on"),
        ]
        assert verdicts[0].notice == (
            "testplug.led of gpu001 interrupted: read back as NOT done, check before running "
            "it again (gpu001 LED reads off)"
        )
        # Halfway: the alert says which target is read back and which is still being checked.
        assert pending_message(p, {(p.action_uid, "gpu002"): verdicts[1]}) == (
            "testplug.led interrupted: gpu001: being checked; "
            "gpu002: verified done (gpu002 LED reads on)"
        )
        assert world.executed == []
        assert await runner.audit.pending_actions_async() == []
        assert runner.audit.verify().ok
    finally:
        runner.audit.close()


async def echo(world: World, target: Target, inputs: Any, o: Outcome) -> Outcome:
    return o  # "verifies" by handing the outcome back: reads nothing


async def test_a_spec_without_a_verify_that_reads_leaves_it_unknown_verify_by_hand(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World()
    spec = led_spec(world, verify=echo)
    await die_at(db_path, spec, "target.executed", monkeypatch)
    runner, _, [v] = await restart(db_path, spec)
    try:
        assert v.outcome == "unknown"
        assert v.detail == "not verified: testplug.led has no verify that reads the target"
        assert v.notice == (
            "testplug.led of gpu001 interrupted: outcome unknown, verify by hand "
            "(not verified: testplug.led has no verify that reads the target)"
        )
        assert [o for _, o, _ in reconcile_rows(db_path)] == ["unknown", "unknown"]
        assert world.executed == ["gpu001"]
        assert runner.audit.verify().ok
    finally:
        runner.audit.close()


async def test_an_action_this_console_does_not_know_is_unknown_and_nothing_is_called(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World()
    await die_at(db_path, led_spec(world), "target.leased", monkeypatch)
    runner, _, verdicts = await restart(db_path, None)
    try:
        assert {v.detail for v in verdicts} == {
            "not verified: this console has no action testplug.led"
        }
        assert "outcome unknown, verify by hand" in verdicts[0].notice
        assert world.verified == []
        # Its flow (a rollout, a drill) reconciles it: no row beyond today's "unknown".
        assert [o for _, o, _ in reconcile_rows(db_path)] == ["unknown"]
    finally:
        runner.audit.close()


async def test_a_verify_that_hangs_or_raises_is_unknown_within_the_deadline(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def hangs_or_raises(world: World, target: Target, inputs: Any, o: Outcome) -> Outcome:
        if target.name == "gpu001":
            await asyncio.Event().wait()
        raise TimeoutError("the BMC did not answer")  # the plugin's own, not the deadline

    world = World()
    spec = led_spec(world, verify=hangs_or_raises)
    await die_at(db_path, spec, "intent.committed", monkeypatch, targets=NODES)
    runner, _, verdicts = await asyncio.wait_for(restart(db_path, spec, deadline_s=0.3), 10)
    try:
        by_target = {v.target: v for v in verdicts}
        assert by_target["gpu001"].outcome == "unknown"
        assert "did not finish within the 0.3s deadline" in by_target["gpu001"].detail
        assert by_target["gpu002"].outcome == "unknown"
        assert by_target["gpu002"].detail == (
            "not verified: the read-back raised TimeoutError: the BMC did not answer"
        )
        assert runner.audit.verify().ok
    finally:
        runner.audit.close()


async def test_inputs_with_a_redacted_secret_are_not_rebuilt_and_verify_is_not_called(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World()
    spec = led_spec(world, secret_inputs=("pin",))
    await die_at(db_path, spec, "intent.committed", monkeypatch, {"reason": "x", "pin": "4711"})
    runner, _, verdicts = await restart(db_path, spec)
    try:
        assert {v.outcome for v in verdicts} == {"unknown"}
        assert "secret the audit log does not keep: pin" in verdicts[0].detail
        assert world.verified == []
    finally:
        runner.audit.close()


async def test_a_read_only_console_runs_no_verify_and_writes_only_todays_unknown_row(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World()
    spec = led_spec(world)
    await die_at(db_path, spec, "target.executed", monkeypatch)
    runner, _, verdicts = await restart(db_path, spec, read_only=True)
    try:
        assert {v.detail for v in verdicts} == {"not verified: this console is read-only"}
        assert world.verified == []
        assert [o for _, o, _ in reconcile_rows(db_path)] == ["unknown"]  # as before
    finally:
        runner.audit.close()


async def test_a_viewer_console_does_not_verify_and_says_why(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World()
    spec = led_spec(world)
    await die_at(db_path, spec, "target.executed", monkeypatch)
    runner, _, verdicts = await restart(db_path, spec, role=Role.VIEWER)
    try:
        assert {v.detail for v in verdicts} == {
            "not verified: needs role operator, alice has viewer"
        }
        assert world.verified == []
    finally:
        runner.audit.close()


async def test_a_read_back_cancelled_by_the_console_stopping_records_unknown(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = asyncio.Event()

    async def slow(world: World, target: Target, inputs: Any, o: Outcome) -> Outcome:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    world = World()
    spec = led_spec(world, verify=slow)
    await die_at(db_path, spec, "intent.committed", monkeypatch, targets=NODES)
    log = AuditLog(db_path, operator=OP)
    runner = make_runner(log)
    try:
        pending = await runner.reconcile_on_start()
        task = asyncio.ensure_future(verify_interrupted(runner, pending, {spec.id: spec}))
        await asyncio.wait_for(started.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        later = reconcile_rows(db_path)[1:]
        assert sorted(t for t, _, _ in later) == ['["gpu001"]', '["gpu002"]']
        assert {(o, d) for _, o, d in later} == {
            ("unknown", "not verified: the console stopped before the read-back finished")
        }
        assert log.verify().ok
    finally:
        log.close()
