"""The drill report: what happened, measured against the targets, kept in SQLite.

Reports live in ``drills.db`` beside the audit database (its own file and
table, 0600 like the audit DB), so ``dcc drill list`` / ``dcc drill report``
read them without the TUI. Export as Markdown (for the DR review) or JSON.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from console.audit_files import create_private_file

Result = Literal["passed", "failed", "aborted", "refused"]


class _Rec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TimelineEntry(_Rec):
    at: float
    """Seconds since the drill started (the drill's own clock)."""
    wall: str
    """UTC time, ISO 8601."""
    who: str
    """The operator, or ``drill`` for what the engine did by itself (auto-restore)."""
    step: str
    """preflight, inject, detect, failover, recovered, abort, restore, postflight, note."""
    text: str


class Measure(_Rec):
    name: str
    target_s: float | None
    measured_s: float | None
    """None: not measured (never reached, or nothing to measure it with)."""

    @property
    def met(self) -> bool | None:
        if self.target_s is None:
            return None
        if self.measured_s is None:
            return False
        return self.measured_s <= self.target_s


class DrillReport(_Rec):
    id: str
    scenario: str
    title: str
    scope: str
    operator: str
    started: str
    ended: str = ""
    result: Result = "failed"
    phases: dict[str, float | None] = {}
    """detect / failover / recovered: seconds after the injection, None if never seen."""
    rto: Measure
    rpo: Measure
    deviations: list[str] = []
    timeline: list[TimelineEntry] = []
    restored: bool | None = None
    """True: the restore ran and verified; None: nothing to restore (refused before inject)."""

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    def to_markdown(self) -> str:
        def secs(v: float | None) -> str:
            return "—" if v is None else f"{v:.1f} s"

        def verdict(m: Measure) -> str:
            return {True: "met", False: "MISSED", None: "no target"}[m.met]

        out = [
            f"# Drill report: {self.title}",
            "",
            f"- Drill: `{self.id}` (scenario `{self.scenario}`, scope `{self.scope}`)",
            f"- Operator: {self.operator}",
            f"- Started: {self.started}  Ended: {self.ended or '—'}",
            f"- Result: **{self.result.upper()}**",
            f"- Restored: {'yes' if self.restored else 'n/a' if self.restored is None else 'NO'}",
            "",
            "## Targets",
            "",
            "| Measure | Target | Measured | Verdict |",
            "|---|---|---|---|",
        ]
        for m in (self.rto, self.rpo):
            out.append(f"| {m.name} | {secs(m.target_s)} | {secs(m.measured_s)} | {verdict(m)} |")
        out += ["", "## Phases (after injection)", ""]
        out += [f"- {name}: {secs(v)}" for name, v in self.phases.items()]
        out += ["", "## Deviations", ""]
        out += [f"- {d}" for d in self.deviations] or ["- none"]
        out += ["", "## Timeline", "", "| t | UTC | who | step | what |", "|---|---|---|---|---|"]
        for e in self.timeline:
            text = e.text.replace("|", "\\|").replace("\n", " ")
            out.append(f"| {e.at:.1f} s | {e.wall} | {e.who} | {e.step} | {text} |")
        return "\n".join(out) + "\n"


def default_drill_db(audit_db: Path) -> Path:
    """Drill reports sit beside the audit database."""
    return audit_db.with_name("drills.db")


class DrillStore:
    """The ``drills`` table: one row per drill run, the full report as JSON."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @contextmanager
    def _conn(self, write: bool) -> Iterator[sqlite3.Connection]:
        if write:
            create_private_file(self.path)
        elif not self.path.exists():
            raise FileNotFoundError(f"no drill database at {self.path}")
        with closing(sqlite3.connect(self.path, timeout=5.0)) as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS drills (id TEXT PRIMARY KEY, scenario TEXT NOT NULL,"
                " operator TEXT NOT NULL, started TEXT NOT NULL, ended TEXT, result TEXT NOT NULL,"
                " report TEXT NOT NULL)"
            )
            with conn:
                yield conn

    def save(self, report: DrillReport) -> None:
        """Insert or update (a running drill is saved at each step: a crash leaves a trace)."""
        with self._conn(write=True) as conn:
            conn.execute(
                "INSERT INTO drills (id, scenario, operator, started, ended, result, report)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET ended=excluded.ended,"
                " result=excluded.result, report=excluded.report",
                (
                    report.id,
                    report.scenario,
                    report.operator,
                    report.started,
                    report.ended,
                    report.result,
                    report.to_json(),
                ),
            )

    def get(self, drill_id: str) -> DrillReport | None:
        with self._conn(write=False) as conn:
            row = conn.execute("SELECT report FROM drills WHERE id = ?", (drill_id,)).fetchone()
        return None if row is None else DrillReport.model_validate(json.loads(row[0]))

    def list(self) -> list[DrillReport]:
        """Newest first."""
        with self._conn(write=False) as conn:
            rows = conn.execute("SELECT report FROM drills ORDER BY started DESC, id").fetchall()
        return [DrillReport.model_validate(json.loads(r[0])) for r in rows]
