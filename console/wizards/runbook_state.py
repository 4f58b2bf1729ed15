"""Durable runbook runs: which runbook on which target, and the state of each step.

Its own SQLite database beside the audit log (``runbooks.db``, 0600, WAL,
synchronous FULL), shared by every console on that audit log, so a run can be
continued after a restart (and followed from a second console). The runbook as
it was when the run started is stored with it: a run continues with the steps it
began with, even if the file changed since.

Step states: ``pending``, ``running`` (a check or an approval being waited on, a
note or an action being confirmed), ``executing`` (an action was handed to the
ActionRunner: its outcome is unknown if the console dies now), ``ok``,
``failed``, ``bypassed`` (with the operator's reason), ``skipped`` (does not
apply to this target).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from console.wizards.flow_db import FlowDatabase

RunStatus = Literal["running", "paused", "done", "aborted"]
StepState = Literal["pending", "running", "executing", "ok", "failed", "bypassed", "skipped"]
FINISHED_STEP = ("ok", "bypassed", "skipped")


@dataclass(frozen=True, slots=True)
class RunRow:
    id: str
    runbook_id: str
    title: str
    doc: dict[str, Any]
    target_kind: str
    target: str
    node: str
    status: str
    reason: str
    operator: str
    incident_id: int | None
    alert: str
    created: float
    updated: float


@dataclass(frozen=True, slots=True)
class StepRow:
    step_id: str
    index: int
    state: str
    detail: str
    answer: str | None
    approval_id: int | None
    attempts: int


class RunbookState(FlowDatabase):
    """The runbooks database. One instance per console process."""

    @classmethod
    def beside(cls, audit_db: Path) -> RunbookState:
        return cls(audit_db.with_name("runbooks.db"))

    def _create(self) -> None:
        names = self._db.table_names()
        if "runs" not in names:
            self._db["runs"].create(  # type: ignore[union-attr]
                {
                    "id": str,
                    "runbook_id": str,
                    "title": str,
                    "doc": str,
                    "target_kind": str,
                    "target": str,
                    "node": str,
                    "status": str,
                    "reason": str,
                    "operator": str,
                    "incident_id": int,
                    "alert": str,
                    "created": float,
                    "updated": float,
                },
                pk="id",
            )
        if "steps" not in names:
            self._db["steps"].create(  # type: ignore[union-attr]
                {
                    "run_id": str,
                    "step_id": str,
                    "idx": int,
                    "state": str,
                    "detail": str,
                    "answer": str,
                    "approval_id": int,
                    "attempts": int,
                    "updated": float,
                },
                pk=("run_id", "step_id"),
            )

    # ------------------------------------------------------------------ runs

    async def create(
        self,
        run_id: str,
        doc: dict[str, Any],
        target_kind: str,
        target: str,
        node: str,
        operator: str,
        incident_id: int | None,
        alert: str,
        step_ids: list[str],
    ) -> None:
        def write() -> None:
            now = time.time()
            with self._db.conn:
                self._db["runs"].insert(  # type: ignore[union-attr]
                    {
                        "id": run_id,
                        "runbook_id": doc["id"],
                        "title": doc["title"],
                        "doc": json.dumps(doc, sort_keys=True),
                        "target_kind": target_kind,
                        "target": target,
                        "node": node,
                        "status": "running",
                        "reason": "",
                        "operator": operator,
                        "incident_id": incident_id,
                        "alert": alert,
                        "created": now,
                        "updated": now,
                    }
                )
                self._db["steps"].insert_all(  # type: ignore[union-attr]
                    {
                        "run_id": run_id,
                        "step_id": sid,
                        "idx": i,
                        "state": "pending",
                        "detail": "",
                        "answer": None,
                        "approval_id": None,
                        "attempts": 0,
                        "updated": now,
                    }
                    for i, sid in enumerate(step_ids)
                )

        await self._run(write)

    async def set_status(self, run_id: str, status: RunStatus, reason: str = "") -> None:
        def write() -> None:
            self._db["runs"].update(  # type: ignore[union-attr]
                run_id, {"status": status, "reason": reason, "updated": time.time()}
            )

        await self._run(write)

    async def set_incident(self, run_id: str, incident_id: int | None) -> None:
        def write() -> None:
            self._db["runs"].update(run_id, {"incident_id": incident_id})  # type: ignore[union-attr]

        await self._run(write)

    @staticmethod
    def _row(r: dict[str, Any]) -> RunRow:
        return RunRow(
            id=r["id"],
            runbook_id=r["runbook_id"],
            title=r["title"],
            doc=json.loads(r["doc"] or "{}"),
            target_kind=r["target_kind"],
            target=r["target"],
            node=r["node"] or "",
            status=r["status"],
            reason=r["reason"] or "",
            operator=r["operator"] or "",
            incident_id=r["incident_id"],
            alert=r["alert"] or "",
            created=r["created"],
            updated=r["updated"],
        )

    async def get(self, run_id: str) -> RunRow | None:
        return await self._run(lambda: self.get_now(run_id))

    def get_now(self, run_id: str) -> RunRow | None:
        rows = list(self._db["runs"].rows_where("id = ?", [run_id]))
        return self._row(rows[0]) if rows else None

    async def unfinished(self) -> list[RunRow]:
        """Runs not done nor aborted: a console stopped or someone left them, to continue."""

        def read() -> list[RunRow]:
            where = "status in ('running', 'paused')"
            return [self._row(r) for r in self._db["runs"].rows_where(where, order_by="created")]

        return await self._run(read)

    def recent(self, limit: int = 50) -> list[RunRow]:
        """Newest first (for ``dcc runbook runs`` and the menu)."""
        rows = self._db["runs"].rows_where(order_by="created desc", limit=limit)
        return [self._row(r) for r in rows]

    # ------------------------------------------------------------------ steps

    async def set_step(
        self,
        run_id: str,
        step_id: str,
        state: StepState,
        detail: str = "",
        *,
        answer: str | None = None,
        approval_id: int | None = None,
        keep_approval: bool = True,
        attempt: bool = False,
    ) -> None:
        def write() -> None:
            table = self._db["steps"]
            old = list(table.rows_where("run_id = ? and step_id = ?", [run_id, step_id]))
            prior = old[0] if old else {}
            updates: dict[str, Any] = {
                "state": state,
                "detail": detail[:2000],
                "updated": time.time(),
                "attempts": (prior.get("attempts") or 0) + (1 if attempt else 0),
            }
            if answer is not None:
                updates["answer"] = answer
            if approval_id is not None or not keep_approval:
                updates["approval_id"] = approval_id
            with self._db.conn:
                table.update((run_id, step_id), updates)  # type: ignore[union-attr]
                self._db["runs"].update(run_id, {"updated": time.time()})  # type: ignore[union-attr]

        await self._run(write)

    async def steps(self, run_id: str) -> dict[str, StepRow]:
        return await self._run(lambda: self.steps_now(run_id))

    def steps_now(self, run_id: str) -> dict[str, StepRow]:
        rows = self._db["steps"].rows_where("run_id = ?", [run_id], order_by="idx")
        return {
            r["step_id"]: StepRow(
                r["step_id"],
                r["idx"],
                r["state"],
                r["detail"] or "",
                r["answer"],
                r["approval_id"],
                r["attempts"] or 0,
            )
            for r in rows
        }
