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

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from console.wizards.flow_db import FlowDatabase

RolloutStatus = Literal[
    "running",
    "awaiting_approval",
    "halted",
    "done",
    "aborted",
    "rolling_back",
    "rolled_back",
]
StepState = Literal["started", "done", "failed"]
NodeState = Literal["pending", "running", "done", "failed", "skipped", "rolled_back"]
RolloutMode = Literal["forward", "rollback"]

FINISHED = ("done", "aborted", "rolled_back")
"""Statuses after which nothing more runs."""
UNFINISHED = ("running", "awaiting_approval", "halted", "rolling_back")


@dataclass(frozen=True, slots=True)
class RolloutRow:
    id: str
    name: str
    plan_hash: str
    status: str
    halt_reason: str
    operator: str
    plan: dict[str, Any]
    mode: str = "forward"
    """``rollback`` once the operator chose to roll back the completed waves."""
    created: float = 0.0
    updated: float = 0.0


@dataclass(frozen=True, slots=True)
class StepRow:
    node: str
    step: str
    state: str
    detail: str
    started: float | None = None
    """Wall time the step started (None when not recorded)."""
    ts: float | None = None
    """Wall time of its last change (its end once done or failed)."""


@dataclass(frozen=True, slots=True)
class GateRow:
    """An operator's decision about a gate that halted (``override``: go on anyway)."""

    wave: int
    decision: str
    operator: str
    reason: str


class RolloutState(FlowDatabase):
    """The rollouts database. One instance per console process."""

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
        if "gates" not in self._db.table_names():
            self._db["gates"].create(  # type: ignore[union-attr]
                {
                    "rollout_id": str,
                    "wave": int,
                    "decision": str,
                    "operator": str,
                    "reason": str,
                    "ts": float,
                },
                pk=("rollout_id", "wave"),
            )
        # Columns added after the first release: a database written earlier gains them.
        rollouts = self._db["rollouts"]
        if "mode" not in rollouts.columns_dict:
            rollouts.add_column("mode", str, not_null_default="forward")  # type: ignore[union-attr]
        steps = self._db["steps"]
        if "started" not in steps.columns_dict:
            steps.add_column("started", float)  # type: ignore[union-attr]

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

    async def set_status(
        self,
        rollout_id: str,
        status: RolloutStatus,
        reason: str = "",
        mode: RolloutMode | None = None,
    ) -> None:
        def write() -> None:
            row: dict[str, Any] = {"status": status, "halt_reason": reason, "updated": time.time()}
            if mode is not None:
                row["mode"] = mode
            self._db["rollouts"].update(rollout_id, row)  # type: ignore[union-attr]

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
            mode=r.get("mode") or "forward",
            created=float(r.get("created") or 0.0),
            updated=float(r.get("updated") or 0.0),
        )

    async def get(self, rollout_id: str) -> RolloutRow | None:
        def read() -> RolloutRow | None:
            rows = list(self._db["rollouts"].rows_where("id = ?", [rollout_id]))
            return self._row(rows[0]) if rows else None

        return await self._run(read)

    async def unfinished(self) -> list[RolloutRow]:
        """Rollouts a console left running or halted: shown as interrupted on start."""

        def read() -> list[RolloutRow]:
            where = "status in ({})".format(", ".join("?" * len(UNFINISHED)))
            rows = self._db["rollouts"].rows_where(where, list(UNFINISHED), order_by="created")
            return [self._row(r) for r in rows]

        return await self._run(read)

    async def recent(self, limit: int = 50) -> list[RolloutRow]:
        """Every recorded rollout, newest first (running, interrupted and finished)."""

        def read() -> list[RolloutRow]:
            rows = self._db["rollouts"].rows_where(order_by="created desc", limit=limit)
            return [self._row(r) for r in rows]

        return await self._run(read)

    async def find(self, prefix: str) -> list[RolloutRow]:
        """Rollouts whose id starts with ``prefix`` (operators type a short id)."""

        def read() -> list[RolloutRow]:
            rows = self._db["rollouts"].rows_where(
                "substr(id, 1, ?) = ?", [len(prefix), prefix], order_by="created"
            )
            return [self._row(r) for r in rows]

        return await self._run(read)

    # ------------------------------------------------------------------ gates

    async def set_gate(
        self, rollout_id: str, wave: int, decision: str, operator: str, reason: str
    ) -> None:
        def write() -> None:
            self._db["gates"].upsert(  # type: ignore[union-attr]
                {
                    "rollout_id": rollout_id,
                    "wave": wave,
                    "decision": decision,
                    "operator": operator,
                    "reason": reason,
                    "ts": time.time(),
                },
                pk=("rollout_id", "wave"),
            )

        await self._run(write)

    async def gates(self, rollout_id: str) -> dict[int, GateRow]:
        def read() -> dict[int, GateRow]:
            rows = self._db["gates"].rows_where("rollout_id = ?", [rollout_id])
            return {
                r["wave"]: GateRow(r["wave"], r["decision"], r["operator"] or "", r["reason"] or "")
                for r in rows
            }

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
            now = time.time()
            row: dict[str, Any] = {
                "rollout_id": rollout_id,
                "node": node,
                "step": step,
                "state": state,
                "detail": detail,
                "ts": now,
            }
            if state == "started":
                row["started"] = now  # kept by the later upserts, which do not name it
            self._db["steps"].upsert(row, pk=("rollout_id", "node", "step"))  # type: ignore[union-attr]

        await self._run(write)

    async def clear_steps(self, rollout_id: str, node: str, prefix: str = "") -> None:
        """Forget a node's steps (the operator chose to retry it from the start);
        with ``prefix`` only those steps (``rb_``: the rollback's)."""

        def write() -> None:
            self._db.execute(
                "delete from steps where rollout_id = ? and node = ? and substr(step, 1, ?) = ?",
                [rollout_id, node, len(prefix), prefix],
            )

        await self._run(write)

    async def clear_step(self, rollout_id: str, node: str, step: str) -> None:
        """Forget one step (it never began: it will run as if new)."""

        def write() -> None:
            self._db.execute(
                "delete from steps where rollout_id = ? and node = ? and step = ?",
                [rollout_id, node, step],
            )

        await self._run(write)

    async def steps(self, rollout_id: str) -> dict[tuple[str, str], StepRow]:
        def read() -> dict[tuple[str, str], StepRow]:
            rows = self._db["steps"].rows_where("rollout_id = ?", [rollout_id], order_by="ts")
            return {
                (r["node"], r["step"]): StepRow(
                    r["node"],
                    r["step"],
                    r["state"],
                    r["detail"] or "",
                    r.get("started"),
                    r.get("ts"),
                )
                for r in rows
            }

        return await self._run(read)
