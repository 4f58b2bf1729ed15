"""The Textual app: wiring only.

Start-up order matters (DESIGN.md): the first frame paints with nothing but
Textual imported; the session (lab, plugins, transports, audit, poller) is
built afterwards in a worker. Widgets only read the Store; every change goes
through the ActionRunner.
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.widgets import Footer, Input, Static

from console.commands import ActionCommands
from console.screens.help import HelpScreen
from console.widgets.header import StatusHeader

if TYPE_CHECKING:  # pragma: no cover
    from textual.timer import Timer

    from console.action_plan import Plan
    from console.options import LaunchOptions
    from console.plugin import ActionSpec, PaneSpec, Target
    from console.session import Session
    from console.store import Store
    from console.widgets.layout_view import LayoutView
    from console.widgets.line_table import LineTable
    from console.widgets.pane import NodeFilter, PaneContext

log = logging.getLogger(__name__)

REFRESH_S = 0.5
"""The UI redraws at most this often, however fast readings arrive (and not at all while
nothing changes: an idle console wakes up for nothing)."""
AGE_REDRAW_S = 10.0
"""Without any change, the panes say so when their data turns stale, then again at most
this often while the age shown grows ("stale 40s")."""
QUIT_AGAIN_S = 5.0
"""A second q within this long quits although a rollout or drill is running."""
HANGUP_GRACE_S = 30.0
"""After SIGHUP, actions already running get this long to record their results."""


class DcConsoleApp(App[int]):
    """The console. ``session`` may be given (tests); otherwise it is started after paint."""

    TITLE = "dcc"
    COMMANDS = App.COMMANDS | {ActionCommands}
    CSS = """
    #main { height: 1fr; }
    #splash { content-align: center middle; height: 1fr; color: $text-muted; }
    #filter { dock: bottom; display: none; }
    #filter.-shown { display: block; }
    """
    BINDINGS = [
        Binding("slash", "filter", "Filter"),
        Binding("a", "alerts", "Alerts"),
        Binding("l", "audit", "Audit"),
        Binding("w", "flows", "Flows"),
        Binding("o", "layout('overview')", "Overview"),
        Binding("question_mark", "help", "Help"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        options: LaunchOptions,
        session: Session | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.options = options
        self.clock = clock
        """Wall clock for ages and the header (fixed in snapshot tests)."""
        self.session: Session | None = session
        self.layout_view: LayoutView | None = None
        self.node_filter: NodeFilter | None = None
        self._dirty = False
        self._refresh_timer: Timer | None = None
        self._age_timer: Timer | None = None
        self._age_due = math.inf
        self._refreshing = False
        self._last_refresh = -REFRESH_S
        self._hanging_up = False
        self._hangup_task: asyncio.Future[None] | None = None
        self.busy_checks: list[Callable[[], list[str]]] = []
        """Flows register what they are running (``["rollout r-12"]``): quitting asks first."""
        self._quit_armed_at: float | None = None

    def compose(self) -> ComposeResult:
        yield StatusHeader(self.clock)
        with Container(id="main"):
            what = "the demo datacenter (lab)" if self.options.demo else "the site"
            yield Static(Text(f"dcc: starting {what}…"), id="splash")
        yield Input(
            placeholder="filter: gpu[001-004]  @rack:R01  @role:gpu-train  text", id="filter"
        )
        yield Footer()

    def on_mount(self) -> None:
        header = self.query_one(StatusHeader)
        header.set_state(demo=self.options.demo, read_only=self.options.read_only)
        self._install_signal_handlers()
        if self.session is not None:
            self.call_after_refresh(self._attach_session, self.session)
        else:
            self._start_session()

    # ------------------------------------------------------------------ start-up

    @work(exclusive=True, group="session")
    async def _start_session(self) -> None:
        from console.session import start_session

        try:
            session = await start_session(self.options)
        except Exception as exc:
            log.exception("session failed to start")
            self.query_one("#splash", Static).update(
                Text(f"dcc could not start: {exc}\n\npress q to quit", style="bold red")
            )
            self.query_one(StatusHeader).set_state(note="failed to start")
            return
        self.session = session
        await self._attach_session(session)

    async def _attach_session(self, session: Session) -> None:
        from console.plugin import Role
        from console.screens.approvals_watch import watch_approvals
        from console.widgets.pane import NodeFilter

        self.node_filter = NodeFilter()
        self.query_one(StatusHeader).set_state(
            site=session.inventory.site.name,
            demo=session.demo,
            read_only=session.read_only,
            viewer=session.runner is not None and session.runner.role == Role.VIEWER,
            note="",
        )
        self._bind_layout_keys()
        await self._show_layout(self.options.layout)
        session.store.subscribe(self._store_changed)
        for notice in session.notices:
            self.notify(notice, severity="warning", timeout=10)
        watch_approvals(self, session.approvals)  # the two-person rule, live on every console
        self._dirty = True
        self._refresh_panes()

    def _install_signal_handlers(self) -> None:
        # Textual installs no SIGHUP handler: without this a dropped SSH session
        # kills the console at once and loses what was not yet recorded.
        if self.is_headless:  # tests drive hang_up() themselves
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGHUP, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._on_hangup_signal, sig)
            except (NotImplementedError, RuntimeError):  # not the main thread (tests)
                log.debug("cannot install a handler for %s here", sig)

    def _on_hangup_signal(self, sig: int) -> None:
        if not self._hanging_up:
            self._hanging_up = True
            self._hangup_task = asyncio.ensure_future(self.hang_up(signal.Signals(sig).name))

    async def hang_up(self, why: str) -> None:
        """The terminal went away: record it, let running actions finish, start nothing."""
        session = self.session
        if session is not None and session.runner is not None:
            await session.runner.begin_shutdown(
                f"{why}: the operator's terminal went away", grace_s=HANGUP_GRACE_S
            )
        if session is not None:
            await session.stop()
        self.exit(129 if why == "SIGHUP" else 143)

    # ------------------------------------------------------------------ layouts

    def _make_context(self, spec: PaneSpec, options: dict[str, Any] | None = None) -> PaneContext:
        from console.widgets.pane import PaneContext

        assert self.session is not None and self.node_filter is not None
        plugin = self.session.registry.plugin_of(spec.id)
        config = None if plugin is None else self.session.inventory.plugin_configs.get(plugin.name)
        return PaneContext(
            spec=spec,
            store=self.session.store,
            inventory=self.session.inventory,
            config=config,
            options=options or {},
            node_filter=self.node_filter,
            clock=self.clock,
        )

    def _bind_layout_keys(self) -> None:
        """Each layout that declares a ``key`` gets it (``1`` overview, ``6`` oncall ...)."""
        from console.layouts import LayoutError, available_layouts, load_layout

        for name in sorted(available_layouts()):
            try:
                layout = load_layout(name)
            except LayoutError:
                log.warning("layout %s is invalid; `dcc check` says why", name)
                continue
            if layout.key:
                self.bind(
                    layout.key, f"layout('{name}')", description=layout.title or name, show=False
                )

    async def _show_layout(self, name: str) -> None:
        from console.layouts import LayoutError, load_layout
        from console.widgets.layout_view import LayoutView

        assert self.session is not None
        try:
            layout = load_layout(name)
        except LayoutError as exc:
            self.notify(str(exc), severity="error", timeout=15)
            if name == "overview":
                return
            layout = load_layout("overview")
        main = self.query_one("#main", Container)
        await main.remove_children()
        self.layout_view = LayoutView(layout, self.session.registry.panes(), self._make_context)
        await main.mount(self.layout_view)
        self.sub_title = layout.title
        first = self.layout_view.query("LineTable").first()
        first.focus()

    async def action_layout(self, name: str) -> None:
        if self.session is not None:
            await self._show_layout(name)
            self._dirty = True
            self._refresh_panes()

    # ------------------------------------------------------------------ refresh

    def _store_changed(self) -> None:
        self._dirty = True
        if self._refreshing or self._refresh_timer is not None:
            return  # the refresh under way, or the one scheduled, shows this change too
        # Textual's timers refuse a zero delay; a few milliseconds also gather a burst.
        wait = max(0.005, self._last_refresh + REFRESH_S - time.monotonic())
        self._refresh_timer = self.set_timer(wait, self._scheduled_refresh, name="refresh")

    def _scheduled_refresh(self) -> None:
        self._refresh_timer = None
        self._refresh_panes()

    def _age_refresh(self) -> None:
        # Nothing changed but the clock: the panes judge their states again (the data,
        # the rows and the alerts are as they were; at 1,000 hosts redoing them every
        # few seconds was most of an idle console's CPU).
        self._age_timer = None
        if self.session is None or self.layout_view is None:
            return
        self.layout_view.ages_changed()
        self._schedule_age_refresh(self.session.store)

    def _schedule_age_refresh(self, store: Store) -> None:
        when = store.next_status_change()
        if when == math.inf:
            return  # nothing turns stale by the clock (a timer already set fires harmlessly)
        # At the moment a target turns stale; a growing age, every AGE_REDRAW_S.
        due = time.monotonic() + max(when - store.now(), AGE_REDRAW_S)
        if self._age_timer is not None:
            if self._age_due <= due:
                return  # the timer set fires first; it looks again then (no churn per refresh)
            self._age_timer.stop()
        self._age_due = due
        self._age_timer = self.set_timer(due - time.monotonic(), self._age_refresh, name="ages")

    def _refresh_panes(self) -> None:
        if not self._dirty or self.session is None:
            return
        self._dirty = False
        self._refreshing = True
        self._last_refresh = time.monotonic()
        try:
            session = self.session
            session.refresh_alerts()  # it notifies the store listeners itself
            alerts = session.store.alerts()
            crit = sum(1 for a in alerts if a.finding.severity >= 3)
            # The header lives on the base screen (gone while the app shuts down).
            stack = self.screen_stack
            for header in stack[0].query(StatusHeader) if stack else ():
                header.set_state(alerts=(crit, len(alerts) - crit))
            if self.layout_view is not None:
                self.layout_view.data_changed()
            self._schedule_age_refresh(session.store)
        finally:
            self._refreshing = False
            self._dirty = False

    # ------------------------------------------------------------------ filter

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("-shown")
        box.focus()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self.apply_filter(event.value)
        event.input.remove_class("-shown")
        if self.layout_view is not None:
            tables = self.layout_view.query("LineTable")
            if tables:
                tables.first().focus()

    def apply_filter(self, text: str) -> bool:
        """Filter every pane to the nodes ``text`` names; False (and a message) if invalid."""
        from console.filtering import FilterError, parse_filter

        if self.session is None or self.node_filter is None:
            return False
        try:
            nodes = parse_filter(text, self.session.inventory)
        except FilterError as exc:
            self.notify(str(exc), severity="error", title="filter")
            return False
        self.node_filter.text = text.strip()
        self.node_filter.nodes = nodes
        if nodes is not None and not nodes:
            self.notify(f"no node matches {text.strip()!r}", severity="warning", title="filter")
        if self.layout_view is not None:
            self.layout_view.data_changed()
        return True

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_class("-shown"):
            box.remove_class("-shown")
        if self.node_filter is not None and self.node_filter.active:
            box.value = ""
            self.apply_filter("")

    # ------------------------------------------------------------------ screens

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_alerts(self) -> None:
        from console.screens.lists import AlertsScreen

        if self.session is not None:
            self.push_screen(AlertsScreen(self._make_context))

    def action_audit(self) -> None:
        from console.screens.lists import AuditScreen

        if self.session is not None and self.session.audit is not None:
            self.push_screen(AuditScreen(self.session.audit))

    @work(group="flows")
    async def action_flows(self) -> None:
        """`w`: the guided flows menu; the chosen flow opens its own screen."""
        from console.screens import flows
        from console.screens.flows import FlowsScreen, load_factory

        if self.session is None:
            return
        key = await self.push_screen_wait(FlowsScreen())
        entry = next((e for e in flows.FLOW_SCREENS if e.key == key), None)
        if entry is None:
            return
        try:
            screen = load_factory(entry)(self)
        except Exception as exc:  # a broken flow must not take the console down
            log.exception("flow %s failed to open", entry.label)
            self.notify(f"{entry.label} could not open: {exc}", severity="error", timeout=10)
            return
        if screen is not None:
            await self.push_screen(screen)

    def open_node(self, name: str) -> None:
        from console.screens.node_card import NodeCardScreen

        if self.session is None:
            return
        node = self.session.inventory.nodes.get(name)
        if node is None:
            self.notify(f"{name} is not in the inventory", severity="warning")
            return
        actions = [
            (spec.label, target.name)
            for spec, target in self.action_entries()
            if target.node == name or target.name == name
        ]
        self.push_screen(
            NodeCardScreen(node, self.session.store, self.session.plugins, self.clock, actions)
        )

    def on_line_table_row_selected(self, event: LineTable.RowSelected) -> None:
        if event.row.node:
            self.open_node(event.row.node)

    # ------------------------------------------------------------------ actions

    def action_entries(self) -> list[tuple[ActionSpec, Target]]:
        """Every (action, target) pair the palette offers."""
        if self.session is None:
            return []
        entries: list[tuple[ActionSpec, Target]] = []
        for plugin in self.session.plugins:
            config = self.session.inventory.plugin_configs.get(plugin.name)
            for spec in plugin.actions:
                try:
                    if spec.live_targets is not None:
                        targets = spec.live_targets(
                            self.session.store, self.session.inventory, config
                        )
                    else:
                        targets = spec.targets(self.session.inventory, config)
                except Exception:
                    log.exception("targets of %s failed", spec.id)
                    continue
                entries.extend((spec, t) for t in targets)
        return entries

    @work(group="action")
    async def start_action(self, spec: ActionSpec, target: Target) -> None:
        """Plan (role check, preview) -> confirm -> execute, all through the ActionRunner."""
        from console.actions import ActionRefused
        from console.screens.confirm import ConfirmRequest, ConfirmScreen

        session = self.session
        if session is None or session.runner is None:
            return
        runner = session.runner
        plan = await self._plan_with_inputs(spec, target)
        if plan is None:
            return
        previews = plan.previews
        request = ConfirmRequest(
            title=f"{spec.label}" + ("  (destructive)" if spec.destructive else ""),
            targets=tuple(t.name for t in plan.targets),
            preview=tuple(line for p in previews for line in p.lines),
            warnings=tuple(w for p in previews for w in p.warnings),
            confirm_text=plan.confirm_text,
        )
        typed = await self.push_screen_wait(ConfirmScreen(request))
        if typed is None:
            runner.cancel(plan)
            self.notify("cancelled: nothing was done", title=spec.label)
            return
        try:
            results = await runner.execute(plan, typed if plan.confirm_text else None)
        except ActionRefused as exc:
            self.notify(str(exc), severity="error", title="refused", timeout=10)
            return
        for result in results:
            outcome = getattr(result, "outcome", "?")
            detail = getattr(result, "detail", "")
            self.notify(
                f"{result.target}: {outcome} {detail}",
                title=spec.label,
                severity="information" if outcome == "ok" else "error",
                timeout=10,
            )

    async def _plan_with_inputs(self, spec: ActionSpec, target: Target) -> Plan | None:
        """Ask for the action's inputs (if it has any) until the runner accepts them."""
        from console.actions import ActionInputError, ActionRefused
        from console.screens.inputs import InputsScreen

        assert self.session is not None and self.session.runner is not None
        values: dict[str, Any] = {}
        error = ""
        while True:
            if spec.inputs.model_fields:
                title = f"{spec.label}: {target.name}"
                entered = await self.push_screen_wait(
                    InputsScreen(title, spec.inputs, values, error)
                )
                if entered is None:
                    self.notify("cancelled: nothing was done", title=spec.label)
                    return None
                values = entered
            try:
                return await self.session.runner.plan(spec, [target], values)
            except ActionInputError as exc:
                error = str(exc)  # the form shows it and stays open
                if not spec.inputs.model_fields:
                    self.notify(error, severity="error", title="refused", timeout=10)
                    return None
            except ActionRefused as exc:
                self.notify(str(exc), severity="error", title="refused", timeout=10)
                return None

    # ------------------------------------------------------------------ quit

    def busy_work(self) -> list[str]:
        """What the guided flows are running now (a rollout, a drill)."""
        found: list[str] = []
        for check in self.busy_checks:
            try:
                found.extend(check())
            except Exception:  # a flow's bookkeeping must never stop the operator quitting
                log.exception("busy check failed")
        return found

    async def action_quit(self) -> None:
        session = self.session
        if session is not None and session.runner is not None and session.runner.in_flight:
            self.notify("an action is still running: wait for its result", severity="warning")
            return
        busy = self.busy_work()
        now = time.monotonic()
        if busy and (self._quit_armed_at is None or now - self._quit_armed_at > QUIT_AGAIN_S):
            # Quitting interrupts them between steps; they resume later, but say so first.
            self._quit_armed_at = now
            self.notify(
                f"{', '.join(busy)} still running: quitting interrupts it between steps "
                f"(resume it later). Press q again within {QUIT_AGAIN_S:.0f} s to quit.",
                severity="warning",
                timeout=QUIT_AGAIN_S,
            )
            return
        if session is not None:
            await session.stop()
        self.exit(0)
