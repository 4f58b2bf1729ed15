"""The rollouts database: private file, committed steps survive a reopen."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from console.wizards.rollout_state import RolloutState


async def test_state_is_private_and_survives_a_reopen(tmp_path: Path) -> None:
    old = os.umask(0o022)  # a hostile default
    try:
        state = RolloutState.beside(tmp_path / "audit.db")
    finally:
        os.umask(old)
    assert state.path == tmp_path / "rollouts.db"
    assert stat.S_IMODE(state.path.stat().st_mode) == 0o600
    await state.create("r1", "x", "h" * 64, "alice", {"waves": []}, [(0, ("a",)), (1, ("b", "c"))])
    await state.set_step("r1", "a", "change", "started")
    await state.set_step("r1", "a", "change", "done", "exit status 0")
    await state.set_step("r1", "b", "change", "started")
    await state.set_node("r1", "a", "done")
    state.close()

    again = RolloutState.beside(tmp_path / "audit.db")
    try:
        steps = await again.steps("r1")
        assert steps[("a", "change")].state == "done"
        assert steps[("a", "change")].detail == "exit status 0"
        assert steps[("b", "change")].state == "started"
        nodes = await again.nodes("r1")
        assert nodes == {"a": (0, "done", ""), "b": (1, "pending", ""), "c": (1, "pending", "")}
        assert [r.id for r in await again.unfinished()] == ["r1"]
        await again.set_status("r1", "done")
        assert await again.unfinished() == []
        await again.clear_steps("r1", "b")
        assert ("b", "change") not in await again.steps("r1")
    finally:
        again.close()


async def test_a_database_of_the_first_release_gains_the_new_columns_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    import sqlite3

    db = tmp_path / "rollouts.db"
    con = sqlite3.connect(db)
    con.executescript(
        "create table rollouts (id text primary key, name text, plan_hash text, status text,"
        " halt_reason text, operator text, plan text, created float, updated float);"
        "create table steps (rollout_id text, node text, step text, state text, detail text,"
        " ts float, primary key (rollout_id, node, step));"
        "insert into rollouts values ('abc123', 'old', 'h', 'halted', 'why', 'bob', '{}', 1, 2);"
    )
    con.commit()
    con.close()
    db.chmod(0o600)  # as the first release created it
    state = RolloutState(db)
    try:
        (row,) = await state.unfinished()
        assert (row.id, row.mode, row.status) == ("abc123", "forward", "halted")
        assert [r.id for r in await state.find("abc")] == ["abc123"]
        assert await state.find("abd") == []
        await state.set_step("abc123", "n1", "change", "started")
        await state.set_step("abc123", "n1", "change", "done", "ok")
        await state.set_step("abc123", "n1", "rb_change", "done", "ok")
        step = (await state.steps("abc123"))[("n1", "change")]
        assert step.started is not None and step.ts is not None and step.ts >= step.started
        await state.clear_steps("abc123", "n1", prefix="rb_")
        assert list(await state.steps("abc123")) == [("n1", "change")]
        await state.set_gate("abc123", 1, "halted", "bob", "1 of 2 failed")
        await state.set_gate("abc123", 1, "override", "carol", "accepted: OPS-1")
        gate = (await state.gates("abc123"))[1]
        assert (gate.decision, gate.operator, gate.reason) == (
            "override",
            "carol",
            "accepted: OPS-1",
        )
        await state.set_status("abc123", "rolling_back", mode="rollback")
        (row,) = await state.recent()
        assert (row.status, row.mode) == ("rolling_back", "rollback")
        assert [r.id for r in await state.unfinished()] == ["abc123"]
        await state.set_status("abc123", "rolled_back")
        assert await state.unfinished() == []
    finally:
        state.close()


def test_a_rollouts_database_open_to_other_users_is_refused(tmp_path: Path) -> None:
    from console.audit_files import AuditPermissionError

    db = tmp_path / "rollouts.db"
    RolloutState(db).close()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    db.chmod(0o644)
    with pytest.raises(AuditPermissionError, match="chmod 600"):
        RolloutState(db)
