"""A refresh at fleet size costs what changed: rows of changed nodes only, no needless repaint."""

from __future__ import annotations

import asyncio
import random

import pytest

import console.app as app_module
from console.app import DcConsoleApp
from console.widgets.pane import Pane
from plugins.gpu.panes import GpuGridPane
from tests.bench.synthetic import fleet_session, touch


async def _attached(app: DcConsoleApp, pilot: object) -> None:
    while app.layout_view is None:
        await pilot.pause(0.05)  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]


async def test_a_refresh_rebuilds_and_redraws_only_the_rows_of_nodes_whose_readings_changed() -> (
    None
):
    session = fleet_session(60, layout="gpu")
    app = DcConsoleApp(session.options, session=session)
    async with app.run_test(size=(120, 40)) as pilot:
        await _attached(app, pilot)
        grid = app.query_one(GpuGridPane)
        before = dict(grid.rows.values)
        drawn = grid.table.lines_refreshed
        changed = ["gpu0002", "gpu0005", "gpu0041"]
        touch(session, changed, random.Random(3))
        app._refresh_panes()
        after = grid.rows.values
        assert [n for n in after if after[n] is not before[n]] == sorted(changed)
        assert 1 <= grid.table.lines_refreshed - drawn <= 3
        assert len(grid.table.rows) == 60


async def test_a_pane_whose_title_is_set_to_the_same_text_is_not_repainted() -> None:
    session = fleet_session(4, layout="gpu")
    app = DcConsoleApp(session.options, session=session)
    async with app.run_test(size=(120, 40)) as pilot:
        await _attached(app, pilot)
        pane = app.query_one(GpuGridPane)
        repaints = 0
        original = Pane.refresh

        def counting(self: Pane, *args: object, **kwargs: object) -> object:
            nonlocal repaints
            repaints += self is pane
            return original(self, *args, **kwargs)  # type: ignore[arg-type]

        Pane.refresh = counting  # type: ignore[method-assign]
        try:
            pane.border_title = pane.border_title
            pane.border_subtitle = pane.border_subtitle
            assert repaints == 0
            pane.border_title = "something else"
            assert repaints == 1
            assert pane.border_title == "something else"
        finally:
            Pane.refresh = original  # type: ignore[method-assign]


async def test_an_idle_console_does_not_redraw_and_a_change_is_shown_within_half_a_second() -> None:
    session = fleet_session(4, layout="gpu")
    app = DcConsoleApp(session.options, session=session)
    async with app.run_test(size=(120, 40)) as pilot:
        await _attached(app, pilot)
        view = app.layout_view
        assert view is not None
        redraws = 0
        original = view.data_changed

        def counting() -> None:
            nonlocal redraws
            redraws += 1
            original()

        view.data_changed = counting  # type: ignore[method-assign]
        await pilot.pause(1.2)
        assert redraws == 0  # nothing changed: no wake-up, no redraw
        touch(session, ["gpu0002"], random.Random(5))
        await pilot.pause(0.7)
        assert redraws == 1  # the change, shown at the refresh pace


async def test_panes_turn_stale_by_the_clock_alone_when_nothing_is_collected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The poller stopped (or hangs): nothing changes in the Store, yet the panes must
    # stop saying "ok" once their data is older than three intervals.
    monkeypatch.setattr(app_module, "AGE_REDRAW_S", 0.2)
    session = fleet_session(4, layout="gpu", interval=0.1)
    app = DcConsoleApp(session.options, session=session)
    async with app.run_test(size=(120, 40)) as pilot:
        await _attached(app, pilot)
        pane = app.query_one(GpuGridPane)
        assert pane.status.state == "ok"
        deadline = asyncio.get_running_loop().time() + 5.0
        while pane.status.state != "stale":
            assert asyncio.get_running_loop().time() < deadline, pane.status
            await pilot.pause(0.1)
        assert "stale" in str(pane.border_subtitle)
