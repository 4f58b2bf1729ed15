"""Full-screen lists: every alert (`a`) and the audit log with search (`l`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from console.plugin import PaneSpec, Severity
from console.widgets.core_panes import AlertsPane
from console.widgets.line_table import Column, LineTable, Row
from console.widgets.pane import PaneContext

if TYPE_CHECKING:  # pragma: no cover
    from console.audit import AuditEvent

log = logging.getLogger(__name__)

PAGE = 200
"""Audit rows fetched at a time: the screen never loads the whole table."""


class AlertsScreen(Screen[None]):
    """All current alerts; enter opens the node card, ``r`` the runbooks for the alert."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("r", "runbooks", "Runbooks"),
    ]

    def __init__(self, make_context: Callable[[PaneSpec], PaneContext]) -> None:
        super().__init__()
        spec = PaneSpec("core.alerts", "All alerts", "console.widgets.core_panes:AlertsPane")
        self.pane = AlertsPane(make_context(spec))

    def compose(self) -> ComposeResult:
        yield self.pane
        yield Footer()

    def on_mount(self) -> None:
        self.pane.table.focus()
        self.set_interval(1.0, self.pane.data_changed)

    def action_runbooks(self) -> None:
        from console.screens.runbook_pick import offer_for_alert

        row = self.pane.table.current_row
        if row is not None:
            offer_for_alert(self.app, row.key)


def audit_row(event: AuditEvent) -> Row:
    """One audit event as a table row; failures and unknown outcomes stand out."""
    outcome = event.outcome or ""
    severity = (
        Severity.CRITICAL
        if outcome == "failed"
        else Severity.WARNING
        if outcome in ("unknown", "refused")
        else Severity.OK
    )
    return Row(
        key=str(event.id),
        cells=(
            event.ts[:19].replace("T", " "),
            event.operator,
            event.phase,
            outcome,
            event.action,
            ",".join(event.targets),
            event.detail,
        ),
        severity=severity,
    )


class AuditScreen(Screen[None]):
    """The audit log, newest first, with a search box; read off the UI thread."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("slash", "focus_search", "Search"),
        Binding("n", "more", "Older rows"),
    ]

    def __init__(self, audit: Any) -> None:
        super().__init__()
        self.audit = audit
        self.query_text = ""
        self.loaded: list[AuditEvent] = []

    def compose(self) -> ComposeResult:
        yield Input(
            placeholder="search the audit log (action, target, operator, text)", id="audit-search"
        )
        yield Static("", id="audit-status")
        self.table = LineTable(
            [
                Column("time", 19),
                Column("operator", 8),
                Column("phase", 9),
                Column("outcome", 8),
                Column("action", 18),
                Column("targets", 12),
                Column("detail", 0),
            ]
        )
        yield self.table
        yield Footer()

    def on_mount(self) -> None:
        self.table.focus()
        self.reload()

    def action_focus_search(self) -> None:
        self.query_one("#audit-search", Input).focus()

    @on(Input.Submitted, "#audit-search")
    def _search(self, event: Input.Submitted) -> None:
        self.query_text = event.value.strip()
        self.reload()
        self.table.focus()

    def action_more(self) -> None:
        self.load(offset=len(self.loaded))

    def reload(self) -> None:
        self.loaded = []
        self.load(offset=0)

    @work(exclusive=True, group="audit-load")
    async def load(self, offset: int) -> None:
        try:
            rows: Sequence[AuditEvent]
            if self.query_text:
                rows = await asyncio.to_thread(self.audit.search, self.query_text, PAGE, offset)
            else:
                rows = await asyncio.to_thread(self.audit.page, PAGE, offset)
        except Exception as exc:
            log.exception("audit read failed")
            self.query_one("#audit-status", Static).update(Text(f"audit log unreadable: {exc}"))
            return
        self.loaded.extend(rows)
        self.table.set_rows([audit_row(r) for r in self.loaded])
        what = f"matching {self.query_text!r}" if self.query_text else "newest first"
        more = " · n: older rows" if len(rows) == PAGE else ""
        self.query_one("#audit-status", Static).update(
            Text(f"{len(self.loaded)} rows {what}{more}")
        )
