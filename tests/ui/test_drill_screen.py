"""Drills in the console, on the demo lab: w d, the catalogue, the preflight, the typed
confirmation, the live stopwatch, an abort that restores, the report and its export."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from textual.widgets import Input, OptionList, Static

from console.app import DcConsoleApp
from console.screens.drill import DrillPreflightScreen, DrillsScreen
from console.screens.drill_live import FINAL, DrillLiveScreen, DrillReportScreen
from console.session import Session
from tests.ui.conftest import audit_rows


async def until(pilot: Any, what: str, cond: Callable[[], bool], timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def text_of(screen: Any, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def test_a_drill_runs_from_the_flows_menu_is_aborted_restores_and_reports(
    demo_session: Session,
) -> None:
    app = DcConsoleApp(demo_session.options, session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("w")
        await pilot.pause()
        await pilot.press("d")
        await until(pilot, "the drills list", lambda: isinstance(app.screen, DrillsScreen))
        options = app.screen.query_one(OptionList)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert "s:minio-node" in ids and "s:ib-spine-link" in ids
        options.highlighted = ids.index("s:inference-replica")
        await pilot.press("enter")

        await until(
            pilot,
            "the preflight, ready to confirm",
            lambda: (
                isinstance(app.screen, DrillPreflightScreen)
                and not app.screen.query_one(Input).disabled
            ),
        )
        preflight = app.screen
        text = text_of(preflight, "#preflight-text")
        assert "● services.healthy@triton-inf01" in text
        assert "inject: lab.fault triton-inf01" in text
        assert "dead man's switch: lab.deadman_arm triton-inf01" in text
        assert "Type triton-inf01" in text_of(preflight, "#prompt")
        await pilot.press(*"triton-inf0", "enter")  # a typo starts nothing
        assert "that is not triton-inf01" in text_of(preflight, "#prompt")
        app.screen.query_one(Input).value = ""
        await pilot.press(*"triton-inf01", "enter")

        await until(pilot, "the live stopwatch", lambda: isinstance(app.screen, DrillLiveScreen))
        live = app.screen
        assert isinstance(live, DrillLiveScreen)
        run = live.run
        await until(pilot, "the fault in", lambda: run.step == "observe")
        assert demo_session.lab is not None
        assert demo_session.lab.faults.get("services.down", "triton-inf01") is not None
        await pilot.pause(0.3)
        assert 'Drill "Lose an inference replica' in text_of(live, "#stopwatch")
        assert "stop conditions ● unexpected 0/0" in text_of(live, "#live")
        await pilot.press("A")
        await until(pilot, "the drill to end", lambda: run.step in FINAL, timeout=30)
        assert run.step == "aborted" and run.report.restored is True
        assert demo_session.lab.faults.get("services.down", "triton-inf01") is None
        await pilot.pause(0.3)
        assert "drill aborted · r the report" in text_of(live, "#stopwatch")

        await pilot.press("r")
        await until(pilot, "the report", lambda: isinstance(app.screen, DrillReportScreen))
        report_screen = app.screen
        assert isinstance(report_screen, DrillReportScreen)
        assert "aborted: aborted by the operator" in text_of(report_screen, "#report-text")
        await pilot.press("m")
        await until(pilot, "the export", lambda: "md" in report_screen.exported)
        exported = report_screen.exported["md"]
        with open(exported, encoding="utf-8") as f:
            assert "- Result: **ABORTED**" in f.read()

        await pilot.press("escape")  # back to the live view
        await pilot.press("escape")  # back to the list, which now shows the last result
        await until(pilot, "the list", lambda: isinstance(app.screen, DrillsScreen))
        options = app.screen.query_one(OptionList)
        shown = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert any(s.startswith("inference-replica") and "aborted" in s for s in shown)

    assert demo_session.audit is not None
    rows = [(r["phase"], r["action"], r["outcome"]) for r in audit_rows(demo_session.audit.path)]
    drill = rows[rows.index(("drill", "drill.inference-replica", "started")) :]
    assert [r for r in drill if r[0] in ("drill", "result")] == [
        ("drill", "drill.inference-replica", "started"),
        ("result", "lab.deadman_arm", "ok"),
        ("result", "lab.fault", "ok"),
        ("result", "lab.fault_clear", "ok"),
        ("result", "lab.deadman_cancel", "ok"),
        ("drill", "drill.inference-replica", "aborted"),
    ]
