"""A runbook being run: its steps with their marks, the live check with the readings it
judges, the action's preview, and the operator's choices on a failed step.

The screen is the engine's ``Driver``: an action is confirmed in the usual dialog
(typed when destructive), a note in a small form, a failed step with ``r`` retry,
``b`` bypass (a reason is asked) or ``A`` abort. While a check or an approval is
waited on, ``b`` and ``A`` act at once. ``escape`` leaves the screen: the run pauses
(durably) and is continued from the runbooks menu (``w`` then ``b``); not while an
action is executing. Marks read without colour: ✓ done, ✗ failed, ⏳ running,
… waits for you, · to do, ↷ bypassed, – not for this target.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Input, Static

from console.sanitize import clean
from console.screens.confirm import ConfirmRequest, ConfirmScreen
from console.wizards.runbook_run import Decision, RunbookRefused, RunbookRun

if TYPE_CHECKING:  # pragma: no cover
    from console.action_plan import Plan
    from console.plugin import Target
    from console.wizards.runbook_model import Runbook, Step
    from console.wizards.runbook_session import RunbookContext
    from console.wizards.runbook_state import RunRow

log = logging.getLogger(__name__)

MARK = {
    "pending": "·",
    "running": "⏳",
    "executing": "⏳",
    "ok": "✓",
    "failed": "✗",
    "bypassed": "↷",
    "skipped": "–",
}
STYLE = {"ok": "", "failed": "bold red", "bypassed": "yellow", "skipped": "dim", "pending": "dim"}


class TextScreen(ModalScreen[str | None]):
    """A note to acknowledge (and maybe answer), or a reason to give: returns the text
    (empty: acknowledged), or None when cancelled."""

    DEFAULT_CSS = """
    TextScreen { align: center middle; }
    TextScreen > Vertical {
        width: 76; max-width: 100%; height: auto; max-height: 100%;
        border: thick $accent; background: $surface; padding: 0 1;
    }
    TextScreen VerticalScroll { height: auto; max-height: 10; }
    TextScreen Horizontal { height: auto; align-horizontal: right; }
    TextScreen Button { margin: 0 1; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, text: str, *, ask: str | None, required: bool) -> None:
        super().__init__()
        self.title_text = title
        self.text = text
        self.ask = ask
        self.required = required

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(clean(self.title_text), style="bold"))
            with VerticalScroll():
                yield Static(Text(clean(self.text)))
            if self.ask is not None:
                yield Input(placeholder=self.ask, id="answer")
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button("Done", id="done", variant="primary")

    def on_mount(self) -> None:
        if self.ask is not None:
            self.query_one("#answer", Input).focus()
        else:
            self.query_one("#done", Button).focus()

    def _value(self) -> str:
        return self.query_one("#answer", Input).value if self.ask is not None else ""

    @on(Input.Submitted, "#answer")
    @on(Button.Pressed, "#done")
    def _done(self) -> None:
        value = self._value().strip()
        if self.required and not value:
            self.notify("an answer is needed", severity="warning")
            return
        self.dismiss(value)

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class RunbookScreen(Screen[None]):
    """Runs (or continues) one runbook on one target, as the engine's Driver."""

    DEFAULT_CSS = """
    RunbookScreen #rb-head { height: auto; padding: 0 1; }
    RunbookScreen #rb-steps { height: auto; padding: 0 1; }
    RunbookScreen #rb-detail { height: 1fr; padding: 0 1; border-top: solid $primary-darken-2; }
    """
    BINDINGS = [
        Binding("r", "retry", "Retry"),
        Binding("b", "bypass", "Bypass"),
        Binding("A", "abort", "Abort"),
        Binding("p", "pane", "Pane"),
        Binding("escape", "leave", "Leave"),
    ]

    def __init__(
        self,
        ctx: RunbookContext,
        runbook: Runbook | None = None,
        target: Target | None = None,
        *,
        alert: str = "",
        row: RunRow | None = None,
    ) -> None:
        super().__init__()
        self.ctx = ctx
        if row is not None:
            self.run = RunbookRun.from_row(row, ctx.env, self, self._changed)
        else:
            assert runbook is not None and target is not None
            self.run = RunbookRun(runbook, target, ctx.env, self, alert=alert,
                                  on_change=self._changed)  # fmt: skip
        self.resuming = row is not None
        self._decision: asyncio.Future[Decision] | None = None
        self._dirty = True
        self.result: str | None = None

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Static("", id="rb-head")
        yield Static("", id="rb-steps")
        with VerticalScroll(id="rb-detail"):
            yield Static("", id="rb-detail-text")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"runbook {self.run.runbook.id}"
        self.redraw()
        self.set_interval(0.5, self._tick)
        self.run_worker(self._drive(), exclusive=True, group="runbook-run")

    async def _drive(self) -> None:
        try:
            self.result = await (self.run.resume() if self.resuming else self.run.start())
        except RunbookRefused as exc:
            self.result = "refused"
            self.run.reason = str(exc)
            self.notify(str(exc), severity="error", title="runbook", timeout=10)
        self._dirty = True
        self.redraw()

    def _changed(self, run: RunbookRun) -> None:
        self._dirty = True

    def _tick(self) -> None:
        if self._dirty or self.run.live is not None:
            self.redraw()

    # ------------------------------------------------------------------ drawing

    def head_text(self) -> Text:
        run = self.run
        out = Text()
        out.append(f"{run.runbook.title}", style="bold")
        out.append(f" · {run.target.name} · run {run.id}")
        if run.incident_id is not None:
            out.append(f" · incident #{run.incident_id}")
        status = self.result or run.status
        out.append(f" · {status}")
        if run.reason and status in ("aborted", "refused"):
            out.append(f": {clean(run.reason)}")
        return out

    def steps_text(self) -> Text:
        run = self.run
        out = Text()
        for i, step in enumerate(run.runbook.steps, 1):
            view = run.views[step.id]
            mark = MARK.get(view.state, "?")
            if step.id == run.current and (run.waiting_for or run.failure):
                mark = "…" if not run.waiting_for.startswith("approval") else "⏳"
            line = f"{mark} {i:>2} {clean(step.label)}"
            if view.detail and view.state in ("ok", "failed", "bypassed", "skipped"):
                line += f" — {clean(view.detail)}"
            style = STYLE.get(view.state, "bold" if step.id == run.current else "")
            out.append(line[:78] + "\n", style=style)
        return out

    def detail_text(self) -> Text:
        run = self.run
        out = Text()
        if run.notice:
            out.append(f"! {clean(run.notice)}\n", style="bold")
        if run.failure:
            out.append(f"✗ {clean(run.failure)}\n", style="bold red")
            choices = "r retry  " + ("b bypass (with a reason)  " if run.can_bypass else "")
            out.append(choices + "A abort\n", style="bold")
            return out
        step = run.runbook.step(run.current or "")
        if step is None:
            if self.result == "done":
                out.append("✓ every step done\n", style="bold")
            elif self.result:
                out.append(f"stopped: {clean(run.reason or self.result)}\n", style="bold")
            return out
        if step.kind == "check" and run.live is not None:
            live = run.live
            glyph = "✓" if live.holds else "⏳"
            want = "holds" if live.expect == "pass" else "shows the problem"
            out.append(f"{glyph} {live.check} on {live.target}: {live.message}\n")
            held = f", held {live.held_s:.0f}/{live.hold_s:g}s" if live.hold_s else ""
            out.append(
                f"  passes by itself when it {want} · waited {live.waited_s:.0f}"
                f"/{live.timeout_s:g}s{held}\n",
                style="dim",
            )
            for reading in live.readings:
                out.append(f"  {reading}\n")
            out.append("b bypass  A abort" + (f"  p pane {live.pane}" if live.pane else "") + "\n",
                       style="bold")  # fmt: skip
        elif step.kind == "action" and run.preview:
            out.append(f"{step.action}:\n")
            for line in run.preview:
                out.append(f"  {clean(line)}\n")
            for warning in run.warnings:
                out.append(f"  ▲ {clean(warning)}\n", style="yellow")
        if run.waiting_for.startswith("approval"):
            out.append(f"⏳ waiting for {run.waiting_for} (dcc approvals on their console)\n")
            out.append("A abort (withdraws the request)\n", style="bold")
        return out

    def redraw(self) -> None:
        self._dirty = False
        try:
            self.query_one("#rb-head", Static).update(self.head_text())
            self.query_one("#rb-steps", Static).update(self.steps_text())
            self.query_one("#rb-detail-text", Static).update(self.detail_text())
        except Exception:  # the screen is being torn down
            log.debug("runbook screen redraw skipped", exc_info=True)

    # ------------------------------------------------------------------ the Driver

    async def confirm_action(self, run: RunbookRun, step: Step, plan: Plan) -> str | None:
        self.redraw()
        request = ConfirmRequest(
            title=f"{step.label}: {plan.spec.label}"
            + ("  (destructive)" if plan.spec.destructive else ""),
            targets=tuple(plan.target_names),
            preview=tuple(line for p in plan.previews for line in p.lines),
            warnings=tuple(plan.warnings),
            confirm_text=plan.confirm_text,
        )
        return await self.app.push_screen_wait(ConfirmScreen(request))

    async def answer_note(self, run: RunbookRun, step: Step, text: str) -> str | None:
        self.redraw()
        ask = "your answer (recorded)" if step.answer else None
        return await self.app.push_screen_wait(
            TextScreen(step.label, text, ask=ask, required=step.answer)
        )

    async def decide(self, run: RunbookRun, step: Step, failure: str, can_bypass: bool) -> Decision:
        self._decision = asyncio.get_running_loop().create_future()
        self._dirty = True
        self.redraw()
        try:
            return await self._decision
        finally:
            self._decision = None

    # ------------------------------------------------------------------ keys

    def _choose(self, decision: Decision) -> None:
        if self._decision is not None and not self._decision.done():
            self._decision.set_result(decision)
            return
        try:
            self.run.interrupt(decision)
        except RunbookRefused as exc:
            self.notify(str(exc), severity="warning")

    def _waiting(self) -> bool:
        """A check or an approval is being waited on (b and A act at once)."""
        step = self.run.runbook.step(self.run.current or "")
        return step is not None and (
            self.run.live is not None or self.run.waiting_for.startswith("approval")
        )

    def action_retry(self) -> None:
        if self._decision is not None:
            self._choose(Decision("retry"))

    def action_bypass(self) -> None:
        if self._decision is None and not self._waiting():
            return
        if self._decision is not None and not self.run.can_bypass:
            self.notify("this step cannot be bypassed: retry it or abort", severity="warning")
            return
        self._ask("bypass", "Bypass this step", "why (recorded in the audit log)", required=True)

    def action_abort(self) -> None:
        if self._decision is None and not self._waiting():
            return
        self._ask("abort", "Abort the runbook", "why (recorded)", required=False)

    def _ask(self, kind: str, title: str, prompt: str, *, required: bool) -> None:
        step = self.run.runbook.step(self.run.current or "")
        label = step.label if step is not None else ""

        def chosen(reason: str | None) -> None:
            if reason is not None:
                self._choose(Decision(kind, reason))  # type: ignore[arg-type]

        self.app.push_screen(
            TextScreen(
                title, f"{label}\n{self.run.failure}".strip(), ask=prompt, required=required
            ),
            chosen,
        )

    def action_pane(self) -> None:
        live = self.run.live
        if live is None or live.pane is None:
            return
        app: Any = self.app
        spec = self.ctx_pane(live.pane)
        if spec is None:
            self.notify(f"no pane {live.pane}", severity="warning")
            return
        from console.widgets.layout_view import load_factory

        try:
            widget = load_factory(spec.factory)(app._make_context(spec))
        except Exception as exc:  # a pane bug must not take the runbook down
            log.exception("pane %s failed", spec.id)
            self.notify(f"pane {spec.id} failed: {exc}", severity="error")
            return
        self.app.push_screen(PaneScreen(widget))

    def ctx_pane(self, pane_id: str) -> Any:
        session = getattr(self.app, "session", None)
        return None if session is None else session.registry.panes().get(pane_id)

    def action_leave(self) -> None:
        current = self.run.views.get(self.run.current or "")
        if current is not None and current.state == "executing":
            self.notify("an action is running: wait for its result", severity="warning")
            return
        self.workers.cancel_group(self, "runbook-run")
        if self.result is None:
            self.notify(f"run {self.run.id} paused: continue it from w → b", timeout=8)
        self.app.pop_screen()


class PaneScreen(Screen[None]):
    """One pane on its own, opened from a check (``p``)."""

    BINDINGS = [Binding("escape,q,p", "app.pop_screen", "Back")]

    def __init__(self, widget: Any) -> None:
        super().__init__()
        self.widget = widget

    def compose(self) -> ComposeResult:
        yield self.widget
        yield Footer()

    def on_mount(self) -> None:
        self.widget.data_changed()
        self.set_interval(1.0, self.widget.data_changed)
