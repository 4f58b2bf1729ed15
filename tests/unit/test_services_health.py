"""Alerts, the health check and the node card from readings in a real Store."""

from __future__ import annotations

from console.inventory.load import inventory_from_data
from console.plugin import Reading, Severity, Target
from console.store import Store
from plugins.services.card import card
from plugins.services.checks import alerts, check_healthy
from plugins.services.config import ServicesConfig
from plugins.services.manifest import plugin


def setup():
    inv = inventory_from_data(
        {"site": {"name": "t"}, "nodes": [{"nodes": "stor[01-02]", "role": "storage"}]}, None
    )
    cfg = ServicesConfig.model_validate(
        {
            "checks": [
                {
                    "name": "minio",
                    "service": "minio",
                    "node": "stor01",
                    "systemd": {"unit": "minio.service"},
                },
                {"name": "es", "service": "elasticsearch", "node": "stor02"},
            ]
        }
    )
    return inv.model_copy(update={"plugin_configs": {"services": cfg}}), Store()


def put(store: Store, name: str, node: str, **metrics):
    store.put(
        [
            Reading(f"svc:{name}", f"services.{m}", v, node=node, detail=metrics.get("_d", ""))
            for m, v in metrics.items()
            if not m.startswith("_")
        ]
    )


def test_down_is_critical_degraded_is_warning_and_keys_are_stable_per_service():
    inv, store = setup()
    put(store, "minio", "stor01", state="ok", unit_active="active", unit_sub="running")
    put(store, "es", "stor02", state="degraded", _d="cluster yellow")
    found = {f.key: f for f in alerts(store, inv)}
    assert list(found) == ["services.health:svc:es"]
    assert found["services.health:svc:es"].severity is Severity.WARNING
    assert found["services.health:svc:es"].node == "stor02"
    put(store, "es", "stor02", state="down", _d="HTTP 503")
    found = {f.key: f for f in alerts(store, inv)}
    assert found["services.health:svc:es"].severity is Severity.CRITICAL  # same key


def test_a_failed_unit_is_a_critical_alert_and_makes_the_service_down():
    inv, store = setup()
    put(
        store,
        "minio",
        "stor01",
        state="ok",
        unit_active="failed",
        unit_sub="failed",
        unit_result="exit-code",
    )
    found = {f.key: f for f in alerts(store, inv)}
    assert found["services.unit_failed:svc:minio"].severity is Severity.CRITICAL
    assert "minio.service failed on stor01" in found["services.unit_failed:svc:minio"].message
    finding = check_healthy(store, Target("service", "minio", node="stor01"))
    assert finding.severity is Severity.CRITICAL and "failed (exit-code)" in finding.message


def test_health_check_is_unknown_before_any_reading_and_ok_after():
    _, store = setup()
    target = Target("service", "es", node="stor02")
    assert check_healthy(store, target).severity is Severity.UNKNOWN
    put(store, "es", "stor02", state="ok", latency_ms=4.0)
    assert check_healthy(store, target).severity is Severity.OK


def test_node_card_lists_the_services_on_that_node_in_words():
    inv, store = setup()
    put(
        store,
        "minio",
        "stor01",
        state="slow",
        latency_ms=1500.0,
        unit_active="active",
        unit_sub="running",
        restarts=2,
        _d="1500 ms > 1000 ms",
    )
    put(store, "es", "stor02", state="ok", latency_ms=3.0)
    lines = card(store, inv.nodes["stor01"])
    assert [(line.label, line.severity) for line in lines] == [("minio", Severity.WARNING)]
    assert lines[0].text.startswith("▲ slow 1500 ms · unit active (running) · 2 restarts")


def test_the_manifest_declares_namespaced_ids_and_a_lazy_pane():
    assert plugin.validate_ids() == []
    assert plugin.panes[0].factory == "plugins.services.panes:ServicesPane"
    assert {c.id for c in plugin.collectors} == {
        "services.http",
        "services.tcp",
        "services.systemd",
    }
    (action,) = plugin.actions
    assert action.id == "services.restart" and action.destructive


def test_everything_but_the_pane_imports_without_textual():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import plugins.services.manifest, plugins.services.collect, plugins.services.parse\n"
        "import plugins.services.lab, plugins.services.actions, plugins.services.checks\n"
        "assert 'textual' not in sys.modules, 'textual was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
