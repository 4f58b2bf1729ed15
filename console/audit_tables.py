"""Side tables of the audit database: two-person approvals and incidents.

They are state, not the record: every change to them is committed together
with a hash-chained row in ``events`` (``AuditLog.commit_with_async``), so
the chain says who requested, decided, noted and handed off what, even if
someone later edits these tables by hand. Applied through the audit log's
named migrations (``console.audit_schema.MIGRATIONS``), once each, in order.
"""

from __future__ import annotations

import sqlite_utils


def m003_approvals(db: sqlite_utils.Database) -> None:
    db.table("approvals").create(
        {
            "id": int,
            "subject": str,
            "detail": str,
            "targets": str,
            "requested_by": str,
            "requested_session": str,
            "requested_at": str,
            "expires_at": float,
            "status": str,
            "decided_by": str,
            "decided_session": str,
            "decided_at": str,
            "note": str,
            "incident_id": int,
        },
        pk="id",
        not_null={"subject", "requested_by", "requested_at", "status", "expires_at"},
        if_not_exists=True,
    )
    db.table("approvals").create_index(["status"], if_not_exists=True)


def m004_incidents(db: sqlite_utils.Database) -> None:
    db.table("incidents").create(
        {
            "id": int,
            "title": str,
            "target": str,
            "status": str,
            "opened_by": str,
            "opened_at": str,
            "closed_by": str,
            "closed_at": str,
            "summary": str,
            "opened_event": int,
            "closed_event": int,
        },
        pk="id",
        not_null={"title", "target", "status", "opened_by", "opened_at"},
        if_not_exists=True,
    )
    db.table("incidents").create_index(["status"], if_not_exists=True)
    db.table("incident_entries").create(
        {
            "id": int,
            "incident_id": int,
            "ts": str,
            "operator": str,
            "kind": str,
            "text": str,
            "audit_id": int,
        },
        pk="id",
        not_null={"incident_id", "ts", "operator", "kind"},
        if_not_exists=True,
    )
    db.table("incident_entries").create_index(["incident_id", "id"], if_not_exists=True)
