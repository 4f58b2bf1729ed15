"""Pilot tests: filter, node card, actions confirmed / cancelled / refused, help."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.widgets import Button, Input

from console.app import DcConsoleApp
from console.screens.confirm import ConfirmScreen
from console.screens.help import HelpScreen
from console.screens.node_card import NodeCardScreen
from console.session import Session
from console.widgets.core_panes import NodesPane
from tests.ui.conftest import audit_rows, press_layout


def nodes_shown(app: DcConsoleApp) -> list[str]:
    pane = app.query_one(NodesPane)
    return [row.key for row in pane.table.rows]


def restart_entry(app: DcConsoleApp, service: str) -> tuple[object, object]:
    for spec, target in app.action_entries():
        if spec.id == "services.restart" and target.name == service:
            return spec, target
    raise AssertionError(f"no restart action offered for {service}")


async def open_restart_confirm(pilot: Any, app: DcConsoleApp, service: str) -> ConfirmScreen:
    """Start the restart of ``service`` from the palette's entry; wait for its dialog."""
    spec, target = restart_entry(app, service)
    app.start_action(spec, target)  # type: ignore[arg-type]
    for _ in range(200):  # planning runs the preview over SSH: wait for it, not a fixed time
        if isinstance(app.screen, ConfirmScreen):
            return app.screen
        await pilot.pause(0.05)
    raise AssertionError(f"no confirmation appeared for restarting {service}")


