"""Durable rollout state: what was planned, which node step started and which finished.

Its own SQLite database next to the audit log (``rollouts.db``, 0600, WAL,
synchronous FULL), so a console that dies mid-rollout finds on the next start
the rollout as ``running`` (interrupted), every completed step (never repeated)
and any step that started without finishing (its outcome unknown: verified
before anything else happens).

Writes are committed before the step they describe goes on; they run on a
worker thread so the event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import sqlite_utils

T = TypeVar("T")

RolloutStatus = Literal["running", "awaiting_approval", "halted", "done", "aborted"]
StepState = Literal["started", "done", "failed"]
NodeState = Literal["pending", "running", "done", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class RolloutRow:
    id: str
    name: str
    plan_hash: str
    status: str
    halt_reason: str
    operator: str
    plan: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StepRow:
    node: str
    step: str
    state: str
    detail: str


class RolloutState:
    """The rollouts database. One instance per console process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)  # private from the first byte
            os.close(fd)
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db = sqlite_utils.Database(conn)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._create()

    @classmethod
    def beside(cls, audit_db: Path) -> RolloutState:
        """The rollouts database next to the audit database."""
        return cls(audit_db.with_name("rollouts.db"))

    def _create(self) -> None:
        if "rollouts" not in self._db.table_names():
            self._db["rollouts"].create(  # type: ignore[union-attr]
                {
                    "id": str,
                    "name": str,
                    "plan_hash": str,
                    "status": str,
                    "halt_reason": str,
                    "operator": str,
                    "plan": str,
                    "created": float,
                    "updated": float,
                },
                pk="id",
            )
        if "steps" not in self._db.table_names():
            self._db["steps"].create(  # type: ignore[union-attr]
                {
                    "rollout_id": str,
                    "node": str,
                    "step": str,
                    "state": str,
                    "detail": str,
                    "ts": float,
                },
                pk=("rollout_id", "node", "step"),
            )
        if "nodes" not in self._db.table_names():
            self._db["nodes"].create(  # type: ignore[union-attr]
                {"rollout_id": str, "node": str, "wave": int, "state": str, "detail": str},
                pk=("rollout_id", "node"),
            )

    def _locked(self, fn: Callable[[], T]) -> T:
        with self._lock:
            return fn()

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.to_thread(self._locked, fn)

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._db.conn.close()

    # ------------------------------------------------------------------ rollouts

    async def create(
        self,
        rollout_id: str,
        name: str,
        plan_hash: str,
        operator: str,
        plan: dict[str, Any],
        waves: list[tuple[int, tuple[str, ...]]],
    ) -> None:
        def write() -> None:
            now = time.time()
            with self._db.conn:
                self._db["rollouts"].insert(  # type: ignore[union-attr]
                    {
                        "id": rollout_id,
                        "name": name,
                        "plan_hash": plan_hash,
                        "status": "running",
                        "halt_reason": "",
                        "operator": operator,
                        "plan": json.dumps(plan, sort_keys=True),
                        "created": now,
                        "updated": now,
                    }
                )
                self._db["nodes"].insert_all(  # type: ignore[union-attr]
                    {
                        "rollout_id": rollout_id,
                        "node": n,
                        "wave": i,
                        "state": "pending",
                        "detail": "",
                    }
                    for i, nodes in waves
                    for n in nodes
                )

        await self._run(write)

    async def set_status(self, rollout_id: str, status: RolloutStatus, reason: str = "") -> None:
        def write() -> None:
            self._db["rollouts"].update(  # type: ignore[union-attr]
                rollout_id, {"status": status, "halt_reason": reason, "updated": time.time()}
            )

        await self._run(write)

    def _row(self, r: dict[str, Any]) -> RolloutRow:
        return RolloutRow(
            id=r["id"],
            name=r["name"],
            plan_hash=r["plan_hash"],
            status=r["status"],
            halt_reason=r["halt_reason"] or "",
            operator=r["operator"] or "",
            plan=json.loads(r["plan"] or "{}"),
        )

    async def get(self, rollout_id: str) -> RolloutRow | None:
        def read() -> RolloutRow | None:
            rows = list(self._db["rollouts"].rows_where("id = ?", [rollout_id]))
            return self._row(rows[0]) if rows else None

        return await self._run(read)

    async def unfinished(self) -> list[RolloutRow]:
        """Rollouts a console left running or halted: shown as interrupted on start."""

        def read() -> list[RolloutRow]:
            where = "status in ('running', 'awaiting_approval', 'halted')"
            return [
                self._row(r) for r in self._db["rollouts"].rows_where(where, order_by="created")
            ]

        return await self._run(read)

    # ------------------------------------------------------------------ nodes and steps

    async def set_node(
        self, rollout_id: str, node: str, state: NodeState, detail: str = ""
    ) -> None:
        def write() -> None:
            self._db["nodes"].update((rollout_id, node), {"state": state, "detail": detail})  # type: ignore[union-attr]

        await self._run(write)

    async def nodes(self, rollout_id: str) -> dict[str, tuple[int, str, str]]:
        """node -> (wave, state, detail)."""

        def read() -> dict[str, tuple[int, str, str]]:
            rows = self._db["nodes"].rows_where("rollout_id = ?", [rollout_id])
            return {r["node"]: (r["wave"], r["state"], r["detail"] or "") for r in rows}

        return await self._run(read)

    async def set_step(
        self, rollout_id: str, node: str, step: str, state: StepState, detail: str = ""
    ) -> None:
        def write() -> None:
            self._db["steps"].upsert(  # type: ignore[union-attr]
                {
                    "rollout_id": rollout_id,
                    "node": node,
                    "step": step,
                    "state": state,
                    "detail": detail,
                    "ts": time.time(),
                },
                pk=("rollout_id", "node", "step"),
            )

        await self._run(write)

    async def clear_steps(self, rollout_id: str, node: str) -> None:
        """Forget a node's steps (the operator chose to retry it from the start)."""

        def write() -> None:
            self._db.execute(
                "delete from steps where rollout_id = ? and node = ?", [rollout_id, node]
            )

        await self._run(write)

    async def steps(self, rollout_id: str) -> dict[tuple[str, str], StepRow]:
        def read() -> dict[tuple[str, str], StepRow]:
            rows = self._db["steps"].rows_where("rollout_id = ?", [rollout_id], order_by="ts")
            return {
                (r["node"], r["step"]): StepRow(r["node"], r["step"], r["state"], r["detail"] or "")
                for r in rows
            }

        return await self._run(read)
