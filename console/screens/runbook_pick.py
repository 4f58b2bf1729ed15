"""Choosing a runbook: from the guided flows (``w`` then ``b``), from an alert (``r`` in
the alerts list) or from the node card (``r``), with the target filled in.

The menu lists, in this order: runs to continue (paused or left by a console that
stopped), the runbooks the current alerts call for (with their targets), and every
runbook (a target is then chosen from those of its kind).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from console.sanitize import clean
from console.screens.runbook import RunbookScreen

if TYPE_CHECKING:  # pragma: no cover
    from console.wizards.runbook_library import Entry, Offer
    from console.wizards.runbook_session import RunbookContext
    from console.wizards.runbook_state import RunRow

log = logging.getLogger(__name__)

CONTEXT_ATTR = "_runbook_context"


def runbook_context(app: App[Any]) -> RunbookContext | None:
    """The console's runbooks (built once per session); None, after saying why, if none."""
    session = getattr(app, "session", None)
    if session is None:
        return None
    cached = getattr(app, CONTEXT_ATTR, None)
    if cached is not None and cached[0] is session:
        ctx: RunbookContext = cached[1]
        return ctx
    from console.wizards.runbook_session import build_context

    try:
        ctx = build_context(session)
    except Exception as exc:  # runbooks unavailable must not take the console down
        log.exception("runbooks unavailable")
        app.notify(f"runbooks unavailable: {exc}", severity="error", timeout=10)
        return None
    if ctx.library.problems:
        app.notify(
            f"{len(ctx.library.problems)} problem(s) in the runbooks: see `dcc runbook list`",
            severity="warning",
            timeout=10,
        )
    setattr(app, CONTEXT_ATTR, (session, ctx))
    return ctx


@dataclass(frozen=True, slots=True)
class Choice:
    kind: str
    """``continue``, ``offer`` or ``runbook``."""
    index: int


class RunbookMenuScreen(ModalScreen[None]):
    """Runs to continue, runbooks for the alerts, every runbook; enter starts one."""

    DEFAULT_CSS = """
    RunbookMenuScreen { align: center middle; }
    RunbookMenuScreen > Vertical {
        width: 78; max-width: 100%; height: auto; max-height: 100%;
        border: round $accent; padding: 0 1; background: $surface;
    }
    RunbookMenuScreen OptionList { height: auto; max-height: 18; border: none; }
    """
    BINDINGS = [Binding("escape,q", "close", "Close")]

    def __init__(
        self,
        ctx: RunbookContext,
        title: str,
        offers: Sequence[Offer],
        *,
        runs: Sequence[RunRow] = (),
        entries: Sequence[Entry] = (),
    ) -> None:
        super().__init__()
        self.ctx = ctx
        self.title_text = title
        self.offers = list(offers)
        self.runs = list(runs)
        self.entries = list(entries)

    def compose(self) -> ComposeResult:
        options: list[Option] = []
        for i, r in enumerate(self.runs):
            why = f" ({clean(r.reason)})" if r.reason else ""
            options.append(
                Option(
                    Text.assemble(("continue ", "bold"), f"{r.title} on {r.target}{why}"),
                    id=f"continue:{i}",
                )
            )
        for i, o in enumerate(self.offers):
            alert = f" — {clean(o.finding.message)}" if o.finding is not None else ""
            options.append(
                Option(
                    Text.assemble(("start ", "bold"), f"{o.runbook.title} on {o.target}{alert}"),
                    id=f"offer:{i}",
                )
            )
        for i, e in enumerate(self.entries):
            options.append(
                Option(
                    Text.assemble(
                        ("start ", "bold"),
                        f"{e.runbook.title}",
                        (f"  on a {e.runbook.target_kind}", "dim"),
                    ),
                    id=f"runbook:{i}",
                )
            )
        with Vertical():
            yield Static(Text(self.title_text, style="bold"))
            if not options:
                yield Static("no runbook applies here (dcc runbook list shows them all)")
            yield OptionList(*options, id="runbooks")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        kind, _, raw = (event.option.id or "").partition(":")
        index = int(raw) if raw.isdigit() else -1
        self.dismiss(None)
        app = self.app
        if kind == "continue":
            app.push_screen(RunbookScreen(self.ctx, row=self.runs[index]))
        elif kind == "offer":
            o = self.offers[index]
            target = self.ctx.env.target(o.runbook.target_kind, o.target)
            if target is None:
                app.notify(f"no {o.runbook.target_kind} named {o.target}", severity="warning")
                return
            alert = o.finding.message if o.finding is not None else ""
            app.push_screen(RunbookScreen(self.ctx, o.runbook, target, alert=alert))
        elif kind == "runbook":
            entry = self.entries[index]
            candidates = [t.name for t in self.ctx.env.candidates(entry.runbook.target_kind)]

            def picked(name: str | None) -> None:
                target = (
                    None if name is None else self.ctx.env.target(entry.runbook.target_kind, name)
                )
                if target is not None:
                    app.push_screen(RunbookScreen(self.ctx, entry.runbook, target))

            app.push_screen(TargetScreen(entry.runbook.title, candidates), picked)

    def action_close(self) -> None:
        self.dismiss(None)


