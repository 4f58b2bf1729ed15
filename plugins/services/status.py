"""One service's current state from the Store: what alerts, checks, card and pane share."""

from __future__ import annotations

import time
from dataclasses import dataclass

from console.plugin import Severity
from console.store import StoreView
from plugins.services.config import ServiceCheck
from plugins.services.parse import STATE_RANK, State

SEVERITY: dict[str, Severity] = {
    "ok": Severity.OK,
    "unknown": Severity.UNKNOWN,
    "slow": Severity.WARNING,
    "degraded": Severity.WARNING,
    "down": Severity.CRITICAL,
}

GLYPH: dict[str, str] = {"ok": "●", "slow": "▲", "degraded": "▲", "down": "✖", "unknown": "?"}
"""State glyphs, distinct in shape so the state reads without colour."""


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """What is known of one service now."""

    name: str
    node: str | None
    state: State
    """The worst of the health check's state and what the unit says."""
    detail: str
    latency_ms: float | None
    unit: str | None
    """``active (running)``, ``failed (exit-code)``; None without a systemd check."""
    unit_failed: bool
    restarts: int | None
    observed: float | None
    """When the newest reading was taken (wall clock), None before the first."""

    @property
    def severity(self) -> Severity:
        return SEVERITY.get(self.state, Severity.UNKNOWN)

    def age(self, now: float | None = None) -> float | None:
        if self.observed is None:
            return None
        return max(0.0, (now if now is not None else time.time()) - self.observed)


def service_status(store: StoreView, check: ServiceCheck) -> ServiceStatus:
    """Combine the readings of ``svc:<name>`` into one status."""
    unit = check.systemd.unit if check.systemd is not None else None
    return status_of(store, check.name, node=check.node, unit_name=unit)


def status_of(
    store: StoreView, name: str, *, node: str | None = None, unit_name: str | None = None
) -> ServiceStatus:
    """The status of service ``name`` from its readings alone.

    Unit readings count when present even if ``unit_name`` is not given (the
    check of a ``CheckSpec`` sees only a target).
    """
    readings = store.readings_for(f"svc:{name}")
    state_r = readings.get("services.state")
    state: State = "unknown"
    detail = ""
    if state_r is not None and isinstance(state_r.value, str) and state_r.value in STATE_RANK:
        state = state_r.value  # type: ignore[assignment]
        detail = state_r.detail
    latency = readings.get("services.latency_ms")
    latency_ms = latency.value if latency and isinstance(latency.value, int | float) else None
    active = readings.get("services.unit_active")
    sub = readings.get("services.unit_sub")
    result = readings.get("services.unit_result")
    unit: str | None = None
    unit_failed = False
    has_unit = unit_name is not None or active is not None
    if has_unit:
        a = active.value if active else None
        s = sub.value if sub else None
        r = result.value if result else None
        if isinstance(a, str):
            unit_failed = a == "failed"
            if unit_failed and isinstance(r, str) and r != "success":
                unit = f"failed ({r})"
            else:
                unit = f"{a} ({s})" if isinstance(s, str) else a
        else:
            unit = "unknown"
        if unit_failed and STATE_RANK["down"] > STATE_RANK[state]:
            state = "down"
            what = unit_name or "unit"
            detail = f"{what} {unit}" + (f"; {detail}" if detail else "")
    restarts_r = readings.get("services.restarts")
    restarts = restarts_r.value if restarts_r and isinstance(restarts_r.value, int) else None
    observed = max((r.ts for r in readings.values()), default=None)
    if node is None and state_r is not None:
        node = state_r.node
    return ServiceStatus(
        name=name,
        node=node,
        state=state,
        detail=detail,
        latency_ms=float(latency_ms) if latency_ms is not None else None,
        unit=unit,
        unit_failed=unit_failed,
        restarts=restarts,
        observed=observed,
    )
