"""The audit database's schema: its named migrations and the one place they are applied.

Kept apart from the writer (``console.audit.AuditLog``) because the table
layout changes on its own schedule: a new table or index is one more entry in
``MIGRATIONS``, applied once per database file, in order (sqlite-utils style),
without touching how rows are written. The side tables (approvals, incidents)
are in ``console.audit_tables``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import sqlite_utils

from console.audit_model import utc_now_iso
from console.audit_tables import m003_approvals, m004_incidents


def _m001_events(db: sqlite_utils.Database) -> None:
    db.table("events").create(
        {
            "id": int,
            "ts": str,
            "operator": str,
            "ssh_client": str,
            "tty": str,
            "console_host": str,
            "pid": int,
            "action_uid": str,
            "action": str,
            "targets": str,
            "params": str,
            "phase": str,
            "outcome": str,
            "duration_ms": int,
            "detail": str,
            "prev_hash": str,
            "hash": str,
        },
        pk="id",
        not_null={"ts", "phase", "prev_hash", "hash"},
        if_not_exists=True,
    )
    db.table("events").create_index(["action_uid", "phase"], if_not_exists=True)
    db.table("events").create_index(["phase"], if_not_exists=True)


def _m002_leases(db: sqlite_utils.Database) -> None:
    db.table("leases").create(
        {"target": str, "holder": str, "acquired_at": float, "expires_at": float},
        pk="target",
        not_null={"holder", "expires_at"},
        if_not_exists=True,
    )


MIGRATIONS: tuple[tuple[str, Callable[[sqlite_utils.Database], None]], ...] = (
    ("001_events", _m001_events),
    ("002_leases", _m002_leases),
    ("003_approvals", m003_approvals),
    ("004_incidents", m004_incidents),
)


def migrate(conn: sqlite3.Connection, db: sqlite_utils.Database) -> None:
    """Apply the migrations this database has not had yet, in one write transaction."""
    conn.execute("BEGIN IMMEDIATE")  # two consoles starting at once migrate once
    try:
        db.table("_migrations").create(
            {"name": str, "applied_at": str}, pk="name", if_not_exists=True
        )
        done = {r["name"] for r in db.query("SELECT name FROM _migrations")}
        for name, fn in MIGRATIONS:
            if name not in done:
                fn(db)
                conn.execute(
                    "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                    (name, utc_now_iso()),
                )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
