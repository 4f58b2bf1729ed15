"""``dcc drill list | report ID --format md|json | scenarios``, without the TUI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.cli import main
from console.wizards.drill_report import DrillReport, DrillStore, Measure, TimelineEntry


def report(drill_id: str, started: str, result: str = "passed") -> DrillReport:
    return DrillReport(
        id=drill_id,
        scenario="ha",
        title="Lose the primary",
        scope="drill-test",
        operator="alice",
        started=started,
        ended=started,
        result=result,  # type: ignore[arg-type]
        phases={"detect": 1.0, "failover": 12.5},
        rto=Measure(name="RTO", target_s=30, measured_s=12.5),
        rpo=Measure(name="RPO", target_s=None, measured_s=None),
        timeline=[TimelineEntry(at=0, wall=started, who="alice", step="inject", text="t.stop a|b")],
        restored=True,
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    store = DrillStore(tmp_path / "drills.db")
    store.save(report("ha-1", "2026-01-01T10:00:00"))
    store.save(report("ha-2", "2026-01-02T10:00:00", "aborted"))
    return store.path


def test_list_shows_drills_newest_first_with_result_and_rto(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["drill", "list", "--db", str(db)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["ha-2", "ha-1"]
    assert "aborted" in lines[0] and "RTO 12.5s/30s" in lines[1] and "alice" in lines[1]


def test_the_drill_database_sits_beside_the_audit_database(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--audit-db", str(db.with_name("audit.db")), "drill", "list"]) == 0
    assert "ha-1" in capsys.readouterr().out


def test_report_exports_markdown_and_json(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drill", "report", "ha-1", "--db", str(db), "--format", "md"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("# Drill report: Lose the primary\n")
    assert "| RTO | 30.0 s | 12.5 s | met |" in md
    assert "| 0.0 s | 2026-01-01T10:00:00 | alice | inject | t.stop a\\|b |" in md
    assert main(["drill", "report", "ha-1", "--db", str(db), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["id"] == "ha-1" and data["rto"]["measured_s"] == 12.5


def test_an_unknown_report_or_missing_database_exits_1_with_a_message(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["drill", "report", "nope", "--db", str(db)]) == 1
    assert "no drill 'nope'" in capsys.readouterr().err
    assert main(["drill", "report", "x", "--db", str(tmp_path / "none.db")]) == 1
    assert "no drill database" in capsys.readouterr().err
    assert main(["drill", "list", "--db", str(tmp_path / "none.db")]) == 0
    assert "no drills yet" in capsys.readouterr().out


def test_scenarios_lists_the_demo_catalogue_and_refuses_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["drill", "scenarios"]) == 0
    out = capsys.readouterr().out
    assert "inference-replica" in out and "RTO 60s" in out
    bad = tmp_path / "d.yaml"
    bad.write_text("drills:\n  - id: Bad Id\n")
    assert main(["drill", "scenarios", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:2: drills[0].id:" in err
