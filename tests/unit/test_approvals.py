"""The two-person rule on the audit database: who may decide, races, expiry, the record."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.approvals import ApprovalRefused, Approvals
from console.audit import AuditLog
from console.cli import main
from console.identity import Operator
from console.plugin import Role
from console.screens.approvals_watch import ApprovalsWatcher, files_signature

ALICE = Operator("alice", "10.0.0.5 50022", "/dev/pts/3", "jump1", 101)
BOB = Operator("bob", "10.0.0.6 50023", "/dev/pts/4", "jump1", 202)
CAROL = Operator("carol", None, "/dev/pts/5", "jump2", 303)


class Clock:
    """A wall clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "audit" / "audit.db"


@pytest.fixture
def logs(db: Path, tmp_path: Path) -> Iterator[list[AuditLog]]:
    """One audit connection per console, as two `dcc` processes would have."""
    opened: list[AuditLog] = []

    def close() -> None:
        for log in opened:
            log.close()

    yield opened
    close()


def console(logs: list[AuditLog], db: Path, op: Operator, **kw: object) -> Approvals:
    log = AuditLog(db, operator=op, fallback_path=db.with_name(f"fallback-{op.user}.jsonl"))
    logs.append(log)
    return Approvals(log, op, **kw)  # type: ignore[arg-type]


def approval_rows(db: Path) -> list[dict[str, object]]:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        return [
            dict(r)
            for r in con.execute("SELECT * FROM events WHERE phase = 'approval' ORDER BY id")
        ]
    finally:
        con.close()


async def test_a_second_operator_approves_and_the_requester_sees_it(
    logs: list[AuditLog], db: Path
) -> None:
    a = console(logs, db, ALICE, poll_s=0.02)
    b = console(logs, db, BOB)
    req = await a.request("gpu.reset gpu007", "GPU3 fell off the bus", targets=["gpu007"])
    assert req.pending and req.requested_by == "alice" and req.requested_session == a.session_id
    assert [r.id for r in b.pending()] == [req.id]

    waiting = asyncio.create_task(a.wait(req.id, timeout=10))
    decided = await b.decide(req.id, True, "checked the node is drained")
    done = await waiting
    assert done.status == decided.status == "approved"
    assert done.decided_by == "bob" and done.note == "checked the node is drained"
    assert b.pending() == []

    rows = approval_rows(db)
    assert [(r["action"], r["operator"], r["outcome"]) for r in rows] == [
        ("approval.request", "alice", "pending"),
        ("approval.approve", "bob", "approved"),
    ]
    params = json.loads(str(rows[1]["params"]))
    assert params["request_id"] == req.id and params["requested_by"] == "alice"
    assert json.loads(str(rows[1]["targets"])) == ["gpu007"]


async def test_the_requesting_operator_may_not_approve_even_from_another_console(
    logs: list[AuditLog], db: Path
) -> None:
    a = console(logs, db, ALICE)
    a_again = console(logs, db, Operator("alice", None, "/dev/pts/9", "jump2", 999))
    req = await a.request("slurm.resume gpu007", "after reset")
    for who in (a, a_again):
        with pytest.raises(ApprovalRefused, match="second operator"):
            await who.decide(req.id, True, "me myself")
    assert (await a.get_async(req.id)).pending
    refused = [r for r in approval_rows(db) if r["outcome"] == "refused"]
    assert len(refused) == 2 and all(r["operator"] == "alice" for r in refused)


async def test_a_viewer_and_a_read_only_console_may_not_decide(
    logs: list[AuditLog], db: Path
) -> None:
    a = console(logs, db, ALICE)
    viewer = console(logs, db, BOB, role=Role.VIEWER)
    read_only = console(logs, db, CAROL, read_only=True)
    req = await a.request("power.cycle gpu007", "")
    with pytest.raises(ApprovalRefused, match="viewer"):
        await viewer.decide(req.id, True, "")
    with pytest.raises(ApprovalRefused, match="read-only"):
        await read_only.decide(req.id, False, "no")
    assert (await a.get_async(req.id)).pending


async def test_two_approvers_racing_one_wins_and_the_other_is_told_who(
    logs: list[AuditLog], db: Path
) -> None:
    a = console(logs, db, ALICE)
    b = console(logs, db, BOB)
    c = console(logs, db, CAROL)
    req = await a.request("ib.port_disable sw1/17", "flapping")
    results = await asyncio.gather(
        b.decide(req.id, True, "ok"), c.decide(req.id, False, "not now"), return_exceptions=True
    )
    wins = [r for r in results if not isinstance(r, BaseException)]
    losses = [r for r in results if isinstance(r, ApprovalRefused)]
    assert len(wins) == 1 and len(losses) == 1
    winner = wins[0]
    assert f"already {winner.status} by {winner.decided_by}" in str(losses[0])
    decisions = [
        r for r in approval_rows(db) if r["action"] in ("approval.approve", "approval.reject")
    ]
    assert len(decisions) == 1 and decisions[0]["operator"] == winner.decided_by


