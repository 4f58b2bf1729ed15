"""Alert rules at fleet size: per-node rules re-run only where readings changed, within a budget."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from console.health import AlertBook, evaluate
from console.inventory.load import inventory_from_data
from console.inventory.model import Inventory, Node
from console.plugin import Finding, Plugin, Reading, Severity
from console.store import Store, StoreView

INVENTORY = inventory_from_data(
    {
        "site": {"name": "t"},
        "rooms": [{"name": "h", "racks": [{"name": "R1", "power_budget_kw": 10}]}],
        "nodes": [{"nodes": "n[01-40]", "role": "cpu", "rack": "R1"}],
    },
    None,
)


class HotRule:
    """``t.temp`` over 80 is a warning; counts the nodes it judged."""

    def __init__(self) -> None:
        self.judged: Counter[str] = Counter()

    def __call__(self, store: StoreView, inventory: Inventory, node: Node) -> Sequence[Finding]:
        self.judged[node.name] += 1
        v = store.value(node.name, "t.temp")
        if isinstance(v, float) and v > 80:
            return [
                Finding(Severity.WARNING, node.name, f"{node.name} hot", key=f"hot:{node.name}")
            ]
        return []


def temps(store: Store, values: dict[str, float]) -> None:
    store.put([Reading(n, "t.temp", v, ts=1.0) for n, v in values.items()])


def test_node_rules_run_for_every_node_first_then_only_for_changed_ones() -> None:
    rule = HotRule()
    plugin = Plugin(name="t", description="", node_alerts=rule)
    store = Store()
    temps(store, {f"n{i:02d}": 50.0 for i in range(1, 41)} | {"n07": 90.0})
    book = AlertBook()
    assert [f.target for f in book.evaluate(store, INVENTORY, [plugin])] == ["n07"]
    assert len(rule.judged) == 40
    rule.judged.clear()
    temps(store, {"n03": 95.0})
    found = book.evaluate(store, INVENTORY, [plugin])
    assert sorted(f.target for f in found) == ["n03", "n07"]  # n07 kept without re-judging
    assert rule.judged == Counter({"n03": 1})
    temps(store, {"n07": 60.0})
    assert [f.target for f in book.evaluate(store, INVENTORY, [plugin])] == ["n03"]
    assert evaluate(store, INVENTORY, [plugin]) == book.evaluate(store, INVENTORY, [plugin])


def test_past_the_budget_the_rest_waits_for_the_next_evaluation_and_none_is_lost() -> None:
    rule = HotRule()
    plugin = Plugin(name="t", description="", node_alerts=rule)
    store = Store()
    temps(store, {f"n{i:02d}": 50.0 for i in range(1, 41)})
    book = AlertBook(budget_s=0.0, min_nodes=5)
    book.evaluate(store, INVENTORY, [plugin])
    temps(store, {f"n{i:02d}": 99.0 for i in range(1, 41)})
    first = book.evaluate(store, INVENTORY, [plugin])
    assert len(first) == 5 and book.behind == 35
    rounds = 1
    while book.behind:
        found = book.evaluate(store, INVENTORY, [plugin])
        rounds += 1
    assert rounds == 8 and len(found) == 40


def test_a_rule_that_crashes_on_one_node_is_reported_for_that_node_only() -> None:
    def rule(store: StoreView, inventory: Inventory, node: Node) -> Sequence[Finding]:
        if node.name == "n02":
            raise ZeroDivisionError("bad sample")
        return []

    found = AlertBook().evaluate(
        Store(), INVENTORY, [Plugin(name="t", description="", node_alerts=rule)]
    )
    assert [(f.key, f.node) for f in found] == [("plugin-alerts:t:n02", "n02")]
    assert "bad sample" in found[0].message
