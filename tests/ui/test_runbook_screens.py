"""Pilot: a runbook started from an alert (target filled in), a step that fails bypassed
with a reason, a run left and continued from the flows menu, then aborted -- every
choice in the audit log; and the node card's runbooks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from console.app import DcConsoleApp
from console.screens.confirm import ConfirmScreen
from console.screens.lists import AlertsScreen
from console.screens.node_card import NodeCardScreen
from console.screens.runbook import RunbookScreen, TextScreen
from console.screens.runbook_pick import RunbookMenuScreen
from console.session import Session
from tests.ui.conftest import audit_rows


async def until(pilot: Any, cond: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Wait for ``cond`` (the screen it waits for takes SSH round trips to appear)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def type_reason(pilot: Any, app: DcConsoleApp, text: str) -> None:
    await until(pilot, lambda: isinstance(app.screen, TextScreen), "the reason form")
    await pilot.press(*text, "enter")


async def test_a_runbook_from_an_alert_bypassed_with_a_reason_left_continued_and_aborted(
    demo_session: Session,
) -> None:
    assert demo_session.lab is not None and demo_session.poller is not None
    demo_session.lab.faults.inject("gpu.fell_off_bus", "gpu003", params={"gpu": 2})
    await demo_session.poller.poll_once()
    demo_session.refresh_alerts()
    app = DcConsoleApp(demo_session.options, session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, AlertsScreen), "the alerts")
        assert isinstance(app.screen, AlertsScreen)
        keys = [r.key for r in app.screen.pane.table.rows]
        await pilot.press(*["down"] * keys.index("gpu.health:gpu003/2:lost"))
        await pilot.press("r")  # the runbooks for this alert, its GPU filled in
        await until(pilot, lambda: isinstance(app.screen, RunbookMenuScreen), "the menu")
        assert isinstance(app.screen, RunbookMenuScreen)
        assert [(o.runbook.id, o.target) for o in app.screen.offers] == [("gpu-xid79", "gpu003/2")]
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the drain dialog")
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.request.title.startswith("Drain the node in Slurm: Slurm: drain node")
        assert app.screen.request.targets == ("gpu003",)
        await pilot.press("escape")  # not confirmed: the step fails, the choices show
        screen = app.screen
        assert isinstance(screen, RunbookScreen)
        await until(pilot, lambda: screen.run.failure != "", "the failed step")
        detail = str(screen.detail_text())
        assert "✗ slurm.drain gpu003 not confirmed" in detail
        assert "r retry  b bypass (with a reason)  A abort" in detail
        await pilot.press("b")
        await type_reason(pilot, app, "drained by hand: TKT-42")
        # The drain check then waits (jobs still run there) and shows what it reads.
        await until(pilot, lambda: screen.run.current == "drained-slurm", "the drain check")
        await until(pilot, lambda: screen.run.live is not None, "the live check")
        steps = str(screen.steps_text())
        assert "✓  1 The GPU is lost" in steps
        assert "↷  2 Drain the node in Slurm — bypassed: drained by hand: TKT-42" in steps
        assert "–  3 Drain the node in Kubernetes" in steps
        assert "⏳  4 No Slurm job runs on the node" in steps
        assert "slurm.drained on gpu003" in str(screen.detail_text())

        await pilot.press("escape")  # leave: the run pauses
        await until(pilot, lambda: not isinstance(app.screen, RunbookScreen), "leaving")
        run_id = screen.run.id
        await until(pilot, lambda: screen.run.status == "paused", "the pause")
        await pilot.press("escape")  # the alerts list
        await pilot.press("w", "b")
        await until(pilot, lambda: isinstance(app.screen, RunbookMenuScreen), "the flows menu")
        assert isinstance(app.screen, RunbookMenuScreen)
        assert [r.id for r in app.screen.runs] == [run_id]
        await pilot.press("enter")  # continue it
        await until(pilot, lambda: isinstance(app.screen, RunbookScreen), "the run again")
        again = app.screen
        assert isinstance(again, RunbookScreen) and again.run.id == run_id
        await until(pilot, lambda: again.run.live is not None, "the check again")
        assert again.run.views["drain-slurm"].state == "bypassed"  # not asked again
        await pilot.press("A")
        await type_reason(pilot, app, "GPU needs a cold boot")
        await until(pilot, lambda: again.result == "aborted", "the abort")
        assert "aborted: GPU needs a cold boot" in str(again.head_text())

    rows = [r for r in audit_rows(demo_session.options.audit_db) if r["phase"] == "runbook"]  # type: ignore[arg-type]
    got = [(r["action"], r["outcome"], r["detail"]) for r in rows]
    assert got[0][0] == "runbook.start" and "gpu003/2" in str(got[0][2])
    assert (
        "runbook.step.result",
        "failed",
        "slurm.drain gpu003 not confirmed: nothing was done",
    ) in got
    assert ("runbook.bypass", "bypassed", "drained by hand: TKT-42") in got
    assert ("runbook.paused", "", "left at step drained-slurm: continue it later") in got
    assert ("runbook.resume", "", "continued by " + str(rows[0]["operator"])) in got
    assert ("runbook.abort", "aborted", "GPU needs a cold boot") in got
    assert got[-1] == ("runbook.aborted", "aborted", "GPU needs a cold boot")
    assert not [
        r for r in audit_rows(demo_session.options.audit_db) if r["action"] == "slurm.drain"
    ]  # type: ignore[arg-type]


async def test_the_node_card_offers_the_runbooks_for_its_alerts_and_the_node(
    demo_session: Session,
) -> None:
    assert demo_session.lab is not None and demo_session.poller is not None
    demo_session.lab.faults.inject("gpu.fell_off_bus", "gpu003", params={"gpu": 2})
    await demo_session.poller.poll_once()
    demo_session.refresh_alerts()
    app = DcConsoleApp(demo_session.options, session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.open_node("gpu003")
        await until(pilot, lambda: isinstance(app.screen, NodeCardScreen), "the node card")
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, RunbookMenuScreen), "the menu")
        assert isinstance(app.screen, RunbookMenuScreen)
        offered = [(o.runbook.id, o.target) for o in app.screen.offers]
        assert offered[0] == ("gpu-xid79", "gpu003/2")
        assert ("node-not-responding", "gpu003") in offered and ("psu-lost", "gpu003") in offered
