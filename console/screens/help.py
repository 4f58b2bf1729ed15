"""`?`: the keys, and what the filter understands."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

HELP = """\
[b]Keys[/b]
  /          filter: node sets gpu[001-004], @rack:R01, @role:gpu-train,
             @room:NAME, @slurm:NAME, @k8s:NAME, @partition:NAME, text
  escape     clear the filter / close a screen
  enter      open the node card of the selected row
  tab        next pane            shift+tab  previous pane
  a          alerts               l          audit log
  w          guided flows: rollouts, drills, runbooks, scorecard,
             incidents and approvals (w then i: approve a second
             operator's request, hand off to the next on-call)
  r          on an alert or a node card: the runbooks that answer it
  o          overview layout      1-9        other layouts
  ctrl+p     command palette: every action you may run, by target
  ?          this help            q          quit

[b]States[/b]  ● ok   ▲ warning   ✖ critical   ? unknown
  Every pane says loading, ok, stale (with the age of its data),
  failed (with the error) or empty.

[b]Actions[/b]  Every change shows a preview, asks for confirmation
  (destructive ones: type the target's name) and is written to the
  audit log before it runs. READ-ONLY refuses every change.
"""


class HelpScreen(ModalScreen[None]):
    """A scrollable help text; any of escape, q or ? closes it."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 78; max-width: 100%; height: auto; max-height: 100%;
        border: round $accent; padding: 0 1; background: $surface;
    }
    """
    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss", "Close"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(HELP)

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
