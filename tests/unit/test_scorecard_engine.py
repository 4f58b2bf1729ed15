"""The scorecard engine over a Store filled the way the plugins' collectors fill it.

GPU readings come from real ``nvidia-smi -q -x`` captures through the gpu
plugin's own full-read parser; BMC readings from the power plugin's reading
builder; service readings in the services collector's shape.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from console.inventory import apply_plugin_configs, inventory_from_data
from console.inventory.model import Inventory
from console.plugin import Finding, Reading, Severity
from console.registry import discover
from console.store import Store
from console.wizards.scorecard_eval import Inputs, ScorecardEngine, SignOff
from console.wizards.scorecard_model import checklist_from_data
from plugins.gpu.collect import parse_full
from plugins.gpu.readings import full_readings
from plugins.power.collect import readings_of
from plugins.power.model import BmcSnapshot, Psu
from plugins.services.collect import _readings as service_readings

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples" / "nvidia-smi-xml"
NOW = 1_800_000_000.0  # 2027-01-15


def site() -> Inventory:
    return apply_plugin_configs(
        inventory_from_data(
            {
                "site": {"name": "sc-test"},
                "rooms": [{"name": "h", "racks": [{"name": "R01", "power_budget_kw": 40}]}],
                "ssh": {"user": "ops"},
                "nodes": [
                    {
                        "nodes": "gpu[01-04]",
                        "role": "gpu-train",
                        "rack": "R01",
                        "u_start": 1,
                        "u_height": 4,
                        "bmc": {"address": "{name}-bmc"},
                        "hardware": {"gpu_count": 1},
                    },
                    {"nodes": "cpu01", "role": "cpu", "bmc": {"address": "cpu01-bmc"}},
                ],
                "plugins": {
                    "services": {
                        "checks": [
                            {"name": "mlflow", "service": "mlflow", "node": "cpu01"},
                            {"name": "gitea", "service": "gitea", "node": "cpu01"},
                        ]
                    }
                },
                "backups": [
                    {
                        "name": "etcd",
                        "covers": "Kubernetes etcd",
                        "schedule": "daily",
                        "destination": "s3://b/etcd",
                        "retention_days": 14,
                        "restore_tested": "2027-01-01",
                    },
                    {
                        "name": "gitea",
                        "covers": "Gitea repositories",
                        "schedule": "daily",
                        "destination": "s3://b/gitea",
                        "retention_days": 30,
                    },
                ],
            },
            None,
        ),
        {p.name: p.config_model for p in discover().plugins},
    )


def gpu_full(node: str, sample: str) -> list[Reading]:
    path = SAMPLES / sample
    if not path.exists():
        pytest.skip(f"{path} not present")
    text = (
        path.read_text()
        + "\n@@dcc-gpu xml rc=0@@\n"
        + '5.15.0-105-generic\nPRETTY_NAME="Ubuntu 22.04.4 LTS"\n@@dcc-gpu os rc=0@@\n'
    )
    return full_readings(node, parse_full(text))


def filled_store(inventory: Inventory) -> Store:
    store = Store()
    snap = BmcSnapshot(
        power_state="on",
        inlet_c=24.0,
        exhaust_c=None,
        power_w=900.0,
        sensors=(),
        psus=(Psu("PSU1", "ok", 450.0), Psu("PSU2", "ok", 450.0)),
        events=(),
    )
    for name in ("gpu01", "gpu02", "gpu03", "cpu01"):
        store.put(readings_of(name, snap, "redfish", 0.012))
    store.put([Reading("gpu04", "power.bmc_ok", False, source="redfish", detail="connect timeout")])
    for node, sample in (
        ("gpu01", "a10g-v11.xml"),
        ("gpu02", "tesla-t4-v11.xml"),
        ("gpu03", "a10g-v11.xml"),
        ("gpu04", "netdata-tesla-p100.xml"),
    ):
        store.put(gpu_full(node, sample))
    for check in inventory.plugin_configs["services"].checks:
        state = "down" if check.name == "gitea" else "ok"
        store.put(
            service_readings(check, "http", state, "HTTP 503" if state == "down" else "", 12.0)
        )
    return store


def card(*items: dict[str, Any]) -> Any:
    return checklist_from_data({"phases": [{"id": "p", "title": "Phase", "items": list(items)}]})


def judge(inventory: Inventory, store: Store, *items: dict[str, Any], **inputs: Any) -> Any:
    engine = ScorecardEngine(card(*items), inventory, discover().plugins)
    return engine.evaluate(store, Inputs(now=NOW, operator="alice", **inputs)).phases[0]


def test_a_bmc_that_does_not_answer_fails_the_item_with_its_error_as_evidence() -> None:
    inv = site()
    (item,) = judge(
        inv, filled_store(inv), {"id": "bmc", "title": "BMCs", "check": "power.bmc_answering"}
    ).items
    assert item.status == "fail"
    assert item.summary == "1 of 5 nodes failing: gpu04: BMC not answering: connect timeout"
    assert item.evidence[0] == "gpu04: BMC not answering: connect timeout"
    assert "gpu01: BMC answers in 12 ms, power on" in item.evidence


def test_a_node_on_another_driver_fails_uniformity_naming_what_the_others_run() -> None:
    inv = site()
    (item,) = judge(
        inv, filled_store(inv), {"id": "v", "title": "Versions", "check": "gpu.versions_uniform"}
    ).items
    assert item.status == "fail"
    assert item.evidence[0] == (
        "gpu04: driver 510.47.03 ≠ 515.105.01 on 3 others; CUDA 11.6 ≠ 11.7 on 3 others"
    )
    assert item.summary.startswith("1 of 4 nodes failing: gpu04: driver 510.47.03")
    ok = [e for e in item.evidence if e.startswith("gpu01")]
    assert ok == [
        "gpu01: driver 515.105.01, CUDA 11.7, OS Ubuntu 22.04.4 LTS, "
        "kernel 5.15.0-105-generic (same as 3 others)"
    ]


def test_targets_narrow_a_node_check_and_its_peers_to_the_selection() -> None:
    inv = site()
    (item,) = judge(
        inv,
        filled_store(inv),
        {"id": "v", "title": "V", "check": "gpu.versions_uniform", "targets": "gpu[01-03]"},
    ).items
    assert item.status == "pass"
    assert item.summary == "3 nodes OK"


def test_services_are_chosen_by_catalogue_name_and_a_down_one_fails() -> None:
    inv = site()
    store = filled_store(inv)
    phase = judge(
        inv,
        store,
        {
            "id": "mlflow",
            "title": "MLflow",
            "check": "services.healthy",
            "match": {"service": "mlflow"},
        },
        {
            "id": "git",
            "title": "Git",
            "check": "services.healthy",
            "match": {"service": ["gitlab", "gitea"]},
        },
        {
            "id": "triton",
            "title": "Triton",
            "check": "services.healthy",
            "match": {"service": "triton"},
        },
    )
    mlflow, git, triton = phase.items
    assert (mlflow.status, mlflow.summary) == ("pass", "mlflow ok")
    assert git.status == "fail" and "gitea down" in git.summary and "HTTP 503" in git.summary
    assert triton.status == "unknown"
    assert triton.summary.startswith("no service matching service triton for services.healthy")
    assert phase.progress == "1 of 3"


def test_a_node_not_read_yet_is_unknown_not_passed() -> None:
    inv = site()
    (item,) = judge(inv, Store(), {"id": "g", "title": "GPUs", "check": "gpu.healthy"}).items
    assert item.status == "unknown"
    assert item.summary.startswith("4 of 4 nodes unknown: gpu01: no GPU reading yet")


def test_racked_backups_and_alerts_are_judged_from_the_inventory_and_the_store() -> None:
    inv = site()
    store = filled_store(inv)
    store.set_findings([Finding(Severity.CRITICAL, "gpu04", "BMC unreachable", key="k")])
    racked, backups, restored, alerts, named = judge(
        inv,
        store,
        {"id": "r", "title": "Racked", "racked": True},
        {"id": "b", "title": "Backups", "backups": True},
        {"id": "t", "title": "Restores", "backups": {"restore_tested_within_days": 30}},
        {"id": "a", "title": "Alerts", "alerts": {"worst": "warning"}},
        {"id": "n", "title": "Named", "backups": {"require": ["etcd", "harbor"]}},
    ).items
    assert racked.status == "fail"
    assert racked.summary == "1 of 5 nodes not placed: cpu01: no rack"
    assert "R01: gpu01 U1, gpu02 U5, gpu03 U9, gpu04 U13" in racked.evidence
    assert (backups.status, backups.summary) == ("pass", "2 backups declared")
    assert restored.status == "fail" and restored.summary == "gitea: restore never tested"
    assert alerts.status == "fail" and alerts.evidence == ["critical: BMC unreachable"]
    assert named.status == "fail" and named.summary == "harbor: no backup declared"


def test_a_manual_item_passes_once_signed_and_expires_after_its_validity() -> None:
    inv = site()
    item = {"id": "oncall", "title": "On-call rota", "manual": {"valid_days": 90}}
    (unsigned,) = judge(inv, Store(), item).items
    assert unsigned.status == "unknown" and "dcc scorecard sign oncall" in unsigned.summary
    signed = {"oncall": SignOff("oncall", "bob", NOW - 86400, "rota in PagerDuty")}
    (fresh,) = judge(inv, Store(), item, signoffs=signed).items
    assert fresh.status == "pass" and fresh.signed_by == "bob" and fresh.note == "rota in PagerDuty"
    assert fresh.summary == "signed off by bob on 2027-01-14: rota in PagerDuty"
    old = {"oncall": SignOff("oncall", "bob", NOW - 91 * 86400, "rota")}
    (expired,) = judge(inv, Store(), item, signoffs=old).items
    assert expired.status == "unknown" and expired.summary.startswith(
        "expired (older than 90 days)"
    )


def test_a_check_that_raises_is_unknown_and_the_rest_of_the_card_is_judged() -> None:
    from console.plugin import CheckSpec, Plugin

    def broken(store: Any, target: Any) -> Finding:
        raise RuntimeError("bug")

    plugin = Plugin("t", "test", checks=(CheckSpec("t.broken", "broken", "node", broken),))
    inv = site()
    engine = ScorecardEngine(
        card(
            {"id": "x", "title": "X", "check": "t.broken", "targets": "cpu01"},
            {"id": "r", "title": "R", "racked": True},
        ),
        inv,
        [plugin],
    )
    x, r = engine.evaluate(Store(), Inputs(now=time.time())).phases[0].items
    assert x.status == "unknown" and "check failed: RuntimeError('bug')" in x.summary
    assert r.status == "fail"


def test_the_result_exports_as_markdown_with_marks_and_evidence() -> None:
    inv = site()
    engine = ScorecardEngine(
        card(
            {"id": "bmc", "title": "BMCs | answering", "check": "power.bmc_answering"},
            {"id": "b", "title": "Backups", "backups": True},
        ),
        inv,
        discover().plugins,
    )
    result = engine.evaluate(filled_store(inv), Inputs(now=NOW, operator="alice"))
    md = result.to_markdown()
    assert "# Bring-up scorecard: sc-test" in md
    assert "- Evaluated: 2027-01-15T08:00:00+00:00 by alice" in md
    assert "| Phase | 1 of 2 |" in md
    assert "| ✗ | BMCs \\| answering (`bmc`) | fail |" in md
    assert "| ✓ | Backups (`b`) | pass | 2 backups declared |" in md
    assert "  - gpu04: BMC not answering: connect timeout" in md
    assert result.summary() == "p 1/2"
