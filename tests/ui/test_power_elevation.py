"""Pilot: the rack elevation fits 80x24 for a room of 8 racks and scrolls for more.

A static inventory (no lab, no poller) and a Store with ``power.*`` readings written
directly, shown in the real app's ``power`` layout at 80x24.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from console.app import DcConsoleApp
from console.inventory import apply_plugin_configs
from console.inventory.load import inventory_from_data
from console.options import LaunchOptions
from console.plugin import Reading
from console.registry import discover
from console.session import Session
from console.store import Store
from plugins.power.panes import RackElevationPane

BMC = {
    "address": "{name}-bmc.example",
    "protocol": "redfish",
    "user": "admin",
    "password": "env:DCC_TEST_BMC",
}


def room(racks: int) -> dict[str, Any]:
    """``racks`` 42U racks, each with two 4U GPU nodes at U3-U10 and two 1U CPU nodes at U20-U21."""
    nodes = []
    for i in range(racks):
        rack = f"R{i + 1:02d}"
        nodes.append(
            {
                "nodes": f"gpu[{2 * i + 1:03d}-{2 * i + 2:03d}]",
                "role": "gpu-train",
                "rack": rack,
                "u_start": 3,
                "u_height": 4,
                "bmc": BMC,
            }
        )
        nodes.append(
            {
                "nodes": f"cpu[{2 * i + 1:02d}-{2 * i + 2:02d}]",
                "role": "cpu",
                "rack": rack,
                "u_start": 20,
                "u_height": 1,
                "bmc": BMC,
            }
        )
    return {
        "site": {"name": "static"},
        "rooms": [
            {
                "name": "hall",
                "racks": [
                    {"name": f"R{i + 1:02d}", "units": 42, "power_budget_kw": 30}
                    for i in range(racks)
                ],
            }
        ],
        "nodes": nodes,
    }


def session_for(racks: int, tmp_path: Path) -> Session:
    registry = discover()
    inventory = apply_plugin_configs(
        inventory_from_data(room(racks)), {p.name: p.config_model for p in registry.plugins}
    )
    store = Store()
    now = time.time()
    readings = []
    for k, name in enumerate(inventory.nodes):
        gpu = name.startswith("gpu")
        for metric, value in (
            ("power.bmc_ok", True),
            ("power.state", "on"),
            ("power.redundancy", "ok"),
            ("power.inlet_c", 22.0 + k % 5),
            ("power.power_w", 6500.0 if gpu else 450.0),
        ):
            readings.append(Reading(name, metric, value, ts=now, source="redfish"))
        store.record_attempt("power.bmc", name, 30, None)
    store.put(readings)
    options = LaunchOptions(
        inventory=tmp_path / "static.yaml", layout="power", scenario=None, poll=False
    )
    return Session(inventory=inventory, registry=registry, store=store, options=options)


async def elevation_on_screen(pilot: Pilot[Any]) -> RackElevationPane:
    deadline = time.monotonic() + 10
    while not pilot.app.query(RackElevationPane):
        assert time.monotonic() < deadline, "the power layout did not show the elevation"
        await pilot.pause(0.05)
    await pilot.pause()
    pane = pilot.app.query_one(RackElevationPane)
    pane.data_changed()
    await pilot.pause()
    return pane


def visible(pane: RackElevationPane) -> list[str]:
    """The lines of the elevation as drawn on the terminal right now: heads, then U lines."""
    head, table = pane.head, pane.table
    return [head.render_line(y).text for y in range(head.size.height)] + [
        table.render_line(y).text for y in range(table.size.height)
    ]


def screen_text(pilot: Pilot[Any]) -> list[str]:
    """Every line of the terminal as the operator reads it now (no colour)."""
    # The compositor's strips are what the driver writes; Pilot has no public text view.
    strips = pilot.app.screen._compositor.render_strips()
    return ["".join(segment.text for segment in strip) for strip in strips]


def row_index(pane: RackElevationPane, key: str) -> int:
    return next(i for i, r in enumerate(pane.table.rows) if r.key == key)


async def test_eight_racks_show_every_name_and_kw_line_at_80x24_without_horizontal_scroll(
    tmp_path: Path,
) -> None:
    app = DcConsoleApp(LaunchOptions(layout="power"), session=session_for(8, tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await elevation_on_screen(pilot)
        assert pane.region.right <= 80 and pane.table.size.height >= 4
        assert pane.table.scroll_offset.y == 0
        screen = visible(pane)
        names = [f"R{i:02d}" for i in range(1, 9)]
        head = next(line for line in screen if "R01" in line)
        # All 8 racks on one line, in order, each with its PSU redundancy state.
        assert [w for w in head.split() if w.startswith("R")] == names
        assert head.count("●N+1") == 8
        kw = screen[screen.index(head) + 1]
        # 2 x 6.5 kW GPUs + 2 x 0.45 kW CPUs = 13.9 kW of a 30 kW budget, shown per rack.
        assert kw.split() == ["●14/30kW"] * 8
        assert all(len(line.rstrip()) <= pane.table.size.width for line in screen)

        lines = pane.lines()
        # Highest U at the top; empty ranges collapse into one line each.
        assert lines[2].strip() == "· U22-U42 empty"
        assert lines[3].split()[0] == "21" and lines[4].split()[0] == "20"
        assert lines[5].strip() == "· U11-U19 empty"
        # A 4U node: its glyph, name and value on its top U, a continuation mark below.
        assert lines[6].split()[:2] == ["10", "●g002"] and lines[6].count("●") == 8
        for u, line in zip((9, 8, 7), lines[7:10], strict=True):
            assert line.split() == [str(u)] + ["│"] * 8
        assert lines[10].split()[:2] == ["6", "●g001"]
        assert lines[-1].strip() == "· U1-U2 empty"
        assert len(lines) == 15  # 42 U in 15 lines: the room fits a short screen

        # The power toggle keeps the layout and shows the draw without colour.
        pane.table.focus()
        await pilot.press("t")
        await pilot.pause()
        assert pane.metric == "power"
        # 8-cell slots: whole kW beside the name, tenths under 1 kW; the title gives the unit.
        assert pane.lines()[6].split()[1:3] == ["●g002", "6"]
        assert pane.lines()[3].split()[1:3] == ["●c02", "0.5"]
        assert "kW" in str(pane.border_title)


async def test_ten_racks_put_the_last_two_in_a_band_reachable_by_scrolling(
    tmp_path: Path,
) -> None:
    app = DcConsoleApp(LaunchOptions(layout="power"), session=session_for(10, tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await elevation_on_screen(pilot)
        screen = visible(pane)
        head = next(line for line in screen if "R01" in line)
        assert [w for w in head.split() if w.startswith("R")] == [f"R{i:02d}" for i in range(1, 9)]
        assert not any("R09" in line or "R10" in line for line in screen)
        second = row_index(pane, "hdr:8")
        assert second > pane.table.size.height  # below the first screen
        pane.table.focus()
        for _ in range(60):  # the operator scrolls down line by line
            top = pane.table.scroll_offset.y
            if top <= second and second + 1 < top + pane.table.size.height:
                break
            await pilot.press("down")
            await pilot.pause()
        screen = visible(pane)
        head = next(line for line in screen if "R09" in line)
        assert [w for w in head.split() if w.startswith("R")] == ["R09", "R10"]
        assert screen[screen.index(head) + 1].split() == ["●14/30kW"] * 2


async def test_rack_heads_stay_on_screen_while_the_units_scroll_to_the_last_at_80x24_no_color(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    session = session_for(10, tmp_path)
    # One node lost PSU redundancy: its rack's head says so in a word, not only in red.
    session.store.put(
        [Reading("gpu001", "power.redundancy", "lost", ts=time.time(), source="redfish")]
    )
    app = DcConsoleApp(LaunchOptions(layout="power"), session=session)
    assert app.no_color
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await elevation_on_screen(pilot)
        first = screen_text(pilot)
        head = next(line for line in first if "R01" in line)
        assert "R01✖lost R02 ●N+1" in head  # glyph and word, cut neither
        assert any("●14/30kW" in line for line in first)
        # What does not fit is said in words: lines below, and the racks of the next band.
        assert any("↓ 19 more lines (R09-R10)" in line for line in first)

        pane.table.focus()
        last_of_band = row_index(pane, "gap:0:2")  # U1-U2 of R01-R08
        for _ in range(last_of_band):
            await pilot.press("down")
        await pilot.pause()
        screen = screen_text(pilot)
        assert head in screen  # the heads did not scroll away with the units
        assert any("· U1-U2 empty" in line for line in screen)
        assert pane.table.cursor == last_of_band

        await pilot.press("end")  # the last unit of the last band
        await pilot.pause()
        screen = screen_text(pilot)
        assert pane.table.cursor == len(pane.table.rows) - 1
        assert head not in screen  # the heads follow the band in view
        heads = [line for line in screen if "R09" in line]
        assert len(heads) == 1 and "R09 ●N+1 R10 ●N+1" in heads[0]
        assert screen.index(heads[0]) < next(
            i for i, line in enumerate(screen) if " 6 ●g017" in line
        )
        assert any("· U1-U2 empty" in line for line in screen[screen.index(heads[0]) :])
        assert any("↑ 19 above" in line for line in screen)
        assert not any("more line" in line for line in screen)


async def test_the_focused_unit_stays_visible_when_the_terminal_shrinks(tmp_path: Path) -> None:
    app = DcConsoleApp(LaunchOptions(layout="power"), session=session_for(8, tmp_path))
    async with app.run_test(size=(100, 48)) as pilot:
        pane = await elevation_on_screen(pilot)
        pane.table.focus()
        await pilot.press("end")
        await pilot.pause()
        assert pane.table.scroll_offset.y == 0  # everything fits at 100x48
        await pilot.resize_terminal(80, 24)
        deadline = time.monotonic() + 5
        while pane.table.size.height >= len(pane.table.rows):
            assert time.monotonic() < deadline, "the elevation did not shrink"
            await pilot.pause(0.05)
        await pilot.pause()
        top, height = pane.table.scroll_offset.y, pane.table.size.height
        assert top <= pane.table.cursor < top + height
        assert "· U1-U2 empty" in visible(pane)[-1]
        assert "R01" in visible(pane)[0]
