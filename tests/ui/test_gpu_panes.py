"""Pilot: the gpu layout (key 3) on the demo session: grid, metric toggle, a lost GPU, the card."""

from __future__ import annotations

from console.app import DcConsoleApp
from console.screens.node_card import NodeCardScreen
from console.session import Session
from plugins.gpu.panes import GpuGridPane, UnhealthyPane
from tests.ui.conftest import press_layout

TRAIN = [f"gpu{i:03d}" for i in range(1, 9)]


async def test_gpu_layout_grid_toggle_lost_gpu_and_mig_card(demo_session: Session) -> None:
    lab = demo_session.lab
    assert lab is not None and demo_session.poller is not None
    app = DcConsoleApp(demo_session.options, session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await press_layout(pilot, "3", "gpu")
        await pilot.pause()
        grid = app.query_one(GpuGridPane)
        rows = {r.key: r for r in grid.table.rows}
        assert [k for k in rows if k.startswith("gpu")] == TRAIN
        for node in TRAIN:  # 8 training nodes x 8 GPUs: one two-cell heat glyph per GPU
            assert len(str(rows[node].cells[2])) == 16, node
        assert "?" not in str(rows["gpu001"].cells[2])  # util known on every GPU

        before = {k: str(r.cells[3]) for k, r in rows.items()}
        assert grid.metric == "util" and before["gpu001"].endswith("%")
        grid.table.focus()
        await pilot.press("m")
        await pilot.pause()
        assert grid.metric == "mem" and "mem (m)" in str(grid.border_title)
        await pilot.press("m")
        await pilot.pause()
        temps = {r.key: str(r.cells[3]) for r in grid.table.rows}
        assert grid.metric == "temp" and temps["gpu001"].endswith("°") and temps != before

        lab.faults.inject("gpu.fell_off_bus", "gpu003", params={"gpu": 2})
        await demo_session.poller.poll_once()
        # The panes redraw on the app's refresh tick (every 0.5 s): wait for it.
        for _ in range(100):
            row = next(r for r in grid.table.rows if r.key == "gpu003")
            if str(row.cells[0]) == "✖":
                break
            await pilot.pause(0.05)
        row = next(r for r in grid.table.rows if r.key == "gpu003")
        cells = str(row.cells[2])
        assert str(row.cells[0]) == "✖" and cells[4] == "✖" and cells.count("✖") == 1
        unhealthy = app.query_one(UnhealthyPane)
        lost = next(r for r in unhealthy.table.rows if r.key == "gpu003/2")
        assert "lost (fallen off the bus)" in str(lost.cells[3]) and str(lost.cells[0]) == "✖"

        # The node card of an inference node: its GPUs and GPU 0's MIG layout.
        await pilot.press("end")
        await pilot.press("up")
        await pilot.pause()
        current = grid.table.current_row
        assert current is not None and current.key == "inf01"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, NodeCardScreen)
        text = str(app.screen.body.render())
        assert "GPUs" in text and "NVIDIA A30 · 550.90.07" in text
        assert "MIG 0" in text and "2g.12gb in use" in text and "2g.12gb free" in text
        assert "driver" in text and "550.90.07" in text and "NUMA 0" in text
