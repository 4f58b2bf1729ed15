"""The audit log: hash chain, anchor, permissions, durability settings, export, leases."""

from __future__ import annotations

import csv
import io
import itertools
import json
import multiprocessing
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from console.audit import (
    GENESIS,
    AuditLog,
    AuditPermissionError,
    AuditWriteError,
    default_audit_db,
    verify,
)
from console.audit_chain import HASHED_FIELDS, row_hash
from console.identity import Operator

OP = Operator(
    user="alice", ssh_client="10.0.0.5 50022", tty="/dev/pts/3", console_host="jump1", pid=4242
)


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "audit.db"


def fill(path: Path, n: int = 10, anchor: Path | None = None, anchor_every: int = 100) -> None:
    fallback = path.parent / "fb.jsonl"
    with AuditLog(
        path, operator=OP, anchor_path=anchor, anchor_every=anchor_every, fallback_path=fallback
    ) as log:
        for i in range(n):
            log.append(
                "intent" if i % 2 == 0 else "result",
                action="services.restart",
                targets=[f"gpu{i:03d}"],
                params={"unit": f"svc{i}"},
                outcome="" if i % 2 == 0 else "ok",
                action_uid=f"uid{i // 2}",
                duration_ms=None if i % 2 == 0 else 100 + i,
                detail=f"row {i}",
            )


def tamper(path: Path, sql: str, args: tuple[object, ...] = ()) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(sql, args)
    conn.close()


# ---------------------------------------------------------------- chain


def test_fresh_chain_verifies_and_starts_at_genesis(db_path: Path) -> None:
    fill(db_path, 5)
    report = verify(db_path)
    assert report.ok and report.rows == 5 and report.first_bad_id is None
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    rows = [dict(r) for r in conn.execute("SELECT * FROM events ORDER BY id")]
    conn.close()
    assert rows[0]["prev_hash"] == GENESIS
    for prev, row in itertools.pairwise(rows):
        assert row["prev_hash"] == prev["hash"]
    assert all(row_hash(r) == r["hash"] for r in rows)
    # The operator identity is on every row.
    assert {(r["operator"], r["ssh_client"], r["tty"]) for r in rows} == {
        ("alice", "10.0.0.5 50022", "/dev/pts/3")
    }


