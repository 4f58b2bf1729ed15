"""`dcc rollout run|resume|status` against a lab served by this test process, and a
rollout killed with SIGKILL mid-wave then resumed by a new process: no completed step
runs twice, and the step in flight is verified before anything else happens."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from console.audit import AuditLog
from console.cli import main
from console.lab import Lab
from console.plugin import CommandReply, LabHostContext, Plugin
from plugins.slurm.manifest import plugin as slurm_plugin
from tests.integration.test_rollout_lab import rollout_inventory

REPO = Path(__file__).resolve().parents[2]
NAME = "driver 560"
ROLLOUT = f"""\
name: {NAME}
targets: gpu[01-04]
expect_count: 4
change: {{command: "dcc-driver-install --version 560", timeout_s: 120}}
rollback: {{command: "dcc-driver-install --version 550", timeout_s: 30}}
pre_checks: [{{check: slurm.controller, target: train}}]
post_checks: [slurm.responding]
resume_checks: [slurm.in_service]
settle_s: 0
poll_s: 0.2
check_timeout_s: 10
drain: {{wait_jobs_s: 60}}
caps: {{per_rack: 1, max_pool_pct: 50}}
gate: {{max_fail_pct: 0}}
"""


@dataclass
class Installer:
    """A driver installer on each lab host: slow or failing on demand (faults)."""

    installs: list[tuple[str, str]] = field(default_factory=list)

    async def start(self, lab: Any) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def command(self, host: LabHostContext, command: str) -> CommandReply | None:
        if not command.startswith("dcc-driver-install --version "):
            return None
        self.installs.append((host.name, command.split()[-1]))
        if host.fault("rolltest.fail_install") is not None:
            return CommandReply(stderr="dkms: build failed for 560\n", exit_status=1)
        slow = host.fault("rolltest.slow_install")
        delay = float(slow.get("seconds", 60)) if slow is not None else 0.0
        return CommandReply(stdout="installed\n", delay=delay)

    def tick(self, now: float) -> None:
        return None

    def rewrite_config(self, section: dict[str, Any]) -> dict[str, Any]:
        return section

    def fault_names(self) -> Sequence[str]:
        return ("rolltest.slow_install", "rolltest.fail_install")


@dataclass
class Site:
    lab: Lab
    emu: Installer
    inventory: Path
    audit: Path
    roles: Path
    rollout: Path
    state: Path

    def args(self, *rest: str) -> list[str]:
        return [
            "--inventory",
            str(self.inventory),
            "--audit-db",
            str(self.audit),
            "--roles",
            str(self.roles),
            "rollout",
            *rest,
        ]

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read the rollouts database through a second connection, as another console would."""
        db = self.audit.with_name("rollouts.db")
        if not db.exists():
            return []
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return list(con.execute(sql, params))
        except sqlite3.OperationalError:  # not created yet
            return []
        finally:
            con.close()

    def audit_rows(self) -> list[dict[str, Any]]:
        con = sqlite3.connect(self.audit)
        con.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in con.execute("SELECT * FROM events ORDER BY id")]
        finally:
            con.close()


@pytest.fixture
async def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Site]:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    emu = Installer()
    plugin = Plugin(name="rolltest", description="a driver installer", lab=lambda: emu)
    lab = Lab(rollout_inventory(), tmp_path / "lab", [slurm_plugin, plugin], seed=11, speed=2000)
    await lab.start()
    try:
        roles = tmp_path / "roles.yaml"
        roles.write_text("default: operator\n", encoding="utf-8")
        roles.chmod(0o600)
        rollout = tmp_path / "rollouts" / "driver.yaml"
        rollout.parent.mkdir()
        rollout.write_text(ROLLOUT, encoding="utf-8")
        inventory = lab.write_inventory(tmp_path / "site.yaml")
        yield Site(
            lab, emu, inventory, tmp_path / "audit" / "audit.db", roles, rollout, tmp_path / "state"
        )
    finally:
        await lab.stop()


@contextlib.contextmanager
def captured() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """stdout and stderr of a `dcc` run in this process (its log handler removed after)."""
    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    handlers = list(root.handlers)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        yield out, err
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()


async def dcc(argv: list[str]) -> tuple[int, str, str]:
    """`dcc ARGV` in a worker thread (its own event loop) while the lab serves from ours."""
    with captured() as (out, err):
        code = await asyncio.to_thread(main, argv)
    return code, out.getvalue(), err.getvalue()


