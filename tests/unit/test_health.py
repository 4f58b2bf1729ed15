"""Health evaluation: inventory thresholds, plugin alert rules and failing collectors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from console.health import FAILURES_BEFORE_ALERT, evaluate, refresh_alerts
from console.inventory import Inventory, load_inventory
from console.plugin import Finding, Plugin, Reading, Severity
from console.store import Store, StoreView

DEMO = Path(__file__).resolve().parents[2] / "inventory" / "demo.yaml"


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return load_inventory(DEMO)


def rules_finding(store: StoreView, inventory: Inventory) -> Sequence[Finding]:
    return [Finding(Severity.CRITICAL, "gpu001", "xid 79", key="rules.xid:gpu001", node="gpu001")]


def rules_crash(store: StoreView, inventory: Inventory) -> Sequence[Finding]:
    raise KeyError("gpu.temp_c")


def test_inventory_thresholds_become_findings(inventory: Inventory) -> None:
    store = Store()
    # demo.yaml: services.restarts warn 3, crit 10 (a unit that keeps restarting)
    store.put([Reading("svc:minio", "services.restarts", 12, node="stor01")])
    store.put([Reading("svc:mlflow", "services.restarts", 4, node="cpu01")])
    store.put([Reading("svc:kong", "services.restarts", 3, node="cpu04")])
    found = {f.target: f for f in evaluate(store, inventory, [])}
    assert set(found) == {"svc:minio", "svc:mlflow"}
    assert found["svc:minio"].severity is Severity.CRITICAL
    assert found["svc:minio"].node == "stor01"
    assert found["svc:mlflow"].severity is Severity.WARNING


def test_plugin_alert_rules_are_included(inventory: Inventory) -> None:
    plugin = Plugin("rules", "test", alerts=rules_finding)
    findings = evaluate(Store(), inventory, [plugin])
    assert [f.key for f in findings] == ["rules.xid:gpu001"]


def test_a_crashing_alert_rule_becomes_one_finding_and_others_still_count(
    inventory: Inventory,
) -> None:
    crash = Plugin("crashy", "test", alerts=rules_crash)
    fine = Plugin("rules", "test", alerts=rules_finding)
    findings = evaluate(Store(), inventory, [crash, fine])
    crashed = [f for f in findings if f.key == "plugin-alerts:crashy"]
    assert len(crashed) == 1
    assert crashed[0].severity is Severity.WARNING
    assert crashed[0].target == "crashy"
    assert crashed[0].message == "alert rules failed: 'gpu.temp_c'"
    assert any(f.key == "rules.xid:gpu001" for f in findings)


def test_a_collector_alerts_only_after_repeated_failures(inventory: Inventory) -> None:
    store = Store()
    store.record_attempt("services.http", "gpu001", 15.0, "connection refused")
    assert evaluate(store, inventory, []) == []
    for _ in range(FAILURES_BEFORE_ALERT - 1):
        store.record_attempt("services.http", "gpu001", 15.0, "connection refused")
    (f,) = evaluate(store, inventory, [])
    assert f.severity is Severity.WARNING
    assert f.message == "services.http failing: connection refused"
    assert f.key == "collector:services.http:gpu001"
    assert f.node == "gpu001"


def test_a_failing_collector_on_a_non_node_target_has_no_node(inventory: Inventory) -> None:
    store = Store()
    for _ in range(FAILURES_BEFORE_ALERT):
        store.record_attempt("services.http", "svc:minio", 15.0, "503")
    (f,) = evaluate(store, inventory, [])
    assert f.node is None


def test_a_collector_that_recovers_no_longer_alerts(inventory: Inventory) -> None:
    store = Store()
    for _ in range(FAILURES_BEFORE_ALERT):
        store.record_attempt("services.http", "gpu001", 15.0, "refused")
    store.record_attempt("services.http", "gpu001", 15.0, None)
    assert evaluate(store, inventory, []) == []


def test_a_collector_whose_targets_crashed_alerts_at_once(inventory: Inventory) -> None:
    # The poller records a targets() crash once, under target "*", and never retries it.
    store = Store()
    store.record_attempt("services.http", "*", 15.0, "targets: KeyError: 'checks'")
    (f,) = evaluate(store, inventory, [])
    assert f.key == "collector:services.http:*"
    assert "targets: KeyError" in f.message


def test_refresh_alerts_puts_findings_in_the_store(inventory: Inventory) -> None:
    store = Store()
    refresh_alerts(store, inventory, [Plugin("rules", "test", alerts=rules_finding)])
    assert [a.key for a in store.alerts()] == ["rules.xid:gpu001"]
    refresh_alerts(store, inventory, [])
    assert store.alerts() == []
