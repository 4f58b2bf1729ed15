"""A rollout file's plan, before anything runs; `s` starts it after typed confirmation.

Shows what ``dcc rollout plan`` prints (waves and their nodes, the per-node
steps, the checks, caps, gate, plan hash, warnings), or every problem when the
plan is refused, then the live pre-flight (would a PodDisruptionBudget block a
drain?) once it has been read. Starting asks for the rollout's name in the
console's confirm screen; a viewer or a read-only console can read, not start.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from console.inventory import InventoryError
from console.sanitize import clean
from console.screens.confirm import ConfirmRequest, ConfirmScreen
from console.wizards.rollout_cli import render_plan
from console.wizards.rollout_preflight import PreflightItem, preflight, render_preflight
from console.wizards.rollout_run import RolloutEvent, RolloutRefused, confirm_text

if TYPE_CHECKING:  # pragma: no cover
    from console.screens.rollouts import RolloutDesk
    from console.wizards.rollout_plan import Plan

log = logging.getLogger(__name__)


class RolloutPlanScreen(Screen[None]):
    """The plan of one rollout file."""

    DEFAULT_CSS = """
    RolloutPlanScreen #plan-head { height: auto; }
    RolloutPlanScreen VerticalScroll { height: 1fr; }
    RolloutPlanScreen #plan-problems { color: $error; }
    """
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("s", "start", "Start"),
    ]

    def __init__(self, desk: RolloutDesk, path: Path) -> None:
        super().__init__()
        self.desk = desk
        self.path = path
        self.plan: Plan | None = None
        self.problems: list[str] = []
        self.preflight: list[PreflightItem] | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text(f"Plan of {self.path.name}", style="bold"), id="plan-head")
        with VerticalScroll(id="plan-scroll"):
            yield Static("", id="plan-problems")
            yield Static(Text("planning…"), id="plan-body")
            yield Static("", id="plan-preflight")
        yield Static("", id="plan-approval")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#plan-scroll").focus()
        env = self.desk.env
        try:
            self.plan = env.load_plan(self.path)
        except InventoryError as exc:
            self.problems = [str(p) for p in exc.problems]
        if self.plan is None:
            self.query_one("#plan-problems", Static).update(
                Text(
                    "✖ the plan is refused; nothing can start:\n"
                    + "\n".join("  " + clean(p) for p in self.problems)
                )
            )
            self.query_one("#plan-body", Static).update("")
            return
        lines = render_plan(self.plan, env.inventory, env.checks)[:-1]
        start = (
            f"s: start (you will type {confirm_text(self.plan)!r})"
            if self.desk.may_act
            else f"cannot start here: {self.desk.why_not()}"
        )
        lines += ["", "Nothing has run. " + start]
        self.query_one("#plan-body", Static).update(Text("\n".join(clean(x) for x in lines)))
        self.query_one("#plan-preflight", Static).update(Text("Pre-flight: reading…"))
        self._read_preflight()

    @work(exclusive=True, group="rollout-preflight")
    async def _read_preflight(self) -> None:
        assert self.plan is not None
        items = await preflight(self.plan, self.desk.env.runner, self.desk.env.actions)
        self.preflight = items
        lines = render_preflight(items) or ["Pre-flight: nothing to ask the live systems"]
        self.query_one("#plan-preflight", Static).update(Text("\n".join(clean(x) for x in lines)))

    @work(exclusive=True, group="rollout-start")
    async def action_start(self) -> None:
        plan = self.plan
        if plan is None:
            self.notify("the plan is refused: fix the file first", severity="error")
            return
        if not self.desk.may_act:
            self.notify(self.desk.why_not(), severity="warning", title="rollout")
            return
        blocked = [f"{i.node}: {i.detail}" for i in self.preflight or [] if i.blocked]
        request = ConfirmRequest(
            title=f"Start rollout {plan.name}  (changes {len(plan.targets)} nodes)",
            targets=tuple(t.name for t in plan.targets),
            preview=(
                f"{len(plan.waves)} waves: "
                + " | ".join(f"{w.label}: {','.join(w.nodes)}" for w in plan.waves),
                f"change: {plan.rollout.doc.change.describe()}",
                f"plan hash {plan.plan_hash[:16]}…",
            ),
            warnings=(*plan.warnings, *blocked),
            confirm_text=confirm_text(plan),
        )
        typed = await self.app.push_screen_wait(ConfirmScreen(request))
        if typed is None:
            self.notify("cancelled: nothing was done", title="rollout")
            return

        def waiting(event: RolloutEvent) -> None:
            if event.kind == "approval":
                text = event.text + (" · escape: withdraw" if event.outcome == "pending" else "")
                self.query_one("#plan-approval", Static).update(Text("▲ " + clean(text)))
                self.notify(clean(event.text), title="two-person rule", timeout=10)

        try:
            run = await self.desk.start(plan, typed, waiting)
        except RolloutRefused as exc:
            self.notify(str(exc), severity="error", title="refused", timeout=10)
            return
        from console.screens.rollout_progress_view import RolloutProgressScreen

        # Not awaited: this worker belongs to the screen being replaced.
        self.app.switch_screen(RolloutProgressScreen(self.desk, run.id))
