"""The audit log's vocabulary: default paths, errors, rows, and the worker base.

Split from ``console.audit`` (which holds ``AuditLog``) to keep files short.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from console.identity import Operator

T = TypeVar("T")


def state_dir() -> Path:
    """``$XDG_STATE_HOME/dcconsole`` or ``~/.local/state/dcconsole``."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "dcconsole"


def default_audit_db() -> Path:
    """Where the audit database lives unless ``--audit-db`` or the inventory says otherwise."""
    return state_dir() / "audit.db"


def default_fallback_journal() -> Path:
    """Where result rows go when the database cannot take them."""
    return state_dir() / "audit-fallback.jsonl"


def utc_now_iso() -> str:
    """ISO-8601 UTC with milliseconds: ``2025-01-31T12:00:00.123Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AuditError(Exception):
    """Base of the audit log's errors."""


class AuditWriteError(AuditError):
    """A row could not be committed (disk full, I/O error, locked too long, closed).

    ``event`` holds the fields that were not written, for ``write_fallback``.
    """

    def __init__(self, message: str, event: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.event = dict(event)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One row of ``events``, as stored (``targets`` and ``params`` decoded)."""

    id: int
    ts: str
    operator: str
    ssh_client: str | None
    tty: str | None
    console_host: str
    pid: int
    action_uid: str
    action: str
    targets: tuple[str, ...]
    params: Mapping[str, Any]
    phase: str
    outcome: str
    duration_ms: int | None
    detail: str
    prev_hash: str
    hash: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AuditEvent:
        def load(text: Any, default: Any) -> Any:
            try:
                return json.loads(text) if text else default
            except (TypeError, ValueError):
                return default

        return cls(
            id=row["id"],
            ts=row["ts"],
            operator=row["operator"] or "",
            ssh_client=row["ssh_client"],
            tty=row["tty"],
            console_host=row["console_host"] or "",
            pid=row["pid"] or 0,
            action_uid=row["action_uid"] or "",
            action=row["action"] or "",
            targets=tuple(str(t) for t in load(row["targets"], [])),
            params=load(row["params"], {}),
            phase=row["phase"] or "",
            outcome=row["outcome"] or "",
            duration_ms=row["duration_ms"],
            detail=row["detail"] or "",
            prev_hash=row["prev_hash"],
            hash=row["hash"],
        )

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["targets"] = list(self.targets)
        d["params"] = dict(self.params)
        return d


@dataclass(frozen=True, slots=True)
class EventDraft:
    """An audit row to write together with another change (``AuditLog.commit_with``)."""

    phase: str
    action: str = ""
    targets: tuple[str, ...] = ()
    params: Mapping[str, Any] | None = None
    outcome: str = ""
    detail: str = ""
    operator: Operator | None = None


@dataclass(frozen=True, slots=True)
class PendingAction:
    """An action whose intent is recorded but whose result (for some targets) is not."""

    action_uid: str
    action: str
    targets: tuple[str, ...]
    """Targets without a result row."""
    intent_id: int
    ts: str
    operator: str
    console_host: str
    pid: int


class AuditWorker:
    """Owns the audit connection and the one thread every SQLite call runs on."""

    path: Path
    _closed: bool
    _executor: ThreadPoolExecutor
    _conn: sqlite3.Connection | None
    _db: sqlite_utils.Database | None

    def _require(self) -> tuple[sqlite3.Connection, sqlite_utils.Database]:
        if self._conn is None or self._db is None:
            raise AuditError(f"audit log {self.path} is closed")
        return self._conn, self._db

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise AuditError(f"audit log {self.path} is closed")
        return self._executor.submit(fn, *args).result()

    async def _acall(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise AuditError(f"audit log {self.path} is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)