@pytest.mark.parametrize("field", [f for f in HASHED_FIELDS if f not in ("id",)] + ["hash"])
def test_a_flipped_byte_in_any_field_is_detected_at_its_row(db_path: Path, field: str) -> None:
    fill(db_path, 10)
    conn = sqlite3.connect(db_path)
    value = conn.execute(f"SELECT {field} FROM events WHERE id = 6").fetchone()[0]
    conn.close()
    if value is None:
        new: object = 1
    elif isinstance(value, int):
        new = value ^ 1
    else:
        raw = bytearray(str(value).encode())
        raw[len(raw) // 2] ^= 0x01
        new = raw.decode("utf-8", errors="replace")
    tamper(db_path, f"UPDATE events SET {field} = ? WHERE id = 6", (new,))
    report = verify(db_path)
    assert not report.ok
    assert report.first_bad_id == 6, report.message


def test_a_deleted_row_is_detected_at_the_next_row(db_path: Path) -> None:
    fill(db_path, 10)
    tamper(db_path, "DELETE FROM events WHERE id = 5")
    report = verify(db_path)
    assert not report.ok
    assert report.first_bad_id == 6
    assert "missing" in report.message


def test_a_deleted_first_row_is_detected(db_path: Path) -> None:
    fill(db_path, 3)
    tamper(db_path, "DELETE FROM events WHERE id = 1")
    report = verify(db_path)
    assert not report.ok and report.first_bad_id == 2


def test_two_swapped_rows_are_detected_at_the_first_of_them(db_path: Path) -> None:
    fill(db_path, 10)
    tamper(db_path, "UPDATE events SET id = -4 WHERE id = 4")
    tamper(db_path, "UPDATE events SET id = 4 WHERE id = 5")
    tamper(db_path, "UPDATE events SET id = 5 WHERE id = -4")
    report = verify(db_path)
    assert not report.ok
    assert report.first_bad_id == 4, report.message


def test_tail_truncation_passes_without_an_anchor_the_documented_limit(db_path: Path) -> None:
    fill(db_path, 10)
    tamper(db_path, "DELETE FROM events WHERE id > 7")
    assert verify(db_path).ok  # a chain cannot see its own cut tail


def test_tail_truncation_is_detected_against_the_anchor(db_path: Path, tmp_path: Path) -> None:
    anchor = tmp_path / "anchor.txt"
    fill(db_path, 10, anchor=anchor)  # close() anchors the head
    assert verify(db_path, anchor).ok
    tamper(db_path, "DELETE FROM events WHERE id > 7")
    report = verify(db_path, anchor)
    assert not report.ok
    assert report.first_bad_id == 10
    assert "truncated" in report.message


def rewrite_consistently(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    rows = [dict(r) for r in conn.execute("SELECT * FROM events ORDER BY id")]
    prev = GENESIS
    with conn:
        for r in rows:
            r["detail"] = "nothing happened here"
            r["prev_hash"] = prev
            r["hash"] = row_hash(r)
            prev = r["hash"]
            conn.execute(
                "UPDATE events SET detail = ?, prev_hash = ?, hash = ? WHERE id = ?",
                (r["detail"], r["prev_hash"], r["hash"], r["id"]),
            )
    conn.close()


def test_a_consistent_full_rewrite_is_detected_only_with_the_anchor(
    db_path: Path, tmp_path: Path
) -> None:
    anchor = tmp_path / "anchor.txt"
    fill(db_path, 10, anchor=anchor, anchor_every=4)
    rewrite_consistently(db_path)
    assert verify(db_path).ok
    report = verify(db_path, anchor)
    assert not report.ok
    assert report.first_bad_id == 4  # the first anchored row
    assert "rewritten" in report.message


def test_anchor_lines_are_written_periodically_and_on_close(db_path: Path, tmp_path: Path) -> None:
    anchor = tmp_path / "anchor.txt"
    fill(db_path, 10, anchor=anchor, anchor_every=4)
    lines = anchor.read_text().splitlines()
    assert [int(line.split()[0]) for line in lines] == [4, 8, 10]
    assert mode(anchor) == 0o600


def test_verify_of_a_missing_database_is_not_ok(tmp_path: Path) -> None:
    report = verify(tmp_path / "nope.db")
    assert not report.ok and "no audit database" in report.message


# ---------------------------------------------------------------- files and pragmas


def test_files_are_0600_and_the_new_folder_0700_under_a_hostile_umask(db_path: Path) -> None:
    old = os.umask(0o022)
    try:
        log = AuditLog(db_path, operator=OP, fallback_path=db_path.parent / "fb.jsonl")
        log.append("note", detail="hello")
        for p in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
            assert p.exists(), p
            assert mode(p) == 0o600, (p, oct(mode(p)))
        assert mode(db_path.parent) == 0o700
        log.write_fallback({"phase": "result", "detail": "x"})
        assert mode(db_path.parent / "fb.jsonl") == 0o600
        log.close()
        # Re-checked after a restart.
        AuditLog(db_path, operator=OP).close()
        assert mode(db_path) == 0o600
    finally:
        os.umask(old)


@pytest.mark.parametrize("bad_mode", [0o644, 0o604, 0o660, 0o622])
def test_a_database_open_to_others_is_refused_with_the_fix(db_path: Path, bad_mode: int) -> None:
    AuditLog(db_path, operator=OP).close()
    os.chmod(db_path, bad_mode)
    with pytest.raises(AuditPermissionError) as err:
        AuditLog(db_path, operator=OP)
    assert str(db_path) in str(err.value)
    assert f"chmod 600 {db_path}" in str(err.value)


def test_durability_pragmas_read_back(db_path: Path) -> None:
    with AuditLog(db_path, operator=OP) as log:
        assert log.pragma("journal_mode") == "wal"
        assert log.pragma("synchronous") == 2  # FULL
        assert log.pragma("busy_timeout") == 5000


def test_migrations_are_named_and_applied_once(db_path: Path) -> None:
    AuditLog(db_path, operator=OP).close()
    AuditLog(db_path, operator=OP).close()
    conn = sqlite3.connect(db_path)
    names = [r[0] for r in conn.execute("SELECT name FROM _migrations ORDER BY name")]
    conn.close()
    assert names == ["001_events", "002_leases", "003_approvals", "004_incidents"]


def test_default_audit_db_follows_xdg_state_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_audit_db() == tmp_path / "dcconsole" / "audit.db"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert default_audit_db() == Path.home() / ".local/state/dcconsole/audit.db"


# ---------------------------------------------------------------- redaction on disk


def test_a_canary_secret_never_reaches_the_database_or_wal(db_path: Path) -> None:
    canary = "CANARY-7f3e9b1c2d4a6e8f0a1b3c5d7e9f1a2b"
    log = AuditLog(db_path, operator=OP)
    log.append(
        "intent",
        action="power.cycle",
        targets=["gpu001"],
        params={"bmc_password": canary, "nested": {"X-Auth-Token": canary}, "pin": canary},
        secret_fields=("pin",),
    )
    wal = Path(f"{db_path}-wal")
    assert wal.stat().st_size > 0  # the row is in the WAL: check it before a checkpoint
    assert canary.encode() not in wal.read_bytes()
    log.close()
    assert canary.encode() not in db_path.read_bytes()
    stored = AuditLog(db_path, operator=OP, readonly=True)
    assert stored.page(1)[0].params == {
        "bmc_password": "[redacted]",
        "nested": {"X-Auth-Token": "[redacted]"},
        "pin": "[redacted]",
    }
    stored.close()


# ---------------------------------------------------------------- reading


def test_page_and_search_paginate_newest_first(db_path: Path) -> None:
    fill(db_path, 10)
    with AuditLog(db_path, operator=OP) as log:
        first = log.page(3, 0)
        assert [e.id for e in first] == [10, 9, 8]
        assert [e.id for e in log.page(3, 3)] == [7, 6, 5]
        assert [e.id for e in log.page(2, 0, newest_first=False)] == [1, 2]
        hits = log.search("gpu004")
        assert [e.id for e in hits] == [5]
        assert log.search("100%") == []  # LIKE wildcards are literal
        assert log.count() == 10 and log.count("svc1") == 1
        assert [e.id for e in log.since(8)] == [9, 10]


def test_export_jsonl_round_trips(db_path: Path) -> None:
    fill(db_path, 6)
    with AuditLog(db_path, operator=OP) as log:
        buf = io.StringIO()
        assert log.export(buf, "jsonl") == 6
        rows = [json.loads(line) for line in buf.getvalue().splitlines()]
        expected = [e.to_json() for e in log.page(100, 0, newest_first=False)]
    assert rows == expected
    assert rows[0]["targets"] == ["gpu000"] and rows[0]["params"] == {"unit": "svc0"}


def test_export_csv_round_trips_and_rows_still_hash(db_path: Path) -> None:
    fill(db_path, 6)
    with AuditLog(db_path, operator=OP) as log:
        buf = io.StringIO()
        log.export(buf, "csv")
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert len(rows) == 6
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    stored = [dict(r) for r in conn.execute("SELECT * FROM events ORDER BY id")]
    conn.close()
    for got, want in zip(rows, stored, strict=True):
        assert got == {k: "" if v is None else str(v) for k, v in want.items()}


def test_pending_actions_lists_targets_without_results(db_path: Path) -> None:
    with AuditLog(db_path, operator=OP) as log:
        log.append("intent", action="a.x", targets=["n1", "n2"], action_uid="u1")
        log.append("result", action="a.x", targets=["n1"], outcome="ok", action_uid="u1")
        log.append("intent", action="a.y", targets=["n3"], action_uid="u2")
        log.append("result", action="a.y", targets=["n3"], outcome="failed", action_uid="u2")
        pending = log.pending_actions()
        assert [(p.action_uid, p.targets) for p in pending] == [("u1", ("n2",))]
        log.append("reconcile", action="a.x", targets=["n2"], outcome="unknown", action_uid="u1")
        assert log.pending_actions() == []


# ---------------------------------------------------------------- failures


def test_a_locked_database_raises_write_error_and_keeps_the_event(db_path: Path) -> None:
    log = AuditLog(db_path, operator=OP, busy_timeout_ms=100)
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(AuditWriteError) as err:
            log.append("intent", action="a.x", targets=["n1"], params={"token": "t0k"})
        assert err.value.event["action"] == "a.x"
        assert "t0k" not in json.dumps(err.value.event)
    finally:
        other.execute("ROLLBACK")
        other.close()
    log.append("note", detail="works again once the lock is gone")
    log.close()
    assert verify(db_path).ok


def test_write_fallback_appends_json_and_marks_degraded(db_path: Path) -> None:
    fb = db_path.parent / "fallback" / "audit-fallback.jsonl"
    log = AuditLog(db_path, operator=OP, fallback_path=fb)
    assert not log.degraded
    log.write_fallback({"phase": "result", "outcome": "ok", "action": "a.x"})
    log.write_fallback({"phase": "result", "outcome": "failed", "action": "a.y"})
    assert log.degraded
    lines = [json.loads(x) for x in fb.read_text().splitlines()]
    assert [x["action"] for x in lines] == ["a.x", "a.y"]
    assert mode(fb) == 0o600 and mode(fb.parent) == 0o700
    log.close()


def test_append_after_close_raises_write_error(db_path: Path) -> None:
    log = AuditLog(db_path, operator=OP)
    log.close()
    with pytest.raises(AuditWriteError):
        log.append("note")


# ---------------------------------------------------------------- leases


def test_a_lease_is_exclusive_across_connections_and_expires(db_path: Path) -> None:
    a = AuditLog(db_path, operator=OP)
    b = AuditLog(db_path, operator=OP)
    assert a.acquire_lease("node:gpu001", "A", 60)
    assert not b.acquire_lease("node:gpu001", "B", 60)
    assert b.lease_holder("node:gpu001") == "A"
    b.release_lease("node:gpu001", "B")  # not B's: left alone
    assert a.lease_holder("node:gpu001") == "A"
    a.release_lease("node:gpu001", "A")
    assert b.acquire_lease("node:gpu001", "B", -1)  # already expired
    assert a.acquire_lease("node:gpu001", "A", 60)  # an expired lease is taken over
    a.close()
    b.close()


def _race(path: str, holder: str, barrier: object, results: object) -> None:
    log = AuditLog(Path(path), operator=OP)
    barrier.wait()  # type: ignore[attr-defined]
    results.put((holder, log.acquire_lease("node:gpu007", holder, 60)))  # type: ignore[attr-defined]
    log.close()


def test_two_processes_never_both_get_one_lease(db_path: Path) -> None:
    AuditLog(db_path, operator=OP).close()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(3)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_race, args=(str(db_path), f"P{i}", barrier, results)) for i in range(3)
    ]
    for p in procs:
        p.start()
    got = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert sum(1 for _, ok in got if ok) == 1, got
