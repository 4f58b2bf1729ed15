"""`w` `d`: failover drills in the console -- the catalogue, and the preflight.

The list shows the site's scenarios (``drills/<site>.yaml`` beside the
inventory) with each one's last result, and the recent reports. Choosing a
scenario shows its preflight: the steady-state checks as they read now, what
the injection will do, the restore, the dead man's switch, the RPO markers and
the stop conditions; typing the confirmation starts it and opens the live
stopwatch (drill_live). The drill runs in the app's ``DrillDesk``: closing a
screen never stops it. The engine is console.wizards (no Textual).
"""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from console.action_plan import ActionRefused
from console.plugin import Role
from console.sanitize import clean
from console.wizards.drill_desk import DrillDesk, desk_for
from console.wizards.drill_model import Scenario
from console.wizards.drill_view import confirm_text, preflight_lines

if TYPE_CHECKING:  # pragma: no cover
    from console.action_plan import Plan
    from console.app import DcConsoleApp
    from console.wizards.drill_run import DrillRun

log = logging.getLogger(__name__)

_DESKS: weakref.WeakKeyDictionary[App[Any], DrillDesk] = weakref.WeakKeyDictionary()


def desk_of(app: DcConsoleApp) -> DrillDesk:
    desk = _DESKS.get(app)
    if desk is None:
        desk = _DESKS[app] = desk_for(app.session)

        def tell(run: DrillRun, status: str) -> None:
            severity = "information" if status == "passed" else "warning"
            app.notify(f"drill {run.scenario.id}: {status}", severity=severity)  # type: ignore[arg-type]

        desk.on_done.append(tell)
        app.busy_checks.append(lambda: ["a drill"] if desk.running else [])
    return desk


def _secs(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f}s"


