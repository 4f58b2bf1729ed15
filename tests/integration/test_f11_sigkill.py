"""RELIABILITY.md F11: a console process SIGKILLed at every FAULTPOINT of a real action.

The faultpoints are not listed here: a first child process runs the action to
its end with a recording FAULTPOINT, and that list (non-empty, each name once)
is what the test kills at. For each name, a child process (``f11_child``) starts
a console session on the lab's inventory, runs ``services.restart`` of
``minio-stor01`` through the ActionRunner over real SSH to the lab (served by
this process), and SIGKILLs itself on reaching the name. Then this process --
the second console -- starts a session on the same audit database
(``start_session``, which runs ``ActionRunner.reconcile_on_start``) and the
test asserts RELIABILITY's invariants:

- the killed process passed exactly the recorded faultpoints up to the name;
- every intent and result the child saw committed before the kill is still
  there (no intent lost), and ``PRAGMA integrity_check`` is ``ok`` before and
  after the restart;
- every intent without a result is listed as pending (an "outcome unknown"
  alert and a start notice) and gets a ``reconcile`` row with outcome
  ``unknown``; nothing is left pending afterwards (never silently lost);
- then, in the background, the target is read back with the spec's verify and
  the verdict is its own ``reconcile`` row, alert and notice: the unit is
  active again, so ``verified-applied`` (a restart's wanted state also held
  before it, so this cannot tell a restart done from one never sent: the
  determinable case, ``power.soft``, is ``test_f11_reconcile``);
- nothing is re-run by itself: the restart ran at most once, never without a
  committed intent, and the second console wrote no intent and restarted
  nothing;
- the dead console's lease and console lock are gone;
- the audit hash chain verifies, against its anchor file too.

Runs per faultpoint: 1 by default (CI: about 15 s for the module on 2 cores).
The nightly size of RELIABILITY.md §2.6 is ``DCC_F11_RUNS=50``: with today's ten
faultpoints that is 500 kills, about 10 minutes; every failing kill is reported, not
only the first.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from console.audit import verify
from console.audit_files import private_umask
from console.lab import Lab
from console.options import LaunchOptions
from console.session import Session, start_session
from plugins.services.manifest import plugin as services_plugin
from tests.integration.support import lab_fixture
from tests.integration.test_services_lab import emulation, services_inventory

REPO = Path(__file__).resolve().parents[2]
RUNS = int(os.environ.get("DCC_F11_RUNS", "1"))
"""Kills per faultpoint: 1 in CI, 50 nightly (RELIABILITY.md §2.6)."""
CHILD_DEADLINE_S = 60.0

lab = lab_fixture(services_inventory, [services_plugin], seed=5)


@dataclass(frozen=True)
class Run:
    """One console process's files: its audit database, roles, and FAULTPOINT trace."""

    dir: Path
    inventory: Path
    roles: Path

    @property
    def audit(self) -> Path:
        return self.dir / "audit" / "audit.db"

    @property
    def trace(self) -> Path:
        return self.dir / "trace.jsonl"

    def options(self) -> LaunchOptions:
        return LaunchOptions(
            inventory=self.inventory, audit_db=self.audit, roles=self.roles, poll=False
        )

    def steps(self) -> list[dict[str, Any]]:
        if not self.trace.exists():
            return []
        return [json.loads(line) for line in self.trace.read_text().splitlines()]

    def rows(self) -> list[dict[str, Any]]:
        """Every audit row, read by a connection of this test (as an auditor would)."""
        with private_umask(self.audit.parent):  # a reader may create -shm: never open to others
            con = sqlite3.connect(f"file:{self.audit}?mode=ro", uri=True)
        try:
            con.row_factory = sqlite3.Row
            return [dict(r) for r in con.execute("SELECT * FROM events ORDER BY id")]
        finally:
            con.close()

    def integrity(self) -> str:
        with private_umask(self.audit.parent):
            con = sqlite3.connect(f"file:{self.audit}?mode=ro", uri=True)
        try:
            return "; ".join(str(r[0]) for r in con.execute("PRAGMA integrity_check"))
        finally:
            con.close()


def new_run(base: Path, lab: Lab, name: str) -> Run:
    d = base / name
    d.mkdir(parents=True)
    roles = d / "roles.yaml"
    roles.write_text("default: operator\n", encoding="utf-8")
    roles.chmod(0o600)
    return Run(d, lab.state_dir / "inventory.yaml", roles)


