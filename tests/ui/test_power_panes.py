"""Pilot: the power layout (key 2) shows the rack elevation and room summary from the live lab."""

from __future__ import annotations

import asyncio
import time

from console.app import DcConsoleApp
from console.session import Session
from plugins.power.panes import RackElevationPane, RoomSummaryPane
from tests.ui.conftest import press_layout


async def test_power_layout_shows_racks_nodes_in_u_slots_and_the_room_summary(
    demo_session: Session,
):
    app = DcConsoleApp(demo_session.options, session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        deadline = time.monotonic() + 30
        while True:
            await pilot.pause()
            await press_layout(pilot, "2", "power")
            panes = list(app.query(RackElevationPane))
            if panes and demo_session.store.value("gpu001", "power.bmc_ok") is True:
                break
            assert time.monotonic() < deadline, "no BMC reading within 30 s"
            await asyncio.sleep(0.2)
        await pilot.pause(0.5)
        elevation = app.query_one(RackElevationPane)
        elevation.data_changed()
        rows = {r.key: r for r in elevation.table.rows}
        lines = elevation.lines()
        header = lines[0].split()
        # Each rack's name with its PSU redundancy glyph and word, 4 racks in 4 columns.
        assert [w for w in header if w.startswith("R0")] == ["R01", "R02", "R03", "R04"]
        assert all(w.split()[-1][0] in "●▲✖?" for w in lines[0].split("R0")[1:])
        kw = lines[1].split()
        assert kw[0][0] in "●▲✖?" and kw[0].endswith("/40kW")  # R01's budget, glyph first
        # gpu001 and gpu005 are 4U at U3-U6: the name on U6, a continuation mark below.
        keys = [r.key for r in elevation.table.rows]
        top = lines[2 + keys.index("u:0:6")]  # the first band's two head lines come first
        # 4 racks at 80 columns leave room for the full name, apart from the value.
        assert top.split()[0] == "6" and top.split()[1][0] in "●▲✖?"
        assert top.split()[1][1:] == "gpu001" and top.split()[2].endswith("°")
        assert rows["u:0:6"].node == "gpu001"
        assert lines[2 + keys.index("u:0:5")].split()[:3] == [
            "5",
            "│",
            "│",
        ]
        assert any(line.strip().startswith("· U") and "empty" in line for line in lines)
        elevation.focus()
        await pilot.press("t")
        assert elevation.metric == "power"
        room = app.query_one(RoomSummaryPane)
        room.data_changed()
        labels = [r.cells[1] for r in room.table.rows]
        assert labels[0] == "IT load"
        assert {"hot inlets", "fans failed", "PSUs failed", "BMCs silent"} <= set(labels)
        assert "of 140 kW (" in room.table.rows[0].cells[2]  # type: ignore[operator]
