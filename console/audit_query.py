"""Reading the audit log: pages, search, pending intents and export (never the whole table)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from typing import IO, Any, Literal

from console.audit_chain import HASHED_FIELDS
from console.audit_model import AuditEvent, AuditWorker, PendingAction

TERMINAL_PHASES = ("result", "reconcile")
"""Phases that close an intent for the targets they name."""

_SEARCH_COLUMNS = (
    "operator",
    "ssh_client",
    "action",
    "targets",
    "params",
    "phase",
    "outcome",
    "detail",
    "action_uid",
)


class QueryMixin(AuditWorker):
    """Read-side methods of ``AuditLog``; each runs on the audit thread."""

    def _select(
        self, where: str, args: Sequence[Any], order: str, limit: int, offset: int
    ) -> list[AuditEvent]:
        conn, _ = self._require()
        sql = f"SELECT * FROM events {where} ORDER BY id {order} LIMIT ? OFFSET ?"  # noqa: S608
        return [AuditEvent.from_row(r) for r in conn.execute(sql, (*args, int(limit), int(offset)))]

    def page(
        self, limit: int = 100, offset: int = 0, newest_first: bool = True
    ) -> list[AuditEvent]:
        """One page of rows (never the whole table)."""
        order = "DESC" if newest_first else "ASC"
        return self._call(self._select, "", (), order, limit, offset)

    def _search_where(self, text: str) -> tuple[str, list[Any]]:
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        cols = _SEARCH_COLUMNS
        where = "WHERE " + " OR ".join(f"coalesce({c}, '') LIKE ? ESCAPE '\\'" for c in cols)
        return where, [like] * len(cols)

    def search(self, text: str, limit: int = 100, offset: int = 0) -> list[AuditEvent]:
        """Rows whose operator, action, targets, params, phase, outcome or detail contain
        ``text`` (case-insensitive for ASCII), newest first."""
        where, args = self._search_where(text)
        return self._call(self._select, where, args, "DESC", limit, offset)

    def count(self, text: str = "") -> int:
        """Number of rows (matching ``text`` when given), for pagination."""

        def run() -> int:
            conn, _ = self._require()
            where, args = self._search_where(text) if text else ("", [])
            return int(conn.execute(f"SELECT count(*) FROM events {where}", args).fetchone()[0])  # noqa: S608

        return self._call(run)

    async def page_async(
        self, limit: int = 100, offset: int = 0, newest_first: bool = True
    ) -> list[AuditEvent]:
        order = "DESC" if newest_first else "ASC"
        return await self._acall(self._select, "", (), order, limit, offset)

    async def search_async(self, text: str, limit: int = 100, offset: int = 0) -> list[AuditEvent]:
        where, args = self._search_where(text)
        return await self._acall(self._select, where, args, "DESC", limit, offset)

    def since(self, after_id: int, limit: int = 1000) -> list[AuditEvent]:
        """Rows with id greater than ``after_id``, oldest first (for ``tail --follow``)."""
        return self._call(self._select, "WHERE id > ?", (after_id,), "ASC", limit, 0)

    def _pending(self) -> list[PendingAction]:
        conn, _ = self._require()
        # Candidates: intents with fewer terminal rows than targets and no
        # reconcile row; the exact missing targets are worked out below.
        candidates = conn.execute(
            """
            SELECT i.* FROM events i
            WHERE i.phase = 'intent'
              AND NOT EXISTS (SELECT 1 FROM events r WHERE r.action_uid = i.action_uid
                              AND r.phase = 'reconcile' AND r.id > i.id)
              AND (SELECT count(*) FROM events r WHERE r.action_uid = i.action_uid
                   AND r.phase = 'result' AND r.id > i.id) < json_array_length(i.targets)
            ORDER BY i.id
            """
        ).fetchall()
        out = []
        for intent in candidates:
            ev = AuditEvent.from_row(intent)
            done: set[str] = set()
            for r in conn.execute(
                "SELECT targets FROM events WHERE action_uid = ? AND id > ? AND phase IN (?, ?)",
                (ev.action_uid, ev.id, *TERMINAL_PHASES),
            ):
                done.update(json.loads(r["targets"] or "[]"))
            missing = tuple(t for t in ev.targets if t not in done)
            if missing:
                out.append(
                    PendingAction(
                        ev.action_uid,
                        ev.action,
                        missing,
                        ev.id,
                        ev.ts,
                        ev.operator,
                        ev.console_host,
                        ev.pid,
                    )
                )
        return out

    def pending_actions(self) -> list[PendingAction]:
        """Intents with targets that have no later result or reconcile row."""
        return self._call(self._pending)

    async def pending_actions_async(self) -> list[PendingAction]:
        return await self._acall(self._pending)

    # ------------------------------------------------------------------ export

    def _export(self, out: IO[str], fmt: str) -> int:
        conn, _ = self._require()
        cur = conn.execute("SELECT * FROM events ORDER BY id")
        columns = [*HASHED_FIELDS, "hash"]
        writer = csv.DictWriter(out, fieldnames=columns) if fmt == "csv" else None
        if writer is not None:
            writer.writeheader()
        n = 0
        for row in cur:  # streamed: one row in memory at a time
            if writer is not None:
                writer.writerow({c: row[c] for c in columns})
            else:
                out.write(json.dumps(AuditEvent.from_row(row).to_json(), ensure_ascii=False))
                out.write("\n")
            n += 1
        out.flush()
        return n

    def export(self, out: IO[str], fmt: Literal["jsonl", "csv"] = "jsonl") -> int:
        """Write every row, oldest first, to ``out``; returns the number written.

        ``jsonl``: one object per line with ``targets`` and ``params`` decoded.
        ``csv``: a header and the columns as stored (``targets``/``params`` as JSON text).
        """
        if fmt not in ("jsonl", "csv"):
            raise ValueError(f"unknown export format {fmt!r} (jsonl or csv)")
        return self._call(self._export, out, fmt)
