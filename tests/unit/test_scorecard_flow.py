"""Sign-offs (audited, role-checked), the drill history read from a drills.db the drill engine
wrote, the snapshot history, and ``dcc scorecard sign | history | export | checklist``."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from console.audit import AuditLog
from console.cli import main
from console.identity import Operator
from console.inventory import inventory_from_data
from console.plugin import Role
from console.store import Store
from console.wizards.scorecard_book import ScorecardBook
from console.wizards.scorecard_eval import ScorecardEngine
from console.wizards.scorecard_flow import ScorecardFlow, Signer, SignRefused
from console.wizards.scorecard_model import checklist_from_data
from tests.unit.test_drill_run import Rig, scenario_data
from tests.unit.test_drill_run import rig as rig  # the drill engine's rig, as a fixture

CHECKLIST = {
    "phases": [
        {
            "id": "prod",
            "title": "Production-ready",
            "items": [
                {"id": "drills", "title": "Drills passed", "drills": {"within_days": 30}},
                {"id": "on-call", "title": "On-call rota", "manual": True},
                {"id": "dr-plan", "title": "DR plan", "manual": {"role": "admin"}},
                {"id": "racked", "title": "Racked", "racked": True},
            ],
        }
    ]
}


def audit_rows(db: Path) -> list[dict[str, Any]]:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM events WHERE phase = 'scorecard'")]
    finally:
        con.close()


def make_flow(
    tmp_path: Path, audit: AuditLog, role: Role = Role.OPERATOR, **kw: Any
) -> ScorecardFlow:
    inventory = inventory_from_data(
        {"site": {"name": "t"}, "nodes": [{"nodes": "n1", "role": "cpu"}]}, None
    )
    catalogue = tmp_path / "drills" / "t.yaml"
    catalogue.parent.mkdir(exist_ok=True)
    data = scenario_data()
    data["drills"].append({**data["drills"][0], "id": "standby-loss"})
    catalogue.write_text(yaml.safe_dump(data))
    return ScorecardFlow(
        engine=ScorecardEngine(checklist_from_data(CHECKLIST), inventory, []),
        book=ScorecardBook(tmp_path / "scorecard.db"),
        store=Store(),
        signer=Signer(audit, Operator(user="alice"), role, kw.get("read_only", False)),
        drills_db=tmp_path / "drills.db",
        catalogue=catalogue,
    )


@pytest.fixture
async def audit(tmp_path: Path) -> AsyncIterator[AuditLog]:
    log = AuditLog(tmp_path / "audit.db", fallback_path=tmp_path / "fallback.jsonl")
    yield log
    log.close()


async def test_drills_pass_only_for_scenarios_the_drill_engine_recorded_as_passed(
    rig: Rig, audit: AuditLog, tmp_path: Path
) -> None:
    report = await rig.run().run("primary")  # the real drill engine writes tmp_path/drills.db
    assert report.result == "passed"
    assert rig.store.path == tmp_path / "drills.db"
    flow = make_flow(tmp_path, audit)
    await flow.load()
    item = flow.evaluate().item("drills")
    assert item is not None and item.status == "fail"
    assert item.summary == "1 of 2 drills not passed: standby-loss: never run"
    assert item.evidence[1].startswith("ha: passed 2027-01-15 08:0")
    assert "by alice, RTO 12.0 s / 30 s" in item.evidence[1] and report.id in item.evidence[1]


async def test_a_sign_off_is_audited_first_and_then_counts(audit: AuditLog, tmp_path: Path) -> None:
    flow = make_flow(tmp_path, audit)
    await flow.load()
    await flow.sign("on-call", "rota for Q1 in PagerDuty, 6 people")
    item = flow.evaluate().item("on-call")
    assert item is not None and item.status == "pass" and item.signed_by == "alice"
    (row,) = audit_rows(audit.path)
    assert (row["action"], row["outcome"], row["operator"]) == ("scorecard.sign", "signed", "alice")
    assert row["detail"] == "rota for Q1 in PagerDuty, 6 people"
    assert json.loads(row["targets"]) == ["on-call"]
    assert json.loads(row["params"])["phase"] == "prod"
    await flow.sign("on-call", "rota lapsed", revoke=True)
    item = flow.evaluate().item("on-call")
    assert item is not None and item.status == "unknown"
    assert [r["outcome"] for r in audit_rows(audit.path)] == ["signed", "revoked"]
    history = flow.book.signoff_history("t")
    assert [(h.item, h.revoked) for h in history] == [("on-call", False), ("on-call", True)]


async def test_sign_offs_are_refused_without_a_note_for_automatic_items_and_below_the_role(
    audit: AuditLog, tmp_path: Path
) -> None:
    flow = make_flow(tmp_path, audit)
    with pytest.raises(SignRefused, match="a note is required"):
        await flow.sign("on-call", "  \x1b[2J ")
    with pytest.raises(SignRefused, match="checked live"):
        await flow.sign("racked", "looked at it")
    with pytest.raises(SignRefused, match="did you mean 'on-call'"):
        await flow.sign("oncall", "x")
    with pytest.raises(SignRefused, match="dr-plan needs the admin role; you are operator"):
        await flow.sign("dr-plan", "plan v2 reviewed")
    viewer = make_flow(tmp_path, audit, Role.VIEWER)
    with pytest.raises(SignRefused, match="needs the operator role; you are viewer"):
        await viewer.sign("on-call", "rota")
    read_only = make_flow(tmp_path, audit, Role.ADMIN, read_only=True)
    with pytest.raises(SignRefused, match="read-only"):
        await read_only.sign("on-call", "rota")
    refused = audit_rows(audit.path)
    assert [r["outcome"] for r in refused] == ["refused"] * 3  # role and read-only, on the record
    assert flow.book.signoffs("t") == {}


async def test_evaluations_are_kept_as_snapshots_and_read_back_unchanged(
    audit: AuditLog, tmp_path: Path
) -> None:
    flow = make_flow(tmp_path, audit)
    await flow.load()
    first = await flow.record(flow.evaluate())
    await flow.sign("on-call", "rota")
    second = await flow.record(flow.evaluate())
    rows = flow.book.history("t")
    assert [r.id for r in rows] == [second.id, first.id]
    assert rows[0].summary == "prod 1/4" and rows[1].summary == "prod 0/4"
    assert flow.book.snapshot("t", first.id) == first
    assert flow.book.snapshot("t") == second
    assert flow.book.snapshot("other-site") is None
    assert (tmp_path / "scorecard.db").stat().st_mode & 0o077 == 0
    out = tmp_path / "out" / "card.json"
    exported = await flow.export(out, "json")
    assert json.loads(out.read_text())["id"] == exported.id


# --------------------------------------------------------------------------- the CLI


@pytest.mark.usefixtures("isolated_cli_state")
def test_cli_sign_history_and_export_of_a_snapshot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    audit_db = tmp_path / "audit.db"
    base = ["--audit-db", str(audit_db), "scorecard"]
    assert main([*base, "sign", "on-call", "--note", "rota staffed, 6 people"]) == 0
    assert "signed off on-call (dc-demo): rota staffed, 6 people" in capsys.readouterr().out
    assert main([*base, "sign", "racked", "--note", "x"]) == 1
    assert "refused: racked is checked live" in capsys.readouterr().err
    assert main([*base, "history", "--signoffs"]) == 0
    assert "signed   on-call" in capsys.readouterr().out
    assert main([*base, "history"]) == 0
    assert "no evaluation recorded yet for dc-demo" in capsys.readouterr().out
    assert main([*base, "export", "--snapshot", "latest"]) == 1
    assert "no snapshot 'latest' for dc-demo" in capsys.readouterr().err
    rows = audit_rows(audit_db)
    assert [(r["action"], r["outcome"]) for r in rows] == [("scorecard.sign", "signed")]


@pytest.mark.usefixtures("isolated_cli_state")
def test_cli_checklist_reports_problems_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scorecard", "checklist"]) == 0
    out = capsys.readouterr().out
    assert "Base environment (base, 10 items)" in out and "infiniband.links" in out
    bad = tmp_path / "card.yaml"
    bad.write_text(
        "phases:\n  - {id: a, title: A, items: [{id: x, title: t, check: gpu.helthy}]}\n"
    )
    assert main(["scorecard", "checklist", str(bad)]) == 1
    assert (
        f"{bad}:2: phases[0].items[0].check: unknown check 'gpu.helthy'" in capsys.readouterr().err
    )
    bad.write_text("phases: []\n")
    assert main(["scorecard", "--checklist", str(bad), "sign", "x", "--note", "y"]) == 2
    assert f"{bad}:1: phases:" in capsys.readouterr().err
