"""A deterministic session for SVG snapshots: fixed clock, fixed readings, no network.

The readings are what the services collectors write (same metrics, same
targets); the alerts come from the real plugin's alert rules and the core's
thresholds, so a change in either shows up as a snapshot difference.
"""

from __future__ import annotations

import os
import time

import pytest

from console.inventory import apply_plugin_configs, load_inventory
from console.options import LaunchOptions
from console.plugin import Reading
from console.registry import discover
from console.session import DEMO_INVENTORY, Session
from console.store import Store

FIXED_NOW = 1_795_000_000.0
"""A fixed wall clock: ages and the header's time never move."""

SLOW = {"mlflow": 1532.0}
DOWN = {"qdrant"}
UNREACHABLE = {"cpu04"}


@pytest.fixture(autouse=True)
def utc() -> None:
    os.environ["TZ"] = "UTC"
    time.tzset()


def static_session(read_only: bool = False) -> Session:
    registry = discover()
    inventory = apply_plugin_configs(
        load_inventory(DEMO_INVENTORY), {p.name: p.config_model for p in registry.plugins}
    )
    store = Store(clock=lambda: FIXED_NOW)
    config = inventory.plugin_configs["services"]
    readings = []
    for i, check in enumerate(config.checks):
        target = f"svc:{check.name}"
        down = check.name in DOWN or check.node in UNREACHABLE
        latency = SLOW.get(check.name, 12.0 + i)
        state = "down" if down else "slow" if check.name in SLOW else "ok"
        values: dict[str, object] = {
            "services.state": state,
            "services.up": not down,
            "services.latency_ms": None if down else latency,
        }
        if check.systemd is not None and check.node not in UNREACHABLE:
            values["services.unit_active"] = "failed" if down else "active"
            values["services.unit_sub"] = "failed" if down else "running"
        detail = "connection refused" if down else f"{latency:.0f} ms"
        readings += [
            Reading(
                target, metric, value, ts=FIXED_NOW, source="http", detail=detail, node=check.node
            )  # type: ignore[arg-type]
            for metric, value in values.items()
        ]
        store.record_attempt("services.http", target, 15, None)
    store.put(readings)
    for node in inventory.nodes:
        error = "connection refused" if node in UNREACHABLE else None
        for _ in range(2):
            store.record_attempt("services.systemd", node, 15, error)
    options = LaunchOptions(read_only=read_only, poll=False)
    session = Session(inventory=inventory, registry=registry, store=store, options=options)
    session.refresh_alerts()
    return session
