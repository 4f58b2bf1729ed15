"""The `w` menu opens the guided flows; a broken flow never takes the console down."""

from __future__ import annotations

from typing import Any

import pytest
from textual.screen import Screen
from textual.widgets import Static

from console.app import DcConsoleApp
from console.screens import flows
from console.screens.flows import FlowEntry, FlowsScreen
from tests.snapshots.conftest import FIXED_NOW, static_session


class MarkerScreen(Screen[None]):
    def compose(self) -> Any:
        yield Static("marker flow")


def open_marker(app: DcConsoleApp) -> Screen[None]:
    return MarkerScreen()


def open_broken(app: DcConsoleApp) -> Screen[None]:
    raise RuntimeError("rollouts.db is locked")


ENTRIES = (
    FlowEntry("m", "Marker", "a test flow", f"{__name__}:open_marker"),
    FlowEntry("x", "Broken", "a flow that fails to open", f"{__name__}:open_broken"),
)


def make_app() -> DcConsoleApp:
    session = static_session()
    return DcConsoleApp(session.options, session=session, clock=lambda: FIXED_NOW)


@pytest.fixture
def entries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flows, "FLOW_SCREENS", ENTRIES)


async def test_w_opens_the_menu_and_a_letter_opens_that_flow(entries: None) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("w")
        await pilot.pause()
        assert isinstance(app.screen, FlowsScreen)
        await pilot.press("m")
        for _ in range(50):
            if isinstance(app.screen, MarkerScreen):
                break
            await pilot.pause(0.02)
        assert isinstance(app.screen, MarkerScreen)


async def test_a_flow_that_fails_to_open_is_reported_and_the_console_keeps_running(
    entries: None,
) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("w")
        await pilot.pause()
        await pilot.press("x")
        for _ in range(50):
            if app._notifications:
                break
            await pilot.pause(0.02)
        messages = [n.message for n in app._notifications]
        assert any("Broken could not open: rollouts.db is locked" in m for m in messages)
        assert not isinstance(app.screen, FlowsScreen)
        assert app.is_running


async def test_escape_closes_the_menu_without_opening_anything(entries: None) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("w")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, FlowsScreen)
        assert not isinstance(app.screen, MarkerScreen)


async def test_quitting_while_a_rollout_runs_asks_for_a_second_q() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.busy_checks.append(lambda: ["rollout r-7"])
        await pilot.press("q")
        await pilot.pause()
        assert app.is_running
        messages = [n.message for n in app._notifications]
        assert any("rollout r-7 still running" in m and "q again" in m for m in messages)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0
