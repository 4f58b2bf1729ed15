"""Places panes as a layout says: rows of panes with heights and widths."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Static

from console.layouts import Layout
from console.plugin import PaneSpec
from console.widgets.pane import NodeFilter, Pane, PaneContext

log = logging.getLogger(__name__)


def load_factory(path: str) -> Callable[[PaneContext], Widget]:
    """Import ``module:attribute``; the pane's plugin is imported only now."""
    module, _, attr = path.partition(":")
    factory: Callable[[PaneContext], Widget] = getattr(importlib.import_module(module), attr)
    return factory


class MissingPane(Static):
    """Stands where a layout names a pane that no plugin provides, or that failed."""

    DEFAULT_CSS = """
    MissingPane { border: round $error; height: 1fr; color: $text-muted; }
    """

    def __init__(self, pane_id: str, why: str) -> None:
        super().__init__(Text(f"{pane_id}: {why}"))
        self.border_title = pane_id


class LayoutView(Vertical):
    """One layout's panes; ``data_changed`` forwards store/filter changes to each."""

    DEFAULT_CSS = """
    LayoutView { height: 1fr; }
    LayoutView > Horizontal { height: 1fr; }
    """

    def __init__(
        self,
        layout: Layout,
        panes: dict[str, PaneSpec],
        make_context: Callable[[PaneSpec, dict[str, Any]], PaneContext],
    ) -> None:
        super().__init__(id=f"layout-{layout.name}")
        self.layout_spec = layout
        self._specs = panes
        self._make_context = make_context

    def compose(self) -> ComposeResult:
        for row in self.layout_spec.rows:
            with Horizontal() as h:
                h.styles.height = row.height
                for placed in row.panes:
                    widget = self._build(placed.id, placed.title, dict(placed.options))
                    widget.styles.width = placed.width
                    yield widget

    def _build(self, pane_id: str, title: str | None, options: dict[str, Any]) -> Widget:
        spec = self._specs.get(pane_id)
        if spec is None:
            return MissingPane(pane_id, "no installed plugin provides this pane")
        try:
            factory = load_factory(spec.factory)
            if title:
                spec = PaneSpec(spec.id, title, spec.factory, spec.collectors)
            return factory(self._make_context(spec, options))
        except Exception as exc:  # a broken pane must not take the console down
            log.exception("pane %s failed to build", pane_id)
            return MissingPane(pane_id, f"failed to load: {exc}")

    def data_changed(self) -> None:
        for pane in self.query(Pane):
            try:
                pane.data_changed()
            except Exception:
                log.exception("pane %s failed to update", pane.ctx.spec.id)

    def ages_changed(self) -> None:
        """Only time went by: each pane says again whether its data is current."""
        for pane in self.query(Pane):
            try:
                pane.show_status()
            except Exception:
                log.exception("pane %s failed to show its state", pane.ctx.spec.id)


__all__ = ["LayoutView", "MissingPane", "NodeFilter", "load_factory"]
