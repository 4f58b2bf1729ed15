"""The base of every pane: a titled box that draws its data's state.

Every pane shows the same states (STYLE.md): loading, ok, stale (with the age),
failed (with the error) and empty. Subclasses implement ``update_view``, which
the app calls when the Store or the filter changed (throttled), and read only
from ``self.ctx.store``: panes never open connections.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from console.inventory.model import Inventory
from console.plugin import PaneSpec
from console.sanitize import clean
from console.store import PaneStatus, StoreView


def format_age(seconds: float | None) -> str:
    """``42s``, ``3m``, ``2h``: the age of a value, short enough for a cell."""
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"


class NodeFilter:
    """The operator's current filter, shared by every pane (see console.filtering)."""

    def __init__(self, text: str = "", nodes: frozenset[str] | None = None) -> None:
        self.text = text
        self.nodes = nodes
        """The node names that match, or None when there is no filter."""

    def __call__(self, node: str | None) -> bool:
        if self.nodes is None:
            return True
        return node is not None and node in self.nodes

    @property
    def active(self) -> bool:
        return self.nodes is not None


@dataclass(slots=True)
class PaneContext:
    """What a pane gets: read-only views, its options and the shared filter."""

    spec: PaneSpec
    store: StoreView
    inventory: Inventory
    config: Any = None
    options: Mapping[str, Any] = field(default_factory=dict)
    node_filter: NodeFilter = field(default_factory=NodeFilter)
    clock: Callable[[], float] | None = None


class Pane(Vertical):
    """A box with a title, a state line, and a body the subclass composes."""

    DEFAULT_CSS = """
    Pane {
        border: round $primary-darken-2;
        border-title-color: $text;
        border-subtitle-color: $text-muted;
        height: 1fr;
        padding: 0 0;
    }
    Pane:focus-within { border: round $accent; }
    Pane > .pane--message { height: auto; color: $text-muted; }
    Pane > .pane--message.-failed { color: $error; }
    Pane > .pane--message.-stale { color: $warning; }
    """

    def __init__(self, ctx: PaneContext, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="pane")
        self.ctx = ctx
        self.border_title = ctx.spec.title
        self._empty_text: str | None = None
        self.status: PaneStatus = PaneStatus("loading")
        self._message = Static("", classes="pane--message")

    def compose(self) -> ComposeResult:
        yield self._message
        yield from self.compose_body()

    def compose_body(self) -> ComposeResult:
        """The pane's own widgets, under the state line."""
        yield from ()

    def on_mount(self) -> None:
        self.data_changed()

    # ------------------------------------------------------------------ updating

    def status_targets(self) -> Iterable[str] | None:
        """Targets whose collectors decide this pane's state (None: all of them)."""
        return None

    def update_view(self) -> None:
        """Redraw from the Store. Subclasses override."""

    def set_empty(self, empty: bool, text: str = "nothing to show") -> None:
        """Say the data is there but there is nothing to list (not the same as loading)."""
        self._empty_text = text if empty else None

    def data_changed(self) -> None:
        """Called by the app when the Store or the filter changed."""
        self.update_view()
        self._show_status()

    def _show_status(self) -> None:
        if self.ctx.spec.collectors:
            status = self.ctx.store.pane_status(self.ctx.spec.collectors, self.status_targets())
        else:
            status = PaneStatus("ok")
        if status.state == "ok" and self._empty_text is not None:
            status = PaneStatus("empty", error=self._empty_text)
        self.status = status
        subtitle = {
            "loading": "loading…",
            "ok": "ok" if not status.error else f"ok · {status.error}",
            "stale": f"stale {format_age(status.age)}",
            "failed": "failed",
            "empty": "empty",
        }[status.state]
        if self.ctx.node_filter.active:
            subtitle += f" · filter {self.ctx.node_filter.text}"
        self.border_subtitle = escape(clean(subtitle))
        message = {
            "loading": "loading…",
            "ok": "",
            "stale": f"stale: last good data {format_age(status.age)} ago"
            + (f" ({status.error})" if status.error else ""),
            "failed": f"failed: {status.error}",
            "empty": status.error or "nothing to show",
        }[status.state]
        self._message.update(Text(clean(message)))
        self._message.display = bool(message)
        self._message.set_class(status.state == "failed", "-failed")
        self._message.set_class(status.state == "stale", "-stale")
