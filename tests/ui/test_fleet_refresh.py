"""A refresh at fleet size costs what changed: rows of changed nodes only, no needless repaint."""

from __future__ import annotations

import random

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
