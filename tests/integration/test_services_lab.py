"""The services plugin against the lab: real SSH and HTTP on loopback, real faults."""

from __future__ import annotations

from typing import Any

import pytest

from console.inventory.load import inventory_from_data
from console.inventory.model import Inventory
from console.lab import Lab
from console.plugin import Severity, Target
from console.store import Store
from console.transports import HostUnreachable
from plugins.services.checks import alerts
from plugins.services.collect import collect_http, collect_systemd, collect_tcp
from plugins.services.config import ServicesConfig
from plugins.services.lab import ServicesLab
from plugins.services.manifest import plugin as services_plugin
from tests.integration.support import (
    CollectCtx,
    by_metric,
    ctx_fixture,
    eventually,
    lab_fixture,
)
from tests.integration.support import emulation as emulation_of

SECTION: dict[str, Any] = {
    "checks": [
        {
            "name": "minio-stor01",
            "service": "minio",
            "node": "stor01",
            "systemd": {"unit": "minio.service"},
        },
        {
            "name": "es",
            "service": "elasticsearch",
            "node": "cpu01",
            "slow_ms": 200,
            "systemd": {"unit": "elasticsearch.service"},
        },
        {"name": "gitea", "service": "gitea", "node": "cpu01", "systemd": {"unit": "gitea"}},
        {"name": "harbor", "service": "harbor", "node": "cpu01", "http": {"scheme": "https"}},
        {"name": "postgres", "node": "cpu01", "tcp": {"port": 5432}},
    ]
}


def services_inventory() -> Inventory:
    return inventory_from_data(
        {
            "site": {"name": "svc-lab"},
            "ssh": {"user": "ops"},
            "nodes": [
                {"nodes": "cpu01", "role": "cpu"},
                {"nodes": "stor01", "role": "storage"},
            ],
            "plugins": {"services": SECTION},
        },
        None,
    )


lab = lab_fixture(services_inventory, [services_plugin], seed=3)


ctx = ctx_fixture("services")


def emulation(lab: Lab) -> ServicesLab:
    return emulation_of(lab, "services", ServicesLab)


def svc(name: str, node: str | None = None) -> Target:
    return Target("service", name, node=node)


async def test_the_lab_rewrites_every_http_check_to_its_loopback_port(lab: Lab):
    cfg = lab.inventory.plugin_configs["services"]
    assert isinstance(cfg, ServicesConfig)
    for check in cfg.checks:
        if check.http is not None:
            assert check.http.url is not None
            assert check.http.url.startswith("http://127.0.0.1:")
            assert check.http.url.endswith(f"/{check.name}{check.entry.path}")  # type: ignore[union-attr]
    pg = cfg.get("postgres")
    assert pg is not None and pg.tcp is not None and pg.tcp.host == "127.0.0.1"


async def test_http_collector_reads_each_service_healthy_with_its_latency(ctx: CollectCtx):
    for name, node, detail in [
        ("minio-stor01", "stor01", "HTTP 200"),
        ("es", "cpu01", "cluster green"),
        ("gitea", "cpu01", "pass"),
        ("harbor", "cpu01", "8 components healthy"),
    ]:
        r = by_metric(await collect_http(ctx, svc(name)))
        assert r["services.state"].value == "ok", (name, r["services.state"].detail)
        assert r["services.state"].detail == detail
        assert r["services.state"].target == f"svc:{name}" and r["services.state"].node == node
        assert r["services.up"].value is True
        assert r["services.http_status"].value == 200
        latency = r["services.latency_ms"].value
        assert isinstance(latency, float) and 0 < latency < 200


async def test_systemd_collector_reads_all_units_of_a_node_in_one_ssh_command(
    lab: Lab, ctx: CollectCtx
):
    sessions = lab.hosts["cpu01"].sessions
    readings = await collect_systemd(ctx, Target("node", "cpu01", node="cpu01"))
    assert lab.hosts["cpu01"].sessions == sessions + 1
    units = {(r.target, r.metric): r.value for r in readings}
    assert units[("svc:es", "services.unit_active")] == "active"
    assert units[("svc:es", "services.unit_sub")] == "running"
    assert units[("svc:es", "services.restarts")] == 0
    assert units[("svc:gitea", "services.unit_active")] == "active"
    assert ("svc:gitea", "services.state") not in units  # HTTP decides the state of gitea


