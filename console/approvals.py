"""The two-person rule: a step that needs a second operator's approval.

One console asks (``request``), another console on the same audit database,
run by a *different* OS user, approves or rejects (``decide``); the asking
console waits for the answer (``wait``) by polling the database, never
blocking the event loop. Requests live in the audit database's ``approvals``
table and every request, decision, withdrawal, expiry and refusal is also a
hash-chained audit row (phase ``approval``), written in the same transaction
as the table change: they cannot disagree.

A decision is made once: it runs inside ``BEGIN IMMEDIATE`` with the check
that the request is still pending, so of two approvers racing one wins and
the other is told who did. A request not decided in time expires.

Who is who comes from ``console.identity``: the OS user of each console. A
console cannot choose another identity from the command line; only code
(tests) passes one to ``start_session``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from console.audit import AuditLog, EventDraft
from console.audit_model import utc_now_iso
from console.identity import Operator
from console.plugin import Role

log = logging.getLogger(__name__)

ApprovalStatus = Literal["pending", "approved", "rejected", "withdrawn", "expired"]

DEFAULT_EXPIRE_S = 900.0
"""A request nobody decided within 15 minutes expires (asking again is cheap)."""
POLL_S = 0.25
"""How often ``wait`` looks at the database (a one-row read on the audit thread)."""


class ApprovalRefused(Exception):
    """The approval, decision or withdrawal is not allowed; the message says why."""


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """One request for a second operator's approval, as stored."""

    id: int
    subject: str
    """What is to be approved, one line (``gpu.reset gpu007 GPU3``)."""
    detail: str
    """Why, and what happens on approval (the preview)."""
    requested_by: str
    """OS user who asked."""
    requested_session: str
    """The asking console (``user@host:pid:nonce``)."""
    requested_at: str
    status: ApprovalStatus
    decided_by: str | None
    decided_at: str | None
    note: str
    """The decider's note (or the requester's reason when withdrawn)."""
    incident_id: int | None
    targets: tuple[str, ...] = ()
    expires_at: float | None = None
    """Seconds since the epoch after which nobody may decide it."""

    @property
    def pending(self) -> bool:
        return self.status == "pending"

    def describe(self) -> str:
        """``#3 gpu.reset gpu007 — asked by alice`` for lists and notifications."""
        return f"#{self.id} {self.subject} — asked by {self.requested_by}"


_COLUMNS = (
    "id, subject, detail, targets, requested_by, requested_session, requested_at, expires_at, "
    "status, decided_by, decided_session, decided_at, note, incident_id"
)


def _iso(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def _request(row: sqlite3.Row, now: float) -> ApprovalRequest:
    status: ApprovalStatus = row["status"]
    if status == "pending" and row["expires_at"] is not None and row["expires_at"] <= now:
        status = "expired"  # due; the expiry row is written by the next writer that looks
    try:
        targets = tuple(str(t) for t in json.loads(row["targets"] or "[]"))
    except ValueError:
        targets = ()
    return ApprovalRequest(
        id=row["id"],
        subject=row["subject"],
        detail=row["detail"] or "",
        requested_by=row["requested_by"],
        requested_session=row["requested_session"] or "",
        requested_at=row["requested_at"],
        status=status,
        decided_by=row["decided_by"],
        decided_at=row["decided_at"],
        note=row["note"] or "",
        incident_id=row["incident_id"],
        targets=targets,
        expires_at=row["expires_at"],
    )


def _select(conn: sqlite3.Connection, where: str, args: Sequence[Any]) -> list[sqlite3.Row]:
    try:
        return list(conn.execute(f"SELECT {_COLUMNS} FROM approvals {where}", args))  # noqa: S608
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):  # a database no console has migrated yet
            return []
        raise


def _on_record(conn: sqlite3.Connection, request_id: int, decided_by: str | None) -> bool:
    """True if the chain holds the approval row that an ``approved`` status claims."""
    row = conn.execute(
        "SELECT 1 FROM events WHERE phase = 'approval' AND action = 'approval.approve' "
        "AND outcome = 'approved' AND operator = ? "
        "AND json_extract(params, '$.request_id') = ? LIMIT 1",
        (decided_by, request_id),
    ).fetchone()
    return row is not None