async def test_filter_by_node_set_narrows_every_pane(demo_session: Session) -> None:
    app = DcConsoleApp(demo_session.options, session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert len(nodes_shown(app)) == len(demo_session.inventory.nodes)
        await pilot.press("slash")
        await pilot.press(*"gpu[001-002]", "enter")
        await pilot.pause()
        assert nodes_shown(app) == ["gpu001", "gpu002"]
        await pilot.press("escape")
        await pilot.pause()
        assert len(nodes_shown(app)) == len(demo_session.inventory.nodes)


async def test_filter_by_rack_group_and_bad_filter_keeps_the_last_good_one(
    demo_session: Session,
) -> None:
    app = DcConsoleApp(demo_session.options, session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.apply_filter("@rack:R01")
        in_r01 = {n.name for n in demo_session.inventory.nodes.values() if n.rack == "R01"}
        assert set(nodes_shown(app)) == in_r01
        assert not app.apply_filter("@nosuchgroup:x")
        await pilot.pause()
        assert set(nodes_shown(app)) == in_r01


async def test_enter_on_a_node_opens_its_card_joining_every_plugin(
    demo_session: Session,
) -> None:
    app = DcConsoleApp(demo_session.options, session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.apply_filter("stor01")
        await pilot.pause()
        app.query_one(NodesPane).table.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, NodeCardScreen)
        text = str(app.screen.body.render())
        assert "stor01" in text
        assert "storage" in text
        assert "Services" in text and "minio-stor01" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, NodeCardScreen)


async def test_confirmed_restart_runs_and_writes_intent_then_result(
    demo_session: Session,
) -> None:
    db = demo_session.options.audit_db
    assert db is not None
    before = len(audit_rows(db))
    app = DcConsoleApp(demo_session.options, session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await open_restart_confirm(pilot, app, "minio-stor01")
        assert isinstance(app.screen, ConfirmScreen)
        confirm = app.screen.query_one("#confirm", Button)
        assert confirm.disabled, "confirm must wait for the typed target name"
        await pilot.press(*app.screen.request.confirm_text or "")
        await pilot.pause()
        assert not confirm.disabled
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
    rows = audit_rows(db)[before:]
    phases = [(r["phase"], r["action"]) for r in rows]
    assert ("intent", "services.restart") in phases
    results = [r for r in rows if r["phase"] == "result"]
    assert results and results[-1]["outcome"] == "ok"
    assert phases.index(("intent", "services.restart")) < rows.index(results[-1])


async def test_cancelled_action_writes_nothing(demo_session: Session) -> None:
    db = demo_session.options.audit_db
    assert db is not None
    before = audit_rows(db)
    app = DcConsoleApp(demo_session.options, session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await open_restart_confirm(pilot, app, "minio-stor01")
        await pilot.press("escape")
        await app.workers.wait_for_complete()
    assert audit_rows(db) == before


async def test_read_only_console_refuses_and_records_the_refusal(
    read_only_session: Session,
) -> None:
    db = read_only_session.options.audit_db
    assert db is not None
    app = DcConsoleApp(read_only_session.options, session=read_only_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        spec, target = restart_entry(app, "minio-stor01")
        app.start_action(spec, target)  # type: ignore[arg-type]
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
    rows = audit_rows(db)
    assert not [r for r in rows if r["phase"] == "intent"]
    assert [r for r in rows if r["phase"] == "refused" and r["action"] == "services.restart"]


async def test_confirm_is_disabled_below_80x24(demo_session: Session) -> None:
    app = DcConsoleApp(demo_session.options, session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = await open_restart_confirm(pilot, app, "minio-stor01")
        screen.query_one("#typed", Input).value = screen.request.confirm_text or ""
        await pilot.pause()
        assert not screen.query_one("#confirm", Button).disabled
        await pilot.resize_terminal(70, 20)
        await pilot.pause()
        assert screen.query_one("#confirm", Button).disabled
        await pilot.press("escape")


async def test_question_mark_opens_help(demo_session: Session, tmp_path: Path) -> None:
    app = DcConsoleApp(demo_session.options, session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


async def test_hang_up_records_the_disconnect_lets_running_actions_finish_and_refuses_new(
    demo_session: Session,
) -> None:
    import asyncio

    import pytest

    from console.actions import ActionRefused

    db = demo_session.options.audit_db
    runner = demo_session.runner
    assert db is not None and runner is not None
    app = DcConsoleApp(demo_session.options, session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        spec, target = restart_entry(app, "minio-stor01")
        plan = await runner.plan(spec, [target], {})  # type: ignore[arg-type]
        running = asyncio.create_task(runner.execute(plan, plan.confirm_text))
        lab = demo_session.lab
        assert lab is not None
        # Hang up once the restart has really reached the host (dispatched, not queued).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while not any("systemctl restart" in c for c in lab.hosts["stor01"].commands):
            assert loop.time() < deadline, "the restart never reached stor01"
            await asyncio.sleep(0.01)
        assert runner.in_flight == 1
        await app.hang_up("SIGHUP")
        results = await running
        assert [r.outcome for r in results] == ["ok"]
        with pytest.raises(ActionRefused):
            await runner.execute(plan, plan.confirm_text)
    rows = audit_rows(db)
    phases = [r["phase"] for r in rows]
    assert "disconnect" in phases
    assert phases.index("intent") < phases.index("disconnect") < phases.index("result")
    disconnect_id = rows[phases.index("disconnect")]["id"]
    assert not [r for r in rows if r["phase"] == "intent" and r["id"] > disconnect_id]


async def test_layout_keys_switch_layouts(demo_session: Session) -> None:
    app = DcConsoleApp(demo_session.options, session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.layout_view is not None and app.layout_view.id == "layout-oncall"
        await press_layout(pilot, "1", "overview")
        await press_layout(pilot, "6", "oncall")
        await press_layout(pilot, "o", "overview")


async def test_audit_screen_searches_the_log(demo_session: Session) -> None:
    from console.screens.lists import AuditScreen

    runner = demo_session.runner
    assert runner is not None
    app = DcConsoleApp(demo_session.options, session=demo_session)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        spec, target = restart_entry(app, "minio-stor01")
        plan = await runner.plan(spec, [target], {})  # type: ignore[arg-type]
        await runner.execute(plan, plan.confirm_text)
        await pilot.press("l")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, AuditScreen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        shown = [row.cells[2] for row in screen.table.rows]
        assert {"startup", "intent", "result"} <= set(shown)
        await pilot.press("slash", *"restart", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        matching = screen.table.rows
        assert matching and all(row.cells[4] == "services.restart" for row in matching)


async def test_an_intent_without_result_from_an_earlier_console_is_listed_as_outcome_unknown(
    tmp_path: Path,
) -> None:
    import os

    from console.audit import AuditLog
    from tests.ui.conftest import make_session

    db = tmp_path / "audit" / "audit.db"
    db.parent.mkdir(mode=0o700)
    crashed = AuditLog(db)
    crashed.append(
        "intent", action="services.restart", targets=["minio-stor01"], action_uid="lost-1"
    )
    crashed.close()  # the console died here: no result was ever written
    assert os.path.exists(db)
    session = await make_session(tmp_path)
    try:
        assert [p.action_uid for p in session.pending] == ["lost-1"]
        session.refresh_alerts()
        messages = [a.finding.message for a in session.store.alerts()]
        # "outcome unknown" until the background read-back (console.action_reconcile) says more.
        said = ("outcome unknown: services.restart", "services.restart of minio-stor01 interrupted")
        assert any(m.startswith(said) for m in messages), messages
        assert any("no recorded result" in n for n in session.notices)
    finally:
        await session.stop()


async def test_a_second_console_on_the_same_audit_log_is_warned(
    demo_session: Session, tmp_path: Path
) -> None:
    from console.options import LaunchOptions
    from console.session import start_session

    options = LaunchOptions(
        audit_db=demo_session.options.audit_db,
        lab_state_dir=tmp_path / "lab2",
        scenario=None,
        poll=False,
    )
    second = await start_session(options)
    try:
        assert second.console_lock is None
        assert any("another console is using the audit log" in n for n in second.notices)
    finally:
        await second.stop()
    assert demo_session.console_lock is not None


async def test_resize_storm_with_a_confirmation_open_raises_nothing(
    demo_session: Session,
) -> None:
    import random

    rng = random.Random(7)
    app = DcConsoleApp(demo_session.options, session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = await open_restart_confirm(pilot, app, "minio-stor01")
        screen.query_one("#typed", Input).value = screen.request.confirm_text or ""
        for _ in range(40):
            width, height = rng.randint(20, 200), rng.randint(5, 60)
            await pilot.resize_terminal(width, height)
            await pilot.pause()
            too_small = width < 80 or height < 24
            assert screen.query_one("#confirm", Button).disabled == too_small
        await pilot.press("escape")


async def test_palette_offers_job_actions_for_the_jobs_last_collected(
    demo_session: Session,
) -> None:
    app = DcConsoleApp(demo_session.options, session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        jobs = [t for spec, t in app.action_entries() if spec.id == "slurm.cancel_job"]
        assert jobs, "the demo's Slurm lab runs jobs; the palette must offer them"
        assert all(t.kind == "job" and t.name.startswith("train:") for t in jobs)


async def test_stopping_the_session_runs_every_plugins_shutdown(tmp_path: Path) -> None:
    from console.plugin import Plugin
    from console.session import start_session
    from tests.ui.conftest import LaunchOptions

    stopped: list[str] = []

    async def shutdown() -> None:
        stopped.append("done")

    async def broken() -> None:
        raise RuntimeError("cleanup failed")

    options = LaunchOptions(
        audit_db=tmp_path / "a" / "audit.db",
        lab_state_dir=tmp_path / "lab",
        scenario=None,
        poll=False,
    )
    extra = [
        Plugin("brokenstop", "test", shutdown=broken),
        Plugin("cleanstop", "test", shutdown=shutdown),
    ]
    session = await start_session(options, extra_plugins=extra)
    await session.stop()
    assert stopped == ["done"]  # a failing shutdown does not keep the next from running


async def test_a_rotated_host_key_is_refused_and_recorded_once_in_the_audit_log(
    demo_session: Session,
) -> None:
    import asyncio

    from console.session import _host_key_recorder
    from console.transports.ssh import SshPool

    lab, poller, transports = demo_session.lab, demo_session.poller, demo_session.transports
    assert lab is not None and poller is not None and transports is not None
    # A fresh pool: the pooled connection made before the rotation would hide it.
    await transports.ssh.close()
    transports.ssh = SshPool()
    transports.ssh.on_host_key_rejected = _host_key_recorder(demo_session)
    lab.faults.inject("host.key_rotated", "cpu02")
    commands_before = len(lab.hosts["cpu02"].commands)
    for _ in range(2):
        await poller.poll_once(lambda job: job.target.node == "cpu02")
    await asyncio.gather(*demo_session.background)
    assert len(lab.hosts["cpu02"].commands) == commands_before  # nothing was sent
    db = demo_session.options.audit_db
    assert db is not None
    rows = [r for r in audit_rows(db) if r["phase"] == "security"]
    assert len(rows) == 1
    assert rows[0]["action"] == "ssh.hostkey_rejected" and "cpu02" in str(rows[0]["targets"])
    assert "HOST KEY REJECTED" in str(rows[0]["detail"])


async def test_a_viewer_sees_the_viewer_badge_and_is_refused(demo_session: Session) -> None:
    from console.plugin import Role
    from console.widgets.header import StatusHeader

    assert demo_session.runner is not None
    demo_session.runner.role = Role.VIEWER  # what a real site without a roles file gives
    app = DcConsoleApp(demo_session.options, session=demo_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        header = app.query_one(StatusHeader)
        assert header.viewer and "VIEWER" in str(header.render())
        spec, target = restart_entry(app, "minio-stor01")
        app.start_action(spec, target)  # type: ignore[arg-type]
        await app.workers.wait_for_complete()
        assert not isinstance(app.screen, ConfirmScreen)
    db = demo_session.options.audit_db
    assert db is not None
    refused = [r for r in audit_rows(db) if r["phase"] == "refused"]
    assert refused and "viewer" in str(refused[-1]["detail"])


async def test_unfinished_rollouts_runbooks_and_drills_are_shown_when_the_console_starts(
    tmp_path: Path,
) -> None:
    from console.plugin import Severity
    from console.wizards.drill_report import DrillReport, DrillStore, Measure
    from console.wizards.rollout_state import RolloutState
    from console.wizards.runbook_state import RunbookState
    from tests.ui.conftest import make_session

    db_dir = tmp_path / "audit"
    db_dir.mkdir(mode=0o700)
    state = RolloutState(db_dir / "rollouts.db")
    await state.create("r-1", "driver 550 -> 560", "hash", "alice", {}, [(0, ("gpu001",))])
    await state.set_status("r-1", "running")
    state.close()  # the console died mid-rollout
    runs = RunbookState(db_dir / "runbooks.db")
    doc = {"id": "gpu-xid79", "title": "GPU fallen off the bus"}
    await runs.create("rb-1", doc, "gpu", "gpu001/2", "gpu001", "alice", None, "", ["confirm"])
    runs.close()  # ... and mid-runbook
    DrillStore(db_dir / "drills.db").save(
        DrillReport(
            id="d-1", scenario="minio-node", title="Lose a MinIO node", scope="demo",
            operator="alice", started="2026-11-29T03:00:00",
            rto=Measure(name="RTO", target_s=30, measured_s=None),
            rpo=Measure(name="RPO", target_s=None, measured_s=None),
        )
    )  # fmt: skip  # ... and mid-drill: no end recorded
    session = await make_session(tmp_path)
    try:
        assert [r.id for r in session.interrupted_rollouts] == ["r-1"]
        assert [r.id for r in session.unfinished_runbooks] == ["rb-1"]
        assert [d.id for d in session.unfinished_drills] == ["d-1"]
        assert any("interrupted rollout" in n for n in session.notices)
        assert any("1 unfinished runbook run(s)" in n for n in session.notices)
        assert any("1 unfinished drill(s)" in n for n in session.notices)
        session.refresh_alerts()
        alerts = {a.finding.key: a.finding for a in session.store.alerts()}
        assert "driver 550 -> 560" in alerts["rollout:r-1"].message
        assert "GPU fallen off the bus" in alerts["runbook:rb-1"].message
        assert alerts["runbook:rb-1"].node == "gpu001"
        drill = alerts["drill:d-1"]
        assert "Lose a MinIO node" in drill.message and "restored" in drill.message
        assert drill.severity == Severity.CRITICAL  # not known to be restored
    finally:
        await session.stop()
