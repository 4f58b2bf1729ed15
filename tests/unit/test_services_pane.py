"""The Services pane in a tiny Textual app: order, glyphs, filter, stale age."""

from __future__ import annotations

from textual.app import App, ComposeResult

from console.inventory.load import inventory_from_data
from console.plugin import Reading
from console.store import Store
from console.widgets.pane import NodeFilter, PaneContext
from plugins.services.config import ServicesConfig
from plugins.services.manifest import plugin
from plugins.services.panes import ServicesPane

NOW = 1_750_000_000.0


def context(store: Store, node_filter: NodeFilter | None = None) -> PaneContext:
    inv = inventory_from_data(
        {"site": {"name": "t"}, "nodes": [{"nodes": "cpu[01-02]", "role": "cpu"}]}, None
    )
    cfg = ServicesConfig.model_validate(
        {
            "checks": [
                {"name": "grafana", "service": "grafana", "node": "cpu01"},
                {
                    "name": "mlflow",
                    "service": "mlflow",
                    "node": "cpu02",
                    "systemd": {"unit": "mlflow"},
                },
                {"name": "qdrant", "service": "qdrant", "node": "cpu02"},
                {"name": "ray", "service": "ray", "node": "cpu01"},
            ]
        }
    )
    return PaneContext(
        spec=plugin.panes[0],
        store=store,
        inventory=inv,
        config=cfg,
        node_filter=node_filter or NodeFilter(),
        clock=lambda: NOW,
    )


def put(store: Store, name: str, node: str, ts: float = NOW, **metrics: object) -> None:
    store.put(
        [
            Reading(f"svc:{name}", f"services.{k}", v, ts=ts, node=node)  # type: ignore[arg-type]
            for k, v in metrics.items()
        ]
    )


class PaneApp(App[None]):
    def __init__(self, ctx: PaneContext) -> None:
        super().__init__()
        self.ctx = ctx

    def compose(self) -> ComposeResult:
        yield ServicesPane(self.ctx)


async def test_rows_are_worst_first_with_a_glyph_and_the_state_in_words():
    store = Store()
    put(store, "grafana", "cpu01", state="ok", latency_ms=3.2)
    put(
        store,
        "mlflow",
        "cpu02",
        state="ok",
        latency_ms=4.0,
        unit_active="failed",
        unit_sub="failed",
        unit_result="exit-code",
    )
    put(store, "qdrant", "cpu02", state="slow", latency_ms=1500.0)
    async with PaneApp(context(store)).run_test(size=(100, 20)) as pilot:
        pane = pilot.app.query_one(ServicesPane)
        rows = pane.table.rows
        assert [r.key for r in rows] == ["mlflow", "qdrant", "ray", "grafana"]
        assert [(r.cells[0], r.cells[2]) for r in rows] == [
            ("✖", "down"),
            ("▲", "slow"),
            ("?", "unknown"),
            ("●", "ok"),
        ]
        assert rows[0].cells[6] == "failed (exit-code)"
        assert rows[1].cells[3] == "1500ms" and rows[3].cells[3] == "3ms"
        assert rows[0].node == "cpu02"


async def test_the_node_filter_hides_services_on_other_nodes():
    store = Store()
    put(store, "grafana", "cpu01", state="ok")
    only = NodeFilter("cpu02", frozenset({"cpu02"}))
    async with PaneApp(context(store, only)).run_test(size=(100, 20)) as pilot:
        pane = pilot.app.query_one(ServicesPane)
        assert {r.key for r in pane.table.rows} == {"mlflow", "qdrant"}


async def test_a_stale_service_shows_the_age_of_its_last_reading():
    store = Store()
    put(store, "grafana", "cpu01", ts=NOW - 600, state="ok", latency_ms=3.0)
    put(store, "ray", "cpu01", ts=NOW - 5, state="ok", latency_ms=3.0)
    async with PaneApp(context(store)).run_test(size=(100, 20)) as pilot:
        rows = {r.key: r for r in pilot.app.query_one(ServicesPane).table.rows}
        assert rows["grafana"].cells[7] == "10m"
        assert rows["ray"].cells[7] == ""


async def test_the_compact_option_keeps_glyph_service_state_and_latency():
    store = Store()
    put(store, "grafana", "cpu01", state="ok", latency_ms=3.0)
    ctx = context(store)
    ctx.options = {"compact": True}
    async with PaneApp(ctx).run_test(size=(60, 20)) as pilot:
        rows = {r.key: r for r in pilot.app.query_one(ServicesPane).table.rows}
        assert rows["grafana"].cells == ("●", "grafana", "ok", "3ms")
