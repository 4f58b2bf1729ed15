"""The two-person rule with two consoles (two apps, two operators) on one audit database.

Alice's console runs the demo lab; Bob's is a second `dcc` pointed at the lab's
inventory with the same audit database, as on a shared jump host. Both run at
80x24 with NO_COLOR, keyboard only.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.widgets import Input

from console.app import DcConsoleApp
from console.approvals import ApprovalRefused, ApprovalRequest
from console.audit import verify
from console.identity import Operator
from console.options import LaunchOptions
from console.plugin import Role
from console.screens.approval_wait import ApprovalWaitScreen, request_approval
from console.screens.flows import FlowsScreen
from console.screens.incidents import IncidentsScreen
from console.screens.prompt import PromptScreen
from console.session import Session, start_session
from console.widgets.header import StatusHeader
from tests.ui.conftest import audit_rows

ALICE = Operator("alice", "10.0.0.5 50022", "/dev/pts/3", "jump1", 101)
BOB = Operator("bob", "10.0.0.6 50023", "/dev/pts/4", "jump1", 202)


async def until(cond: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    """Wait for a condition with a deadline (the other console works on its own time)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def header(app: DcConsoleApp) -> StatusHeader:
    return app.screen_stack[0].query_one(StatusHeader)


async def answer_prompt(app: DcConsoleApp, pilot: object, text: str) -> None:
    await until(lambda: isinstance(app.screen, PromptScreen), "the prompt")
    app.screen.query_one(Input).value = text
    await pilot.press("enter")  # type: ignore[attr-defined]


async def start_two(tmp_path: Path) -> tuple[Session, Session, int]:
    db = tmp_path / "audit" / "audit.db"
    a = await start_session(
        LaunchOptions(
            audit_db=db, scenario=None, lab_state_dir=tmp_path / "lab", poll=False, layout="oncall"
        ),
        operator=ALICE,
    )
    # Alice opened an incident and handed it over before Bob's shift.
    assert a.incidents is not None
    incident = a.incidents.open_incident("GPU3 fell off the bus (XID 79)", "gpu007")
    a.incidents.handoff(incident.id, "gpu007 drained; GPU reset needs a second operator")
    roles = tmp_path / "roles.yaml"
    roles.write_text("default: viewer\noperators:\n  alice: operator\n  bob: operator\n")
    roles.chmod(0o600)
    b = await start_session(
        LaunchOptions(
            inventory=tmp_path / "lab" / "inventory.yaml",
            audit_db=db,
            roles=roles,
            poll=False,
            layout="oncall",
        ),
        operator=BOB,
    )
    return a, b, incident.id


async def test_one_console_asks_another_approves_live_and_all_is_on_the_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    sa, sb, incident_id = await start_two(tmp_path)
    try:
        assert sa.approvals is not None and sb.approvals is not None
        assert sb.approvals.role == Role.OPERATOR and sb.approvals.operator.user == "bob"
        # The next on-call is told at start what is open and what was handed over.
        assert any(
            f"#{incident_id} on gpu007" in n and "needs a second operator" in n for n in sb.notices
        )
        app_a = DcConsoleApp(sa.options, session=sa)
        app_b = DcConsoleApp(sb.options, session=sb)
        asked: dict[str, ApprovalRequest] = {}

        async def runbook_step() -> None:  # what a runbook's approval step does
            assert sa.approvals is not None
            asked["done"] = await request_approval(
                app_a,
                sa.approvals,
                "gpu.reset gpu007 GPU3",
                "XID 79; node drained, no job on it",
                incident_id=incident_id,
                targets=["gpu007"],
            )

        async with app_a.run_test(size=(80, 24)), app_b.run_test(size=(80, 24)) as pb:
            assert app_a.no_color and app_b.no_color
            # In Alice's app's own context, as a binding would start it.
            app_a.call_later(lambda: app_a.run_worker(runbook_step(), group="runbook"))
            await until(lambda: isinstance(app_a.screen, ApprovalWaitScreen), "alice waits")
            await until(lambda: header(app_a).waiting == 1, "alice's header says waiting")
            assert "waiting for a second operator" in str(header(app_a).content)

            # Bob's console shows it by itself, within a second or two.
            await until(lambda: header(app_b).approvals == 1, "bob's badge", timeout=3.0)
            assert "1 approval pending" in str(header(app_b).content)
            assert header(app_a).approvals == 0  # nothing for alice to decide

            # Alice may not approve her own request, from any console of hers.
            (req,) = sa.approvals.pending()
            with pytest.raises(ApprovalRefused, match="second operator"):
                await sa.approvals.decide(req.id, True, "looks fine to me")

            # Bob: w, i, the request is listed; y, a note, enter.
            await pb.press("w")
            await until(lambda: isinstance(app_b.screen, FlowsScreen), "the flows menu")
            await pb.press("i")
            await until(lambda: isinstance(app_b.screen, IncidentsScreen), "the incidents screen")
            screen = app_b.screen
            assert isinstance(screen, IncidentsScreen)
            await until(lambda: len(screen.approval_table.rows) == 1, "the pending request")
            await until(lambda: len(screen.timeline_table.rows) >= 2, "the incident's timeline")
            await pb.press("y")
            await answer_prompt(app_b, pb, "checked: drained, no job")

            # Alice's wait returns: approved by Bob.
            await until(lambda: "done" in asked, "alice's answer")
            done = asked["done"]
            assert (done.status, done.decided_by, done.note) == (
                "approved",
                "bob",
                "checked: drained, no job",
            )
            await until(lambda: not isinstance(app_a.screen, ApprovalWaitScreen), "wait closes")
            await until(lambda: header(app_b).approvals == 0, "bob's badge clears")

            # The approval shows in the incident's timeline; Bob notes and exports it.
            await until(
                lambda: any(r.cells[1] == "approval" for r in screen.timeline_table.rows),
                "the approval in the timeline",
            )
            await pb.press("n")
            await answer_prompt(app_b, pb, "GPU reset done by alice, node resumed")
            await until(
                lambda: any("node resumed" in str(r.cells[3]) for r in screen.timeline_table.rows),
                "bob's note in the timeline",
            )
            out = tmp_path / "export" / "incident.md"
            await pb.press("e")
            await answer_prompt(app_b, pb, str(out))
            await until(out.exists, "the Markdown export")
    finally:
        await sa.stop()
        await sb.stop()

    md = out.read_text()
    assert md.startswith(f"# Incident #{incident_id}: GPU3 fell off the bus")
    assert "| approval | bob | approval.approve gpu007 approved: checked: drained, no job |" in md
    assert "| note | bob | GPU reset done by alice, node resumed |" in md

    db = tmp_path / "audit" / "audit.db"
    rows = audit_rows(db)
    trail = [
        (r["operator"], r["action"], r["outcome"])
        for r in rows
        if str(r["action"]).startswith(("approval.", "incident."))
    ]
    assert trail == [
        ("alice", "incident.open", "open"),
        ("alice", "incident.hand_off", ""),
        ("alice", "approval.request", "pending"),
        ("alice", "approval.refused", "refused"),
        ("bob", "approval.approve", "approved"),
        ("bob", "incident.note", ""),
    ]
    approve = next(r for r in rows if r["action"] == "approval.approve")
    params = json.loads(str(approve["params"]))
    assert params["requested_by"] == "alice" and params["incident_id"] == incident_id
    assert approve["ssh_client"] == "10.0.0.6 50023"  # Bob's session, not Alice's
    assert verify(db).ok