async def test_tcp_collector_connects_and_a_down_fault_closes_the_port(lab: Lab, ctx: CollectCtx):
    r = by_metric(await collect_tcp(ctx, svc("postgres")))
    assert r["services.state"].value == "ok" and r["services.up"].value is True
    lab.faults.inject("services.down", "postgres")

    async def down() -> bool:
        return by_metric(await collect_tcp(ctx, svc("postgres")))["services.state"].value == "down"

    # The lab closes the port on its next tick (every second).
    await eventually(down, "the TCP check to see the port closed")
    r = by_metric(await collect_tcp(ctx, svc("postgres")))
    assert r["services.up"].value is False
    assert r["services.state"].detail.startswith("connect to 127.0.0.1:")


async def test_services_down_fault_makes_the_reading_down_and_raises_a_critical_alert(
    lab: Lab, ctx: CollectCtx
):
    lab.faults.inject("services.down", "stor01", {"service": "minio-stor01"})
    r = by_metric(await collect_http(ctx, svc("minio-stor01")))
    assert r["services.state"].value == "down"
    assert r["services.state"].detail == "HTTP 503"
    assert r["services.up"].value is False
    units = await collect_systemd(ctx, Target("node", "stor01", node="stor01"))
    assert {r.metric: r.value for r in units}["services.unit_active"] == "failed"
    store = Store()
    store.put(r.values())
    store.put(units)
    found = {f.key: f for f in alerts(store, lab.inventory)}
    assert found["services.unit_failed:svc:minio-stor01"].severity is Severity.CRITICAL
    # The other services on the lab are untouched.
    assert by_metric(await collect_http(ctx, svc("es")))["services.state"].value == "ok"


async def test_services_slow_fault_yields_slow(lab: Lab, ctx: CollectCtx):
    lab.faults.inject("services.slow", "es", {"delay_ms": 400})
    r = by_metric(await collect_http(ctx, svc("es")))
    assert r["services.state"].value == "slow"
    assert r["services.latency_ms"].value >= 400  # type: ignore[operator]
    assert r["services.up"].value is True


async def test_services_degraded_fault_turns_es_yellow_and_gitea_warn(lab: Lab, ctx: CollectCtx):
    lab.faults.inject("services.degraded", "cpu01")
    es = by_metric(await collect_http(ctx, svc("es")))["services.state"]
    gitea = by_metric(await collect_http(ctx, svc("gitea")))["services.state"]
    harbor = by_metric(await collect_http(ctx, svc("harbor")))["services.state"]
    assert (es.value, es.detail) == ("degraded", "cluster yellow, 6 unassigned shards")
    assert (gitea.value, gitea.detail) == ("degraded", "warn: cache:ping")
    assert (harbor.value, harbor.detail) == ("degraded", "unhealthy: trivy")


async def test_a_powered_off_hosts_services_are_down_and_systemd_collector_raises(
    lab: Lab, ctx: CollectCtx
):
    lab.faults.inject("host.power_off", "stor01")
    r = by_metric(await collect_http(ctx, svc("minio-stor01")))
    assert r["services.state"].value == "down" and r["services.up"].value is False
    assert r["services.state"].detail  # the transport's error, for the operator
    with pytest.raises(HostUnreachable):
        await collect_systemd(ctx, Target("node", "stor01", node="stor01"))


async def test_unit_failed_fault_closes_the_port_and_a_restart_brings_it_back(
    lab: Lab, ctx: CollectCtx
):
    lab.faults.inject("services.unit_failed", "minio-stor01")
    r = by_metric(await collect_http(ctx, svc("minio-stor01")))
    assert r["services.state"].value == "down"
    node = lab.inventory.nodes["stor01"]
    result = await ctx.transports.ssh.run(node, "systemctl restart minio.service", timeout=5)
    assert result.exit_status == 0
    assert emulation(lab).restarts == [("stor01", "minio.service")]

    async def active() -> bool:
        out = await ctx.transports.ssh.run(node, "systemctl is-active minio", timeout=5)
        return out.stdout == "active\n"

    await eventually(active, "minio.service to be active again")
    assert by_metric(await collect_http(ctx, svc("minio-stor01")))["services.state"].value == "ok"


async def test_a_unit_failed_by_services_down_comes_back_by_itself_when_the_fault_ends(
    lab: Lab, ctx: CollectCtx
):
    fid = lab.faults.inject("services.down", "es")
    target = Target("node", "cpu01", node="cpu01")

    async def es_unit() -> dict[str, Any]:
        readings = await collect_systemd(ctx, target)
        return {r.metric: r.value for r in readings if r.target == "svc:es"}

    assert (await es_unit())["services.unit_active"] == "failed"
    lab.faults.clear(fid)

    async def active_again() -> bool:
        return (await es_unit())["services.unit_active"] == "active"

    await eventually(active_again, "elasticsearch.service to be restarted by systemd")
    assert (await es_unit())["services.restarts"] == 1
    assert emulation(lab).restarts == []  # nobody ran systemctl restart
