"""A drill in progress (the live stopwatch) and a drill's report.

The live view redraws from the engine's state four times a second and on each
change: the step, the stopwatch, time to detect / fail over / recover as each
signal fires, the measured RTO and RPO against their targets, the stop
conditions, the dead man's switch and the newest timeline entries. ``A``
aborts: the engine restores by itself. Leaving the screen does not stop the
drill. The report view shows the stored report (timeline, who did what, RTO
and RPO against their targets, deviations, the verdict) and exports it as
Markdown (``m``) or JSON (``j``) beside the drill database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from console.sanitize import clean
from console.wizards.drill_desk import DrillDesk, export
from console.wizards.drill_view import live_lines, stopwatch_lines, timeline_lines

if TYPE_CHECKING:  # pragma: no cover
    from console.wizards.drill_report import DrillReport
    from console.wizards.drill_run import DrillRun

FINAL = ("passed", "failed", "aborted", "refused")


class DrillLiveScreen(Screen[None]):
    """The stopwatch of the drill in progress."""

    DEFAULT_CSS = """
    DrillLiveScreen #stopwatch { height: auto; text-style: bold; }
    DrillLiveScreen #live { height: auto; }
    DrillLiveScreen #timeline { height: 1fr; }
    """
    BINDINGS = [
        Binding("A", "abort", "Abort and restore"),
        Binding("r", "report", "Report"),
        Binding("escape,q", "app.pop_screen", "Back (the drill goes on)"),
        Binding("pageup", "scroll(-1)", "Scroll", show=False),
        Binding("pagedown", "scroll(1)", "Scroll", show=False),
    ]

    def action_scroll(self, direction: int) -> None:
        view = self.query_one("#timeline", VerticalScroll)
        view.scroll_relative(y=direction * max(1, view.size.height - 1), animate=False)

    def __init__(self, desk: DrillDesk, run: DrillRun) -> None:
        super().__init__()
        self.desk = desk
        self.run = run

    def compose(self) -> ComposeResult:
        yield Static(id="stopwatch")
        yield Static(id="live")
        with VerticalScroll(id="timeline"):
            yield Static(id="timeline-text")
        yield Footer()

    def on_mount(self) -> None:
        self.desk.listeners.append(self._changed)
        self.set_interval(0.25, self.redraw)
        self.redraw()

    def on_unmount(self) -> None:
        if self._changed in self.desk.listeners:
            self.desk.listeners.remove(self._changed)

    def _changed(self, run: object) -> None:
        self.redraw()

    @property
    def finished(self) -> bool:
        return self.run.step in FINAL

    def redraw(self) -> None:
        lines = stopwatch_lines(self.run)
        if self.finished:
            lines[-1] = f"drill {self.run.step} · r the report · esc back"
        self.query_one("#stopwatch", Static).update(Text("\n".join(clean(x) for x in lines)))
        self.query_one("#live", Static).update(
            Text("\n".join(clean(x) for x in live_lines(self.run)))
        )
        self.query_one("#timeline-text", Static).update(
            Text("\n".join(clean(x) for x in timeline_lines(self.run, limit=40)))
        )

    def action_abort(self) -> None:
        if self.finished:
            return
        self.run.abort()
        self.app.notify("aborting: the drill restores the target", severity="warning")
        self.redraw()

    def action_report(self) -> None:
        if not self.finished:
            self.app.notify("the report is ready when the drill ends", severity="warning")
            return
        self.app.push_screen(DrillReportScreen(self.desk, self.run.report))


class DrillReportScreen(Screen[None]):
    """A drill's report, exportable as Markdown and JSON."""

    DEFAULT_CSS = """
    DrillReportScreen #report { height: 1fr; }
    """
    BINDINGS = [
        Binding("m", "export('md')", "Export Markdown"),
        Binding("j", "export('json')", "Export JSON"),
        Binding("escape,q", "app.pop_screen", "Back"),
    ]

    def __init__(self, desk: DrillDesk, report: DrillReport) -> None:
        super().__init__()
        self.desk = desk
        self.report = report
        self.exported: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="report"):
            yield Static(
                Text(clean(self.report.to_markdown(), keep_newlines=True)), id="report-text"
            )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#report", VerticalScroll).focus()

    def action_export(self, fmt: str) -> None:
        directory = self.desk.env.drills.path.with_name("drill-reports")
        try:
            path = export(self.report, directory, fmt)
        except OSError as exc:
            self.app.notify(f"export failed: {exc}", severity="error")
            return
        self.exported[fmt] = str(path)
        self.app.notify(f"exported to {path}")
