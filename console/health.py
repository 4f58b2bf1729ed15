"""Health evaluation: thresholds from the inventory, plugins' alert rules, failing collectors."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence

from console.inventory.model import Inventory
from console.plugin import Finding, Plugin, Severity
from console.store import Store, threshold_findings

log = logging.getLogger(__name__)

FAILURES_BEFORE_ALERT = 2
"""A collector must fail this many times in a row before it raises an alert (no flapping)."""


class AlertBook:
    """Evaluates the alert rules again and again, redoing per-node rules only where needed.

    A plugin's ``node_alerts`` run for every node the first time, then only for
    nodes whose readings changed since the last evaluation (``Store.changed_nodes``);
    the other nodes keep their findings. At 1,000 nodes this is what keeps a refresh
    from re-judging 8,000 GPUs twice a second. Everything else runs every time.

    While a poll round sweeps the fleet, hundreds of nodes change between two
    refreshes; re-judging all of them at once would stall the event loop (tens of
    milliseconds). Past ``min_nodes`` per evaluation, work stops at ``budget_s``
    and the rest waits for the next evaluation (half a second later).
    """

    def __init__(self, budget_s: float = 0.005, min_nodes: int = 16) -> None:
        self.budget_s = budget_s
        self.min_nodes = min_nodes
        self._since: int | None = None
        self._inventory: Inventory | None = None
        self._by_node: dict[str, dict[str, list[Finding]]] = {}
        """Plugin name -> node -> its current findings (nodes with none are left out)."""
        self._pending: dict[str, set[str]] = {}
        """Plugin name -> nodes changed and not judged again yet (over budget)."""

    @property
    def behind(self) -> int:
        """Nodes waiting to be judged again (0 when the alerts are current)."""
        return max((len(p) for p in self._pending.values()), default=0)

    def evaluate(
        self, store: Store, inventory: Inventory, plugins: Sequence[Plugin]
    ) -> list[Finding]:
        """Every current finding (see ``evaluate``)."""
        version = store.version
        changed = (
            None
            if self._since is None or inventory is not self._inventory
            else store.changed_nodes(self._since)
        )
        thresholds = {
            metric: (t.warn, t.crit, t.direction) for metric, t in inventory.doc.thresholds.items()
        }
        findings = threshold_findings(store, thresholds)
        deadline = time.perf_counter() + self.budget_s
        for plugin in plugins:
            if plugin.node_alerts is not None:
                findings.extend(self._node_findings(plugin, store, inventory, changed, deadline))
            if plugin.alerts is not None:
                findings.extend(_plugin_findings(plugin, store, inventory))
        findings.extend(_collector_findings(store, inventory))
        self._since, self._inventory = version, inventory
        return findings

    def _node_findings(
        self,
        plugin: Plugin,
        store: Store,
        inventory: Inventory,
        changed: set[str] | None,
        deadline: float,
    ) -> list[Finding]:
        rules = plugin.node_alerts
        assert rules is not None
        cache = self._by_node.setdefault(plugin.name, {})
        pending = self._pending.setdefault(plugin.name, set())
        if changed is None:
            cache.clear()
            pending.clear()
            names: Iterable[str] = list(inventory.nodes)
        else:
            pending.update(n for n in changed if n in inventory.nodes)
            names = list(pending)
        for done, name in enumerate(names):
            if changed is not None:
                if done >= self.min_nodes and time.perf_counter() > deadline:
                    break  # the others keep their findings until the next evaluation
                pending.discard(name)
            try:
                found = list(rules(store, inventory, inventory.nodes[name]))
            except Exception as exc:
                log.exception("alert rules of plugin %s failed on %s", plugin.name, name)
                found = [
                    Finding(
                        Severity.WARNING,
                        plugin.name,
                        f"alert rules failed on {name}: {exc}",
                        key=f"plugin-alerts:{plugin.name}:{name}",
                        node=name,
                    )
                ]
            if found:
                cache[name] = found
            else:
                cache.pop(name, None)
        return [f for node_findings in cache.values() for f in node_findings]


def evaluate(store: Store, inventory: Inventory, plugins: Sequence[Plugin]) -> list[Finding]:
    """Every current finding; a plugin whose rules crash yields one finding saying so."""
    return AlertBook().evaluate(store, inventory, plugins)


def _plugin_findings(plugin: Plugin, store: Store, inventory: Inventory) -> Sequence[Finding]:
    """A plugin's whole-fleet rules; rules that crash give one finding saying so."""
    assert plugin.alerts is not None
    try:
        return plugin.alerts(store, inventory)
    except Exception as exc:
        log.exception("alert rules of plugin %s failed", plugin.name)
        return [
            Finding(
                Severity.WARNING,
                plugin.name,
                f"alert rules failed: {exc}",
                key=f"plugin-alerts:{plugin.name}",
            )
        ]


def _collector_findings(store: Store, inventory: Inventory) -> list[Finding]:
    """Collectors failing again and again (a host that does not answer)."""
    findings: list[Finding] = []
    for st in store.failing_statuses():
        # Target "*" is a collector whose targets() crashed: it is never retried, so its
        # single failure must alert at once or nobody hears of it.
        repeated = st.failures >= FAILURES_BEFORE_ALERT or st.target == "*"
        if repeated and st.last_error:
            node = st.target if st.target in inventory.nodes else None
            findings.append(
                Finding(
                    Severity.WARNING,
                    st.target,
                    f"{st.collector} failing: {st.last_error}",
                    key=f"collector:{st.collector}:{st.target}",
                    node=node,
                )
            )
    return findings


def refresh_alerts(store: Store, inventory: Inventory, plugins: Sequence[Plugin]) -> None:
    store.set_findings(evaluate(store, inventory, plugins))
