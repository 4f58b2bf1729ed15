"""`w` then `i`: open incidents, the selected one's timeline, and pending approvals.

Keyboard only, 80x24. Notes, hand-offs and closing go through
``session.incidents`` and approving or rejecting through
``session.approvals``: each is a chained audit row. The lists refresh every
second, so a request made on another console shows up here by itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from console.plugin import Severity
from console.sanitize import clean
from console.screens.prompt import Field, PromptScreen
from console.widgets.line_table import Column, LineTable, Row

if TYPE_CHECKING:  # pragma: no cover
    from console.app import DcConsoleApp
    from console.approvals import ApprovalRequest, Approvals
    from console.incidents import Incident, Incidents, TimelineItem

log = logging.getLogger(__name__)

REFRESH_S = 1.0


def _hhmm(ts: str) -> str:
    return ts[11:19] if len(ts) >= 19 else ts


def incident_row(i: Incident) -> Row:
    hand = i.last_handoff
    what = i.title + (f" · hand-off {hand.operator}: {hand.text}" if hand else "")
    return Row(
        key=str(i.id),
        cells=(f"#{i.id}", i.target, i.opened_at[5:16].replace("T", " "), i.opened_by, what),
        severity=Severity.WARNING if i.open else Severity.OK,
    )


def timeline_row(n: int, item: TimelineItem) -> Row:
    return Row(key=str(n), cells=(_hhmm(item.ts), item.kind, item.operator, clean(item.text)))


def approval_row(r: ApprovalRequest, now: float) -> Row:
    left = "" if r.expires_at is None else f"{max(0, int(r.expires_at - now)) // 60}m"
    incident = f" (incident #{r.incident_id})" if r.incident_id is not None else ""
    return Row(
        key=str(r.id),
        cells=(f"#{r.id}", r.requested_by, left, f"{r.subject}{incident}"),
        severity=Severity.WARNING,
    )


class IncidentsScreen(Screen[None]):
    """Incidents and approvals of the site (every console on the audit database)."""

    DEFAULT_CSS = """
    IncidentsScreen #inc-title { height: 1; text-style: bold; }
    IncidentsScreen .section { height: 1; color: $text-muted; }
    IncidentsScreen #incidents { height: 6; }
    IncidentsScreen #timeline { height: 1fr; }
    IncidentsScreen #approvals { height: 4; }
    """
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("n", "note", "Note"),
        Binding("h", "handoff", "Hand off"),
        Binding("c", "close_incident", "Close"),
        Binding("e", "export", "Export"),
        Binding("o", "open_incident", "Open"),
        Binding("y", "decide(True)", "Approve"),
        Binding("x", "decide(False)", "Reject"),
        Binding("t", "toggle_all", "Closed too", show=False),
    ]

    def __init__(self, incidents: Incidents, approvals: Approvals, export_dir: Path) -> None:
        super().__init__()
        self.incidents = incidents
        self.approvals = approvals
        self.export_dir = export_dir
        self.show_closed = False
        self.listed: dict[int, Incident] = {}
        self.pending: dict[int, ApprovalRequest] = {}
        self.shown_timeline: int | None = None

    def compose(self) -> ComposeResult:
        yield Static("Incidents", id="inc-title")
        self.incident_table = LineTable(
            [Column("#", 5), Column("target", 12), Column("opened", 11), Column("by", 8),
             Column("title · last hand-off", 0)],
            id="incidents",
        )  # fmt: skip
        yield self.incident_table
        yield Static("timeline", id="timeline-title", classes="section")
        self.timeline_table = LineTable(
            [Column("time", 8), Column("kind", 12), Column("who", 8), Column("what", 0)],
            id="timeline",
        )
        yield self.timeline_table
        yield Static("approvals pending: y approve · x reject", classes="section")
        self.approval_table = LineTable(
            [Column("#", 5), Column("asked by", 8), Column("left", 5), Column("subject", 0)],
            id="approvals",
            show_header=False,
        )
        yield self.approval_table
        yield Footer()

    def on_mount(self) -> None:
        self.incident_table.focus()
        self.refresh_lists()
        self.set_interval(REFRESH_S, self.refresh_lists)

    # ------------------------------------------------------------------ loading

    @work(exclusive=True, group="incidents-refresh")
    async def refresh_lists(self) -> None:
        try:
            listed = await self.incidents.list_incidents_async(None if self.show_closed else "open")
            pending = await self.approvals.pending_async()
        except Exception as exc:
            log.exception("reading incidents failed")
            self.query_one("#inc-title", Static).update(Text(f"Incidents: unreadable: {exc}"))
            return
        self.listed = {i.id: i for i in listed}
        self.pending = {r.id: r for r in pending}
        self.incident_table.set_rows([incident_row(i) for i in listed])
        now = time.time()
        self.approval_table.set_rows([approval_row(r, now) for r in pending])
        n_open = sum(1 for i in listed if i.open)
        self.query_one("#inc-title", Static).update(
            Text(
                f"Incidents · {n_open} open · {len(pending)} approval"
                f"{'s' if len(pending) != 1 else ''} pending"
                + (" · closed shown (t)" if self.show_closed else "")
            )
        )
        await self._load_timeline()

    async def _load_timeline(self) -> None:
        incident = self.selected_incident()
        title = self.query_one("#timeline-title", Static)
        if incident is None:
            self.shown_timeline = None
            self.timeline_table.set_rows([])
            title.update(Text("timeline: no open incident (o opens one)"))
            return
        items = await self.incidents.timeline_async(incident.id)
        title.update(
            Text(f"timeline #{incident.id} ({incident.status}) · n note · h hand-off · "
                 "c close · e export")
        )  # fmt: skip
        follow = self.shown_timeline != incident.id
        self.shown_timeline = incident.id
        self.timeline_table.set_rows([timeline_row(n, it) for n, it in enumerate(items)])
        if follow and items:
            self.timeline_table.action_jump(-1)  # the newest line, as a log would

    def on_line_table_row_highlighted(self, event: LineTable.RowHighlighted) -> None:
        if event.table is self.incident_table and self.shown_timeline != int(event.row.key):
            self.refresh_lists()

    def selected_incident(self) -> Incident | None:
        row = self.incident_table.current_row
        return None if row is None else self.listed.get(int(row.key))

    def selected_request(self) -> ApprovalRequest | None:
        row = self.approval_table.current_row
        return None if row is None else self.pending.get(int(row.key))

    def action_toggle_all(self) -> None:
        self.show_closed = not self.show_closed
        self.refresh_lists()

    # ------------------------------------------------------------------ incident actions

    async def _ask(self, title: str, *fields: Field, hint: str = "") -> list[str] | None:
        return await self.app.push_screen_wait(PromptScreen(title, fields, hint))

    async def _do(self, what: str, coro: Awaitable[object]) -> bool:
        from console.approvals import ApprovalRefused
        from console.audit import AuditError
        from console.incidents import IncidentError

        try:
            await coro
        except (IncidentError, ApprovalRefused, AuditError) as exc:
            self.notify(str(exc), severity="error", title=what, timeout=10)
            return False
        self.refresh_lists()
        return True

    @work(group="incidents-action")
    async def action_open_incident(self) -> None:
        values = await self._ask(
            "Open an incident",
            Field("target (node, service, switch ...)", placeholder="gpu007"),
            Field("title", placeholder="GPU3 fell off the bus (XID 79)"),
        )
        if values is not None:
            await self._do("open", self.incidents.open_incident_async(values[1], values[0]))

    @work(group="incidents-action")
    async def action_note(self) -> None:
        incident = self.selected_incident()
        if incident is None:
            self.notify("no incident selected", severity="warning")
            return
        values = await self._ask(f"Note on incident #{incident.id}", Field("note"))
        if values is not None:
            await self._do("note", self.incidents.add_entry(incident.id, "note", values[0]))

    @work(group="incidents-action")
    async def action_handoff(self) -> None:
        incident = self.selected_incident()
        if incident is None:
            self.notify("no incident selected", severity="warning")
            return
        values = await self._ask(
            f"Hand off incident #{incident.id}",
            Field("for the next on-call: state, what is pending, what to watch"),
            hint="Shown to whoever opens a console next, and kept in the timeline.",
        )
        if values is not None and await self._do(
            "hand-off", self.incidents.handoff_async(incident.id, values[0])
        ):
            self.notify(f"incident #{incident.id} handed off", title="hand-off")

    @work(group="incidents-action")
    async def action_close_incident(self) -> None:
        incident = self.selected_incident()
        if incident is None or not incident.open:
            self.notify("select an open incident to close", severity="warning")
            return
        values = await self._ask(f"Close incident #{incident.id}", Field("summary: what fixed it"))
        if values is not None:
            await self._do("close", self.incidents.close_async(incident.id, values[0]))

    @work(group="incidents-action")
    async def action_export(self) -> None:
        from console.audit_files import private_umask

        incident = self.selected_incident()
        if incident is None:
            self.notify("no incident selected", severity="warning")
            return
        default = str(self.export_dir / f"incident-{incident.id}.md")
        values = await self._ask(
            f"Export incident #{incident.id} as Markdown", Field("file", value=default)
        )
        if values is None:
            return
        path = Path(values[0])
        text = await self.incidents.export_markdown_async(incident.id)

        def write() -> None:
            nonlocal path
            path = path.expanduser()
            path.parent.mkdir(parents=True, exist_ok=True)
            with private_umask():  # part of the audit record: same privacy
                path.write_text(text, encoding="utf-8")

        try:
            await asyncio.to_thread(write)
        except OSError as exc:
            self.notify(f"cannot write {path}: {exc.strerror}", severity="error", title="export")
            return
        self.notify(f"incident #{incident.id} written to {path}", title="export")

    # ------------------------------------------------------------------ approvals

    @work(group="incidents-action")
    async def action_decide(self, approve: bool) -> None:
        req = self.selected_request()
        if req is None:
            self.notify("no approval pending", severity="warning")
            return
        verb = "Approve" if approve else "Reject"
        note = ""
        if self.approvals.refusal(req) is None:  # else decide() records the refusal and says why
            values = await self._ask(
                f"{verb} #{req.id} {clean(req.subject)} (asked by {req.requested_by})",
                Field("note (on the record)" + ("" if approve else ": why"), required=not approve),
                hint=clean(req.detail) if req.detail else "",
            )
            if values is None:
                return
            note = values[0]
        if await self._do(verb.lower(), self.approvals.decide(req.id, approve, note)):
            self.notify(f"#{req.id} {'approved' if approve else 'rejected'}", title="approval")


def open_incidents(app: DcConsoleApp) -> IncidentsScreen | None:
    """The flow's factory (``w`` then ``i``)."""
    session = app.session
    if session is None or session.incidents is None or session.approvals is None:
        app.notify("incidents need the audit database: the session has none", severity="warning")
        return None
    return IncidentsScreen(session.incidents, session.approvals, Path.cwd())
