"""Pilot: the fabric layout (key 4) on the demo session, problems-only, the node card."""

from __future__ import annotations

from console.app import DcConsoleApp
from console.screens.node_card import NodeCardScreen
from console.session import Session
from plugins.infiniband.panes import FabricMatrixPane, FabricPortsPane
from tests.ui.conftest import press_layout


async def test_fabric_layout_shows_the_matrix_and_problems_only_keeps_the_degraded_node(
    demo_session: Session,
) -> None:
    lab = demo_session.lab
    assert lab is not None and demo_session.poller is not None
    lab.faults.inject("infiniband.low_rate", "gpu002", {"port": "mlx5_1/1", "gbps": 200})
    await demo_session.poller.poll_once()
    app = DcConsoleApp(demo_session.options, session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await press_layout(pilot, "4", "fabric")
        await pilot.pause()
        matrix = app.query_one(FabricMatrixPane)
        keys = [r.key for r in matrix.table.rows]
        # Every IB node of the demo (8 GPU nodes with 8 NDR ports, 2 storage nodes).
        assert sorted(keys) == [f"gpu{i:03d}" for i in range(1, 9)] + ["stor01", "stor02"]
        assert keys[0] == "gpu002"  # worst first
        first = matrix.table.rows[0]
        assert "mlx5_1/1: running 200 (HDR) < expected 400 Gb/s" in str(first.cells[4])
        assert str(first.cells[2]) == "●▲●●●●●●"
        ports = app.query_one(FabricPortsPane)
        assert len(ports.table.rows) == 8 * 8 + 2 * 2
        # The fabric collector (iblinkinfo from stor01) says which leaf port each HCA uses.
        gpu001 = next(r for r in ports.table.rows if r.key == "ib:gpu001:mlx5_0/1")
        fabric = [
            (s.last_ok, s.last_error)
            for s in demo_session.store.collector_statuses()
            if s.collector == "infiniband.fabric"
        ]
        assert str(gpu001.cells[5]) == "leaf01 [1]", fabric
        matrix.table.focus()
        await pilot.press("p")
        await pilot.pause()
        assert [r.key for r in matrix.table.rows] == ["gpu002"]
        await pilot.press("p")
        await pilot.pause()
        assert len(matrix.table.rows) == 10
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, NodeCardScreen)
        text = str(app.screen.body.render())
        assert "InfiniBand / RoCE" in text and "mlx5_1/1" in text and "200G 4X HDR" in text
