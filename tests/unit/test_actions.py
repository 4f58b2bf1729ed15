"""The ActionRunner: refusals, typed confirmation, intent before side effect, outcomes, leases,
shutdown and reconciliation. Test actions are small ActionSpec plugins defined here."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

import console.actions as actions_mod
from console.actions import ActionInputError, ActionRefused, ActionRunner, confirm_text_for
from console.audit import AuditLog
from console.identity import Operator
from console.inventory.model import Inventory, InventoryDoc, Site
from console.plugin import ActionContext, ActionInputs, ActionSpec, Outcome, Preview, Role, Target
from console.store import Store
from console.transports import Transports

OP = Operator(
    user="alice", ssh_client="10.0.0.5 50022", tty="/dev/pts/3", console_host="jump1", pid=1
)
CANARY = "CANARY-0b6c1d9e8f7a5b4c3d2e1f0a9b8c7d6e"


def node(name: str) -> Target:
    return Target("node", name, node=name)


@dataclass
class Probe:
    """What the test plugin saw; its coroutines record into it."""

    executed: list[str] = field(default_factory=list)
    verified: list[str] = field(default_factory=list)
    intent_seen: list[bool] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    configs: list[Any] = field(default_factory=list)
    operators: list[str] = field(default_factory=list)


class RebootInputs(ActionInputs):
    reason: str = "maintenance"
    pin: str = ""
    count: int = 1


def make_spec(
    probe: Probe,
    *,
    id: str = "testplug.reboot",
    destructive: bool = False,
    role: Role = Role.OPERATOR,
    timeout: float = 5.0,
    behaviour: Callable[[Target], Any] | None = None,
    refuse: str | None = None,
    verify_ok: bool = True,
    wait: bool = False,
    db_path: Path | None = None,
) -> ActionSpec:
    async def preview(ctx: ActionContext, target: Target, inputs: Any) -> Preview:
        return Preview((f"reboot {target.name}",), refuse=refuse)

    async def execute(ctx: ActionContext, target: Target, inputs: Any) -> Outcome:
        probe.configs.append(ctx.config)
        probe.operators.append(ctx.operator)
        if db_path is not None:
            # Read the audit DB from a second, independent connection.
            conn = sqlite3.connect(db_path)
            rows = conn.execute(
                "SELECT targets FROM events WHERE phase = 'intent' AND action = ?", (id,)
            ).fetchall()
            conn.close()
            probe.intent_seen.append(any(target.name in json.loads(r[0]) for r in rows))
        probe.executed.append(target.name)
        probe.started.set()
        if wait:
            await probe.release.wait()
        if behaviour is not None:
            result: Outcome = await behaviour(target)
            return result
        return Outcome(True, "rebooted")

    async def verify(ctx: ActionContext, target: Target, inputs: Any, outcome: Outcome) -> Outcome:
        probe.verified.append(target.name)
        return Outcome(verify_ok, "up again" if verify_ok else "still down")

    return ActionSpec(
        id=id,
        label="Reboot",
        target_kind="node",
        targets=lambda inv, cfg: [],
        preview=preview,
        execute=execute,
        verify=verify,
        destructive=destructive,
        role=role,
        inputs=RebootInputs,
        secret_inputs=("pin",),
        timeout=timeout,
    )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


@pytest.fixture
def audit(db_path: Path) -> Any:
    log = AuditLog(
        db_path, operator=OP, fallback_path=db_path.parent / "fb.jsonl", busy_timeout_ms=200
    )
    yield log
    log.close()


def make_runner(audit: AuditLog, role: Role = Role.ADMIN, read_only: bool = False) -> ActionRunner:
    inventory = Inventory(doc=InventoryDoc(site=Site(name="test")), nodes={})
    transports = Transports(None, None, None)  # type: ignore[arg-type]  # unused by test actions
    return ActionRunner(
        audit, inventory, transports, Store(), OP, role, read_only, {"testplug": {"k": "v"}}
    )


def rows(db_path: Path, phase: str | None = None) -> list[dict[str, Any]]:
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    sql = "SELECT * FROM events" + (" WHERE phase = ?" if phase else "") + " ORDER BY id"
    out = [dict(r) for r in conn.execute(sql, (phase,) if phase else ())]
    conn.close()
    return out


# ---------------------------------------------------------------- refusals


async def test_read_only_refuses_at_the_executor_and_the_refusal_is_audited(
    audit: AuditLog, db_path: Path
) -> None:
    probe = Probe()
    spec = make_spec(probe)
    admin_plan = await make_runner(audit).plan(spec, [node("gpu001")], {})
    ro = make_runner(audit, read_only=True)
    with pytest.raises(ActionRefused, match="read-only"):
        await ro.plan(spec, [node("gpu001")], {})
    # A plan made elsewhere is refused by the executor too.
    with pytest.raises(ActionRefused, match="read-only"):
        await ro.execute(admin_plan, None)
    assert probe.executed == []
    refused = rows(db_path, "refused")
    assert len(refused) == 2 and all("read-only" in r["detail"] for r in refused)
    assert rows(db_path, "intent") == []


async def test_a_role_too_low_is_refused_naming_needed_and_held(
    audit: AuditLog, db_path: Path
) -> None:
    probe = Probe()
    spec = make_spec(probe, role=Role.ADMIN)
    with pytest.raises(ActionRefused) as err:
        await make_runner(audit, role=Role.OPERATOR).plan(spec, [node("gpu001")], {})
    assert "testplug.reboot" in str(err.value)
    assert "needs role admin" in str(err.value) and "has operator" in str(err.value)
    assert rows(db_path, "refused")[0]["outcome"] == "refused"
    assert probe.executed == []


async def test_invalid_inputs_name_the_field(audit: AuditLog) -> None:
    with pytest.raises(ActionInputError, match="count"):
        await make_runner(audit).plan(make_spec(Probe()), [node("gpu001")], {"count": "many"})
    with pytest.raises(ActionInputError, match="colour"):
        await make_runner(audit).plan(make_spec(Probe()), [node("gpu001")], {"colour": "red"})


async def test_no_targets_and_wrong_target_kind_are_refused(audit: AuditLog) -> None:
    runner = make_runner(audit)
    with pytest.raises(ActionRefused, match="no targets"):
        await runner.plan(make_spec(Probe()), [], {})
    with pytest.raises(ActionRefused, match="applies to node"):
        await runner.plan(make_spec(Probe()), [Target("service", "svc:minio")], {})


async def test_a_preview_refusal_is_audited_and_raised(audit: AuditLog, db_path: Path) -> None:
    with pytest.raises(ActionRefused, match="node is the controller"):
        await make_runner(audit).plan(
            make_spec(Probe(), refuse="node is the controller"), [node("gpu001")], {}
        )
    assert "node is the controller" in rows(db_path, "refused")[0]["detail"]


# ---------------------------------------------------------------- confirmation


def test_confirm_text_is_the_name_or_the_folded_node_set() -> None:
    assert confirm_text_for([node("gpu001")]) == "gpu001"
    assert confirm_text_for([node("gpu003"), node("gpu001"), node("gpu002")]) == "gpu[001-003]"


async def test_destructive_plan_needs_the_typed_name_non_destructive_a_yes(audit: AuditLog) -> None:
    runner = make_runner(audit)
    plan = await runner.plan(make_spec(Probe(), destructive=True), [node("gpu001")], {})
    assert plan.confirm_text == "gpu001" and plan.previews[0].lines == ("reboot gpu001",)
    plan = await runner.plan(make_spec(Probe()), [node("gpu001")], {})
    assert plan.confirm_text is None


async def test_a_mismatched_confirmation_runs_nothing_and_is_audited(
    audit: AuditLog, db_path: Path
) -> None:
    probe = Probe()
    runner = make_runner(audit)
    plan = await runner.plan(make_spec(probe, destructive=True), [node("gpu001")], {})
    for typed in (None, "", "gpu001 ", "GPU001", "gpu002"):
        with pytest.raises(ActionRefused, match="does not match"):
            await runner.execute(plan, typed)
    assert probe.executed == []
    assert len(rows(db_path, "refused")) == 5 and rows(db_path, "intent") == []


async def test_cancel_writes_nothing(audit: AuditLog, db_path: Path) -> None:
    runner = make_runner(audit)
    plan = await runner.plan(make_spec(Probe(), destructive=True), [node("gpu001")], {})
    before = rows(db_path)
    runner.cancel(plan)
    assert rows(db_path) == before == []


# ---------------------------------------------------------------- execution


async def test_the_intent_is_committed_before_execute_runs(audit: AuditLog, db_path: Path) -> None:
    probe = Probe()
    runner = make_runner(audit)
    spec = make_spec(probe, destructive=True, db_path=db_path)
    plan = await runner.plan(spec, [node("gpu001"), node("gpu002")], {"reason": "kernel"})
    results = await runner.execute(plan, "gpu[001-002]")
    assert probe.intent_seen == [True, True]
    assert [r.outcome for r in results] == ["ok", "ok"]
    assert probe.verified == ["gpu001", "gpu002"]
    assert probe.configs == [{"k": "v"}, {"k": "v"}] and probe.operators == ["alice", "alice"]
    intent, r1, r2 = rows(db_path)
    assert intent["phase"] == "intent" and json.loads(intent["targets"]) == ["gpu001", "gpu002"]
    assert json.loads(intent["params"])["reason"] == "kernel"
    assert {r1["action_uid"], r2["action_uid"]} == {intent["action_uid"]}
    assert (r1["phase"], r1["outcome"], json.loads(r1["targets"])) == ("result", "ok", ["gpu001"])
    assert r1["duration_ms"] is not None
    assert audit.lease_holder("node:gpu001") is None  # released


async def test_a_timeout_is_outcome_unknown_never_failed(audit: AuditLog, db_path: Path) -> None:
    async def hang(target: Target) -> Outcome:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    probe = Probe()
    runner = make_runner(audit)
    spec = make_spec(probe, timeout=0.2, behaviour=hang, verify_ok=False)
    plan = await runner.plan(spec, [node("gpu001")], {})
    [result] = await runner.execute(plan, None)
    assert result.outcome == "unknown" and "no answer within 0.2s" in result.detail
    assert "read-back" in result.detail
    assert rows(db_path, "result")[0]["outcome"] == "unknown"
    assert probe.verified == ["gpu001"]  # the state was read back once, never re-run


async def test_an_unacknowledged_command_whose_read_back_shows_it_done_is_ok(
    audit: AuditLog, db_path: Path
) -> None:
    async def hang(target: Target) -> Outcome:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    probe = Probe()
    runner = make_runner(audit)
    plan = await runner.plan(make_spec(probe, timeout=0.2, behaviour=hang), [node("gpu001")], {})
    [result] = await runner.execute(plan, None)
    assert result.outcome == "ok"
    assert "no answer within 0.2s, but the read-back shows it done" in result.detail


async def test_the_read_back_after_no_answer_makes_a_plugin_style_verify_read_the_target(
    audit: AuditLog,
) -> None:
    # The plugins' verifies hand a failed outcome back unread ("if not outcome.ok: return
    # outcome"): the read-back must tell them the command may have run, or it reads nothing.
    async def hang(target: Target) -> Outcome:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    read: list[str] = []

    async def plugin_verify(
        ctx: ActionContext, target: Target, inputs: Any, outcome: Outcome
    ) -> Outcome:
        if not outcome.ok:
            return outcome
        read.append(target.name)
        return Outcome(True, f"{target.name} LED reads on")

    spec = replace(make_spec(Probe(), timeout=0.2, behaviour=hang), verify=plugin_verify)
    runner = make_runner(audit)
    plan = await runner.plan(spec, [node("gpu001")], {})
    [result] = await runner.execute(plan, None)
    assert read == ["gpu001"]
    assert result.outcome == "ok"
    assert "but the read-back shows it done: gpu001 LED reads on" in result.detail


async def test_a_plugin_exception_is_a_failed_outcome_and_the_runner_survives(
    audit: AuditLog, db_path: Path
) -> None:
    async def boom(target: Target) -> Outcome:
        raise RuntimeError(f"ssh said no to {target.name} with pin {CANARY}")

    probe = Probe()
    runner = make_runner(audit)
    plan = await runner.plan(
        make_spec(probe, behaviour=boom), [node("gpu001"), node("gpu002")], {"pin": CANARY}
    )
    results = await runner.execute(plan, None)
    assert [r.outcome for r in results] == ["failed", "failed"]
    assert "RuntimeError: ssh said no to gpu001" in results[0].detail
    assert CANARY not in results[0].detail  # the secret input is scrubbed from the message
    # The runner still works.
    ok_plan = await runner.plan(make_spec(Probe()), [node("gpu003")], {})
    assert [r.outcome for r in await runner.execute(ok_plan, None)] == ["ok"]
    audit.close()
    for suffix in ("", "-wal"):
        p = Path(f"{db_path}{suffix}")
        if p.exists():
            assert CANARY.encode() not in p.read_bytes()


async def test_a_failed_verification_is_a_failed_outcome(audit: AuditLog) -> None:
    runner = make_runner(audit)
    plan = await runner.plan(make_spec(Probe(), verify_ok=False), [node("gpu001")], {})
    [result] = await runner.execute(plan, None)
    assert result.outcome == "failed" and "still down" in result.detail


async def test_a_target_leased_by_another_console_is_refused(
    audit: AuditLog, db_path: Path
) -> None:
    other_log = AuditLog(db_path, operator=OP, fallback_path=db_path.parent / "fb2.jsonl")
    try:
        first, second = make_runner(audit), make_runner(other_log)
        slow = Probe()
        plan_a = await first.plan(make_spec(slow, wait=True), [node("gpu001")], {})
        task = asyncio.create_task(first.execute(plan_a, None))
        await slow.started.wait()  # first holds the lease now
        probe_b = Probe()
        plan_b = await second.plan(make_spec(probe_b), [node("gpu001")], {})
        [res_b] = await second.execute(plan_b, None)
        assert res_b.outcome == "refused" and "another console" in res_b.detail
        assert probe_b.executed == []
        slow.release.set()
        [res_a] = await task
        assert res_a.outcome == "ok"
        outcomes = [(r["outcome"], r["detail"]) for r in rows(db_path, "result")]
        assert outcomes[0][0] == "refused" and outcomes[1][0] == "ok"
    finally:
        other_log.close()


# ---------------------------------------------------------------- audit failures


async def test_when_the_intent_cannot_be_written_nothing_runs(
    audit: AuditLog, db_path: Path
) -> None:
    probe = Probe()
    runner = make_runner(audit)
    plan = await runner.plan(make_spec(probe), [node("gpu001")], {})
    locker = sqlite3.connect(db_path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # another process holds the database
    try:
        with pytest.raises(ActionRefused, match="cannot record the intent"):
            await runner.execute(plan, None)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert probe.executed == []
    assert rows(db_path, "intent") == []


async def test_when_the_audit_log_is_closed_nothing_runs(audit: AuditLog) -> None:
    probe = Probe()
    runner = make_runner(audit)
    plan = await runner.plan(make_spec(probe), [node("gpu001")], {})
    audit.close()
    with pytest.raises(ActionRefused, match="cannot record the intent"):
        await runner.execute(plan, None)
    assert probe.executed == []


async def test_a_result_that_cannot_be_written_goes_to_the_fallback_and_blocks_new_actions(
    audit: AuditLog, db_path: Path
) -> None:
    locker = sqlite3.connect(db_path, isolation_level=None)

    async def lock_then_succeed(target: Target) -> Outcome:
        locker.execute("BEGIN EXCLUSIVE")
        return Outcome(True, "done")

    probe = Probe()
    runner = make_runner(audit)
    plan = await runner.plan(make_spec(probe, behaviour=lock_then_succeed), [node("gpu001")], {})
    try:
        [result] = await runner.execute(plan, None)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert result.outcome == "ok"
    assert audit.degraded
    kept = [json.loads(x) for x in (db_path.parent / "fb.jsonl").read_text().splitlines()]
    assert kept[0]["phase"] == "result" and kept[0]["outcome"] == "ok"
    again = await runner.plan(make_spec(Probe()), [node("gpu002")], {})
    with pytest.raises(ActionRefused, match="audit log could not record"):
        await runner.execute(again, None)


# ---------------------------------------------------------------- shutdown and restart


async def test_begin_shutdown_records_refuses_new_and_waits_for_in_flight(
    audit: AuditLog, db_path: Path
) -> None:
    probe = Probe()
    runner = make_runner(audit)
    plan = await runner.plan(make_spec(probe, wait=True), [node("gpu001")], {})
    running = asyncio.create_task(runner.execute(plan, None))
    await probe.started.wait()
    assert runner.in_flight == 1
    shutdown = asyncio.create_task(runner.begin_shutdown("SIGHUP", grace_s=10))
    while not rows(db_path, "disconnect"):
        await asyncio.sleep(0.01)
    assert rows(db_path, "disconnect")[0]["detail"] == "operator disconnected: SIGHUP"
    with pytest.raises(ActionRefused, match="shutting down"):
        await runner.plan(make_spec(Probe()), [node("gpu002")], {})
    assert not shutdown.done()
    probe.release.set()
    await asyncio.wait_for(shutdown, 10)
    [result] = await running
    assert result.outcome == "ok" and runner.in_flight == 0
    assert rows(db_path, "result")[0]["outcome"] == "ok"


async def test_begin_shutdown_returns_after_the_grace_period(audit: AuditLog) -> None:
    probe = Probe()
    runner = make_runner(audit)
    plan = await runner.plan(make_spec(probe, wait=True), [node("gpu001")], {})
    running = asyncio.create_task(runner.execute(plan, None))
    await probe.started.wait()
    await asyncio.wait_for(runner.begin_shutdown("SIGHUP", grace_s=0.2), 5)
    assert runner.in_flight == 1
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running


class Crash(BaseException):
    """Stands for the process dying at a fault point."""


async def test_reconcile_lists_an_intent_left_without_result_by_a_crash(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = AuditLog(db_path, operator=OP)
    probe = Probe()
    runner = make_runner(log)
    plan = await runner.plan(make_spec(probe), [node("gpu001"), node("gpu002")], {})

    def fault(name: str) -> None:
        if name == "intent.committed":
            raise Crash(name)

    monkeypatch.setattr(actions_mod, "FAULTPOINT", fault)
    with pytest.raises(Crash):
        await runner.execute(plan, None)
    monkeypatch.undo()
    assert probe.executed == []
    log.close()

    reopened = AuditLog(db_path, operator=OP)
    try:
        restarted = make_runner(reopened)
        [pending] = await restarted.reconcile_on_start()
        assert pending.action == "testplug.reboot" and pending.targets == ("gpu001", "gpu002")
        [rec] = rows(db_path, "reconcile")
        assert rec["outcome"] == "unknown" and "verify the target" in rec["detail"]
        assert rec["action_uid"] == pending.action_uid
        assert await restarted.reconcile_on_start() == []
        assert reopened.verify().ok
    finally:
        reopened.close()


async def test_fault_points_are_called_in_order(
    audit: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    monkeypatch.setattr(actions_mod, "FAULTPOINT", seen.append)
    runner = make_runner(audit)
    plan = await runner.plan(make_spec(Probe()), [node("gpu001")], {})
    await runner.execute(plan, None)
    assert seen == [
        "plan.checked", "execute.confirmed", "intent.before", "intent.committed",
        "target.leased", "target.executed", "target.verified", "result.committed",
        "lease.released", "execute.done",
    ]  # fmt: skip


async def test_a_dead_consoles_leases_are_freed_on_start_and_a_live_ones_kept(
    audit: AuditLog, db_path: Path
) -> None:
    import os
    import socket
    import subprocess

    here = socket.gethostname()
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that existed and is gone: a killed console
    dead = f"bob@{here}:{gone.pid}:deadbeef"
    alive = f"carol@{here}:{os.getppid()}:cafe0001"  # pytest's parent still runs
    remote = f"dave@elsewhere:{gone.pid}:0000abcd"  # another host: cannot tell, kept
    audit.acquire_lease("node:gpu001", dead, 600)
    audit.acquire_lease("node:gpu002", alive, 600)
    audit.acquire_lease("node:gpu003", remote, 600)
    runner = make_runner(audit)
    await runner.reconcile_on_start()
    assert audit.lease_holder("node:gpu001") is None
    assert audit.lease_holder("node:gpu002") == alive
    assert audit.lease_holder("node:gpu003") == remote
    [freed] = [r for r in rows(db_path, "reconcile") if r["action"] == "lease.release"]
    assert freed["targets"] == '["gpu001"]' and dead in freed["detail"]
    # The freed node can be acted on at once, not after the lease's time to live.
    plan = await runner.plan(make_spec(Probe()), [node("gpu001")], {})
    assert [r.outcome for r in await runner.execute(plan, None)] == ["ok"]