class DrillsScreen(Screen[None]):
    """The catalogue's scenarios with their last result, and the recent reports."""

    DEFAULT_CSS = """
    DrillsScreen #drills-title { height: auto; }
    DrillsScreen OptionList { height: 1fr; border: none; }
    DrillsScreen #drills-hint { height: auto; color: $text-muted; }
    """
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("g", "reload", "Refresh"),
    ]

    def __init__(self, app: DcConsoleApp) -> None:
        super().__init__()
        self.desk = desk_of(app)
        self.scenarios: dict[str, Scenario] = {}

    def compose(self) -> ComposeResult:
        yield Static(Text("Failover drills", style="bold"), id="drills-title")
        yield OptionList(id="drills")
        yield Static(
            Text(f"enter: preflight a scenario, or read a report · {self.desk.catalogue_path}"),
            id="drills-hint",
        )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()
        self.action_reload()

    def on_screen_resume(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        try:
            catalogue = self.desk.catalogue()
        except Exception as exc:  # a broken catalogue: say so, keep the reports readable
            options.add_option(
                Option(Text(f"✖ the catalogue cannot be read: {exc}"), disabled=True)
            )
            catalogue = None
        last = self.desk.last_results()
        if catalogue is not None:
            self.scenarios = {s.id: s for s in catalogue.drills}
            options.add_option(Option(Text("scenarios", style="bold"), disabled=True))
            for s in catalogue.drills:
                r = last.get(s.id)
                result = None if r is None else r.result if r.ended else "unfinished"
                was = "never run" if r is None else f"{result} {r.started[:16]}"
                if r is not None:
                    was += f" RTO {_secs(r.rto.measured_s)}/{r.rto.target_s:g}s"
                    if r.rpo.target_s is not None:
                        was += f" RPO {_secs(r.rpo.measured_s)}/{r.rpo.target_s:g}s"
                options.add_option(
                    Option(Text(f"{s.id:<18} {clean(s.title)[:32]:<32} {was}"), id=f"s:{s.id}")
                )
        if self.desk.running and self.desk.run is not None:
            run = self.desk.run
            options.add_option(
                Option(Text(f"▶ running: {run.scenario.id} ({run.step})"), id="live")
            )
        reports = self.desk.reports()[:10]
        if reports:
            options.add_option(Option(Text("recent reports", style="bold"), disabled=True))
        for r in reports:
            result = r.result if r.ended else "unfinished"
            line = f"{result:<10} {r.started[:19]} {r.operator:<10} {r.id}"
            options.add_option(Option(Text(clean(line)), id=f"r:{r.id}"))

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        from console.screens.drill_live import DrillLiveScreen, DrillReportScreen

        key = event.option.id or ""
        app: DcConsoleApp = self.app  # type: ignore[assignment]
        if key == "live" and self.desk.run is not None:
            app.push_screen(DrillLiveScreen(self.desk, self.desk.run))
        elif key.startswith("s:"):
            if self.desk.running:
                app.notify("a drill is already running in this console", severity="warning")
                return
            app.push_screen(DrillPreflightScreen(self.desk, self.scenarios[key[2:]]))
        elif key.startswith("r:"):
            report = self.desk.env.drills.get(key[2:])
            if report is not None:
                app.push_screen(DrillReportScreen(self.desk, report))


class DrillPreflightScreen(Screen[None]):
    """What the drill will do, the steady state now, and the typed confirmation."""

    DEFAULT_CSS = """
    DrillPreflightScreen #preflight { height: 1fr; }
    DrillPreflightScreen #prompt { height: auto; }
    DrillPreflightScreen Input { height: 3; }
    """
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Cancel"),
        Binding("ctrl+r", "refresh", "Re-read"),
        Binding("pageup", "scroll(-1)", "Scroll", show=False),
        Binding("pagedown", "scroll(1)", "Scroll", show=False),
    ]

    def action_scroll(self, direction: int) -> None:
        view = self.query_one("#preflight", VerticalScroll)
        view.scroll_relative(y=direction * max(1, view.size.height - 1), animate=False)

    def __init__(self, desk: DrillDesk, scenario: Scenario) -> None:
        super().__init__()
        self.desk = desk
        self.run = desk.prepare(scenario)
        self.plan: Plan | None = None
        self.problem: str | None = None

    @property
    def confirm_text(self) -> str:
        """What to type: the injection's own confirmation, or the scenario id."""
        return confirm_text(self.run, self.plan)

    def compose(self) -> ComposeResult:
        yield Static(Text(f"Drill preflight · {self.run.scenario.id}", style="bold"))
        with VerticalScroll(id="preflight"):
            yield Static(Text("reading the targets…"), id="preflight-text")
        yield Static(Text(""), id="prompt")
        yield Input(id="typed", disabled=True)
        yield Footer()

    def on_mount(self) -> None:
        self.action_refresh()

    @work(exclusive=True, group="drill-preflight")
    async def action_refresh(self) -> None:
        runner = self.desk.env.runner
        self.problem = None
        if runner.read_only or runner.role < Role.OPERATOR:
            self.problem = "this console may not act (read-only or viewer): watch only"
        await self.run.refresh()
        try:
            self.plan = await self.run.plan_inject()
        except ActionRefused as exc:
            self.plan, self.problem = None, str(exc)
        lines = preflight_lines(self.run, self.plan, self.problem)
        self.query_one("#preflight-text", Static).update(Text("\n".join(clean(x) for x in lines)))
        typed = self.query_one("#typed", Input)
        prompt = self.query_one("#prompt", Static)
        if self.problem is None:
            prompt.update(
                Text(f"Type {self.confirm_text} and enter to start the drill (esc: cancel)")
            )
            typed.placeholder = self.confirm_text
            typed.disabled = False
            typed.focus()
        else:
            prompt.update(Text("the drill cannot start (esc: back)"))
            typed.disabled = True

    @on(Input.Submitted, "#typed")
    def _submitted(self, event: Input.Submitted) -> None:
        from console.screens.drill_live import DrillLiveScreen

        if event.value != self.confirm_text:
            self.query_one("#prompt", Static).update(
                Text(f"✖ that is not {self.confirm_text}: type it exactly (esc: cancel)")
            )
            return
        try:
            self.desk.start(self.run, event.value)
        except RuntimeError as exc:
            self.app.notify(str(exc), severity="warning")
            return
        self.app.switch_screen(DrillLiveScreen(self.desk, self.run))


def open_drills(app: DcConsoleApp) -> Screen[None] | None:
    """The flows menu's factory."""
    session = app.session
    if session is None or session.runner is None or session.poller is None:
        app.notify("the console has not started yet", severity="warning")
        return None
    return DrillsScreen(app)
