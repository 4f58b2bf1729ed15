"""`dcc drill run` as a real child process on the demo lab (started by the child itself, as
`dcc` does with no inventory): a drill that passes, a wrong typed confirmation that refuses
with nothing injected, and Ctrl-C mid-drill that aborts through the engine and restores."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from console.audit import AuditLog
from console.wizards.drill_report import DrillStore

REPO = Path(__file__).resolve().parents[2]
SCENARIO = "inference-replica"
"""The demo's fastest scenario: triton-inf01 down, replaced by the lab 6 s later."""
CONFIRM = "triton-inf01"
"""What the console asks to type for it: the injection's blast radius."""


@dataclass
class Demo:
    env: dict[str, str]
    state: Path

    @property
    def audit(self) -> Path:
        return self.state / "dcconsole" / "demo-audit.db"

    @property
    def drills(self) -> Path:
        return self.state / "dcconsole" / "drills.db"

    def argv(self, *rest: str) -> list[str]:
        return [sys.executable, "-m", "console", *rest]

    def dcc(self, *rest: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*rest),
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def audit_rows(self) -> list[dict[str, Any]]:
        con = sqlite3.connect(self.audit)
        con.row_factory = sqlite3.Row
        try:
            rows = [dict(r) for r in con.execute("SELECT * FROM events ORDER BY id")]
        finally:
            con.close()
        for r in rows:
            r["outcome"] = r["outcome"] or ""  # an intent has none yet
        return rows

    def chain_verifies(self) -> bool:
        log = AuditLog(self.audit)
        try:
            return log.verify().ok
        finally:
            log.close()


@pytest.fixture
def demo(tmp_path: Path) -> Demo:
    # The child's state (demo lab, audit and drill databases) lives in tmp_path only.
    state = tmp_path / "state"
    return Demo(dict(os.environ, XDG_STATE_HOME=str(state), NO_COLOR="1"), state)


def test_dcc_drill_run_passes_a_demo_drill_and_records_the_report_and_audit_rows(
    demo: Demo,
) -> None:
    done = demo.dcc("drill", "run", SCENARIO, "--confirm", CONFIRM, timeout=90)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    # The preflight first, then live lines with the phases, then the verdict.
    assert out.index("steady state (now):") < out.index("phase inject") < out.index("result")
    assert "● services.healthy@triton-inf01" in out
    assert "dead man's switch armed" in out and "dead man's switch cancelled" in out
    for phase in ("detect after", "failover after", "recovered after"):
        assert phase in out, phase
    assert "result PASSED" in out
    rto_line = next(line for line in out.splitlines() if line.startswith("RTO "))
    assert rto_line.endswith("/ target 60s: met"), rto_line
    measured = float(rto_line.split()[1].rstrip("s"))
    assert 5.0 <= measured <= 60.0  # the lab replaces the replica 6 s after the fault

    (report,) = DrillStore(demo.drills).list()
    assert report.result == "passed" and report.restored is True
    assert report.rto.measured_s == pytest.approx(measured, abs=0.05)
    assert f"dcc drill show {report.id}" in out
    assert report.console_host and report.pid is not None and report.pid != os.getpid()

    rows = demo.audit_rows()
    drill = [(r["phase"], r["action"], r["outcome"], r["targets"]) for r in rows]
    mine = [
        (phase, action, outcome)
        for phase, action, outcome, _ in drill
        if phase in ("drill", "intent", "result")
    ]
    assert mine == [
        ("drill", "drill.inference-replica", "started"),
        ("intent", "lab.deadman_arm", ""),
        ("result", "lab.deadman_arm", "ok"),
        ("intent", "lab.fault", ""),
        ("result", "lab.fault", "ok"),
        ("intent", "lab.fault_clear", ""),
        ("result", "lab.fault_clear", "ok"),
        ("intent", "lab.deadman_cancel", ""),
        ("result", "lab.deadman_cancel", "ok"),
        ("drill", "drill.inference-replica", "passed"),
    ]
    started = next(r for r in rows if r["phase"] == "drill")
    assert json.loads(started["params"])["drill_id"] == report.id
    assert started["pid"] == report.pid  # the same console process, on the record
    assert demo.chain_verifies()

    # ... and the report is read back by the command the run pointed at.
    shown = demo.dcc("drill", "show", report.id)
    assert shown.returncode == 0 and "**PASSED**" in shown.stdout
    listed = demo.dcc("drill", "list")
    assert listed.returncode == 0 and f"{report.id}  passed" in listed.stdout


def test_a_wrong_confirmation_refuses_with_exit_1_and_injects_nothing(demo: Demo) -> None:
    done = demo.dcc("drill", "run", SCENARIO, "--confirm", "triton-inf02")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "does not match 'triton-inf01'" in done.stderr
    assert "nothing was injected" in done.stderr
    assert "inject: lab.fault triton-inf01" in done.stdout  # the preflight was shown
    rows = demo.audit_rows()
    assert not [r for r in rows if r["phase"] in ("intent", "result")]  # nothing ran
    refusals = [(r["action"], r["outcome"]) for r in rows if r["phase"] == "drill"]
    assert refusals == [("drill.inference-replica", "refused")]
    assert not demo.drills.exists() or DrillStore(demo.drills).list() == []


def _lines(stream: IO[str], into: list[str]) -> threading.Thread:
    def pump() -> None:
        for line in stream:
            into.append(line)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def child(demo: Demo) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        demo.argv("drill", "run", SCENARIO, "--confirm", CONFIRM, "--json"),
        cwd=REPO,
        env=demo.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=20)


def test_ctrl_c_mid_drill_aborts_through_the_engine_restores_and_exits_4(
    demo: Demo, child: subprocess.Popen[str]
) -> None:
    assert child.stdout is not None and child.stderr is not None
    progress: list[str] = []
    pump = _lines(child.stderr, progress)  # with --json the progress goes to stderr
    deadline = time.monotonic() + 60
    while not any("detect after" in line for line in progress):  # the fault is in
        assert child.poll() is None, "".join(progress)
        assert time.monotonic() < deadline, "the drill never got to observe:\n" + "".join(progress)
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    out: list[str] = []
    reader = _lines(child.stdout, out)
    child.wait(timeout=60)  # the child exits once the restore is done
    pump.join(timeout=5)
    reader.join(timeout=5)
    stdout = "".join(out)
    text = "".join(progress)
    assert child.returncode == 4, text
    assert "interrupted by the operator (Ctrl-C): aborting the drill" in text
    assert "result ABORTED" in text and "restored: yes" in text

    report = json.loads(stdout)  # --json: the report, as `dcc drill report --format json`
    assert report["result"] == "aborted" and report["restored"] is True
    assert report["deviations"][0] == "aborted: interrupted by the operator (Ctrl-C)"
    assert report["phases"]["recovered"] is None  # aborted before the replica came back
    (stored,) = DrillStore(demo.drills).list()
    assert stored.id == report["id"] and stored.result == "aborted"

    rows = [(r["phase"], r["action"], r["outcome"]) for r in demo.audit_rows()]
    fault = rows.index(("result", "lab.fault", "ok"))
    after = rows[fault + 1 :]
    # The restore cleared the fault (it was still in: the lab reverts it only after 6 s).
    assert ("result", "lab.fault_clear", "ok") in after
    assert ("result", "lab.deadman_cancel", "ok") in after
    assert ("drill", "drill.inference-replica", "aborted") in after
    clear = next(
        r for r in demo.audit_rows() if r["phase"] == "result" and r["action"] == "lab.fault_clear"
    )
    assert "cleared 1 services.down fault(s)" in clear["detail"]
    assert demo.chain_verifies()
