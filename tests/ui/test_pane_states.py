"""Every pane draws the same states: loading, ok, stale (with age), failed (with error), empty."""

from __future__ import annotations

from typing import Any

from textual.app import App, ComposeResult
from textual.widgets import Static

from console.inventory import load_inventory
from console.plugin import PaneSpec
from console.session import DEMO_INVENTORY
from console.store import Store
from console.widgets.pane import Pane, PaneContext

NOW = [1000.0]


class ListPane(Pane):
    """A pane that lists nothing unless told to."""

    items: list[str] = []

    def update_view(self) -> None:
        self.set_empty(not self.items, "no items here")


class PaneApp(App[None]):
    def __init__(self, store: Store) -> None:
        super().__init__()
        spec = PaneSpec("test.list", "Things", "unused", collectors=("test.read",))
        self.pane = ListPane(PaneContext(spec, store, load_inventory(DEMO_INVENTORY)))

    def compose(self) -> ComposeResult:
        yield self.pane


def message(app: PaneApp) -> str:
    return str(app.pane.query_one(".pane--message", Static).render())


async def run_states(store: Store, steps: list[Any]) -> list[tuple[str, str, str]]:
    app = PaneApp(store)
    seen = []
    async with app.run_test(size=(60, 10)) as pilot:
        for step in steps:
            step()
            app.pane.data_changed()
            await pilot.pause()
            seen.append((app.pane.status.state, str(app.pane.border_subtitle), message(app)))
    return seen


async def test_pane_goes_loading_ok_stale_failed_and_says_why() -> None:
    store = Store(clock=lambda: NOW[0])
    store.status("test.read", "gpu001", 10)
    ListPane.items = ["x"]

    def ok() -> None:
        store.record_attempt("test.read", "gpu001", 10, None)

    def later() -> None:
        NOW[0] += 45  # 4.5 intervals without a good read

    def fail() -> None:
        store.record_attempt("test.read", "gpu001", 10, "connection refused")

    seen = await run_states(store, [lambda: None, ok, later, fail])
    assert seen[0][0] == "loading" and "loading" in seen[0][2]
    assert seen[1][0] == "ok" and seen[1][2] == ""
    assert seen[2][0] == "stale" and "45s" in seen[2][1] and "45s" in seen[2][2]
    assert seen[3][0] == "failed" and "connection refused" in seen[3][2]


async def test_pane_with_nothing_to_list_says_empty_not_loading() -> None:
    store = Store(clock=lambda: NOW[0])
    store.record_attempt("test.read", "gpu001", 10, None)
    ListPane.items = []
    seen = await run_states(store, [lambda: None])
    assert seen[0][0] == "empty"
    assert seen[0][2] == "no items here"
