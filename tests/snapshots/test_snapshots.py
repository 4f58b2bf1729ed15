"""SVG snapshots of the main screens at 80x24 and 160x48 (update: --snapshot-update)."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from console.app import DcConsoleApp
from tests.snapshots.conftest import FIXED_NOW, static_session


def app(read_only: bool = False) -> DcConsoleApp:
    session = static_session(read_only)
    return DcConsoleApp(session.options, session=session, clock=lambda: FIXED_NOW)


def test_overview_80x24(snap_compare: Any) -> None:
    assert snap_compare(app(), terminal_size=(80, 24))


def test_overview_160x48(snap_compare: Any) -> None:
    assert snap_compare(app(), terminal_size=(160, 48))


def test_read_only_badge_80x24(snap_compare: Any) -> None:
    assert snap_compare(app(read_only=True), terminal_size=(80, 24))


def test_filtered_by_rack_80x24(snap_compare: Any) -> None:
    async def filter_r03(pilot: Pilot[Any]) -> None:
        assert isinstance(pilot.app, DcConsoleApp)
        await pilot.pause()
        assert pilot.app.apply_filter("@rack:R03")
        await pilot.pause()

    assert snap_compare(app(), terminal_size=(80, 24), run_before=filter_r03)


def test_node_card_80x24(snap_compare: Any) -> None:
    async def open_card(pilot: Pilot[Any]) -> None:
        assert isinstance(pilot.app, DcConsoleApp)
        await pilot.pause()
        pilot.app.open_node("cpu04")
        await pilot.pause()

    assert snap_compare(app(), terminal_size=(80, 24), run_before=open_card)


def test_help_160x48(snap_compare: Any) -> None:
    assert snap_compare(app(), press=["question_mark"], terminal_size=(160, 48))


def test_overview_no_color_80x24(snap_compare: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    console_app = app()
    assert console_app.no_color
    assert snap_compare(console_app, terminal_size=(80, 24))
