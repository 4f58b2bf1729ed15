"""Health over the Store: the ``services.healthy`` check and the plugin's alert rules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from console.plugin import CheckSpec, Finding, Severity, Target
from console.store import StoreView
from plugins.services.config import config_of
from plugins.services.status import service_status, status_of

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory


def health_key(name: str) -> str:
    """One stable key per service for its health alert, whatever the state (keeps its age)."""
    return f"services.health:svc:{name}"


def unit_key(name: str) -> str:
    return f"services.unit_failed:svc:{name}"


def alerts(store: StoreView, inventory: Inventory) -> Sequence[Finding]:
    """Down (critical), degraded or slow (warning), unit failed (critical)."""
    findings: list[Finding] = []
    for check in config_of(inventory).checks:
        st = service_status(store, check)
        where = f" on {check.node}" if check.node else ""
        if st.unit_failed and check.systemd is not None:
            findings.append(
                Finding(
                    Severity.CRITICAL,
                    check.target_name,
                    f"{check.name}: unit {check.systemd.unit} failed{where}",
                    key=unit_key(check.name),
                    node=check.node,
                )
            )
        if st.state in ("down", "degraded", "slow"):
            # A failed unit already says why it is down; do not say it twice.
            if st.unit_failed and st.state == "down":
                continue
            findings.append(
                Finding(
                    st.severity,
                    check.target_name,
                    f"{check.name} {st.state}{where}: {st.detail}".rstrip(": "),
                    key=health_key(check.name),
                    node=check.node,
                )
            )
    return findings


def check_healthy(store: StoreView, target: Target) -> Finding:
    """OK when the service answers in time and its unit (if any) is active."""
    name = target.name.removeprefix("svc:")
    unit = target.attrs.get("unit")
    st = status_of(store, name, node=target.node, unit_name=unit if isinstance(unit, str) else None)
    if st.state == "unknown":
        return Finding(
            Severity.UNKNOWN,
            f"svc:{name}",
            f"{name}: no reading yet",
            key=health_key(name),
            node=st.node,
        )
    text = f"{name} {st.state}" + (f": {st.detail}" if st.detail and st.state != "ok" else "")
    return Finding(st.severity, f"svc:{name}", text, key=health_key(name), node=st.node)


CHECKS = (
    CheckSpec(
        id="services.healthy",
        label="Service answers its health check and its unit is active",
        target_kind="service",
        check=check_healthy,
    ),
)
