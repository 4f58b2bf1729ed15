"""The scorecard screen on the demo lab at 80x24, keyboard only, without colour:
`w` `s` opens it, a manual item is signed off with a note (audited), the card exports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import OptionList, Static

from console.app import DcConsoleApp
from console.screens.prompt import PromptScreen
from console.screens.scorecard import ScorecardScreen
from console.session import Session
from tests.ui.conftest import audit_rows


async def until(pilot: Any, condition: Any, what: str, tries: int = 200) -> None:
    for _ in range(tries):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def prompt_of(screen: ScorecardScreen, option_id: str) -> str:
    listing = screen.query_one(OptionList)
    option = listing.get_option_at_index(listing.get_option_index(option_id))
    return str(getattr(option.prompt, "plain", option.prompt))


async def test_sign_off_a_manual_item_and_export_the_card(
    demo_session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = DcConsoleApp(demo_session.options, session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("w")
        await pilot.pause()
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, ScorecardScreen), "the scorecard")
        screen = app.screen
        assert isinstance(screen, ScorecardScreen)
        await until(pilot, lambda: screen.result is not None, "the first evaluation")
        assert prompt_of(screen, "racked").startswith("  ✓ racked")
        assert prompt_of(screen, "core-team").startswith("  ? core-team")
        assert prompt_of(screen, "phase:base").startswith("  Base environment: 8 of 10")

        listing = screen.query_one(OptionList)
        while listing.get_option_at_index(listing.highlighted or 0).id != "core-team":
            await pilot.press("down")
        evidence = str(screen.query_one("#sc-evidence", Static).render())
        assert "core-team · unknown" in evidence and "s: sign off" in evidence
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen), "the note prompt")
        await pilot.press(*"8 named in the ops wiki", "enter")
        await until(
            pilot,
            lambda: prompt_of(screen, "core-team").startswith("  ✓ core-team"),
            "the sign-off",
        )
        (row,) = [r for r in audit_rows(demo_session.audit.path) if r["phase"] == "scorecard"]
        assert (row["action"], row["outcome"], row["detail"]) == (
            "scorecard.sign",
            "signed",
            "8 named in the ops wiki",
        )
        assert prompt_of(screen, "phase:base").startswith("  Base environment: 9 of 10")

        # Live: a driver mismatch read by the poller turns the item red within a refresh.
        assert demo_session.lab is not None and demo_session.poller is not None
        demo_session.lab.faults.inject("gpu.driver_drift", "gpu003", {"driver": "535.161.08"})
        await demo_session.poller.poll_once(lambda job: job.target.name == "gpu003")
        await until(
            pilot, lambda: prompt_of(screen, "versions").startswith("  ✗ versions"), "the drift"
        )
        assert prompt_of(screen, "phase:base").startswith("  Base environment: 8 of 10")

        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen), "the export prompt")
        await pilot.press("enter", "enter")  # the default file, Markdown
        folder = demo_session.audit.path.parent
        await until(pilot, lambda: list(folder.glob("scorecard-dc-demo-*.md")), "the export")
        (exported,) = folder.glob("scorecard-dc-demo-*.md")
        text = exported.read_text()
        assert (
            "| ✓ | Core team (5-8) named and trained on the console (`core-team`) | pass |" in text
        )
        assert exported.stat().st_mode & 0o077 == 0