class Approvals:
    """The two-person rule for one console (``session.approvals``).

    Args:
        audit: the console's audit log (the requests live in its database).
        operator: who this console acts for.
        role: the operator's role; a viewer may not decide.
        read_only: a read-only console may not decide.
        expire_after_s: how long a request may wait for a decision.
        poll_s: how often ``wait`` reads the database.
        clock: wall clock (seconds since the epoch); tests move it.
    """

    def __init__(
        self,
        audit: AuditLog,
        operator: Operator,
        *,
        role: Role = Role.OPERATOR,
        read_only: bool = False,
        expire_after_s: float = DEFAULT_EXPIRE_S,
        poll_s: float = POLL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.audit = audit
        self.operator = operator
        self.role = role
        self.read_only = read_only
        self.expire_after_s = expire_after_s
        self.poll_s = poll_s
        self.clock = clock
        self.session_id = (
            f"{operator.user}@{operator.console_host}:{operator.pid}:{uuid.uuid4().hex[:8]}"
        )
        """This console's id on the requests it makes (one OS user may run several)."""

    # ------------------------------------------------------------------ audit rows

    def _draft(
        self, event: str, req: ApprovalRequest | sqlite3.Row, outcome: str, detail: str
    ) -> EventDraft:
        def get(name: str) -> Any:
            return req[name] if isinstance(req, sqlite3.Row) else getattr(req, name)

        targets = get("targets")
        if isinstance(targets, str):
            targets = json.loads(targets or "[]")
        return EventDraft(
            phase="approval",
            action=f"approval.{event}",
            targets=tuple(str(t) for t in targets),
            params={
                "request_id": get("id"),
                "subject": get("subject"),
                "requested_by": get("requested_by"),
                "requested_session": get("requested_session"),
                "incident_id": get("incident_id"),
                "session": self.session_id,
            },
            outcome=outcome,
            detail=detail[:2000],
            operator=self.operator,
        )

    # ------------------------------------------------------------------ asking

    async def request(
        self,
        subject: str,
        detail: str,
        *,
        incident_id: int | None = None,
        targets: Sequence[str] = (),
        expire_after_s: float | None = None,
    ) -> ApprovalRequest:
        """Ask a second operator to approve ``subject``; returns the pending request.

        Raises:
            ApprovalRefused: an empty subject.
            AuditWriteError: nothing was recorded (the step must not proceed).
        """
        subject = subject.strip()
        if not subject:
            raise ApprovalRefused("an approval request needs a subject")
        now = self.clock()
        ttl = self.expire_after_s if expire_after_s is None else expire_after_s
        ts = utc_now_iso()
        target_list = [str(t) for t in targets]

        def change(conn: sqlite3.Connection) -> tuple[int, EventDraft]:
            cur = conn.execute(
                "INSERT INTO approvals (subject, detail, targets, requested_by, "
                "requested_session, requested_at, expires_at, status, note, incident_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', '', ?)",
                (
                    subject,
                    detail,
                    json.dumps(target_list),
                    self.operator.user,
                    self.session_id,
                    ts,
                    now + ttl,
                    incident_id,
                ),
            )
            rid = int(cur.lastrowid or 0)
            row = _select(conn, "WHERE id = ?", (rid,))[0]
            detail_text = f"{detail} (expires {_iso(now + ttl)})" if detail else ""
            return rid, self._draft("request", row, "pending", detail_text)

        rid, _ = await self.audit.commit_with_async(change)
        log.info("approval #%s requested by %s: %s", rid, self.operator.user, subject)
        return await self.get_async(rid)

    async def withdraw(self, request_id: int, why: str) -> ApprovalRequest:
        """The requester takes a pending request back (the step will not run).

        Raises:
            ApprovalRefused: not pending any more, or asked by someone else.
        """

        def change(conn: sqlite3.Connection) -> tuple[str | None, EventDraft | None]:
            row = self._row(conn, request_id)
            if row["status"] != "pending":
                return self._not_pending(row), None
            if row["requested_by"] != self.operator.user:
                return (
                    f"request #{request_id} was asked by {row['requested_by']}: only they may "
                    "withdraw it (reject it instead)",
                    None,
                )
            conn.execute(
                "UPDATE approvals SET status = 'withdrawn', decided_by = ?, decided_session = ?, "
                "decided_at = ?, note = ? WHERE id = ? AND status = 'pending'",
                (self.operator.user, self.session_id, utc_now_iso(), why, request_id),
            )
            return None, self._draft("withdraw", row, "withdrawn", why)

        await self.expire_due()
        problem, _ = await self.audit.commit_with_async(change)
        if problem:
            raise ApprovalRefused(problem)
        return await self.get_async(request_id)

    # On timeout ``wait`` returns the pending request rather than raising: hence its own timeout.
    async def wait(
        self,
        request_id: int,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> ApprovalRequest:
        """Return the request once it is no longer pending (approved, rejected, ...).

        With ``timeout`` (seconds), returns the still-pending request when it
        runs out: the caller decides whether to keep waiting or withdraw.
        Cancelling the wait leaves the request pending (withdraw it to stop it).
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            await self.expire_due()
            req = await self.get_async(request_id)
            if not req.pending:
                return req
            if deadline is not None and loop.time() >= deadline:
                return req
            pause = self.poll_s if deadline is None else min(self.poll_s, deadline - loop.time())
            await asyncio.sleep(max(pause, 0.0))

    # ------------------------------------------------------------------ deciding

    def refusal(self, req: ApprovalRequest) -> str | None:
        """Why this console may not decide ``req`` (None: it may); for screens and ``decide``."""
        if self.read_only:
            return "the console is read-only: it may not decide approvals"
        if self.role < Role.OPERATOR:
            return (
                f"{self.operator.user} is a viewer: only an operator or admin may decide approvals"
            )
        if req.requested_by == self.operator.user:
            return (
                f"request #{req.id} was asked by {req.requested_by}: a second operator, "
                "from their own console, must decide it"
            )
        return None

    async def decide(self, request_id: int, approve: bool, note: str) -> ApprovalRequest:
        """Approve or reject a pending request made by another operator.

        The refusal of a decision is recorded too (phase ``approval``, outcome
        ``refused``).

        Raises:
            ApprovalRefused: the requesting operator, a viewer or a read-only
                console; a request already decided, withdrawn or expired (the
                message names who decided it); a rejection without a note.
        """
        note = note.strip()
        verb = "approve" if approve else "reject"

        def change(conn: sqlite3.Connection) -> tuple[str | None, EventDraft | None]:
            row = self._row(conn, request_id)
            now = self.clock()
            if row["status"] == "pending" and row["expires_at"] <= now:
                self._mark_expired(conn, row)
                return self._not_pending(self._row(conn, request_id)), self._draft(
                    "expire", row, "expired", "no decision in time"
                )
            req = _request(row, now)
            problem = self.refusal(req)
            if problem is None and row["status"] != "pending":
                problem = self._not_pending(row)
            if problem is None and not approve and not note:
                problem = "say why you reject it (the note goes on the record)"
            if problem is not None:
                return problem, self._draft("refused", row, "refused", f"{verb}: {problem}")
            status = "approved" if approve else "rejected"
            conn.execute(
                "UPDATE approvals SET status = ?, decided_by = ?, decided_session = ?, "
                "decided_at = ?, note = ? WHERE id = ? AND status = 'pending'",
                (status, self.operator.user, self.session_id, utc_now_iso(), note, request_id),
            )
            return None, self._draft(verb, row, status, note)

        problem, _ = await self.audit.commit_with_async(change)
        if problem:
            raise ApprovalRefused(problem)
        req = await self.get_async(request_id)
        log.info("approval #%s %s by %s", request_id, req.status, self.operator.user)
        return req

    # ------------------------------------------------------------------ expiry

    def _mark_expired(self, conn: sqlite3.Connection, row: sqlite3.Row) -> None:
        conn.execute(
            "UPDATE approvals SET status = 'expired', decided_at = ?, "
            "note = 'no decision in time' WHERE id = ? AND status = 'pending'",
            (utc_now_iso(), row["id"]),
        )

    async def expire_due(self) -> list[int]:
        """Record the expiry of every pending request past its time; returns their ids."""
        if self.audit.readonly:
            return []
        now = self.clock()
        where = "WHERE status = 'pending' AND expires_at <= ?"
        due = await self.audit.read_with_async(
            lambda conn: [r["id"] for r in _select(conn, where, [now])]
        )
        done = []
        for rid in due:

            def change(conn: sqlite3.Connection, rid: int = rid) -> tuple[bool, EventDraft | None]:
                row = self._row(conn, rid)
                if row["status"] != "pending":  # another console recorded it first
                    return False, None
                self._mark_expired(conn, row)
                return True, self._draft(
                    "expire", row, "expired", f"no decision by {_iso(row['expires_at'])}"
                )

            expired, _ = await self.audit.commit_with_async(change)
            if expired:
                done.append(rid)
        return done

    # ------------------------------------------------------------------ reading

    @staticmethod
    def _row(conn: sqlite3.Connection, request_id: int) -> sqlite3.Row:
        rows = _select(conn, "WHERE id = ?", (request_id,))
        if not rows:
            raise ApprovalRefused(f"no approval request #{request_id}")
        return rows[0]

    @staticmethod
    def _not_pending(row: sqlite3.Row) -> str:
        status = row["status"]
        if status in ("approved", "rejected"):
            return (
                f"request #{row['id']} was already {status} by {row['decided_by']} "
                f"at {row['decided_at']}"
            )
        if status == "withdrawn":
            return f"request #{row['id']} was withdrawn by {row['decided_by']}"
        return f"request #{row['id']} expired without a decision"

    def _load(self, where: str, args: Sequence[Any]) -> Callable[[sqlite3.Connection], Any]:
        def query(conn: sqlite3.Connection) -> list[ApprovalRequest]:
            now = self.clock()
            out = []
            for row in _select(conn, where, args):
                req = _request(row, now)
                if req.status == "approved" and not _on_record(conn, req.id, req.decided_by):
                    # Someone edited the table outside the console: the chain has no
                    # approval by that operator, so it does not count.
                    log.error("approval #%s is approved in the table only", req.id)
                    req = replace(
                        req,
                        status="rejected",
                        note="not on the audit record: the approvals table was changed "
                        "outside the console",
                    )
                out.append(req)
            return out

        return query

    def get(self, request_id: int) -> ApprovalRequest:
        """One request (its status as of now).

        Raises:
            ApprovalRefused: no such request.
        """
        found: list[ApprovalRequest] = self.audit.read_with(
            self._load("WHERE id = ?", (request_id,))
        )
        if not found:
            raise ApprovalRefused(f"no approval request #{request_id}")
        return found[0]

    async def get_async(self, request_id: int) -> ApprovalRequest:
        found: list[ApprovalRequest] = await self.audit.read_with_async(
            self._load("WHERE id = ?", (request_id,))
        )
        if not found:
            raise ApprovalRefused(f"no approval request #{request_id}")
        return found[0]

    def _pending_where(self) -> tuple[str, list[Any]]:
        return "WHERE status = 'pending' AND expires_at > ? ORDER BY id", [self.clock()]

    def pending(self) -> list[ApprovalRequest]:
        """Requests still waiting for a decision, oldest first (expired ones excluded)."""
        where, args = self._pending_where()
        found: list[ApprovalRequest] = self.audit.read_with(self._load(where, args))
        return found

    async def pending_async(self) -> list[ApprovalRequest]:
        where, args = self._pending_where()
        found: list[ApprovalRequest] = await self.audit.read_with_async(self._load(where, args))
        return found

    def recent(self, limit: int = 50) -> list[ApprovalRequest]:
        """The newest requests, any status (``dcc approvals list``)."""
        found: list[ApprovalRequest] = self.audit.read_with(
            self._load("ORDER BY id DESC LIMIT ?", (int(limit),))
        )
        return found

    def for_incident(self, incident_id: int) -> list[ApprovalRequest]:
        found: list[ApprovalRequest] = self.audit.read_with(
            self._load("WHERE incident_id = ? ORDER BY id", (incident_id,))
        )
        return found
