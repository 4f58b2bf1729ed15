"""Health evaluation: thresholds from the inventory, plugins' alert rules, failing collectors."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from console.inventory.model import Inventory
from console.plugin import Finding, Plugin, Severity
from console.store import Store, threshold_findings

log = logging.getLogger(__name__)

FAILURES_BEFORE_ALERT = 2
"""A collector must fail this many times in a row before it raises an alert (no flapping)."""


def evaluate(store: Store, inventory: Inventory, plugins: Sequence[Plugin]) -> list[Finding]:
    """Every current finding; a plugin whose rules crash yields one finding saying so."""
    thresholds = {
        metric: (t.warn, t.crit, t.direction) for metric, t in inventory.doc.thresholds.items()
    }
    findings = threshold_findings(store, thresholds)
    for plugin in plugins:
        if plugin.alerts is None:
            continue
        try:
            findings.extend(plugin.alerts(store, inventory))
        except Exception as exc:
            log.exception("alert rules of plugin %s failed", plugin.name)
            findings.append(
                Finding(
                    Severity.WARNING,
                    plugin.name,
                    f"alert rules failed: {exc}",
                    key=f"plugin-alerts:{plugin.name}",
                )
            )
    for st in store.collector_statuses():
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
