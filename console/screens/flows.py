"""`w`: the guided flows (rollouts, drills, runbooks, scorecard, incidents).

Each flow lives in its own module and is listed in ``FLOW_SCREENS``; listing it
is all the wiring it needs, so adding a flow never touches app.py. A factory
takes the app and returns the flow's screen (or None, after saying why, when
the flow cannot start in this session).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

if TYPE_CHECKING:  # pragma: no cover
    from console.app import DcConsoleApp

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FlowEntry:
    """One guided flow in the menu."""

    key: str
    """The menu's shortcut (one letter)."""
    label: str
    help: str
    factory: str
    """``module:attribute`` of ``(DcConsoleApp) -> Screen | None``."""


FLOW_SCREENS: tuple[FlowEntry, ...] = (
    FlowEntry("r", "Rollouts", "phased changes by wave", "console.screens.rollouts:open_rollouts"),
    FlowEntry("d", "Drills", "failover drills: RTO/RPO", "console.screens.drill:open_drills"),
    FlowEntry("b", "Runbooks", "on-call runbooks", "console.screens.runbook_pick:open_runbooks"),
    FlowEntry("s", "Scorecard", "bring-up, live", "console.screens.scorecard:open_scorecard"),
    FlowEntry("i", "Incidents", "hand-off, approvals", "console.screens.incidents:open_incidents"),
)
"""The flows the menu offers, in menu order. Each flow module adds its line here."""


def load_factory(entry: FlowEntry) -> Callable[[DcConsoleApp], Screen[object] | None]:
    module_name, _, attribute = entry.factory.partition(":")
    factory: Callable[[DcConsoleApp], Screen[object] | None] = getattr(
        importlib.import_module(module_name), attribute
    )
    return factory


class FlowsScreen(ModalScreen[str | None]):
    """Pick a guided flow; returns the flow's key, or None when closed."""

    DEFAULT_CSS = """
    FlowsScreen { align: center middle; }
    FlowsScreen > Vertical {
        width: 76; max-width: 100%; height: auto; max-height: 100%;
        border: round $accent; padding: 0 1; background: $surface;
    }
    FlowsScreen OptionList { height: auto; max-height: 16; border: none; }
    """
    BINDINGS = [Binding("escape,q,w", "close", "Close")]

    def __init__(self, entries: tuple[FlowEntry, ...] | None = None) -> None:
        super().__init__()
        # Read at open time, not import time: flows may be added after import.
        self.entries = FLOW_SCREENS if entries is None else entries

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text("Guided flows", style="bold"))
            if not self.entries:
                yield Static("no guided flow is installed")
            yield OptionList(
                *(
                    Option(Text.assemble((f"{e.key}  ", "bold"), e.label, f"  {e.help}"), id=e.key)
                    for e in self.entries
                ),
                id="flows",
            )

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_key(self, event: events.Key) -> None:
        if any(e.key == event.key for e in self.entries):
            event.stop()
            self.dismiss(event.key)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_close(self) -> None:
        self.dismiss(None)
