"""The drill report: what happened, measured against the targets, kept in SQLite.

Reports live in ``drills.db`` beside the audit database (its own file and
table, 0600 like the audit DB), so ``dcc drill list`` / ``dcc drill report``
read them without the TUI. Export as Markdown (for the DR review) or JSON.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
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
    fault_at: str = ""
    """UTC time the fault went in (the RPO is counted back from it)."""
    rpo_detail: str = ""
    """How the RPO was measured: the newest surviving marker, how many survived."""
    deadman: str = ""
    """The dead man's switch: what was armed, and whether it was cancelled or left to fire."""
    console_host: str = ""
    """The host of the console process running the drill ("" in reports written before)."""
    pid: int | None = None
    """That process's id: an unfinished drill whose process still runs is running, not lost."""

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
            f"- Fault injected: {self.fault_at or '—'}",
            f"- Dead man's switch: {self.deadman or 'none'}",
            "",
            "## Targets",
            "",
            "| Measure | Target | Measured | Verdict |",
            "|---|---|---|---|",
        ]
        for m in (self.rto, self.rpo):
            out.append(f"| {m.name} | {secs(m.target_s)} | {secs(m.measured_s)} | {verdict(m)} |")
        if self.rpo_detail:
            out += ["", f"RPO measurement: {self.rpo_detail}"]
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


@dataclass(frozen=True, slots=True)
class DrillSummary:
    """One past drill, as the bring-up scorecard reads it."""

    id: str
    scenario: str
    title: str
    started: str
    finished: str
    """Empty while running (or when the console died mid-drill)."""
    result: str
    """passed, failed, aborted, refused -- or ``unfinished`` (its console stopped mid-drill)."""
    passed: bool
    rto_target_s: float | None
    rto_measured_s: float | None
    rpo_target_s: float | None
    rpo_measured_s: float | None
    restored: bool | None
    console_host: str = ""
    pid: int | None = None
    """The console process that ran (or runs) it, where recorded."""
    running_pid: int | None = None
    """Unfinished and its console process still runs on this host (judged when the
    history was read): running in another console, not stopped mid-drill."""


def running_pid(console_host: str, pid: int | None) -> int | None:
    """``pid`` if that console process runs on this host now, else None (gone, or unknown).

    Another host's process cannot be seen from here: unknown, so None. (A pid reused
    by an unrelated process reads as alive: the same risk the ActionRunner's lease
    release takes.)
    """
    if not console_host or not pid or pid <= 0 or console_host != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)  # signal 0: existence check only
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid  # exists, another user's
    return pid


def drill_history(db_path: Path) -> list[DrillSummary]:
    """Every drill in ``drills.db``, newest first; [] when there is no database yet.

    A stable, read-only entry point for other flows (the scorecard): it never
    creates the file and needs nothing but the path.
    """
    path = Path(db_path)
    if not path.exists():
        return []
    return [
        DrillSummary(
            id=r.id,
            scenario=r.scenario,
            title=r.title,
            started=r.started,
            finished=r.ended,
            result=r.result if r.ended else "unfinished",
            passed=r.result == "passed" and bool(r.ended),
            rto_target_s=r.rto.target_s,
            rto_measured_s=r.rto.measured_s,
            rpo_target_s=r.rpo.target_s,
            rpo_measured_s=r.rpo.measured_s,
            restored=r.restored,
            console_host=r.console_host,
            pid=r.pid,
            running_pid=None if r.ended else running_pid(r.console_host, r.pid),
        )
        for r in DrillStore(path).list()
    ]


def latest_by_scenario(reports: list[DrillReport]) -> dict[str, DrillReport]:
    """The newest report of each scenario (``reports`` newest first, as ``list`` gives)."""
    out: dict[str, DrillReport] = {}
    for r in reports:
        out.setdefault(r.scenario, r)
    return out
