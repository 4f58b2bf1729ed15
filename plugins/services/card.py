"""The node card's "Services" section: the services that run on a node.

The card sees only the Store and the node, so it finds the services by the
``node`` their readings carry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from console.plugin import CardLine
from console.store import StoreView
from plugins.services.status import GLYPH, ServiceStatus, status_of

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Node

CARD_TITLE = "Services"


def describe(st: ServiceStatus) -> str:
    """``● ok 4 ms · unit active (running)``: the state in words, readable without colour."""
    head = f"{GLYPH.get(st.state, '?')} {st.state}"
    if st.latency_ms is not None:
        head += f" {st.latency_ms:.0f} ms"
    parts = [head]
    if st.unit is not None:
        parts.append(f"unit {st.unit}")
    if st.restarts:
        parts.append(f"{st.restarts} restarts")
    if st.detail and st.state not in ("ok", "unknown"):
        parts.append(st.detail)
    return " · ".join(parts)


def services_on(store: StoreView, node: str) -> list[str]:
    """Names of the services whose readings say they run on ``node``, sorted."""
    names = []
    for target in store.targets_with_prefix("svc:"):
        readings = store.readings_for(target)
        if any(r.node == node for r in readings.values()):
            names.append(target.removeprefix("svc:"))
    return sorted(names)


def card(store: StoreView, node: Node) -> Sequence[CardLine]:
    """One line per service on the node, worst first."""
    statuses = [status_of(store, name, node=node.name) for name in services_on(store, node.name)]
    statuses.sort(key=lambda s: (-s.severity, s.name))
    return [CardLine(s.name, describe(s), s.severity) for s in statuses]
