"""A rollout's live progress, and the operator's choices at a gate.

Waves and their nodes with progress bars, the step each node is in (drain,
change, settle, post-check, resume), elapsed and ETA, and below the table the
selected node's failure with its output. Every state is a glyph and a word,
never a colour alone (NO_COLOR). Redrawn twice a second from the rollouts
database, so a rollout another console runs is watched the same way.

Choices, each through the engine (audited there):

- halted at a gate: ``t`` retry the selected node, ``s`` skip it (a reason is
  required), ``b`` roll it back, ``B`` roll back every changed node (newest
  wave first), ``a`` approve past the gate (a reason is required), ``x`` abort;
- waiting for approval: ``a`` approve the next wave, ``x`` abort;
- interrupted (a console stopped while it ran): ``u`` resume; a step left in
  flight is verified first and shown as such.

A viewer or a read-only console watches; the choices are refused with why.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Static

from console.inventory import InventoryError
from console.plugin import Severity
from console.sanitize import clean
from console.screens.confirm import ConfirmRequest, ConfirmScreen
from console.widgets.line_table import Column, LineTable, Row
from console.wizards.rollout_progress import (
    MARK,
    Progress,
    bar,
    build_progress,
    headline,
)
from console.wizards.rollout_run import RolloutRefused, RolloutRunner
from console.wizards.rollout_state import FINISHED, RolloutRow

if TYPE_CHECKING:  # pragma: no cover
    from console.screens.rollouts import RolloutDesk

log = logging.getLogger(__name__)

REDRAW_S = 0.5
SEVERITY = {"failed": Severity.CRITICAL, "skipped": Severity.WARNING}


class ReasonScreen(ModalScreen[str | None]):
    """Asks why (required): returns the reason, or None on escape."""

    DEFAULT_CSS = """
    ReasonScreen { align: center middle; }
    ReasonScreen > Vertical {
        width: 76; max-width: 100%; height: auto;
        border: thick $warning; background: $surface; padding: 0 1;
    }
    ReasonScreen #reason-error { color: $error; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(self.title_text, style="bold"))
            yield Static(Text("Why? (recorded in the audit log; required)"))
            yield Input(placeholder="reason, ticket", id="reason")
            yield Static("", id="reason-error")
            yield Static(Text("enter: submit · escape: cancel"))

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted, "#reason")
    def _submitted(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            self.query_one("#reason-error", Static).update("a reason is required")
            return
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


class RolloutProgressScreen(Screen[None]):
    """One rollout: live progress and the gate's choices."""

    DEFAULT_CSS = """
    RolloutProgressScreen #progress-head { height: auto; max-height: 5; }
    RolloutProgressScreen LineTable { height: 1fr; }
    RolloutProgressScreen #progress-detail { height: auto; max-height: 6; }
    RolloutProgressScreen #progress-choices { height: auto; text-style: bold; }
    """
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("t", "choose('retry')", "Retry"),
        Binding("s", "choose('skip')", "Skip"),
        Binding("b", "choose('rollback')", "Roll back node"),
        Binding("B", "choose('rollback_all')", "Roll back all"),
        Binding("a", "choose('approve')", "Approve"),
        Binding("x", "choose('abort')", "Abort"),
        Binding("u", "choose('resume')", "Resume"),
    ]

    def __init__(self, desk: RolloutDesk, rollout_id: str) -> None:
        super().__init__()
        self.desk = desk
        self.rollout_id = rollout_id
        self.progress: Progress | None = None
        self.table = LineTable(
            [
                Column("wave", 8),
                Column("node", 10),
                Column("state", 13),
                Column("progress", 10),
                Column("step / why", 0),
            ],
            id="progress-table",
        )

    def compose(self) -> ComposeResult:
        yield Static(Text("reading…"), id="progress-head")
        yield self.table
        yield Static("", id="progress-detail")
        yield Static("", id="progress-choices")
        yield Footer()

    def on_mount(self) -> None:
        self.table.focus()
        self.redraw()
        self.set_interval(REDRAW_S, self.redraw)

    # ------------------------------------------------------------------ drawing

    @work(exclusive=True, group="rollout-progress")
    async def redraw(self) -> None:
        state = self.desk.env.state
        row = await state.get(self.rollout_id)
        if row is None:
            self.query_one("#progress-head", Static).update(f"no rollout {self.rollout_id}")
            return
        run = self.desk.runner(self.rollout_id)
        labels = {w.index: w.label for w in run.plan.waves} if run else None
        self.progress = build_progress(
            row,
            await state.nodes(row.id),
            await state.steps(row.id),
            await state.gates(row.id),
            time.time(),
            current=run.current if run is not None and run.running else None,
            labels=labels,
        )
        self._draw(self.progress)

    def _draw(self, p: Progress) -> None:
        running_here = self.desk.running(p.id)
        lines = [headline(p)]
        if p.halt_reason and p.status not in ("done", "rolled_back"):
            lines.append(f"✖ {p.halt_reason}" if p.status == "halted" else p.halt_reason)
        for node, step in p.in_flight:
            if not running_here:
                lines.append(f"? {node}: {step} in flight when a console stopped: verified first")
        self.query_one("#progress-head", Static).update(Text("\n".join(clean(x) for x in lines)))
        rows: list[Row] = []
        for wave in p.waves:
            gate = f"gate {wave.gate}" if wave.gate else ""
            rows.append(
                Row(
                    key=f"wave:{wave.index}",
                    cells=(
                        Text(wave.label, style="bold"),
                        f"{wave.finished}/{len(wave.nodes)}",
                        gate,
                        bar(wave.fraction),
                        "",
                    ),
                    severity=Severity.CRITICAL if wave.gate == "halted" else Severity.OK,
                )
            )
            for n in wave.nodes:
                why = n.reason if n.state in ("failed", "skipped") and n.reason else n.step
                rows.append(
                    Row(
                        key=f"node:{n.name}",
                        cells=(
                            "",
                            n.name,
                            f"{MARK.get(n.state, '?')} {n.state.replace('_', ' ')}",
                            bar(n.fraction),
                            why,
                        ),
                        node=n.name,
                        severity=SEVERITY.get(n.state, Severity.OK),
                    )
                )
        self.table.set_rows(rows)
        self._draw_detail()
        self.query_one("#progress-choices", Static).update(Text(self._choices(p, running_here)))

    def _selected_node(self) -> str | None:
        row = self.table.current_row
        return row.node if row is not None else None

    def _draw_detail(self) -> None:
        p = self.progress
        name = self._selected_node()
        node = next((n for n in p.nodes if n.name == name), None) if p else None
        if node is None or node.state not in ("failed", "skipped"):
            failures = p.failures if p else []
            text = f"{len(failures)} failed node(s): select one for its output" if failures else ""
        else:
            out = node.output.splitlines()[-4:]
            text = f"{node.name}: {node.reason}" + "".join(f"\n  | {x}" for x in out)
        self.query_one("#progress-detail", Static).update(Text(clean(text, keep_newlines=True)))

    def on_line_table_row_highlighted(self, _: LineTable.RowHighlighted) -> None:
        self._draw_detail()

    def _choices(self, p: Progress, running_here: bool) -> str:
        if p.status in FINISHED:
            back = "; B: roll back every changed node" if p.status != "rolled_back" else ""
            return f"finished ({p.status.replace('_', ' ')}){back}"
        if p.status == "awaiting_approval" and running_here:
            return "waiting for approval: a approve the next wave · x abort"
        if running_here:
            return "running: x abort"
        if p.status == "halted":
            return (
                "halted: t retry node · s skip node · b roll back node · "
                "B roll back all · a approve past the gate · x abort"
            )
        return "interrupted: u resume (verifies any step left in flight) · B roll back · x abort"

    # ------------------------------------------------------------------ choices

    @work(exclusive=True, group="rollout-choice")
    async def action_choose(self, choice: str) -> None:
        if not self.desk.may_act:
            self.notify(self.desk.why_not(), severity="warning", title="rollout")
            return
        p = self.progress
        if p is None:
            return
        try:
            run = await self.desk.runner_for_row(await self._row())
        except InventoryError as exc:
            first = str(exc.problems[0]) if exc.problems else str(exc)
            self.notify(f"the rollout file cannot be planned again: {first}", severity="error")
            return
        try:
            await self._apply(choice, run, p)
        except RolloutRefused as exc:
            self.notify(str(exc), severity="error", title="refused", timeout=10)
        self.redraw()

    async def _row(self) -> RolloutRow:
        row = await self.desk.env.state.get(self.rollout_id)
        if row is None:
            raise RolloutRefused(f"no rollout {self.rollout_id}")
        return row

    async def _apply(self, choice: str, run: RolloutRunner, p: Progress) -> None:
        running = self.desk.running(run.id)
        if choice == "abort":
            reason = await self.app.push_screen_wait(ReasonScreen(f"Abort rollout {p.name}"))
            if reason is None:
                return
            if running:
                run.abort(reason)
            else:
                await run.abort_stopped(reason)
            return
        if choice == "approve" and running and p.status == "awaiting_approval":
            run.approve()
            return
        if running:
            raise RolloutRefused("the rollout is running: wait for its gate, or abort it")
        if p.status in FINISHED and choice != "rollback_all":
            raise RolloutRefused(f"the rollout is {p.status.replace('_', ' ')}")
        node = self._selected_node()
        if choice in ("retry", "skip", "rollback"):
            failed = {n.name for n in p.failures}
            if node not in failed:
                raise RolloutRefused("select a failed node first (up/down)")
            assert node is not None
            if choice == "retry":
                await run.retry(node)
            elif choice == "skip":
                reason = await self.app.push_screen_wait(ReasonScreen(f"Skip {node}"))
                if reason is None:
                    return
                await run.skip(node, reason)
            else:
                if not await self._confirm(run, f"Roll back {node}", [node]):
                    return
                self.desk.launch(run, lambda: self._rollback_then_resume(run, node))
                return
        elif choice == "approve":
            reason = await self.app.push_screen_wait(
                ReasonScreen(f"Approve {p.name} past its failed gate")
            )
            if reason is None:
                return
            await run.override_gate(reason)
        elif choice == "rollback_all":
            nodes = [n.name for n in p.nodes if n.state not in ("pending", "rolled_back")]
            if not await self._confirm(run, f"Roll back {p.name} (newest wave first)", nodes):
                return
            self.desk.launch(run, run.rollback_waves)
            return
        elif choice == "resume":
            if not await self._confirm(run, f"Resume rollout {p.name}", run.names):
                return
        else:
            return
        self.desk.launch(run, run.resume)

    async def _rollback_then_resume(self, run: RolloutRunner, node: str) -> str:
        result = await run.rollback(node)
        if not result.ok:
            return "halted"
        return await run.resume()

    async def _confirm(self, run: RolloutRunner, title: str, nodes: list[str]) -> bool:
        request = ConfirmRequest(
            title=title,
            targets=tuple(nodes),
            preview=(f"rollout {run.id}: {run.plan.name}",),
            confirm_text=run.plan.name,
        )
        typed = await self.app.push_screen_wait(ConfirmScreen(request))
        return typed == run.plan.name
