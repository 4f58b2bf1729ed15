"""`w` `s`: the bring-up scorecard, live.

The phases and their items, each with a mark (✓ pass, ✗ fail, ? unknown or
not signed off: readable without colour), re-judged whenever the Store
changes. The selected item's evidence is shown below the list. ``s`` signs off
a manual item (a note is required; audited), ``u`` withdraws a sign-off,
``r`` keeps the current evaluation in the history, ``x`` exports it to a file.
The engine is console.wizards.scorecard_* (no Textual).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from console.screens.prompt import Field, PromptScreen
from console.wizards.scorecard_flow import ScorecardFlow, SignRefused, flow_for_session
from console.wizards.scorecard_result import ItemResult, PhaseResult, ScorecardResult

if TYPE_CHECKING:  # pragma: no cover
    from console.app import DcConsoleApp

log = logging.getLogger(__name__)

REFRESH_S = 1.0
"""How often the screen looks whether the Store moved (then it re-judges every item)."""
BUSY_SHARE = 0.05
"""At most this share of the event loop goes to judging: a fleet whose evaluation takes
100 ms is re-judged every 2 s, not every second."""
RELOAD_S = 30.0
"""Sign-offs (from other consoles) and the drill history are read again this often."""

STYLE = {"pass": "green", "fail": "bold red", "unknown": "yellow"}


def open_scorecard(app: DcConsoleApp) -> ScorecardScreen | None:
    """The flow menu's factory: the scorecard of the running console's site."""
    from console.inventory import InventoryError

    session = app.session
    if session is None:
        return None
    try:
        flow = flow_for_session(session)
    except InventoryError as exc:
        first = exc.problems[0] if exc.problems else exc
        app.notify(f"the scorecard checklist is not valid: {first}", severity="error", timeout=15)
        return None
    return ScorecardScreen(flow)


def item_prompt(item: ItemResult) -> Text:
    return Text.assemble(
        ("  ", ""),
        (item.mark, STYLE[item.status]),
        f" {item.id:<18} ",
        item.title,
        no_wrap=True,
        overflow="ellipsis",
    )


def phase_prompt(phase: PhaseResult) -> Text:
    mark = "✓" if phase.complete else " "
    return Text.assemble(
        (f"{mark} {phase.title}: {phase.progress}", "bold"), no_wrap=True, overflow="ellipsis"
    )


def evidence_text(item: ItemResult, phase: PhaseResult) -> Text:
    """What the selected item is, its verdict, why, and what was seen."""
    out = Text()
    out.append(item.mark, STYLE[item.status])
    out.append(f" {item.id}", "bold")
    out.append(f" · {item.status} · {phase.title}\n")
    out.append(f"{item.title}\n")
    out.append(f"{item.summary}\n")
    if item.kind == "manual":
        if item.signed_by:
            out.append(f"signed off by {item.signed_by} at {item.signed_at}\n", "dim")
        else:
            out.append("s: sign off (a note is required)\n", "dim")
    elif item.check:
        out.append(f"check {item.check}\n", "dim")
    for line in item.evidence:
        if line != item.summary:
            out.append(f" - {line}\n")
    return out


class ScorecardScreen(Screen[None]):
    """The scorecard of the console's site, live from the Store."""

    DEFAULT_CSS = """
    ScorecardScreen #sc-title { height: 1; text-style: bold; }
    ScorecardScreen #sc-list {
        height: 1fr; border: none; text-wrap: nowrap; text-overflow: ellipsis;
    }
    ScorecardScreen #sc-evidence-box {
        height: 9; border-top: solid $accent; padding: 0 1;
    }
    """
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("s", "sign", "Sign off"),
        Binding("u", "revoke", "Revoke"),
        Binding("r", "record", "Record"),
        Binding("x", "export", "Export"),
    ]

    def __init__(self, flow: ScorecardFlow) -> None:
        super().__init__()
        self.flow = flow
        self.result: ScorecardResult | None = None
        """The latest evaluation shown."""
        self._version: int | None = None
        self._loaded = False
        self._next_eval = 0.0
        self._loaded_at = 0.0

    def compose(self) -> ComposeResult:
        yield Static(Text(f"Bring-up scorecard · {self.flow.site} · loading…"), id="sc-title")
        yield OptionList(*self._skeleton(), id="sc-list")
        with VerticalScroll(id="sc-evidence-box"):
            yield Static("", id="sc-evidence")
        yield Footer()

    def _skeleton(self) -> list[Option]:
        """One line per phase and item, ids fixed: later evaluations replace the prompts."""
        options: list[Option] = []
        for phase in self.flow.checklist.doc.phases:
            options.append(
                Option(Text(phase.title, style="bold"), id=f"phase:{phase.id}", disabled=True)
            )
            options += [Option(Text(f"  ? {i.id:<18} {i.title}"), id=i.id) for i in phase.items]
        return options

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()
        self._load()
        self.set_interval(REFRESH_S, self._tick)

    @work(exclusive=True, group="scorecard-load")
    async def _load(self) -> None:
        self._loaded_at = time.monotonic()
        await self.flow.load()
        self._loaded = True
        self.refresh_scorecard()

    def _tick(self) -> None:
        if not self._loaded:
            return
        now = time.monotonic()
        if now - self._loaded_at > RELOAD_S:
            self._load()
        elif self.flow.store.version != self._version and now >= self._next_eval:
            self.refresh_scorecard()

    def refresh_scorecard(self) -> None:
        """Judge every item now and redraw what changed."""
        self._version = self.flow.store.version
        started = time.monotonic()
        result = self.flow.evaluate()
        self._next_eval = started + (time.monotonic() - started) / BUSY_SHARE
        old = self.result
        self.result = result
        listing = self.query_one(OptionList)
        for phase in result.phases:
            before = next((p for p in old.phases if p.id == phase.id), None) if old else None
            if before is None or before.progress != phase.progress:
                listing.replace_option_prompt(f"phase:{phase.id}", phase_prompt(phase))
            for item in phase.items:
                prev = old.item(item.id) if old else None
                if prev is None or (prev.status, prev.title) != (item.status, item.title):
                    listing.replace_option_prompt(item.id, item_prompt(item))
        signer = self.flow.signer
        who = f"{signer.operator.user} ({signer.role.name.lower()})"
        self.query_one("#sc-title", Static).update(
            Text(f"{result.title} · {result.site} · {result.summary()} · {who}")
        )
        self._show_selected()

    # ------------------------------------------------------------------ selection

    def selected(self) -> tuple[ItemResult, PhaseResult] | None:
        listing = self.query_one(OptionList)
        if self.result is None or listing.highlighted is None:
            return None
        option_id = listing.get_option_at_index(listing.highlighted).id or ""
        for phase in self.result.phases:
            if option_id == f"phase:{phase.id}" and phase.items:
                return phase.items[0], phase
            for item in phase.items:
                if item.id == option_id:
                    return item, phase
        return None

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._show_selected()

    def _show_selected(self) -> None:
        found = self.selected()
        box = self.query_one("#sc-evidence", Static)
        if found is None:
            box.update(Text("↑/↓ choose an item to see its evidence", style="dim"))
            return
        box.update(evidence_text(*found))

    # ------------------------------------------------------------------ actions

    def action_sign(self) -> None:
        self._sign(revoke=False)

    def action_revoke(self) -> None:
        self._sign(revoke=True)

    @work(exclusive=True, group="scorecard-act")
    async def _sign(self, revoke: bool) -> None:
        found = self.selected()
        if found is None:
            return
        item, _ = found
        if item.kind != "manual":
            self.notify(f"{item.id} is checked live; only manual items are signed off")
            return
        verb = "Withdraw the sign-off of" if revoke else "Sign off"
        values = await self.app.push_screen_wait(
            PromptScreen(
                f"{verb} {item.id}",
                [Field("Note: what was checked, and where it is recorded")],
                hint=item.title,
            )
        )
        if not values:
            return
        try:
            await self.flow.sign(item.id, values[0], revoke=revoke)
        except SignRefused as exc:
            self.notify(f"refused: {exc}", severity="error", timeout=10)
            return
        self.notify(f"{item.id}: {'sign-off withdrawn' if revoke else 'signed off'}")
        self.refresh_scorecard()

    @work(exclusive=True, group="scorecard-act")
    async def action_record(self) -> None:
        if self.result is None:
            return
        kept = await self.flow.record(self.flow.evaluate())
        self.notify(f"recorded snapshot {kept.id}: {kept.summary()}")

    @work(exclusive=True, group="scorecard-act")
    async def action_export(self) -> None:
        if self.result is None:
            return
        values = await self.app.push_screen_wait(
            PromptScreen(
                "Export the scorecard",
                [
                    Field("File", str(self.flow.default_export())),
                    Field("Format: md or json", "md"),
                ],
            )
        )
        if not values:
            return
        path, fmt = Path(values[0]), values[1].lower()
        if fmt == "json" and path.suffix == ".md":
            path = path.with_suffix(".json")
        try:
            kept = await self.flow.export(path, fmt)
        except (OSError, ValueError) as exc:
            self.notify(f"export failed: {exc}", severity="error", timeout=10)
            return
        self.notify(f"wrote {path} (snapshot {kept.id})", timeout=10)
