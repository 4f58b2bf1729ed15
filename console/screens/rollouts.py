"""`w` `r`: phased rollouts in the console.

The list shows the site's rollout files (``rollouts/`` beside the inventory)
and the rollouts recorded in ``rollouts.db``: running here, interrupted (left
running by a console that stopped, or halted at a gate) and finished.
Choosing a file shows its plan (rollout_plan_view); choosing a recorded
rollout shows its live progress (rollout_progress_view), where it can be
resumed and its gates decided.

Rollouts started here run in the app's ``RolloutDesk``, not in a screen: closing
a screen never stops a rollout. The engine is console.wizards (no Textual).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from console.plugin import Role
from console.sanitize import clean
from console.wizards.rollout_env import RolloutEnv, env_of_session, rollout_files
from console.wizards.rollout_model import load_rollout
from console.wizards.rollout_run import Listener, RolloutRefused, RolloutRunner
from console.wizards.rollout_state import FINISHED, RolloutRow

if TYPE_CHECKING:  # pragma: no cover
    from console.app import DcConsoleApp
    from console.wizards.rollout_plan import Plan

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RolloutDesk:
    """The rollouts this console runs, kept by the app (one per app)."""

    env: RolloutEnv
    session: object
    runs: dict[str, RolloutRunner] = field(default_factory=dict)
    tasks: dict[str, asyncio.Task[str]] = field(default_factory=dict)
    on_done: list[Callable[[str, str], None]] = field(default_factory=list)

    @property
    def may_act(self) -> bool:
        runner = self.env.runner
        return not runner.read_only and runner.role >= Role.OPERATOR

    def why_not(self) -> str:
        runner = self.env.runner
        if runner.read_only:
            return "the console is read-only: you can watch rollouts, not start or change them"
        return (
            f"{runner.operator.user} has role {runner.role.name.lower()}: "
            "you can watch rollouts, not start or change them"
        )

    def running(self, rollout_id: str) -> bool:
        task = self.tasks.get(rollout_id)
        return task is not None and not task.done()

    def runner(self, rollout_id: str) -> RolloutRunner | None:
        return self.runs.get(rollout_id)

    async def runner_for_row(self, row: RolloutRow) -> RolloutRunner:
        """The runner of a recorded rollout (this console's, or a new one planned again)."""
        found = self.runs.get(row.id)
        if found is None:
            found = await self.env.runner_of(row)
            self.runs[row.id] = found
        return found

    async def start(
        self, plan: Plan, typed: str, listener: Listener | None = None
    ) -> RolloutRunner:
        """Record the start (typed confirmation checked, a second operator's approval
        waited for when the rollout needs one) and run the waves in the background.

        Raises:
            RolloutRefused: from the engine (audited).
        """
        run = self.env.runner_for(plan)
        if listener is not None:
            run.listeners.append(listener)
        await run.begin(typed)
        if listener is not None:
            run.listeners.remove(listener)
        self.runs[run.id] = run
        self._launch(run, run.proceed())
        return run

    def launch(self, run: RolloutRunner, body: Callable[[], Coroutine[Any, Any, str]]) -> None:
        """Run an engine coroutine (resume, a rollback) for ``run`` in the background."""
        self.runs[run.id] = run
        self._launch(run, body())

    def _launch(self, run: RolloutRunner, coro: Coroutine[Any, Any, str]) -> None:
        task: asyncio.Task[str] = asyncio.ensure_future(coro)
        self.tasks[run.id] = task
        self._forget_interrupted(run.id)

        def done(t: asyncio.Task[str]) -> None:
            if t.cancelled():
                status = "cancelled"
            elif t.exception() is not None:
                exc = t.exception()
                log.error("rollout %s stopped: %r", run.id, exc)
                status = f"refused: {exc}" if isinstance(exc, RolloutRefused) else f"error: {exc}"
            else:
                status = t.result()
            for listener in list(self.on_done):
                listener(run.id, status)

        task.add_done_callback(done)

    def _forget_interrupted(self, rollout_id: str) -> None:
        """A rollout resumed here is no longer an 'interrupted' alert."""
        rows = getattr(self.session, "interrupted_rollouts", None)
        if rows is None:
            return
        kept = [r for r in rows if getattr(r, "id", None) != rollout_id]
        if len(kept) != len(rows):
            rows[:] = kept
            refresh = getattr(self.session, "refresh_alerts", None)
            if refresh is not None:
                refresh()


_DESKS: weakref.WeakKeyDictionary[App[Any], RolloutDesk] = weakref.WeakKeyDictionary()


def desk_of(app: DcConsoleApp, directory: Path | None = None) -> RolloutDesk:
    """The app's desk (made on first use); ``directory`` overrides where files are read."""
    desk = _DESKS.get(app)
    if desk is None:
        assert app.session is not None
        desk = RolloutDesk(env_of_session(app.session), app.session)
        _DESKS[app] = desk

        def tell(rollout_id: str, status: str) -> None:
            ok = status in ("done", "rolled_back")
            severity: Literal["information", "warning"] = "information" if ok else "warning"
            app.notify(f"rollout {rollout_id}: {status.replace('_', ' ')}", severity=severity)

        desk.on_done.append(tell)
        app.busy_checks.append(lambda: [f"rollout {r}" for r in desk.tasks if desk.running(r)])
    if directory is not None:
        desk.env.directory = directory
    return desk


LIST_MARK = {
    "done": "✔",
    "rolled back": "↺",
    "aborted": "✖",
    "halted": "▲",
    "interrupted": "?",
}
"""A glyph per status word in the list (running here and awaiting approval: ▶)."""


def status_word(row: RolloutRow, desk: RolloutDesk) -> str:
    """``running``, ``interrupted``, ``halted`` ...: how the list names a recorded rollout."""
    if row.status in FINISHED:
        return row.status.replace("_", " ")
    if desk.running(row.id):
        return "running here" if row.status != "awaiting_approval" else "awaiting approval"
    if row.status == "halted":
        return "halted"
    return "interrupted"


class RolloutsScreen(Screen[None]):
    """The site's rollout files and the recorded rollouts."""

    DEFAULT_CSS = """
    RolloutsScreen #rollouts-title { height: auto; }
    RolloutsScreen OptionList { height: 1fr; border: none; }
    RolloutsScreen #rollouts-hint { height: auto; color: $text-muted; }
    """
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("g", "reload", "Refresh"),
    ]

    def __init__(self, app: DcConsoleApp, directory: Path | None = None) -> None:
        super().__init__()
        self.desk = desk_of(app, directory)

    def compose(self) -> ComposeResult:
        yield Static(Text("Rollouts", style="bold"), id="rollouts-title")
        yield OptionList(id="rollouts")
        hint = "enter: plan of a file, progress of a recorded rollout"
        if not self.desk.may_act:
            hint += f"  ({self.desk.why_not()})"
        yield Static(Text(hint), id="rollouts-hint")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()
        self.action_reload()

    def on_screen_resume(self) -> None:
        self.action_reload()

    @work(exclusive=True, group="rollouts-list")
    async def action_reload(self) -> None:
        env = self.desk.env
        files = await asyncio.to_thread(rollout_files, env.directory)
        rows = await env.state.recent()
        options: list[Option | None] = [
            Option(Text(f"Files in {env.directory}", style="bold"), disabled=True)
        ]
        if not files:
            options.append(Option(Text("  (no rollout file)"), disabled=True))
        for path in files:
            options.append(Option(Text("  " + _describe_file(path)), id=f"file:{path}"))
        options.append(Option(Text("Recorded rollouts", style="bold"), disabled=True))
        if not rows:
            options.append(Option(Text("  (none yet)"), disabled=True))
        for row in rows:
            nodes = await env.state.nodes(row.id)
            states = [s for _, s, _ in nodes.values()]
            done = states.count("done") + states.count("rolled_back")
            word = status_word(row, self.desk)
            mark = LIST_MARK.get(word, "▶")
            text = f"  {mark} {row.id}  {word:<17} {done:>2}/{len(states):<2} {clean(row.name)}"
            options.append(Option(Text(text), id=f"row:{row.id}"))
        olist = self.query_one(OptionList)
        highlighted = olist.highlighted
        olist.clear_options()
        olist.add_options([o for o in options if o is not None])
        if highlighted is not None and highlighted < olist.option_count:
            olist.highlighted = highlighted
        else:
            first = next((i for i, o in enumerate(options) if o and not o.disabled), None)
            olist.highlighted = first

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        key = event.option.id or ""
        kind, _, value = key.partition(":")
        if kind == "file":
            from console.screens.rollout_plan_view import RolloutPlanScreen

            self.app.push_screen(RolloutPlanScreen(self.desk, Path(value)))
        elif kind == "row":
            from console.screens.rollout_progress_view import RolloutProgressScreen

            self.app.push_screen(RolloutProgressScreen(self.desk, value))


def _describe_file(path: Path) -> str:
    """``name: targets (N nodes)`` or ``name: invalid (first problem)``."""
    try:
        doc = load_rollout(path).doc
    except Exception as exc:  # shown in the list; the plan screen gives every problem
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return clean(f"{path.name}: invalid ({first})")[:76]
    return clean(f"{path.name}: {doc.name} ({doc.targets})")[:76]


def open_rollouts(app: DcConsoleApp) -> Screen[None] | None:
    """The flows menu's factory."""
    if app.session is None or app.session.runner is None:
        app.notify("the console has not started yet", severity="warning")
        return None
    return RolloutsScreen(app)
