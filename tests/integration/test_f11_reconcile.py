"""RELIABILITY.md F11: after a kill, the next console reads the actual state back.

A child console (``f11_child``) runs ``power.soft`` on a node through the lab's
Redfish BMC and SIGKILLs itself at a FAULTPOINT. The second console (this
process) records the interrupted action ``unknown`` at once and then, in the
background, runs the spec's verify (reads the power state from the BMC until it
is off, up to ``soft_shutdown_wait_s``): ``verified-applied`` when the kill came
after the BMC took the request, ``verified-not-applied`` when nothing was sent.
A soft shutdown is a pair where the state tells: the node is on before it and
off after it (a restart of a running service reads the same either way).
"""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Any

import pytest

from console.audit import verify
from console.inventory.load import inventory_from_data
from console.inventory.model import Inventory
from console.lab import Lab
from plugins.power.lab import PowerLab
from plugins.power.manifest import plugin as power_plugin
from tests.integration.support import emulation, lab_fixture
from tests.integration.test_f11_sigkill import new_run, read_back, run_child, second_console

SOFT_WAIT_S = 6.0
"""How long verification waits for the node to be off: the lab's OS takes 3 s."""
BMC = {"address": "{name}-bmc", "protocol": "redfish", "user": "admin", "password": "env:UNUSED"}


def soft_inventory() -> Inventory:
    return inventory_from_data(
        {
            "site": {"name": "f11-power"},
            "rooms": [{"name": "hall", "racks": [{"name": "R01", "power_budget_kw": 30}]}],
            "ssh": {"user": "ops"},
            "nodes": [{"nodes": "cpu[01-02]", "role": "cpu", "rack": "R01", "bmc": BMC}],
            "plugins": {"power": {"timeout": 2.0, "soft_shutdown_wait_s": SOFT_WAIT_S}},
        },
        None,
    )


lab = lab_fixture(soft_inventory, [power_plugin], seed=11)


def power_offs(lab: Lab, node: str) -> int:
    """Times the node's BMC logged a power off (its SEL): how often the shutdown ran."""
    bmc = emulation(lab, "power", PowerLab).bmcs[node]
    return sum(1 for e in bmc.log if e["Message"] == "System power off")


async def kill_then_read_back(
    lab: Lab, base: Path, node: str, kill_at: str
) -> tuple[list[dict[str, Any]], list[Any], list[str], list[str]]:
    """Kill a child at ``kill_at``; start a second console; its rows, verdicts, alerts, notices."""
    run = new_run(base, lab, f"{kill_at}-{node}")
    code, out = await run_child(run, kill_at, "power.soft", node)
    assert code == -signal.SIGKILL, f"not killed at {kill_at} (exit {code}): {out}"
    before = len(run.rows())
    session, _ = await second_console(run)
    try:
        verdicts = await read_back(session)
        alerts = [f.message for f in session.findings() if f.key.startswith("pending:")]
        notices = list(session.notices)
    finally:
        await session.stop()
    rows = run.rows()
    assert run.integrity() == "ok"
    report = verify(run.audit, run.audit.with_name("audit.db.anchor"))
    assert report.ok, report
    assert [r for r in rows[before:] if r["phase"] == "intent"] == []  # nothing run again
    return rows, verdicts, alerts, notices


def reconcile_rows(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [
        (r["targets"], r["outcome"], r["detail"])
        for r in rows
        if r["phase"] == "reconcile" and r["action"] == "power.soft"
    ]


async def test_a_soft_shutdown_sent_before_the_kill_is_recorded_verified_applied(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert lab.hosts["cpu01"].powered
    rows, verdicts, alerts, notices = await kill_then_read_back(
        lab, tmp_path, "cpu01", "target.executed"
    )
    got = reconcile_rows(rows)
    assert [(t, o) for t, o, _ in got] == [
        ('["cpu01"]', "unknown"),
        ('["cpu01"]', "verified-applied"),
    ]
    assert "cpu01 power off (read back after" in got[1][2]
    assert [(v.target, v.outcome) for v in verdicts] == [("cpu01", "verified-applied")]
    [alert] = alerts
    assert alert.startswith("power.soft of cpu01 interrupted: verified done (")
    assert alert in notices
    assert not lab.hosts["cpu01"].powered
    assert power_offs(lab, "cpu01") == 1  # the child's request, once; the reader sent none


async def test_nothing_sent_before_the_kill_is_recorded_verified_not_applied(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    rows, verdicts, alerts, notices = await kill_then_read_back(
        lab, tmp_path, "cpu02", "intent.committed"
    )
    got = reconcile_rows(rows)
    assert [(t, o) for t, o, _ in got] == [
        ('["cpu02"]', "unknown"),
        ('["cpu02"]', "verified-not-applied"),
    ]
    assert re.fullmatch(r"cpu02 power is on, not off, after \d+s", got[1][2]), got[1][2]
    assert [(v.target, v.outcome) for v in verdicts] == [("cpu02", "verified-not-applied")]
    [alert] = alerts
    assert alert == (
        "power.soft of cpu02 interrupted: read back as NOT done, check before running it "
        f"again ({got[1][2]})"
    )
    assert alert in notices
    assert lab.hosts["cpu02"].powered
    assert power_offs(lab, "cpu02") == 0  # never sent, and not sent by the reader either