async def test_a_request_nobody_decides_expires_and_can_no_longer_be_approved(
    logs: list[AuditLog], db: Path
) -> None:
    clock = Clock()
    a = console(logs, db, ALICE, clock=clock, expire_after_s=60)
    b = console(logs, db, BOB, clock=clock)
    req = await a.request("k8s.drain gpu011", "")
    clock.now += 59
    assert (await a.wait(req.id, timeout=0)).pending
    clock.now += 2
    assert b.pending() == []
    assert (await a.wait(req.id, timeout=1)).status == "expired"
    with pytest.raises(ApprovalRefused, match="expired"):
        await b.decide(req.id, True, "too late")
    expiries = [r for r in approval_rows(db) if r["action"] == "approval.expire"]
    assert len(expiries) == 1  # recorded once, whoever noticed


async def test_the_requester_withdraws_and_nobody_can_decide_afterwards(
    logs: list[AuditLog], db: Path
) -> None:
    a = console(logs, db, ALICE)
    b = console(logs, db, BOB)
    req = await a.request("power.off gpu012", "")
    with pytest.raises(ApprovalRefused, match="only they may withdraw"):
        await b.withdraw(req.id, "not mine")
    done = await a.withdraw(req.id, "fixed by a reboot instead")
    assert done.status == "withdrawn" and done.note == "fixed by a reboot instead"
    with pytest.raises(ApprovalRefused, match="withdrawn by alice"):
        await b.decide(req.id, True, "")
    with pytest.raises(ApprovalRefused, match="withdrawn"):
        await a.withdraw(req.id, "again")


async def test_a_rejection_needs_a_note(logs: list[AuditLog], db: Path) -> None:
    a = console(logs, db, ALICE)
    b = console(logs, db, BOB)
    req = await a.request("gpu.reset gpu007", "")
    with pytest.raises(ApprovalRefused, match="say why"):
        await b.decide(req.id, False, "  ")
    assert (await b.decide(req.id, False, "node still runs job 81723")).status == "rejected"


async def test_an_approval_written_into_the_table_by_hand_does_not_count(
    logs: list[AuditLog], db: Path
) -> None:
    a = console(logs, db, ALICE)
    req = await a.request("power.cycle R01", "")
    con = sqlite3.connect(db)
    with con:
        con.execute(
            "UPDATE approvals SET status = 'approved', decided_by = 'mallory' WHERE id = ?",
            (req.id,),
        )
    con.close()
    done = await a.wait(req.id, timeout=1)
    assert done.status == "rejected" and "not on the audit record" in done.note


async def test_every_approval_row_is_in_the_chain_and_dcc_audit_verify_passes(
    logs: list[AuditLog], db: Path, isolated_cli_state: None, capsys: pytest.CaptureFixture[str]
) -> None:
    a = console(logs, db, ALICE)
    b = console(logs, db, BOB)
    first = await a.request("one", "")
    second = await a.request("two", "")
    await b.decide(first.id, True, "ok")
    await a.withdraw(second.id, "not needed")
    for log in logs:
        log.close()
    assert main(["--audit-db", str(db), "audit", "verify"]) == 0
    assert "chain intact" in capsys.readouterr().out

    assert main(["--audit-db", str(db), "approvals", "list"]) == 0
    out = capsys.readouterr().out
    assert "approved" in out and "bob" in out and "withdrawn" in out


async def test_the_watcher_reads_again_only_after_a_commit_or_a_due_expiry(
    logs: list[AuditLog], db: Path
) -> None:
    # An idle console must not query the database every second for nothing; yet a
    # request by another console, and a request falling due, are seen at the next tick.
    clock = Clock()
    a = console(logs, db, ALICE, clock=clock, expire_after_s=60.0)
    b = console(logs, db, BOB, clock=clock)
    watcher = ApprovalsWatcher(None, b)  # type: ignore[arg-type]  # no screen needed here
    assert not watcher.unchanged()  # never read yet
    watcher.record_read(files_signature(db), b.pending())
    assert watcher.unchanged()
    await a.request("gpu.reset gpu007", "GPU3 fell off the bus", targets=["gpu007"])
    assert not watcher.unchanged()  # another console committed
    watcher.record_read(files_signature(db), b.pending())
    assert watcher.unchanged()
    clock.now += 61.0
    assert not watcher.unchanged()  # due: its expiry must be recorded
    assert watcher.reads == 2
