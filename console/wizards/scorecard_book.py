"""The scorecard's record: sign-offs and every evaluation snapshot, in SQLite.

``scorecard.db`` sits beside the audit database (the console's state dir by
default), 0600. Rows carry the site's name, so the demo's and a real site's
records never mix. Sign-offs are kept as a history (a revocation is a row too);
the latest row of an item is its state. Snapshots keep the full result as
JSON, so ``dcc scorecard export --snapshot ID`` reproduces what was seen then.

The methods block (SQLite): call them through ``asyncio.to_thread`` from the
event loop.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from console.audit_files import create_private_file
from console.wizards.scorecard_items import SignOff
from console.wizards.scorecard_result import ScorecardResult

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS signoffs (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " site TEXT NOT NULL, item TEXT NOT NULL, operator TEXT NOT NULL, ts REAL NOT NULL,"
    " note TEXT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS snapshots (id TEXT PRIMARY KEY, site TEXT NOT NULL,"
    " ts REAL NOT NULL, operator TEXT NOT NULL, summary TEXT NOT NULL, result TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS snapshots_site_ts ON snapshots (site, ts)",
)


@dataclass(frozen=True, slots=True)
class SnapshotRow:
    id: str
    ts: float
    operator: str
    summary: str


@dataclass(frozen=True, slots=True)
class SignOffRow:
    item: str
    operator: str
    ts: float
    note: str
    revoked: bool


def default_scorecard_db(audit_db: Path) -> Path:
    """The scorecard database sits beside the audit database."""
    return audit_db.with_name("scorecard.db")


class ScorecardBook:
    """The ``signoffs`` and ``snapshots`` tables of one database file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @contextmanager
    def _conn(self, write: bool) -> Iterator[sqlite3.Connection | None]:
        if write:
            create_private_file(self.path)
        elif not self.path.exists():
            yield None  # nothing recorded yet: reads see an empty book
            return
        with closing(sqlite3.connect(self.path, timeout=5.0)) as conn:
            if write:
                conn.execute("PRAGMA synchronous=FULL")
            for statement in _SCHEMA:
                conn.execute(statement)
            with conn:
                yield conn

    # ------------------------------------------------------------------ sign-offs

    def add_signoff(
        self, site: str, item: str, operator: str, note: str, *, revoked: bool = False
    ) -> SignOff:
        ts = time.time()
        with self._conn(write=True) as conn:
            assert conn is not None
            conn.execute(
                "INSERT INTO signoffs (site, item, operator, ts, note, revoked)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (site, item, operator, ts, note, int(revoked)),
            )
        return SignOff(item, operator, ts, note)

    def signoffs(self, site: str) -> dict[str, SignOff]:
        """Item -> its current sign-off (a revoked one is absent)."""
        with self._conn(write=False) as conn:
            if conn is None:
                return {}
            rows = conn.execute(
                "SELECT item, operator, ts, note, revoked FROM signoffs WHERE site = ?"
                " ORDER BY seq",
                (site,),
            ).fetchall()
        current: dict[str, SignOff] = {}
        for item, operator, ts, note, revoked in rows:
            if revoked:
                current.pop(item, None)
            else:
                current[item] = SignOff(item, operator, ts, note)
        return current

    def signoff_history(self, site: str, item: str | None = None) -> list[SignOffRow]:
        """Oldest first."""
        with self._conn(write=False) as conn:
            if conn is None:
                return []
            rows = conn.execute(
                "SELECT item, operator, ts, note, revoked FROM signoffs WHERE site = ?"
                " AND (? IS NULL OR item = ?) ORDER BY seq",
                (site, item, item),
            ).fetchall()
        return [SignOffRow(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]

    # ------------------------------------------------------------------ snapshots

    def record(self, result: ScorecardResult) -> ScorecardResult:
        """Keep an evaluation in the history; returns it with its snapshot id."""
        kept = result.model_copy(update={"id": uuid.uuid4().hex[:12]})
        with self._conn(write=True) as conn:
            assert conn is not None
            conn.execute(
                "INSERT INTO snapshots (id, site, ts, operator, summary, result)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    kept.id,
                    kept.site,
                    time.time(),
                    kept.operator,
                    kept.summary(),
                    kept.model_dump_json(),
                ),
            )
        return kept

    def history(self, site: str, limit: int = 50) -> list[SnapshotRow]:
        """Newest first."""
        with self._conn(write=False) as conn:
            if conn is None:
                return []
            rows = conn.execute(
                "SELECT id, ts, operator, summary FROM snapshots WHERE site = ?"
                " ORDER BY ts DESC, rowid DESC LIMIT ?",
                (site, limit),
            ).fetchall()
        return [SnapshotRow(*r) for r in rows]

    def snapshot(self, site: str, snapshot_id: str = "latest") -> ScorecardResult | None:
        """One recorded evaluation (``latest``: the newest), or None."""
        with self._conn(write=False) as conn:
            if conn is None:
                return None
            if snapshot_id == "latest":
                row = conn.execute(
                    "SELECT result FROM snapshots WHERE site = ? ORDER BY ts DESC, rowid DESC"
                    " LIMIT 1",
                    (site,),
                ).fetchone()
            else:
                row = conn.execute(
                    "SELECT result FROM snapshots WHERE site = ? AND id = ?", (site, snapshot_id)
                ).fetchone()
        return None if row is None else ScorecardResult.model_validate(json.loads(row[0]))
