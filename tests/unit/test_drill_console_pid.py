"""An unfinished drill at console start: running in another console (its recorded process
is alive on this host) is a warning naming the pid; a dead or unknown process stays a
critical "stopped mid-drill" alert unless the drill is known restored."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from console.inventory.load import inventory_from_data
from console.options import LaunchOptions
from console.plugin import Finding, Severity
from console.registry import Registry
from console.session import Session, _unfinished_drills
from console.store import Store
from console.wizards.drill_report import DrillReport, DrillStore, Measure, running_pid

HERE = socket.gethostname()


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def unfinished(
    drill_id: str, host: str, pid: int | None, restored: bool | None = None
) -> DrillReport:
    return DrillReport(
        id=drill_id,
        scenario="minio-node",
        title=f"drill {drill_id}",
        scope="demo",
        operator="alice",
        started="2026-11-29T03:00:00",
        rto=Measure(name="RTO", target_s=30, measured_s=None),
        rpo=Measure(name="RPO", target_s=None, measured_s=None),
        console_host=host,
        pid=pid,
        restored=restored,
    )  # no end recorded


def alerts(tmp_path: Path, *reports: DrillReport) -> dict[str, Finding]:
    store = DrillStore(tmp_path / "drills.db")
    for r in reports:
        store.save(r)
    session = Session(
        inventory=inventory_from_data({"site": {"name": "t"}, "nodes": []}, None),
        registry=Registry(),
        store=Store(),
        options=LaunchOptions(),
    )
    # What start_session reads beside the audit database.
    session.unfinished_drills = _unfinished_drills(tmp_path / "audit.db")
    return {f.key: f for f in session.findings() if f.key.startswith("drill:")}


def test_a_drill_whose_console_process_is_alive_here_is_running_elsewhere_a_warning(
    tmp_path: Path,
) -> None:
    found = alerts(tmp_path, unfinished("live", HERE, os.getpid()))
    alert = found["drill:live"]
    assert alert.severity == Severity.WARNING
    assert f"is running in another console (pid {os.getpid()})" in alert.message
    assert "stopped mid-drill" not in alert.message


def test_a_drill_whose_console_process_is_gone_stays_critical_unless_known_restored(
    tmp_path: Path,
) -> None:
    gone = dead_pid()
    found = alerts(
        tmp_path,
        unfinished("dead", HERE, gone),
        unfinished("dead-restored", HERE, gone, restored=True),
        unfinished("elsewhere", "another-host.example", os.getpid()),  # cannot be seen here
        unfinished("old", "", None),  # written before drills recorded their console
    )
    for key in ("drill:dead", "drill:elsewhere", "drill:old"):
        assert found[key].severity == Severity.CRITICAL, key
        assert "stopped mid-drill" in found[key].message
    assert found["drill:dead-restored"].severity == Severity.WARNING
    assert "stopped mid-drill" in found["drill:dead-restored"].message


def test_running_pid_is_this_hosts_live_process_only() -> None:
    assert running_pid(HERE, os.getpid()) == os.getpid()
    assert running_pid(HERE, dead_pid()) is None
    assert running_pid("another-host.example", os.getpid()) is None
    assert running_pid(HERE, None) is None and running_pid(HERE, 0) is None
