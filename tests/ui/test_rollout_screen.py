"""Rollouts in the console (`w` `r`): plan, typed start, live progress, a halted gate's
choices, and resuming a rollout an earlier console left in flight. Real demo lab."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.widgets import Input, OptionList, Static

from console.app import DcConsoleApp
from console.screens.confirm import ConfirmScreen
from console.screens.flows import FlowsScreen
from console.screens.rollout_plan_view import RolloutPlanScreen
from console.screens.rollout_progress_view import ReasonScreen, RolloutProgressScreen
from console.screens.rollouts import RolloutsScreen, desk_of
from console.session import Session
from console.wizards.rollout_state import RolloutState
from tests.ui.conftest import audit_rows

QUICK = """\
name: {name}
targets: stor[01-02]
expect_count: 2
change: {{command: "{command}"}}
rollback: {{command: "true"}}
post_checks:
  - power.bmc_healthy
  - {{check: services.healthy, target: minio-quorum}}
settle_s: 0
poll_s: 0.2
check_timeout_s: 4
caps: {{per_rack: 1, max_pool_pct: 50}}
"""


def write(directory: Path, name: str, command: str = "true") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name.replace(' ', '-')}.yaml"
    path.write_text(QUICK.format(name=name, command=command), encoding="utf-8")
    return path


def text_of(screen: Any, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def until(pilot: Any, what: str, cond: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.1)


def rollout_events(session: Session) -> list[tuple[str, str, str]]:
    assert session.options.audit_db is not None
    return [
        (str(r["action"]), str(r["targets"]), str(r["outcome"]))
        for r in audit_rows(session.options.audit_db)
        if r["phase"] == "rollout"
    ]


async def start_from_file(pilot: Any, app: DcConsoleApp, name: str) -> RolloutProgressScreen:
    """From the list: open the file's plan, press s, type the name, confirm."""
    await until(pilot, "the plan", lambda: isinstance(app.screen, RolloutPlanScreen))
    await pilot.press("s")
    await until(pilot, "the confirm screen", lambda: isinstance(app.screen, ConfirmScreen))
    app.screen.query_one("#typed", Input).value = name
    await pilot.press("enter")
    await until(pilot, "the progress", lambda: isinstance(app.screen, RolloutProgressScreen))
    screen = app.screen
    assert isinstance(screen, RolloutProgressScreen)
    return screen


async def test_the_flows_menu_lists_the_demo_rollout_and_its_plan_a_viewer_cannot_start(
    read_only_session: Session,
) -> None:
    session = read_only_session
    app = DcConsoleApp(session.options, session=session)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, "the layout", lambda: app.layout_view is not None)
        await pilot.press("w")
        await until(pilot, "the flows menu", lambda: isinstance(app.screen, FlowsScreen))
        await pilot.press("r")
        await until(pilot, "the rollouts list", lambda: isinstance(app.screen, RolloutsScreen))
        olist = app.screen.query_one(OptionList)
        await until(pilot, "the files", lambda: olist.option_count > 2)
        labels = [str(olist.get_option_at_index(i).prompt) for i in range(olist.option_count)]
        assert any("demo-driver-upgrade.yaml: driver 550 -> 560" in x for x in labels)
        assert "read-only" in text_of(app.screen, "#rollouts-hint")
        index = next(i for i, x in enumerate(labels) if "demo-driver-upgrade" in x)
        olist.highlighted = index
        await pilot.press("enter")
        await until(pilot, "the plan", lambda: isinstance(app.screen, RolloutPlanScreen))
        plan = app.screen
        body = text_of(plan, "#plan-body")
        for expected in ("canary   gpu001", "wave 4", "plan hash", "Caps per wave", "leaf leaf01"):
            assert expected in body, expected
        assert "cannot start here: the console is read-only" in body
        await pilot.press("s")
        await pilot.pause(0.3)
        assert isinstance(app.screen, RolloutPlanScreen)  # no confirm screen for a viewer
    assert not any(e[0] == "rollout.start" for e in rollout_events(session))
    # The demo's ib_leaf labels (which cut the waves) are the lab's fat tree.
    assert session.lab is not None
    fabric = session.lab.emulations["infiniband"]
    leaves = {p.host: p.leaf for p in fabric.ports.values()}  # type: ignore[attr-defined]
    assert leaves and all(
        session.inventory.nodes[h].labels["ib_leaf"] == leaf for h, leaf in leaves.items()
    )


async def test_a_started_rollout_shows_live_progress_until_done(
    demo_session: Session, tmp_path: Path
) -> None:
    session = demo_session
    write(tmp_path / "rollouts", "quick change")
    app = DcConsoleApp(session.options, session=session)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(RolloutsScreen(app, tmp_path / "rollouts"))
        olist = app.screen.query_one(OptionList)
        await until(pilot, "the file", lambda: olist.option_count > 2)
        olist.highlighted = 1
        await pilot.press("enter")
        await until(pilot, "the preflight", lambda: app.screen.preflight is not None)  # type: ignore[attr-defined]
        assert "services.healthy@minio-quorum" in text_of(app.screen, "#plan-body")
        progress = await start_from_file(pilot, app, "quick change")
        await until(pilot, "done", lambda: "done" in text_of(progress, "#progress-head"))
        head = text_of(progress, "#progress-head")
        assert "quick change" in head and "100%" in head and "elapsed" in head and "ETA" in head
        rows = [r.cells for r in progress.table.rows]
        assert [str(r[0]) for r in rows if str(r[0])] == ["canary", "wave 1"]
        nodes = {r[1]: str(r[2]) for r in rows if not str(r[0])}
        assert [str(r[2]) for r in rows if str(r[0])] == ["gate passed", "gate passed"]
        assert nodes == {"stor01": "✔ done", "stor02": "✔ done"}  # glyph and word: no colour
        assert "finished (done)" in text_of(progress, "#progress-choices")
    events = rollout_events(session)
    assert events[0][0] == "rollout.start" and events[-1][0] == "rollout.done"


