"""The one-line header: site, badges, clock and alert count."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.text import Text
from textual.widgets import Static


class StatusHeader(Static):
    """`` dcc  site dc-demo · DEMO · READ-ONLY · 14:02 · 3 alerts     ? help``.

    The clock shows minutes and wakes the console once a minute: a clock ticking every
    second was, on its own, more than the idle budget (0.5% of a core; `make bench`).
    """

    DEFAULT_CSS = """
    StatusHeader {
        dock: top;
        height: 1;
        background: $panel;
        color: $text;
    }
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__("", id="header")
        self.clock = clock
        self.site = "…"
        self.demo = False
        self.read_only = False
        self.alerts = (0, 0)
        """(critical, warning) counts."""
        self.note = "starting"
        self.viewer = False
        """The operator's role only lets them look (no roles file on a real site)."""
        self.approvals = 0
        """Two-person approvals asked by other operators and not yet decided."""
        self.waiting = 0
        """This console's own approval requests still waiting for a second operator."""

        self._shown: Text | None = None

    def on_mount(self) -> None:
        self._tick()

    def _tick(self) -> None:
        self.redraw()
        # At the next minute (a little after it, so the new minute shows).
        self.set_timer(60.0 - self.clock() % 60.0 + 0.05, self._tick, name="header clock")

    def on_resize(self) -> None:
        self.redraw()

    def set_state(
        self,
        *,
        site: str | None = None,
        demo: bool | None = None,
        read_only: bool | None = None,
        viewer: bool | None = None,
        alerts: tuple[int, int] | None = None,
        note: str | None = None,
        approvals: int | None = None,
        waiting: int | None = None,
    ) -> None:
        if site is not None:
            self.site = site
        if demo is not None:
            self.demo = demo
        if read_only is not None:
            self.read_only = read_only
        if viewer is not None:
            self.viewer = viewer
        if alerts is not None:
            self.alerts = alerts
        if note is not None:
            self.note = note
        if approvals is not None:
            self.approvals = approvals
        if waiting is not None:
            self.waiting = waiting
        self.redraw()

    def redraw(self) -> None:
        text = Text(" dcc ", style="bold reverse")
        text.append(f" site {self.site}")
        if self.demo:
            text.append(" · ")
            text.append("DEMO", style="bold reverse")
        if self.read_only:
            text.append(" · ")
            text.append("READ-ONLY", style="bold reverse")
        elif self.viewer:
            text.append(" · ")
            text.append("VIEWER", style="bold reverse")
        text.append(" · " + time.strftime("%H:%M", time.localtime(self.clock())))
        crit, warn = self.alerts
        total = crit + warn
        text.append(" · ")
        # With NO_COLOR, colours turn to greys: reverse video keeps the count visible.
        if self.app.no_color:
            style = "bold reverse" if crit else "bold" if warn else ""
        else:
            style = "bold reverse red" if crit else "bold yellow" if warn else ""
        text.append(f"{total} alert{'s' if total != 1 else ''}", style=style)
        if crit:
            text.append(f" ({crit} crit)", style=style)
        if self.approvals:
            text.append(" · ")
            plural = "s" if self.approvals != 1 else ""
            text.append(f"{self.approvals} approval{plural} pending", style="bold reverse")
        if self.waiting:
            text.append(" · ")
            text.append("waiting for a second operator", style="bold reverse")
        if self.note:
            text.append(f" · {self.note}", style="italic")
        right = "? help "
        pad = max(1, self.size.width - text.cell_len - len(right))
        text.append(" " * pad + right)
        text.truncate(max(self.size.width, 1))
        if text == self._shown:
            return  # set_state runs on every refresh: an unchanged header costs nothing
        self._shown = text
        # Repaint only (one line, fixed size): a layout pass would repaint the whole screen.
        self.update(text, layout=False)
