"""Incidents in the audit database: entries, the merged timeline, hand-off, export, CLI."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.approvals import Approvals
from console.audit import AuditLog
from console.audit_model import utc_now_iso
from console.cli import main
from console.identity import Operator
from console.incidents import IncidentError, Incidents
from console.wizards.runbook_model import runbook_from_data
from console.wizards.runbook_run import RunbookRun
from tests.unit.test_runbook_run import Script, make_rig

ALICE = Operator("alice", None, "/dev/pts/3", "jump1", 101)
BOB = Operator("bob", None, "/dev/pts/4", "jump1", 202)


def next_ms() -> None:
    """Let the audit clock (millisecond timestamps) move on, so 'before' is strictly before."""
    start = utc_now_iso()
    while utc_now_iso() == start:
        pass


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "audit" / "audit.db"


@pytest.fixture
def audit(db: Path) -> Iterator[AuditLog]:
    log = AuditLog(db, operator=ALICE, fallback_path=db.with_name("fallback.jsonl"))
    yield log
    log.close()


def action(audit: AuditLog, name: str, target: str, uid: str) -> None:
    """The two rows the ActionRunner writes for one action on one target."""
    audit.append("intent", action=name, targets=[target], action_uid=uid, params={"x": 1})
    audit.append("result", action=name, targets=[target], action_uid=uid, outcome="ok")


async def test_the_timeline_merges_notes_with_what_was_done_to_the_target(
    audit: AuditLog,
) -> None:
    incidents = Incidents(audit, ALICE)
    action(audit, "slurm.drain", "gpu007", "before")  # before the incident: not in it
    next_ms()
    inc = incidents.open_incident("GPU3 fell off the bus (XID 79)", "gpu007")
    assert incidents.current_for("gpu007") == inc and incidents.current_for("gpu008") is None
    await incidents.add_entry(inc.id, "note", "job 81723 requeued by the user")
    action(audit, "slurm.drain", "gpu007", "u1")
    action(audit, "power.cycle", "gpu008", "u2")  # another node: not in it
    audit.append("security", action="ssh.hostkey_rejected", targets=["gpu007:22"], outcome="x")
    audit.append("runbook", action="runbook.xid79", targets=["gpu007"], detail="step 2 reset")
    approvals = Approvals(audit, ALICE)
    req = await approvals.request("gpu.reset gpu007", "", incident_id=inc.id)  # no targets
    await incidents.add_entry(inc.id, "action", "reset GPU3 after approval")
    closed = incidents.close(inc.id, "GPU reseated; node resumed")
    next_ms()
    action(audit, "slurm.resume", "gpu007", "after")  # after the close: not in it

    items = incidents.timeline(inc.id)
    kinds = [(i.kind, i.source) for i in items]
    assert kinds == [
        ("open", "incident"),
        ("note", "incident"),
        ("action", "audit"),
        ("action", "audit"),
        ("security", "audit"),
        ("runbook step", "audit"),
        ("approval", "audit"),
        ("action", "incident"),
        ("close", "incident"),
    ]
    texts = [i.text for i in items]
    assert texts[2] == "slurm.drain gpu007 intent" and texts[3] == "slurm.drain gpu007 ok"
    assert "approval.request" in texts[6] and "pending" in texts[6]
    assert not any("gpu008" in t or "slurm.resume" in t for t in texts)
    assert [i.ts for i in items] == sorted(i.ts for i in items)
    assert closed.status == "closed" and closed.summary == "GPU reseated; node resumed"
    assert approvals.for_incident(inc.id)[0].id == req.id


async def test_entries_are_chained_audit_rows_and_a_closed_incident_takes_no_more(
    audit: AuditLog, db: Path
) -> None:
    incidents = Incidents(audit, ALICE)
    inc = await incidents.open_incident_async("IB link flapping", "ib-leaf1/17")
    await incidents.add_entry(inc.id, "runbook step", "counters cleared")
    with pytest.raises(IncidentError, match="unknown entry kind"):
        await incidents.add_entry(inc.id, "gossip", "x")
    with pytest.raises(IncidentError, match="summary"):
        incidents.close(inc.id, " ")
    await incidents.close_async(inc.id, "cable replaced")
    with pytest.raises(IncidentError, match="closed"):
        await incidents.add_entry(inc.id, "note", "late")
    with pytest.raises(IncidentError, match="already closed by alice"):
        incidents.close(inc.id, "again")
    rows = [e for e in audit.page(50, 0, newest_first=False) if e.phase == "incident"]
    assert [e.action for e in rows] == ["incident.open", "incident.runbook_step", "incident.close"]
    assert all(e.params["incident_id"] == inc.id and e.targets == ("ib-leaf1/17",) for e in rows)
    assert audit.verify().ok


async def test_the_next_on_call_sees_open_incidents_with_the_last_hand_off(
    audit: AuditLog, db: Path
) -> None:
    mine = Incidents(audit, ALICE)
    one = mine.open_incident("PSU lost on R03", "R03")
    two = mine.open_incident("MinIO down", "minio")
    mine.handoff(one.id, "vendor ticket 4411 open; spare PSU arrives 09:00")
    await mine.handoff_async(one.id, "PSU swapped at 08:40, watch inlet temps")
    mine.close(two.id, "restarted, healthy")

    next_on_call = Incidents(audit, BOB)
    notices = next_on_call.startup_notices()
    assert len(notices) == 1
    assert notices[0].startswith(f"open incident #{one.id} on R03: PSU lost on R03")
    assert "hand-off from alice" in notices[0] and "watch inlet temps" in notices[0]
    listed = next_on_call.list_incidents("open")
    assert listed[0].last_handoff is not None and listed[0].last_handoff.operator == "alice"


async def test_export_is_markdown_with_a_row_per_timeline_item_and_no_raw_pipes(
    audit: AuditLog,
) -> None:
    incidents = Incidents(audit, ALICE)
    inc = incidents.open_incident("Rack over budget", "R02")
    await incidents.add_entry(inc.id, "note", "capped | 2 nodes\x1b[31m red")
    incidents.handoff(inc.id, "cap stays until the PDU is replaced")
    md = incidents.export_markdown(inc.id)
    assert md.startswith(f"# Incident #{inc.id}: Rack over budget\n")
    assert "- Target: `R02`" in md and "- Last hand-off:" in md
    assert "| note | alice | capped \\| 2 nodes red |" in md
    assert "\x1b" not in md
    table = [line for line in md.splitlines() if line.startswith("| 20")]
    assert len(table) == len(incidents.timeline(inc.id)) == 3


async def test_dcc_incident_list_show_and_export_read_the_audit_database(
    audit: AuditLog,
    db: Path,
    tmp_path: Path,
    isolated_cli_state: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    incidents = Incidents(audit, ALICE)
    inc = incidents.open_incident("Slurm controller down", "slurmctl01")
    incidents.handoff(inc.id, "backup controller took over")
    old = incidents.open_incident("old one", "gpu001")
    incidents.close(old.id, "done")
    audit.close()
    args = ["--audit-db", str(db), "incident"]

    assert main([*args, "list"]) == 0
    out = capsys.readouterr().out
    assert f"#{inc.id} on slurmctl01" in out and "backup controller" in out and "old one" not in out
    assert main([*args, "list", "--all"]) == 0
    assert "closed incident" in capsys.readouterr().out
    assert main([*args, "show", str(inc.id)]) == 0
    assert "| hand-off | alice | backup controller took over |" in capsys.readouterr().out
    target = tmp_path / "inc.md"
    assert main([*args, "export", str(inc.id), "--format", "md", "--output", str(target)]) == 0
    assert target.read_text().startswith(f"# Incident #{inc.id}: Slurm controller down")
    assert target.stat().st_mode & 0o077 == 0
    assert main([*args, "show", "99"]) == 1
    assert "no incident #99" in capsys.readouterr().err


def test_an_audit_database_from_before_incidents_reads_as_empty(
    tmp_path: Path, isolated_cli_state: None, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    db = tmp_path / "old.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, ts TEXT)")
    con.close()
    db.chmod(0o600)
    assert main(["--audit-db", str(db), "incident", "list"]) == 0
    assert "no open incidents" in capsys.readouterr().out
    assert main(["--audit-db", str(db), "approvals", "list"]) == 0
    assert "no approval requests" in capsys.readouterr().out


RUNBOOK_WITH_A_NOTE = {
    "id": "rb",
    "title": "Fix it",
    "target_kind": "node",
    "poll_s": 0.02,
    "steps": [
        {"id": "confirm", "check": "rbtest.ok", "expect": "fail", "timeout_s": 5},
        {"id": "fix", "action": "rbtest.fix"},
        {"id": "fixed", "check": "rbtest.ok", "timeout_s": 5},
        {"id": "ticket", "note": "which ticket?", "answer": True},
    ],
}


def table_rows(markdown: str) -> list[tuple[str, str]]:
    """(kind, what) of each timeline row of an exported incident."""
    rows = [line.split(" | ") for line in markdown.splitlines() if line.startswith("| 20")]
    return [(cells[1], cells[3].removesuffix(" |")) for cells in rows]


async def test_a_runbook_step_written_on_the_incident_shows_once_in_show_and_export(
    tmp_path: Path, isolated_cli_state: None, capsys: pytest.CaptureFixture[str]
) -> None:
    async for rig in make_rig(tmp_path):
        incidents = rig.env.incidents
        assert isinstance(incidents, Incidents)
        inc = await incidents.open_incident_async("n01 keeps breaking", "n01")
        await incidents.add_entry(inc.id, "note", "paged the owner")
        target = rig.env.target("node", "n01")
        assert target is not None
        # Attached by id: the run writes each step on the incident as well as in its
        # audit rows, which the timeline merges in (n01 is the incident's target).
        run = RunbookRun(
            runbook_from_data(RUNBOOK_WITH_A_NOTE), target, rig.env, Script(), incident_id=inc.id
        )
        assert await asyncio.wait_for(run.start(), 10) == "done"
        written = [e for e in rig.runner.audit.page(newest_first=False) if e.phase == "incident"]
        assert sum(1 for e in written if "about_event" in e.params) == 7  # start, 4 steps ...
        assert sum(1 for e in written if "about_action" in e.params) == 1  # ... the fix

        timeline = await incidents.timeline_async(inc.id)
        about = [*rig.rows(run), *(e for e in rig.runner.audit.page() if e.action == "rbtest.fix")]
        assert sorted(i.ref for i in timeline if i.source == "audit") == sorted(e.id for e in about)
        assert [(i.kind, i.text) for i in timeline if i.source == "incident"] == [
            ("open", "n01 keeps breaking"),
            ("note", "paged the owner"),
        ]
        db = rig.db
        args = ["--audit-db", str(db), "incident"]
        assert main([*args, "show", str(inc.id)]) == 0
        shown = capsys.readouterr().out
        out = tmp_path / "incident.md"
        assert main([*args, "export", str(inc.id), "--format", "md", "--output", str(out)]) == 0

    for markdown in (shown, out.read_text()):
        rows = table_rows(markdown)
        assert len(rows) == len(timeline)

        def once(kind: str, *needles: str, rows: list[tuple[str, str]] = rows) -> None:
            found = [w for k, w in rows if k == kind and all(n in w for n in needles)]
            assert len(found) == 1, (kind, needles, found)

        once("runbook step", "Fix it", "start")
        once("runbook step", "n01 shows the problem: n01 is broken")  # step confirm
        once("action", "rbtest.fix n01", "fixed")  # step fix: the action's result
        once("runbook step", "rbtest.fix n01: ok (fixed)")  # step fix: its result
        once("runbook step", "rbtest.ok n01 holds: n01 is ok")  # step fixed
        once("note", "answer to which ticket?")  # step ticket: the answer ...
        once("runbook step", "answered: answer to which ticket?")  # ... and its result
        once("runbook step", "done")
        once("note", "paged the owner")
        # The richer text is kept: the entry's where it says more than the row.
        assert ("action", "rbtest.fix n01: ok (fixed)") in rows