async def test_a_halted_gate_offers_the_choices_and_a_skip_needs_a_reason(
    demo_session: Session, tmp_path: Path
) -> None:
    session = demo_session
    write(tmp_path / "rollouts", "bad change", command="false")
    app = DcConsoleApp(session.options, session=session)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(RolloutsScreen(app, tmp_path / "rollouts"))
        olist = app.screen.query_one(OptionList)
        await until(pilot, "the file", lambda: olist.option_count > 2)
        olist.highlighted = 1
        await pilot.press("enter")
        progress = await start_from_file(pilot, app, "bad change")
        await until(pilot, "halted", lambda: "halted:" in text_of(progress, "#progress-choices"))
        choices = text_of(progress, "#progress-choices")
        for choice in (
            "t retry",
            "s skip",
            "b roll back",
            "B roll back all",
            "a approve",
            "x abort",
        ):
            assert choice in choices, choice
        assert "✖" in text_of(progress, "#progress-head")
        # The failed canary, selected, shows its failure and output.
        progress.table.cursor = 1
        progress._draw_detail()
        detail = text_of(progress, "#progress-detail")
        assert "stor01: change failed" in detail and "command not found" in detail
        await pilot.press("s")
        await until(pilot, "the reason", lambda: isinstance(app.screen, ReasonScreen))
        await pilot.press("enter")  # empty: refused, the prompt stays
        assert "a reason is required" in text_of(app.screen, "#reason-error")
        app.screen.query_one("#reason", Input).value = "lab node: ticket OPS-7"
        await pilot.press("enter")

        # Skipped; the rollout resumes and wave 1 runs (and fails the same way).
        def states() -> dict[str, str]:
            return {
                str(r.cells[1]): str(r.cells[2]) for r in progress.table.rows if not str(r.cells[0])
            }

        await until(pilot, "wave 1 to fail", lambda: states().get("stor02") == "✖ failed")
        assert states()["stor01"] == "– skipped"
    events = rollout_events(session)
    assert ("rollout.skip", '["stor01"]', "ok") in events
    assert ("rollout.gate", '["stor01"]', "failed") in events
    assert events[-1][0] == "rollout.gate"


async def test_an_interrupted_rollout_is_resumed_from_the_console_verifying_the_step_in_flight(
    demo_session: Session, tmp_path: Path
) -> None:
    session = demo_session
    path = write(tmp_path / "rollouts", "killed change")
    app = DcConsoleApp(session.options, session=session)
    async with app.run_test(size=(80, 24)) as pilot:
        desk = desk_of(app, tmp_path / "rollouts")
        # What a console killed mid-change leaves behind: the canary's change started.
        run = desk.env.runner_for(desk.env.load_plan(path), "deadbeef0001")
        await run.record_start()
        state: RolloutState = desk.env.state
        for step in ("pre_check", "drain"):
            await state.set_step(run.id, "stor01", step, "done", "ok")
        await state.set_step(run.id, "stor01", "change", "started")
        await state.set_node(run.id, "stor01", "running")
        assert session.audit is not None  # its intent is on record, its result is not
        await session.audit.append_async(
            "intent", action="rollout.command", targets=["stor01"], action_uid="killed-1"
        )
        await app.push_screen(RolloutsScreen(app))
        olist = app.screen.query_one(OptionList)
        await until(pilot, "the recorded rollout", lambda: olist.option_count > 3)
        labels = [str(olist.get_option_at_index(i).prompt) for i in range(olist.option_count)]
        row = next(i for i, x in enumerate(labels) if "deadbeef0001" in x)
        assert "interrupted" in labels[row]
        olist.highlighted = row
        await pilot.press("enter")
        await until(pilot, "progress", lambda: isinstance(app.screen, RolloutProgressScreen))
        progress = app.screen
        assert isinstance(progress, RolloutProgressScreen)
        await until(pilot, "the head", lambda: "in flight" in text_of(progress, "#progress-head"))
        assert "stor01: change in flight" in text_of(progress, "#progress-head")
        assert "u resume" in text_of(progress, "#progress-choices")
        await pilot.press("u")
        await until(pilot, "the confirm screen", lambda: isinstance(app.screen, ConfirmScreen))
        app.screen.query_one("#typed", Input).value = "killed change"
        await pilot.press("enter")
        await until(pilot, "done", lambda: "done" in text_of(progress, "#progress-head"), 60)
    events = rollout_events(session)
    verify = events.index(("rollout.verify", '["stor01"]', "ok"))
    assert events[verify - 1][0] == "rollout.resume"  # verified before anything else
    assert session.options.audit_db is not None
    changes = [
        r
        for r in audit_rows(session.options.audit_db)
        if r["action"] == "rollout.command" and r["phase"] == "intent"
    ]
    assert [r["targets"] for r in changes] == ['["stor01"]', '["stor02"]']  # the killed one
    assert changes[0]["action_uid"] == "killed-1"  # stor01's change was not run again
