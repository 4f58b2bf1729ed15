"""The scorecard against the demo lab: one poll over the real protocols, then the default
checklist judged. What the healthy lab makes pass passes; a driver mismatch and an IB port
down, injected as lab faults, fail their items with the evidence an operator needs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from console.cli import main
from console.options import LaunchOptions
from console.session import Session, start_session
from console.wizards.scorecard_flow import flow_for_session
from tests.unit.conftest import isolated_cli_state as isolated_cli_state  # a fixture


@pytest.fixture
async def session(tmp_path: Path) -> AsyncIterator[Session]:
    options = LaunchOptions(
        inventory=None,
        audit_db=tmp_path / "audit" / "audit.db",
        scenario=None,
        lab_state_dir=tmp_path / "lab",
        poll=False,
    )
    started = await start_session(options)
    try:
        yield started
    finally:
        await started.stop()


HEALTHY = (
    "racked",
    "bmc",
    "gpus",
    "ib-links",
    "versions",
    "storage",
    "k8s-gpus",
    "slurm-idle",
    "monitoring",
    "mlflow",
    "triton",
    "jupyterhub",
    "harbor",
    "gitlab",
    "backups",
)


async def test_the_healthy_lab_passes_its_checks_and_injected_faults_fail_with_evidence(
    session: Session,
) -> None:
    assert session.poller is not None and session.lab is not None
    await session.poller.poll_once()
    session.refresh_alerts()
    flow = flow_for_session(session)
    await flow.load()
    result = flow.evaluate()
    for item_id in HEALTHY:
        item = result.item(item_id)
        assert item is not None and item.status == "pass", (item_id, item and item.summary)
    versions = result.item("versions")
    assert versions is not None and versions.summary == "10 nodes OK"
    assert any("driver 550.90.07, CUDA 12.4, OS Ubuntu 22.04.4 LTS" in e for e in versions.evidence)
    manual = result.item("core-team")
    assert manual is not None and manual.status == "unknown"
    assert result.phases[0].progress == "8 of 10"  # the two manual items wait for a person

    session.lab.faults.inject("gpu.driver_drift", "gpu003", {"driver": "535.161.08"})
    session.lab.faults.inject("infiniband.port_down", "gpu006", {"port": "mlx5_2/1"})
    await session.poller.poll_once(
        lambda job: job.target.name in ("gpu003", "gpu006") or job.target.node in ("gpu006",)
    )
    after = flow.evaluate()
    versions = after.item("versions")
    assert versions is not None and versions.status == "fail"
    assert versions.evidence[0].startswith("gpu003: driver 535.161.08 ≠ 550.90.07 on 9 others")
    links = after.item("ib-links")
    assert links is not None and links.status == "fail"
    assert links.summary.startswith("1 of 10 nodes failing: gpu006: mlx5_2/1")
    assert after.phases[0].progress == "6 of 10"
    kept = await flow.record(after)
    assert flow.book.snapshot(session.inventory.site.name, kept.id) == kept


@pytest.mark.usefixtures("isolated_cli_state")
def test_cli_evaluates_the_demo_lab_per_phase_and_keeps_the_snapshot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--audit-db", str(tmp_path / "audit.db"), "scorecard"]
    assert main(base) == 0
    out = capsys.readouterr().out
    assert "Bring-up scorecard: dc-demo" in out
    assert "Base environment: 8 of 10" in out
    assert "  ✓ ib-links             IB ports Active at the planned rate" in out
    assert "  ? core-team" in out and "  ✗ drills" in out
    assert main([*base, "export", "--snapshot", "latest", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["site"] == "dc-demo" and data["id"]
    assert [p["id"] for p in data["phases"]] == ["base", "platform", "production"]
    assert main([*base, "history"]) == 0
    assert data["id"] in capsys.readouterr().out
