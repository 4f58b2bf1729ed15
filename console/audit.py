"""The audit log: an append-only, hash-chained SQLite record of every change.

One ``AuditLog`` per console process. All SQLite work runs on one dedicated
worker thread (a connection belongs to one thread), so the event loop never
blocks on an fsync: use ``append_async`` from coroutines and ``append`` from
the CLI and tests. ``append`` returns only after the row is committed with
``synchronous=FULL``: that is what "the intent is on the record before the
side effect" rests on.

The chain itself (hashing and verification) is in ``console.audit_chain``;
file permissions in ``console.audit_files``; leases in ``console.audit_leases``;
the tables and their migrations in ``console.audit_schema``.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import sqlite_utils

from console.audit_chain import GENESIS, VerifyReport, insert_linked, verify
from console.audit_files import (
    AuditPermissionError,
    append_private_line,
    check_private,
    create_private_file,
    ensure_private_dir,
    make_private,
    private_umask,
)
from console.audit_leases import LeaseMixin
from console.audit_model import (
    AuditError,
    AuditEvent,
    AuditWriteError,
    EventDraft,
    PendingAction,
    T,
    default_audit_db,
    default_fallback_journal,
    state_dir,
    utc_now_iso,
)
from console.audit_query import QueryMixin
from console.audit_schema import migrate
from console.identity import Operator
from console.redact import redact

__all__ = [
    "GENESIS",
    "AuditError",
    "AuditEvent",
    "AuditLog",
    "AuditPermissionError",
    "AuditWriteError",
    "EventDraft",
    "PendingAction",
    "VerifyReport",
    "default_audit_db",
    "default_fallback_journal",
    "state_dir",
    "verify",
]

log = logging.getLogger(__name__)


class AuditLog(QueryMixin, LeaseMixin):
    """The audit database of one console process.

    Args:
        path: the SQLite file (created 0600, its folder 0700 when created).
        operator: identity written on every row (default: this process's).
        fallback_path: journal for rows the database refused.
        anchor_path: file the chain head is appended to every ``anchor_every``
            rows and on close; None: no anchor.
        busy_timeout_ms: how long a write waits for another connection's lock.
        readonly: open an existing database for reading only (CLI export/tail).

    Raises:
        AuditPermissionError: the database or a file beside it is open to others.
        AuditError: the database cannot be opened.
    """

    def __init__(
        self,
        path: Path,
        *,
        operator: Operator | None = None,
        fallback_path: Path | None = None,
        anchor_path: Path | None = None,
        anchor_every: int = 100,
        busy_timeout_ms: int = 5000,
        readonly: bool = False,
    ) -> None:
        self.path = Path(path)
        self.operator = operator or Operator.current()
        self.fallback_path = fallback_path or default_fallback_journal()
        self.anchor_path = anchor_path
        self.anchor_every = anchor_every
        self.busy_timeout_ms = busy_timeout_ms
        self.readonly = readonly
        self.degraded = False
        """True once a row went to the fallback journal: new actions are refused."""
        self.anchor_lag = False
        """True when the last anchor write failed (actions continue, a warning shows)."""
        self.unrecorded: list[dict[str, Any]] = []
        """Rows neither the database nor the fallback journal took (shown, never dropped)."""
        self._since_anchor = 0
        self._closed = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit")
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._db: sqlite_utils.Database | None = None
        try:
            self._executor.submit(self._open).result()
        except BaseException:
            self._executor.shutdown(wait=True)
            raise

    # ------------------------------------------------------------------ opening

    def _files(self) -> list[Path]:
        return [self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")]

    def _open(self) -> None:
        for f in self._files():
            check_private(f)
        if self.readonly:
            if not self.path.exists():
                raise AuditError(f"no audit database at {self.path}")
            uri = f"file:{self.path}?mode=ro"
        else:
            ensure_private_dir(self.path.parent)
            create_private_file(self.path)
            uri = f"file:{self.path}"
        try:
            with private_umask(self.path.parent):
                conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=0)
                conn.row_factory = sqlite3.Row
                conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
                if not self.readonly:
                    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                    if str(mode).lower() != "wal":
                        raise AuditError(f"{self.path}: cannot switch to WAL (got {mode})")
                conn.execute("PRAGMA synchronous=FULL")
                self._conn = conn
                self._db = sqlite_utils.Database(conn)
                if not self.readonly:
                    migrate(conn, self._db)
        except sqlite3.Error as exc:
            raise AuditError(f"cannot open the audit database {self.path}: {exc}") from exc
        if not self.readonly:
            for f in self._files():
                make_private(f)
        for f in self._files():
            check_private(f)

    def pragma(self, name: str) -> Any:
        """Read a PRAGMA back (``synchronous``, ``journal_mode``, ``busy_timeout``)."""
        if not name.isidentifier():
            raise ValueError(f"not a pragma name: {name!r}")

        def read() -> Any:
            conn, _ = self._require()
            return conn.execute(f"PRAGMA {name}").fetchone()[0]

        return self._call(read)

    # ------------------------------------------------------------------ appending

    def _event(
        self,
        phase: str,
        action: str,
        targets: Sequence[str],
        params: Mapping[str, Any] | None,
        outcome: str,
        action_uid: str,
        duration_ms: int | None,
        detail: str,
        secret_fields: Iterable[str],
        operator: Operator | None,
    ) -> dict[str, Any]:
        op = operator or self.operator
        return {
            "ts": utc_now_iso(),
            "operator": op.user,
            "ssh_client": op.ssh_client,
            "tty": op.tty,
            "console_host": op.console_host,
            "pid": op.pid,
            "action_uid": action_uid,
            "action": action,
            "targets": json.dumps([str(t) for t in targets], ensure_ascii=False),
            "params": json.dumps(redact(params or {}, secret_fields), sort_keys=True, default=str),
            "phase": phase,
            "outcome": outcome,
            "duration_ms": duration_ms,
            "detail": detail,
        }

    def _insert(self, event: dict[str, Any]) -> AuditEvent:
        try:
            conn, _ = self._require()
        except AuditError as exc:
            raise AuditWriteError(str(exc), event) from exc
        try:
            # IMMEDIATE: take the write lock before reading the head, so two
            # consoles on one file never chain onto the same previous row.
            conn.execute("BEGIN IMMEDIATE")
            row = insert_linked(conn, event)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    log.exception("rollback failed after an audit write error")
            raise AuditWriteError(
                f"could not write the audit row ({event.get('phase')} "
                f"{event.get('action') or ''}) to {self.path}: {exc}",
                event,
            ) from exc
        self._since_anchor += 1
        if self.anchor_path is not None and self._since_anchor >= self.anchor_every:
            self._write_anchor()
        return AuditEvent.from_row(row)

    def append(
        self,
        phase: str,
        *,
        action: str = "",
        targets: Sequence[str] = (),
        params: Mapping[str, Any] | None = None,
        outcome: str = "",
        action_uid: str = "",
        duration_ms: int | None = None,
        detail: str = "",
        secret_fields: Iterable[str] = (),
        operator: Operator | None = None,
    ) -> AuditEvent:
        """Write one row and commit it before returning.

        ``params`` are redacted (secret-looking keys and ``secret_fields``).

        Raises:
            AuditWriteError: the row is not committed; ``.event`` holds it.
        """
        event = self._writable_event(
            phase,
            action,
            targets,
            params,
            outcome,
            action_uid,
            duration_ms,
            detail,
            secret_fields,
            operator,
        )
        try:
            return self._call(self._insert, event)
        except AuditWriteError:
            raise
        except AuditError as exc:
            raise AuditWriteError(str(exc), event) from exc

    def _writable_event(self, phase: str, *args: Any) -> dict[str, Any]:
        event = self._event(phase, *args)
        if self.readonly:
            raise AuditWriteError(f"audit log {self.path} is open read-only", event)
        return event

    async def append_async(
        self,
        phase: str,
        *,
        action: str = "",
        targets: Sequence[str] = (),
        params: Mapping[str, Any] | None = None,
        outcome: str = "",
        action_uid: str = "",
        duration_ms: int | None = None,
        detail: str = "",
        secret_fields: Iterable[str] = (),
        operator: Operator | None = None,
    ) -> AuditEvent:
        """``append`` for the event loop: the commit happens on the audit thread."""
        event = self._writable_event(
            phase,
            action,
            targets,
            params,
            outcome,
            action_uid,
            duration_ms,
            detail,
            secret_fields,
            operator,
        )
        try:
            return await self._acall(self._insert, event)
        except AuditWriteError:
            raise
        except AuditError as exc:
            raise AuditWriteError(str(exc), event) from exc

    def _commit_with(
        self, change: Callable[[sqlite3.Connection], tuple[T, EventDraft | None]]
    ) -> tuple[T, AuditEvent | None]:
        conn, _ = self._require()
        event: dict[str, Any] = {}
        try:
            conn.execute("BEGIN IMMEDIATE")
            value, draft = change(conn)
            row = None
            if draft is not None:
                event = self._writable_event(
                    draft.phase, draft.action, draft.targets, draft.params, draft.outcome,
                    "", None, draft.detail, (), draft.operator,
                )  # fmt: skip
                row = insert_linked(conn, event)
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise AuditWriteError(f"could not write to {self.path}: {exc}", event) from exc
            raise
        if row is None:
            return value, None
        self._since_anchor += 1
        if self.anchor_path is not None and self._since_anchor >= self.anchor_every:
            self._write_anchor()
        return value, AuditEvent.from_row(row)

    async def commit_with_async(
        self, change: Callable[[sqlite3.Connection], tuple[T, EventDraft | None]]
    ) -> tuple[T, AuditEvent | None]:
        """Run ``change(conn)`` and append the row it returns in ONE write transaction.

        For state kept in a side table of this database (approvals, incidents):
        the change and its audit row are committed together or not at all, and
        ``BEGIN IMMEDIATE`` serialises every console on the file, so a check
        made inside ``change`` still holds when the row is written. ``change``
        runs on the audit thread; it may raise to roll everything back.

        Raises:
            AuditWriteError: nothing was committed (disk full, locked too long).
        """
        return await self._acall(self._commit_with, change)

    def commit_with(
        self, change: Callable[[sqlite3.Connection], tuple[T, EventDraft | None]]
    ) -> tuple[T, AuditEvent | None]:
        """``commit_with_async`` for the CLI and tests."""
        return self._call(self._commit_with, change)

    def read_with(self, query: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read-only ``query(conn)`` on the audit thread (side tables, joins)."""
        return self._call(lambda: query(self._require()[0]))

    async def read_with_async(self, query: Callable[[sqlite3.Connection], T]) -> T:
        return await self._acall(lambda: query(self._require()[0]))

    def write_fallback(self, event: Mapping[str, Any]) -> None:
        """Keep a row the database refused: append it to the fallback journal.

        Marks the log ``degraded`` (the runner then refuses new actions). If
        even the journal cannot be written, the row stays in ``unrecorded``.
        """
        self.degraded = True
        record = {k: v for k, v in event.items()}
        record.setdefault("db", str(self.path))
        try:
            append_private_line(self.fallback_path, json.dumps(record, sort_keys=True, default=str))
            log.error("audit row written to the fallback journal %s", self.fallback_path)
        except OSError:
            log.exception("fallback journal %s failed too", self.fallback_path)
            with self._lock:
                self.unrecorded.append(record)

    # ------------------------------------------------------------------ anchor

    def _write_anchor(self) -> None:
        if self.anchor_path is None:
            return
        conn, _ = self._require()
        head = conn.execute("SELECT id, hash, ts FROM events ORDER BY id DESC LIMIT 1").fetchone()
        self._since_anchor = 0
        if head is None:
            return
        try:
            append_private_line(self.anchor_path, f"{head['id']} {head['hash']} {head['ts']}")
            self.anchor_lag = False
        except OSError:
            log.exception("could not write the audit anchor %s", self.anchor_path)
            self.anchor_lag = True

    def write_anchor(self) -> None:
        """Append the chain head (``id hash ts``) to the anchor file, if one is set."""
        self._call(self._write_anchor)

    def head(self) -> AuditEvent | None:
        """The last row, or None for an empty log."""
        rows = self.page(1, 0, newest_first=True)
        return rows[0] if rows else None

    def verify(self) -> VerifyReport:
        """Verify this database's chain (and the anchor file, when one is set)."""
        return verify(self.path, self.anchor_path)

    # ------------------------------------------------------------------ closing

    def _close(self) -> None:
        if self._conn is None:
            return
        try:
            if not self.readonly and self.anchor_path is not None:
                self._write_anchor()
        finally:
            self._conn.close()
            self._conn = None
            self._db = None

    def close(self) -> None:
        """Anchor the head (when an anchor is set) and close. Idempotent."""
        if self._closed:
            return
        try:
            self._executor.submit(self._close).result()
        finally:
            self._closed = True
            self._executor.shutdown(wait=True)

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