async def test_run_refuses_a_wrong_name_halts_with_exit_3_and_status_shows_the_failure(
    site: Site,
) -> None:
    code, out, err = await dcc(site.args("run", str(site.rollout)))
    assert code == 1 and "no terminal to confirm on: give --confirm NAME" in err
    code, out, err = await dcc(site.args("run", str(site.rollout), "--confirm", "driver 561"))
    assert code == 1, err
    assert "does not match the rollout name 'driver 560'" in err
    assert "canary   gpu01" in out  # the plan is printed before the confirmation
    assert site.emu.installs == []

    site.lab.faults.inject("rolltest.fail_install", "gpu01")
    code, out, err = await dcc(site.args("run", str(site.rollout), "--confirm", NAME))
    assert code == 3, out + err
    assert "halted" in out and "dkms: build failed" in out
    assert [n for n, _ in site.emu.installs] == ["gpu01"]  # nothing after the canary
    (rid,) = [r[0] for r in site.rows("select id from rollouts")]
    assert f"dcc rollout resume {rid}" in out

    code, out, _ = await dcc(site.args("status"))
    assert code == 0 and rid in out and "halted" in out
    code, out, _ = await dcc(site.args("status", rid[:6]))
    assert code == 0
    assert "✖ gpu01" in out and "change failed" in out and "halted:" in out
    code, _, err = await dcc(site.args("status", "ffffff"))
    assert code == 1 and "no rollout with id 'ffffff'" in err
    events = [(r["action"], r["outcome"]) for r in site.audit_rows() if r["phase"] == "rollout"]
    assert events[:2] == [("rollout.refused", "refused")] * 2
    assert ("rollout.gate", "failed") in events


def child(site: Site, *rest: str) -> list[str]:
    return [sys.executable, "-m", "console", *site.args(*rest)]


async def wait_rows(
    site: Site, what: str, sql: str, want: list[tuple[Any, ...]], proc: Any
) -> None:
    """Wait (deadline, not a sleep) until a query of rollouts.db answers ``want``."""
    deadline = asyncio.get_running_loop().time() + 90
    while site.rows(sql) != want:
        assert proc.returncode is None, f"the rollout process ended before {what}"
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_a_rollout_process_killed_mid_wave_is_resumed_by_another_without_repeating_work(
    site: Site,
) -> None:
    env = dict(os.environ, XDG_STATE_HOME=str(site.state))
    site.lab.faults.inject("rolltest.slow_install", "gpu02", {"seconds": 120})
    proc = await asyncio.create_subprocess_exec(
        *child(site, "run", str(site.rollout), "--confirm", NAME),
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        # Mid-wave: gpu03 is done, gpu02's change is committed as started (in flight).
        await wait_rows(
            site,
            "gpu02's change in flight and gpu03 done",
            "select node, state from nodes where node in ('gpu02', 'gpu03') and "
            "(state = 'done' or exists (select 1 from steps s where s.node = nodes.node "
            "and s.step = 'change' and s.state = 'started')) order by node",
            [("gpu02", "running"), ("gpu03", "done")],
            proc,
        )
        # ... and the install reached the host (its intent is on record): killed in flight.
        deadline = asyncio.get_running_loop().time() + 60
        while ("gpu02", "560") not in site.emu.installs:
            assert asyncio.get_running_loop().time() < deadline, "gpu02's install never arrived"
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert site.rows("select status from rollouts") == [("running",)]  # interrupted
    assert site.rows("select state from steps where node = 'gpu02' and step = 'change'") == [
        ("started",)
    ]
    (rid,) = [r[0] for r in site.rows("select id from rollouts")]

    site.lab.faults.clear_all()
    resumed = await asyncio.create_subprocess_exec(
        *child(site, "resume", rid),
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out_bytes, _ = await asyncio.wait_for(resumed.communicate(), 120)
    out = out_bytes.decode()
    assert resumed.returncode == 0, out
    assert "in flight when the console stopped: gpu02 change (outcome unknown)" in out
    assert site.rows("select status from rollouts") == [("done",)]

    # The installer ran once on each node: gpu02's change was verified, not run again.
    assert sorted(n for n, _ in site.emu.installs) == ["gpu01", "gpu02", "gpu03", "gpu04"]
    rows = site.audit_rows()
    intents: dict[tuple[str, str], int] = {}
    for r in rows:
        if r["phase"] == "intent":
            key = (r["action"], json.loads(r["targets"])[0])
            intents[key] = intents.get(key, 0) + 1
    assert intents and all(n == 1 for n in intents.values()), intents  # no step twice
    for node in ("gpu01", "gpu02", "gpu03", "gpu04"):
        for action in ("slurm.drain", "rollout.command", "slurm.resume"):
            assert intents[(action, node)] == 1, (action, node)
    # The killed process's change has an intent and no result: reconciled as unknown ...
    # (and the dead process's lease on gpu02 is freed when the new one starts: it holds
    # the node for minutes otherwise, and nothing acts on the node by freeing it)
    reconciled = [r for r in rows if r["phase"] == "reconcile"]
    assert [(r["action"], r["outcome"]) for r in reconciled] == [
        ("lease.release", "ok"),
        ("rollout.command", "unknown"),
    ]
    assert json.loads(reconciled[0]["targets"]) == ["gpu02"]
    # ... and the resumed process verified it before anything else happened.
    resume_at = next(i for i, r in enumerate(rows) if r["action"] == "rollout.resume")
    after = [r for r in rows[resume_at + 1 :] if r["phase"] in ("rollout", "intent")]
    assert after[0]["action"] == "rollout.verify" and after[0]["outcome"] == "ok"
    assert json.loads(after[0]["targets"]) == ["gpu02"]
    assert "verified, not run again" in after[0]["detail"]
    assert AuditLog(site.audit).verify().ok