class TargetScreen(ModalScreen[str | None]):
    """Choose the target: type to narrow the list, enter to pick."""

    DEFAULT_CSS = """
    TargetScreen { align: center middle; }
    TargetScreen > Vertical {
        width: 60; max-width: 100%; height: auto; max-height: 100%;
        border: round $accent; padding: 0 1; background: $surface;
    }
    TargetScreen OptionList { height: auto; max-height: 14; border: none; }
    """
    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, title: str, names: Sequence[str]) -> None:
        super().__init__()
        self.title_text = title
        self.names = list(names)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(f"{self.title_text}: on which target?", style="bold"))
            yield Input(placeholder="type to narrow, enter picks the first", id="narrow")
            yield OptionList(*(Option(n, id=n) for n in self.names[:500]), id="targets")

    def on_mount(self) -> None:
        self.query_one("#narrow", Input).focus()

    def _matching(self, text: str) -> list[str]:
        return [n for n in self.names if text.lower() in n.lower()]

    @on(Input.Changed, "#narrow")
    def _narrow(self, event: Input.Changed) -> None:
        options = self.query_one("#targets", OptionList)
        options.clear_options()
        options.add_options([Option(n, id=n) for n in self._matching(event.value)[:500]])

    @on(Input.Submitted, "#narrow")
    def _first(self, event: Input.Submitted) -> None:
        found = self._matching(event.value)
        if found:
            self.dismiss(event.value if event.value in found else found[0])

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_close(self) -> None:
        self.dismiss(None)


# --------------------------------------------------------------------------- entry points


def _findings(app: App[Any]) -> list[Any]:
    session = getattr(app, "session", None)
    return [] if session is None else [a.finding for a in session.store.alerts()]


def open_runbooks(app: App[Any]) -> Screen[Any] | None:
    """The flows menu's entry: continue a run, answer an alert, or start any runbook."""
    ctx = runbook_context(app)
    if ctx is None:
        return None
    _open_menu(app, ctx)
    return None


def _open_menu(app: App[Any], ctx: RunbookContext) -> None:
    async def show() -> None:
        try:
            runs = await ctx.unfinished()
        except Exception:  # an unreadable runbooks.db must not hide the runbooks
            log.exception("could not read unfinished runbook runs")
            runs = []
        await app.push_screen(
            RunbookMenuScreen(
                ctx, "Runbooks", ctx.offers(_findings(app)), runs=runs, entries=ctx.entries()
            )
        )

    app.run_worker(show(), group="runbook-menu")


def offer_for_alert(app: App[Any], alert_key: str) -> None:
    """``r`` on an alert: the runbooks that answer it, with its target filled in."""
    ctx = runbook_context(app)
    if ctx is None:
        return
    finding = next((f for f in _findings(app) if f.key == alert_key), None)
    if finding is None:
        app.notify("that alert is gone", severity="warning")
        return
    offers = ctx.offers([finding])
    if not offers:
        app.notify(f"no runbook answers {finding.key}", severity="warning")
        return
    app.push_screen(RunbookMenuScreen(ctx, f"Runbooks for: {clean(finding.message)}", offers))


def offer_for_node(app: App[Any], node: str) -> None:
    """``r`` on the node card: the runbooks for its alerts, and every node runbook."""
    ctx = runbook_context(app)
    if ctx is None:
        return
    offers = ctx.for_node(node, _findings(app))
    app.push_screen(RunbookMenuScreen(ctx, f"Runbooks for {node}", offers))
