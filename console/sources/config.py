"""How a plugin's inventory section chooses its source, and which Prometheus it reads.

A plugin config model inherits ``SourceFields``::

    plugins:
      gpu:
        source: prometheus        # direct (the default) or prometheus
        prometheus: thanos        # a name under prometheus_servers:, or an inline
                                  # {url: ..., ca_file: ..., token: env:...};
                                  # omitted: the top-level prometheus: block
        prometheus_interval: 15   # seconds between two fleet refreshes
        stale_after_s: 120        # a sample older than this is stale

A dangling name, or ``source: prometheus`` with no server at all, is refused
with the file, line and field like every inventory problem.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from console.inventory.model import PrometheusSource

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory
    from console.plugin import CollectContext
    from console.transports.prometheus import PromClient

SourceName = Literal["direct", "prometheus"]


class SourceFields(BaseModel):
    """The source fields every plugin section that can read Prometheus accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: SourceName = "direct"
    prometheus: str | PrometheusSource | None = None
    """A server by name (``prometheus_servers``; ``default`` is the top-level block), an
    inline server, or None for the top-level ``prometheus:`` block."""
    prometheus_interval: float = Field(default=15.0, ge=1.0, le=3600.0)
    """Seconds between two fleet refreshes from Prometheus (one query per metric family)."""
    stale_after_s: float = Field(default=120.0, gt=0, le=86400.0)
    """A series whose last sample is older than this is stale (unknown, with its age),
    even when Prometheus still returns it (remote-write setups have no staleness markers)."""
    backfill_points: int = Field(default=30, ge=0, le=500)
    """History points read with query_range at the first refresh (sparklines, idle time)."""

    @field_validator("prometheus")
    @classmethod
    def _known_server(
        cls, value: str | PrometheusSource | None, info: ValidationInfo
    ) -> str | PrometheusSource | None:
        names = (info.context or {}).get("prometheus_servers")
        if isinstance(value, str) and names is not None and value not in names:
            known = ", ".join(sorted(names)) or "none"
            raise ValueError(
                f"no Prometheus server named {value!r} (declared: {known}); declare it under "
                "prometheus_servers: or use the top-level prometheus: block"
            )
        return value

    @model_validator(mode="after")
    def _has_server(self, info: ValidationInfo) -> SourceFields:
        names = (info.context or {}).get("prometheus_servers")
        if (
            self.source == "prometheus"
            and self.prometheus is None
            and names is not None
            and "default" not in names
        ):
            raise ValueError(
                "source: prometheus needs a server: add a top-level prometheus: block "
                "(url: ...) or set prometheus: NAME here"
            )
        return self


def uses_prometheus(config: Any) -> bool:
    return getattr(config, "source", None) == "prometheus"


def resolve_server(inventory: Inventory, config: Any) -> tuple[str, PrometheusSource]:
    """(name, server) a plugin with ``config`` reads.

    Raises:
        LookupError: no such server (an inventory built without validation).
    """
    ref = getattr(config, "prometheus", None)
    if isinstance(ref, PrometheusSource):
        return "inline", ref
    doc = inventory.doc
    if ref is None or ref == "default":
        if doc.prometheus is not None:
            return "default", doc.prometheus
        if ref is None and "default" in doc.prometheus_servers:
            return "default", doc.prometheus_servers["default"]
        raise LookupError("no prometheus: block in the inventory")
    server = doc.prometheus_servers.get(ref)
    if server is None:
        raise LookupError(f"no Prometheus server named {ref!r}")
    return ref, server


def prom_client(ctx: CollectContext) -> PromClient:
    """The (shared) client of the server the collecting plugin is configured to read."""
    name, server = resolve_server(ctx.inventory, ctx.config)
    return ctx.transports.prometheus.get(server, base_dir=ctx.inventory.base_dir(), name=name)
