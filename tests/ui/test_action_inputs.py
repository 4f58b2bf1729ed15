"""An action with typed inputs: the form, the runner's validation message, then confirm."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import Field
from textual.widgets import Input, Static

from console.app import DcConsoleApp
from console.inventory.model import Inventory
from console.options import LaunchOptions
from console.plugin import ActionInputs, ActionSpec, Outcome, Plugin, Preview, Target
from console.screens.confirm import ConfirmScreen
from console.screens.inputs import InputsScreen
from console.session import Session, start_session
from tests.ui.conftest import audit_rows

RECEIVED: list[Any] = []


class NoteInputs(ActionInputs):
    reason: str = Field(min_length=3, description="why (recorded with your name)")
    urgent: bool = False
    channel: Literal["ops", "dr"] = "ops"


def _targets(inventory: Inventory, config: Any) -> Sequence[Target]:
    return [Target("node", name, node=name) for name in inventory.nodes]


async def _preview(ctx: Any, target: Target, inputs: Any) -> Preview:
    return Preview((f"note on {target.name}: {inputs.reason}",))


async def _execute(ctx: Any, target: Target, inputs: Any) -> Outcome:
    RECEIVED.append((target.name, inputs))
    return Outcome(True, "noted")


async def _verify(ctx: Any, target: Target, inputs: Any, outcome: Outcome) -> Outcome:
    return outcome


NOTE = Plugin(
    name="notes",
    description="a test plugin with an action that takes inputs",
    actions=(
        ActionSpec(
            id="notes.add",
            label="Add a note",
            target_kind="node",
            targets=_targets,
            preview=_preview,
            execute=_execute,
            verify=_verify,
            inputs=NoteInputs,
        ),
    ),
)


@pytest.fixture
async def session(tmp_path: Path) -> AsyncIterator[Session]:
    options = LaunchOptions(
        audit_db=tmp_path / "a" / "audit.db",
        lab_state_dir=tmp_path / "lab",
        scenario=None,
        poll=False,
    )
    s = await start_session(options, extra_plugins=[NOTE])
    yield s
    await s.stop()


async def test_inputs_form_shows_the_validation_error_then_runs_with_the_values(
    session: Session,
) -> None:
    RECEIVED.clear()
    app = DcConsoleApp(session.options, session=session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        spec = session.registry.actions()["notes.add"]
        app.start_action(spec, Target("node", "gpu001", node="gpu001"))
        await pilot.pause(0.3)
        assert isinstance(app.screen, InputsScreen)
        app.screen.query_one("#in-reason", Input).value = "x"
        await pilot.click("#next")
        await pilot.pause(0.3)
        form = app.screen
        assert isinstance(form, InputsScreen)
        assert "reason" in str(form.query_one("#error", Static).render())
        form.query_one("#in-reason", Input).value = "fan noise in R01"
        await pilot.click("#next")
        await pilot.pause(0.3)
        assert isinstance(app.screen, ConfirmScreen)
        assert "note on gpu001: fan noise in R01" in app.screen.request.preview
        await pilot.click("#confirm")
        await app.workers.wait_for_complete()
    assert [(t, i.reason, i.channel) for t, i in RECEIVED] == [
        ("gpu001", "fan noise in R01", "ops")
    ]
    assert session.options.audit_db is not None
    intent = [r for r in audit_rows(session.options.audit_db) if r["phase"] == "intent"]
    assert "fan noise in R01" in str(intent[-1]["params"])