async def run_child(run: Run, kill_at: str, *action_target: str) -> tuple[int, str]:
    """The child console, to its end or its SIGKILL (a deadline; killed if it overruns)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.f11_child",
        str(run.inventory),
        str(run.audit),
        str(run.roles),
        str(run.trace),
        kill_at,
        *action_target,
        cwd=REPO,
        env=dict(os.environ, XDG_STATE_HOME=str(run.dir / "state")),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), CHILD_DEADLINE_S)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


async def reference_faultpoints(base: Path, lab: Lab) -> list[str]:
    """The faultpoints one real action passes through, recorded by a child run to its end."""
    run = new_run(base, lab, "record")
    code, out = await run_child(run, "")
    assert code == 0, out
    assert json.loads(out.strip().splitlines()[-1]) == [
        {"target": "minio-stor01", "outcome": "ok"}
    ], out
    names = [s["name"] for s in run.steps()]
    assert names, "the action passed no FAULTPOINT: nothing to kill at"
    assert len(set(names)) == len(names), names  # one target: each transition once
    assert verify(run.audit).ok
    return names


async def second_console(run: Run) -> tuple[Session, list[tuple[str, str]]]:
    session = await start_session(run.options())
    assert session.audit is not None
    leases = await session.audit.live_leases_async()
    return session, leases


async def read_back(session: Session) -> list[Any]:
    """The second console's background read-back of interrupted actions, to its end."""
    if session.reconciling is None:
        return []
    return list(await asyncio.wait_for(asyncio.shield(session.reconciling), CHILD_DEADLINE_S))


async def kill_and_restart(base: Path, lab: Lab, names: list[str], at: int, k: int) -> None:
    name = names[at]
    run = new_run(base, lab, f"{at:02d}-{name}-{k}")
    restarts = len(emulation(lab).restarts)
    code, out = await run_child(run, name)
    assert code == -signal.SIGKILL, f"not killed at {name} (exit {code}): {out}"
    steps = run.steps()
    assert [s["name"] for s in steps] == names[: at + 1], "the faultpoints changed"
    seen = steps[-1]  # what was committed when the process died
    ran = len(emulation(lab).restarts) - restarts
    assert run.integrity() == "ok"
    before = run.rows()

    session, leases = await second_console(run)
    try:
        pending = list(session.pending)
        alerts = [f.message for f in session.findings()]
        notices = list(session.notices)
        assert session.audit is not None
        left = await session.audit.pending_actions_async()
        verdicts = await read_back(session)
        read_alerts = [f.message for f in session.findings()]
        read_notices = session.notices[len(notices) :]
    finally:
        await session.stop()
    after = run.rows()

    # The database survived the kill whole, and nothing committed before it is lost.
    assert run.integrity() == "ok"
    report = verify(run.audit, run.audit.with_name("audit.db.anchor"))
    assert report.ok, report
    assert after[: len(before)] == before  # the second console only appended
    intents = [r["action_uid"] for r in after if r["phase"] == "intent"]
    results = {r["action_uid"] for r in after if r["phase"] == "result"}
    assert set(seen["intents"]) <= set(intents), "an intent committed before the kill is lost"
    assert set(seen["results"]) <= results, "a result committed before the kill is lost"

    # Every intent without a result is listed as interrupted and reconciled as unknown.
    unfinished = [uid for uid in intents if uid not in results]
    assert sorted(p.action_uid for p in pending) == sorted(unfinished)
    assert all(p.pid == seen["pid"] and p.targets == ("minio-stor01",) for p in pending)
    reconciled: dict[str, list[str]] = {}
    for r in after:
        if r["phase"] == "reconcile" and r["action"] == "services.restart":
            reconciled.setdefault(r["action_uid"], []).append(r["outcome"])
    # "unknown" at once, then what the read-back found: the unit is active.
    assert reconciled == {uid: ["unknown", "verified-applied"] for uid in unfinished}
    unknown = [a for a in alerts if a.startswith("outcome unknown: services.restart")]
    assert len(unknown) == len(unfinished), alerts
    assert any("no recorded result" in n for n in notices) == bool(unfinished), notices
    assert left == [], "an interrupted action is still pending after the restart"
    assert [(v.target, v.outcome) for v in verdicts] == [
        ("minio-stor01", "verified-applied") for _ in unfinished
    ]
    done = "services.restart of minio-stor01 interrupted: verified done (minio.service on stor01"
    assert len([a for a in read_alerts if a.startswith(done)]) == len(unfinished), read_alerts
    assert len([n for n in read_notices if n.startswith(done)]) == len(unfinished), read_notices
    assert not any(a.startswith("outcome unknown: services.restart") for a in read_alerts)

    # Nothing ran by itself: the restart at most once, never without an intent on record.
    assert ran <= 1 and (ran == 0 or intents), (ran, intents)
    assert ran == (at >= names.index("target.executed")), (name, ran)  # exactly once, if at all
    assert len(emulation(lab).restarts) - restarts == ran
    assert [r for r in after[len(before) :] if r["phase"] == "intent"] == []
    # The dead console holds nothing: no lease, no console lock.
    assert leases == [], leases
    assert not any("another console is using" in n for n in notices), notices


async def test_a_console_killed_at_any_faultpoint_loses_nothing_and_reruns_nothing(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    names = await reference_faultpoints(tmp_path, lab)
    failures = []
    for at, name in enumerate(names):
        for k in range(RUNS):
            try:
                await kill_and_restart(tmp_path, lab, names, at, k)
            except AssertionError as exc:  # every kill is judged; all failures are reported
                failures.append(f"killed at {name} (run {k + 1} of {RUNS}): {exc}")
    kills = len(names) * RUNS
    assert not failures, f"{len(failures)} of {kills} kills broke an invariant:\n" + "\n".join(
        failures
    )
