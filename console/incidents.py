"""Incidents: a timeline of what was noted and done about a problem, and the hand-off.

An incident is opened on a target (a node, a service ...). Notes, actions,
runbook steps, approvals and hand-offs are entries in the audit database's
``incident_entries`` table, each one committed together with a hash-chained
audit row (phase ``incident``). The **timeline** merges those entries with
the audit rows about the incident's target during its window (actions run
through the ActionRunner, runbook and drill steps, approvals), so what was
done shows even when nobody wrote it down. The next on-call sees every open
incident and its last hand-off note when their console starts.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from console.audit import AuditEvent, AuditLog, EventDraft
from console.audit_model import utc_now_iso
from console.identity import Operator
from console.incident_timeline import EntryLine, entry_link, merge
from console.incident_timeline import TimelineItem as TimelineItem  # the screens read it here
from console.sanitize import clean

log = logging.getLogger(__name__)

EntryKind = Literal["note", "action", "runbook step", "approval", "hand-off"]
ENTRY_KINDS: tuple[str, ...] = get_args(EntryKind)
IncidentStatus = Literal["open", "closed"]

TIMELINE_LIMIT = 2000
"""Audit rows merged into one timeline at most (the newest; the export says when cut)."""


class IncidentError(Exception):
    """No such incident, a closed one, or an invalid entry; the message says which."""


@dataclass(frozen=True, slots=True)
class Incident:
    id: int
    title: str
    target: str
    """What it is about: a node, a service, a switch (matched against audit targets)."""
    status: IncidentStatus
    opened_by: str
    opened_at: str
    closed_by: str | None = None
    closed_at: str | None = None
    summary: str = ""
    last_handoff: IncidentEntry | None = None
    """The newest hand-off note, for the next on-call."""

    @property
    def open(self) -> bool:
        return self.status == "open"


@dataclass(frozen=True, slots=True)
class IncidentEntry:
    id: int
    incident_id: int
    ts: str
    operator: str
    kind: str
    text: str


def _md(text: str) -> str:
    """One Markdown table cell: no pipes, no newlines, no control characters."""
    return clean(text).replace("|", "\\|")


_INCIDENT_COLUMNS = (
    "id, title, target, status, opened_by, opened_at, closed_by, closed_at, summary, "
    "opened_event, closed_event"
)


def _next_event_id(conn: sqlite3.Connection) -> int:
    """The id of the audit row ``commit_with`` links next in this same transaction.

    Entries and the incident's window are ordered by audit row ids (the commit
    order of every console on the file), not by clocks.
    """
    return int(conn.execute("SELECT coalesce(max(id), 0) + 1 FROM events").fetchone()[0])


def _tables_missing(exc: sqlite3.OperationalError) -> bool:
    return "no such table" in str(exc)


class Incidents:
    """The incidents of the site (``session.incidents``); all SQL runs on the audit thread.

    Args:
        audit: the console's audit log (incidents live in its database).
        operator: who writes the entries.
    """

    def __init__(self, audit: AuditLog, operator: Operator) -> None:
        self.audit = audit
        self.operator = operator

    # ------------------------------------------------------------------ rows

    @staticmethod
    def _entry(row: sqlite3.Row) -> IncidentEntry:
        return IncidentEntry(
            row["id"],
            row["incident_id"],
            row["ts"],
            row["operator"],
            row["kind"],
            row["text"] or "",
        )

    def _incidents(
        self, conn: sqlite3.Connection, where: str, args: Sequence[Any]
    ) -> list[Incident]:
        try:
            rows = list(
                conn.execute(f"SELECT {_INCIDENT_COLUMNS} FROM incidents {where}", args)  # noqa: S608
            )
        except sqlite3.OperationalError as exc:
            if _tables_missing(exc):
                return []
            raise
        out = []
        for r in rows:
            hand = conn.execute(
                "SELECT * FROM incident_entries WHERE incident_id = ? AND kind = 'hand-off' "
                "ORDER BY id DESC LIMIT 1",
                (r["id"],),
            ).fetchone()
            out.append(
                Incident(
                    id=r["id"],
                    title=r["title"],
                    target=r["target"],
                    status=r["status"],
                    opened_by=r["opened_by"],
                    opened_at=r["opened_at"],
                    closed_by=r["closed_by"],
                    closed_at=r["closed_at"],
                    summary=r["summary"] or "",
                    last_handoff=None if hand is None else self._entry(hand),
                )
            )
        return out

    def _one(self, conn: sqlite3.Connection, incident_id: int) -> Incident:
        found = self._incidents(conn, "WHERE id = ?", (incident_id,))
        if not found:
            raise IncidentError(f"no incident #{incident_id}")
        return found[0]

    def _draft(self, incident: Incident, event: str, text: str, **params: Any) -> EventDraft:
        return EventDraft(
            phase="incident",
            action=f"incident.{event.replace(' ', '_').replace('-', '_')}",
            targets=(incident.target,),
            params={"incident_id": incident.id, "title": incident.title, **params},
            outcome=incident.status if event in ("open", "close") else "",
            detail=text[:4000],
            operator=self.operator,
        )

    # ------------------------------------------------------------------ opening, closing

    def _open(
        self, title: str, target: str
    ) -> Callable[[sqlite3.Connection], tuple[int, EventDraft]]:
        title, target = title.strip(), target.strip()
        if not title or not target:
            raise IncidentError("an incident needs a title and a target")

        def change(conn: sqlite3.Connection) -> tuple[int, EventDraft]:
            cur = conn.execute(
                "INSERT INTO incidents (title, target, status, opened_by, opened_at, summary, "
                "opened_event) VALUES (?, ?, 'open', ?, ?, '', ?)",
                (title, target, self.operator.user, utc_now_iso(), _next_event_id(conn)),
            )
            incident = self._one(conn, int(cur.lastrowid or 0))
            return incident.id, self._draft(incident, "open", title)

        return change

    def open_incident(self, title: str, target: str) -> Incident:
        """Open an incident on ``target`` (recorded, phase ``incident``)."""
        iid, _ = self.audit.commit_with(self._open(title, target))
        return self.get(iid)

    async def open_incident_async(self, title: str, target: str) -> Incident:
        iid, _ = await self.audit.commit_with_async(self._open(title, target))
        return await self.get_async(iid)

    def _close(
        self, incident_id: int, summary: str
    ) -> Callable[[sqlite3.Connection], tuple[int, EventDraft]]:
        summary = summary.strip()
        if not summary:
            raise IncidentError("closing an incident needs a summary (what fixed it)")

        def change(conn: sqlite3.Connection) -> tuple[int, EventDraft]:
            incident = self._one(conn, incident_id)
            if not incident.open:
                raise IncidentError(
                    f"incident #{incident_id} was already closed by {incident.closed_by}"
                )
            conn.execute(
                "UPDATE incidents SET status = 'closed', closed_by = ?, closed_at = ?, "
                "summary = ?, closed_event = ? WHERE id = ?",
                (self.operator.user, utc_now_iso(), summary, _next_event_id(conn), incident_id),
            )
            return incident_id, self._draft(self._one(conn, incident_id), "close", summary)

        return change

    def close(self, incident_id: int, summary: str) -> Incident:
        """Close an open incident with a summary.

        Raises:
            IncidentError: no such incident, already closed, or no summary.
        """
        self.audit.commit_with(self._close(incident_id, summary))
        return self.get(incident_id)

    async def close_async(self, incident_id: int, summary: str) -> Incident:
        await self.audit.commit_with_async(self._close(incident_id, summary))
        return await self.get_async(incident_id)

    # ------------------------------------------------------------------ entries

    def _add(
        self, incident_id: int, kind: str, text: str, about: dict[str, Any] | None = None
    ) -> Callable[[sqlite3.Connection], tuple[IncidentEntry, EventDraft]]:
        text = text.strip()
        if kind not in ENTRY_KINDS:
            raise IncidentError(f"unknown entry kind {kind!r} (one of {', '.join(ENTRY_KINDS)})")
        if not text:
            raise IncidentError(f"an empty {kind} says nothing")

        def change(conn: sqlite3.Connection) -> tuple[IncidentEntry, EventDraft]:
            incident = self._one(conn, incident_id)
            if not incident.open:
                raise IncidentError(f"incident #{incident_id} is closed")
            audit_id = _next_event_id(conn)
            cur = conn.execute(
                "INSERT INTO incident_entries (incident_id, ts, operator, kind, text, audit_id) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (incident_id, utc_now_iso(), self.operator.user, kind, text, audit_id),
            )
            row = conn.execute(
                "SELECT * FROM incident_entries WHERE id = ?", (cur.lastrowid,)
            ).fetchone()
            draft = self._draft(incident, kind, text, kind=kind, **(about or {}))
            return self._entry(row), draft

        return change

    async def add_entry(
        self,
        incident_id: int,
        kind: str,
        text: str,
        *,
        about_event: int | None = None,
        about_action: str = "",
    ) -> IncidentEntry:
        """Add a note, action, runbook step, approval or hand-off to an open incident.

        ``about_event`` (an audit row id) or ``about_action`` (an action's uid) say
        which recorded event the entry narrates: kept on the entry's own audit row,
        so the timeline shows that event once when it merges the row in.

        Raises:
            IncidentError: unknown kind, empty text, no such incident or a closed one.
        """
        about: dict[str, Any] = {}
        if about_event is not None:
            about["about_event"] = int(about_event)
        if about_action:
            about["about_action"] = str(about_action)
        entry, _ = await self.audit.commit_with_async(self._add(incident_id, kind, text, about))
        return entry

    def handoff(self, incident_id: int, to_operator_note: str) -> IncidentEntry:
        """Hand the incident to the next on-call: what they need to know, in one note."""
        entry, _ = self.audit.commit_with(self._add(incident_id, "hand-off", to_operator_note))
        return entry

    async def handoff_async(self, incident_id: int, to_operator_note: str) -> IncidentEntry:
        return await self.add_entry(incident_id, "hand-off", to_operator_note)

    # ------------------------------------------------------------------ reading

    def get(self, incident_id: int) -> Incident:
        """Raises: IncidentError: no such incident."""
        return self.audit.read_with(lambda conn: self._one(conn, incident_id))

    async def get_async(self, incident_id: int) -> Incident:
        return await self.audit.read_with_async(lambda conn: self._one(conn, incident_id))

    def _list(self, status: IncidentStatus | None, limit: int) -> Callable[..., list[Incident]]:
        where = "" if status is None else "WHERE status = ?"
        args: list[Any] = [] if status is None else [status]
        return lambda conn: self._incidents(
            conn, f"{where} ORDER BY id DESC LIMIT ?", [*args, limit]
        )

    def list_incidents(
        self, status: IncidentStatus | None = None, limit: int = 200
    ) -> list[Incident]:
        """Incidents, newest first (only ``open`` or ``closed`` ones when given)."""
        return self.audit.read_with(self._list(status, limit))

    async def list_incidents_async(
        self, status: IncidentStatus | None = None, limit: int = 200
    ) -> list[Incident]:
        return await self.audit.read_with_async(self._list(status, limit))

    def current_for(self, target: str) -> Incident | None:
        """The newest open incident on ``target``, or None (a runbook joins it)."""
        found = self.audit.read_with(
            lambda conn: self._incidents(
                conn, "WHERE status = 'open' AND target = ? ORDER BY id DESC LIMIT 1", [target]
            )
        )
        return found[0] if found else None

    # ------------------------------------------------------------------ timeline

    def _timeline(self, conn: sqlite3.Connection, incident_id: int) -> list[TimelineItem]:
        incident, (opened, closed) = self._one(conn, incident_id), self._window(conn, incident_id)
        # (audit row id, item): commit order across every console on the file.
        items: list[tuple[int, TimelineItem]] = [
            (opened, TimelineItem(incident.opened_at, "open", incident.opened_by, incident.title,
                                  "incident", 0)),
        ]  # fmt: skip
        # Each entry with what it narrates (an audit row id, or an action's uid).
        entries: list[EntryLine] = []
        for row in conn.execute(
            "SELECT ie.*, ev.params AS own_params FROM incident_entries ie "
            "LEFT JOIN events ev ON ev.id = ie.audit_id "
            "WHERE ie.incident_id = ? ORDER BY ie.id",
            (incident_id,),
        ):
            e = self._entry(row)
            seq = row["audit_id"] or opened
            item = TimelineItem(e.ts, e.kind, e.operator, e.text, "incident", e.id)
            entries.append(EntryLine(seq, item, *entry_link(row["own_params"])))
        # The record about the target while the incident was open: actions, runbook
        # and drill steps, approvals (also those tied to the incident by id). The
        # incident's own rows are the entries above, so incident.* rows are left out.
        t = incident.target
        rows = conn.execute(
            "SELECT * FROM events e WHERE e.id > ? AND (? IS NULL OR e.id < ?) "
            "AND e.action NOT LIKE 'incident.%' AND ("
            " EXISTS (SELECT 1 FROM json_each(e.targets) j WHERE j.value = ? "
            "   OR substr(j.value, 1, length(?) + 1) IN (? || ':', ? || '/'))"
            " OR (e.phase = 'approval' AND json_extract(e.params, '$.incident_id') = ?)"
            ") ORDER BY e.id DESC LIMIT ?",
            (opened, closed, closed, t, t, t, t, incident_id, TIMELINE_LIMIT),
        ).fetchall()
        # An entry about a row merged in here is that row's event: one line, not two.
        items.extend(merge(entries, (AuditEvent.from_row(row) for row in rows)))
        if incident.closed_at:
            close = TimelineItem(
                incident.closed_at,
                "close",
                incident.closed_by or "",
                incident.summary,
                "incident",
                0,
            )
            items.append((closed if closed is not None else 2**62, close))
        items.sort(key=lambda pair: pair[0])
        return [item for _, item in items]

    @staticmethod
    def _window(conn: sqlite3.Connection, incident_id: int) -> tuple[int, int | None]:
        """The audit row ids that opened and closed the incident (None: still open)."""
        row = conn.execute(
            "SELECT opened_event, closed_event FROM incidents WHERE id = ?", (incident_id,)
        ).fetchone()
        return int(row[0] or 0), row[1]

    def timeline(self, incident_id: int) -> list[TimelineItem]:
        """The incident's entries merged with the audit rows about its target, oldest first.

        Raises:
            IncidentError: no such incident.
        """
        return self.audit.read_with(lambda conn: self._timeline(conn, incident_id))

    async def timeline_async(self, incident_id: int) -> list[TimelineItem]:
        return await self.audit.read_with_async(lambda conn: self._timeline(conn, incident_id))

    # ------------------------------------------------------------------ export, hand-over

    def export_markdown(self, incident_id: int) -> str:
        """The incident and its timeline as Markdown (for the postmortem or the ticket)."""
        incident = self.get(incident_id)
        return render_markdown(incident, self.timeline(incident_id))

    async def export_markdown_async(self, incident_id: int) -> str:
        incident = await self.get_async(incident_id)
        return render_markdown(incident, await self.timeline_async(incident_id))

    def startup_notices(self) -> list[str]:
        """One line per open incident for the next on-call: target, title, last hand-off."""
        return [handoff_line(i) for i in reversed(self.list_incidents("open"))]


def handoff_line(incident: Incident) -> str:
    """``open incident #3 on gpu007: XID 79 — hand-off from alice at 14:02: ...``."""
    text = f"open incident #{incident.id} on {incident.target}: {incident.title}"
    hand = incident.last_handoff
    if hand is None:
        return text + f" (opened by {incident.opened_by}, no hand-off note yet)"
    return (
        text + f" — hand-off from {hand.operator} at {hand.ts[:16].replace('T', ' ')}: {hand.text}"
    )


def render_markdown(incident: Incident, timeline: Sequence[TimelineItem]) -> str:
    lines = [
        f"# Incident #{incident.id}: {clean(incident.title)}",
        "",
        f"- Target: `{clean(incident.target)}`",
        f"- Status: {incident.status}",
        f"- Opened: {incident.opened_at} by {incident.opened_by}",
    ]
    if incident.closed_at:
        lines.append(f"- Closed: {incident.closed_at} by {incident.closed_by}")
        lines.append(f"- Summary: {clean(incident.summary)}")
    if incident.last_handoff is not None:
        h = incident.last_handoff
        lines.append(f"- Last hand-off: {h.ts} by {h.operator}: {clean(h.text)}")
    lines += [
        "",
        "## Timeline",
        "",
        "| time (UTC) | kind | who | what |",
        "| --- | --- | --- | --- |",
    ]
    for item in timeline:
        lines.append(f"| {item.ts} | {item.kind} | {_md(item.operator)} | {_md(item.text)} |")
    if sum(1 for i in timeline if i.source == "audit") >= TIMELINE_LIMIT:
        lines += ["", f"(only the newest {TIMELINE_LIMIT} audit rows are shown; see `dcc audit`)"]
    lines.append("")
    return "\n".join(lines)
