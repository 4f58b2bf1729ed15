"""The base of every pane: a titled box that draws its data's state.

Every pane shows the same states (STYLE.md): loading, ok, stale (with the age),
failed (with the error) and empty. Subclasses implement ``update_view``, which
the app calls when the Store or the filter changed (throttled), and read only
from ``self.ctx.store``: panes never open connections.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from rich.markup import escape
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Static

from console.inventory.model import Inventory
from console.plugin import PaneSpec
from console.sanitize import clean
from console.store import PaneStatus, StoreView

T = TypeVar("T")


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


class PerNode(Generic[T]):
    """Values a pane computes per node, redone only for nodes whose readings changed.

    At fleet size a pane cannot rebuild 1,000 rows on every refresh: ``refresh``
    computes every node the first time (and whenever the filter or the inventory
    changed, or after ``reset``), then only the nodes ``Store.changed_nodes`` names.
    ``compute`` must read nothing but that node's readings (its target and targets
    whose ``Reading.node`` is it).

    While a poll round sweeps the fleet, hundreds of nodes change between two
    refreshes: past ``min_nodes``, work stops at ``budget_s`` and the rest is
    redone on the next refresh, so the keyboard never waits for the fleet.
    """

    def __init__(
        self, plugin: str | None = None, budget_s: float = 0.003, min_nodes: int = 16
    ) -> None:
        self.plugin = plugin
        """When set, only changes of that plugin's readings count (``compute`` reads no other)."""
        self.budget_s = budget_s
        self.min_nodes = min_nodes
        self.values: dict[str, T] = {}
        """Node -> value, in the order of the names last given in full."""
        self._since: int | None = None
        self._key: tuple[object, ...] = ()
        self._pending: set[str] = set()

    def reset(self) -> None:
        """Recompute every node next time (an option of the pane changed)."""
        self._since = None

    def refresh(
        self,
        ctx: PaneContext,
        names: Callable[[], Iterable[str]],
        compute: Callable[[str], T],
    ) -> dict[str, T]:
        """Bring ``values`` up to date; ``names`` (the nodes to show, in order) is asked
        only when everything is recomputed."""
        store = ctx.store
        key = (ctx.inventory, ctx.node_filter.text, ctx.node_filter.nodes)
        since, self._since = self._since, store.version
        if since is None or key != self._key:
            self._key = key
            self._pending.clear()
            self.values = {name: compute(name) for name in names()}
            return self.values
        pending = self._pending
        pending.update(n for n in store.changed_nodes(since, self.plugin) if n in self.values)
        deadline = time.perf_counter() + self.budget_s
        for done, name in enumerate(list(pending)):
            if done >= self.min_nodes and time.perf_counter() > deadline:
                break  # the rest on the next refresh
            pending.discard(name)
            self.values[name] = compute(name)
        return self.values


_UNSET = object()


class _QuietTitle:
    """A border title that repaints its pane only when it changes.

    Textual repaints the whole widget, children included, on every assignment of
    ``border_title``/``border_subtitle``: a pane that sets its title on each refresh
    would redraw every visible row (kilobytes to the terminal) for nothing.
    """

    def __set_name__(self, owner: type[Widget], name: str) -> None:
        self._base: Any = inspect.getattr_static(Widget, name)
        self._shown = f"_dcc_shown_{name}"

    def __get__(self, obj: Widget | None, objtype: type[Widget] | None = None) -> Any:
        return self if obj is None else self._base.__get__(obj, objtype)

    def __set__(self, obj: Widget, value: Any) -> None:
        if getattr(obj, self._shown, _UNSET) == value:
            return
        setattr(obj, self._shown, value)
        self._base.__set__(obj, value)


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

    border_title = _QuietTitle()  # type: ignore[assignment]
    border_subtitle = _QuietTitle()  # type: ignore[assignment]

    def __init__(self, ctx: PaneContext, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="pane")
        self.ctx = ctx
        self.border_title = ctx.spec.title
        self._empty_text: str | None = None
        self.status: PaneStatus = PaneStatus("loading")
        self._message = Static("", classes="pane--message")
        self._shown_message: str | None = None
        self._state_subtitle = ""

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

    def subtitle_note(self) -> str:
        """What the pane shows before its state in the bottom border (e.g. lines scrolled off)."""
        return ""

    def show_subtitle(self) -> None:
        """Redraw the bottom border: the pane's note, then its state (when the note changed)."""
        note = self.subtitle_note()
        text = f"{note} · {self._state_subtitle}" if note else self._state_subtitle
        self.border_subtitle = escape(clean(text))

    def set_empty(self, empty: bool, text: str = "nothing to show") -> None:
        """Say the data is there but there is nothing to list (not the same as loading)."""
        self._empty_text = text if empty else None

    def data_changed(self) -> None:
        """Called by the app when the Store or the filter changed."""
        self.update_view()
        self.show_status()

    def show_status(self) -> None:
        """Judge and show the pane's state (loading, ok, stale with its age, failed)."""
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
        self._state_subtitle = subtitle
        self.show_subtitle()
        message = {
            "loading": "loading…",
            "ok": "",
            "stale": f"stale: last good data {format_age(status.age)} ago"
            + (f" ({status.error})" if status.error else ""),
            "failed": f"failed: {status.error}",
            "empty": status.error or "nothing to show",
        }[status.state]
        message = clean(message)
        if message == self._shown_message:
            return  # redone on every refresh: touch the widget only when it changed
        self._shown_message = message
        self._message.update(Text(message))
        self._message.display = bool(message)
        self._message.set_class(status.state == "failed", "-failed")
        self._message.set_class(status.state == "stale", "-stale")
