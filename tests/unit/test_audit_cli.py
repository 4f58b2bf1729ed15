"""`dcc audit verify | export | tail` on a real audit database."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sqlite3
from pathlib import Path

import pytest

from console import cli_audit
from console.audit import AuditLog
from console.identity import Operator

OP = Operator(user="alice", ssh_client="10.0.0.5 50022", tty=None, console_host="jump1", pid=7)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dcc")
    parser.add_argument("--audit-db", type=Path, default=None)
    cli_audit.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(list(argv))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "audit.db"
    with AuditLog(path, operator=OP, anchor_path=tmp_path / "anchor") as log:
        log.append("intent", action="services.restart", targets=["gpu001"], action_uid="u1")
        log.append(
            "result",
            action="services.restart",
            targets=["gpu001"],
            action_uid="u1",
            outcome="ok",
            duration_ms=1200,
            detail="active (running)\x1b[2J",
        )
        log.append("note", detail="third")
    return path


def test_verify_ok_exits_zero(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_audit.run(parse("--audit-db", str(db), "audit", "verify")) == 0
    assert "3 rows verified" in capsys.readouterr().out


def test_verify_tampered_exits_one_with_the_first_bad_row(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE events SET outcome = 'failed' WHERE id = 2")
    conn.close()
    assert cli_audit.run(parse("--audit-db", str(db), "audit", "verify")) == 1
    out = capsys.readouterr().out
    assert "TAMPERED" in out and "first bad row id 2" in out


def test_verify_with_anchor_detects_a_cut_tail(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("DELETE FROM events WHERE id = 3")
    conn.close()
    assert cli_audit.run(parse("--audit-db", str(db), "audit", "verify")) == 0
    anchor = str(db.parent / "anchor")
    assert cli_audit.run(parse("--audit-db", str(db), "audit", "verify", "--anchor", anchor)) == 1
    assert "truncated" in capsys.readouterr().out


def test_export_jsonl_to_stdout(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_audit.run(parse("--audit-db", str(db), "audit", "export", "--format", "jsonl")) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["phase"] for r in rows] == ["intent", "result", "note"]
    assert rows[1]["targets"] == ["gpu001"] and rows[1]["duration_ms"] == 1200


def test_export_csv_to_a_private_file(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "export.csv"
    args = parse("--audit-db", str(db), "audit", "export", "--format", "csv", "--output", str(out))
    assert cli_audit.run(args) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["id"] for r in rows] == ["1", "2", "3"]
    assert os.stat(out).st_mode & 0o077 == 0


def test_tail_prints_human_lines_without_control_characters(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_audit.run(parse("--audit-db", str(db), "audit", "tail", "-n", "2")) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert "alice(10.0.0.5)" in lines[0] and "result" in lines[0] and "ok" in lines[0]
    assert "services.restart gpu001" in lines[0] and "active (running)" in lines[0]
    assert "\x1b" not in lines[0]
    assert "note" in lines[1] and "third" in lines[1]


def test_a_missing_database_is_one_line_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "none.db")
    for cmd in (["verify"], ["export"], ["tail"]):
        assert cli_audit.run(parse("--audit-db", missing, "audit", *cmd)) == 2
        err = capsys.readouterr().err
        assert "no audit database" in err and "Traceback" not in err
    assert not Path(missing).exists()  # reading never creates a database


def test_a_world_readable_database_is_refused_with_the_fix(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os.chmod(db, 0o644)
    assert cli_audit.run(parse("--audit-db", str(db), "audit", "tail")) == 2
    err = capsys.readouterr().err
    assert f"chmod 600 {db}" in err and "Traceback" not in err
