"""The ``plugins.infiniband:`` inventory section.

Which nodes carry HCAs comes from the inventory itself (``hardware.ib_ports``
and ``hardware.ib_rate_gbps`` on the node groups); this section adds how to
read them, the per-counter rate thresholds, the fabric node that may run
``iblinkinfo``/``ibnetdiscover`` and the switches whose ports may be disabled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, field_validator

from console.sources.config import SourceFields
from plugins.infiniband.parse import ERROR_COUNTERS

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory, Node


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CounterThreshold(_Model):
    """Errors per minute (over the rate window) at which a port warns / is critical."""

    warn: float | None = Field(default=None, ge=0)
    crit: float | None = Field(default=None, ge=0)


#: Defaults per counter, errors per minute over the rate window (5 min). A single
#: link-down in the window is a warning; two or more (a flapping link) are critical.
DEFAULT_THRESHOLDS: dict[str, CounterThreshold] = {
    "symbol_error": CounterThreshold(warn=1, crit=10),
    "link_error_recovery": CounterThreshold(warn=0.2, crit=1),
    "link_downed": CounterThreshold(warn=0.2, crit=0.4),
    "port_rcv_errors": CounterThreshold(warn=1, crit=10),
    "port_rcv_remote_physical_errors": CounterThreshold(warn=1, crit=10),
    "port_xmit_discards": CounterThreshold(warn=10, crit=100),
    "excessive_buffer_overrun_errors": CounterThreshold(warn=0.2, crit=1),
    "local_link_integrity_errors": CounterThreshold(warn=0.2, crit=1),
}


class Switch(_Model):
    """A switch whose ports the console may disable/enable (``ibportstate``)."""

    name: str = Field(min_length=1)
    """Its node description, as ``iblinkinfo`` prints it (``leaf01``)."""
    guid: str | None = Field(default=None, pattern=r"^0x[0-9a-fA-F]{1,16}$")
    """Addresses it by GUID when set; otherwise by the LID the fabric collector saw."""
    ports: int = Field(default=40, ge=1, le=256)


class InfinibandConfig(SourceFields):
    """``source: prometheus`` reads node_exporter's infiniband collector (console.sources);
    the fabric (iblinkinfo) and the actions still go to the nodes over SSH."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sysfs_root: str = Field(default="/sys/class/infiniband", pattern=r"^/[A-Za-z0-9_./-]*$")
    """Where the HCAs are; a test tree elsewhere for emulated fabrics."""
    interval: float = Field(default=15.0, ge=1.0)
    timeout: float = Field(default=10.0, gt=0)
    tools: bool = True
    """Also run ``ibstat`` and ``perfquery -x`` where installed."""
    roce: bool = True
    """Count Ethernet-link-layer (RoCE) ports as fabric ports of the node."""
    expected_width: int = Field(default=4, ge=1, le=12)
    rate_window_s: float = Field(default=300.0, ge=10.0)
    """Error rates are errors in this window, per minute."""
    thresholds: dict[str, CounterThreshold] = Field(default_factory=dict)
    """Per counter (``symbol_error`` ...), overriding DEFAULT_THRESHOLDS."""
    fabric_node: str | None = None
    """A node with infiniband-diags that sees the fabric (runs iblinkinfo/ibnetdiscover)."""
    fabric_interval: float = Field(default=60.0, ge=5.0)
    switches: list[Switch] = Field(default_factory=list)

    @field_validator("thresholds")
    @classmethod
    def _known_counters(cls, v: dict[str, CounterThreshold]) -> dict[str, CounterThreshold]:
        unknown = sorted(set(v) - set(ERROR_COUNTERS))
        if unknown:
            raise ValueError(
                f"unknown counter(s) {', '.join(unknown)}; known: {', '.join(ERROR_COUNTERS)}"
            )
        return v

    def threshold(self, counter: str) -> CounterThreshold:
        return self.thresholds.get(counter) or DEFAULT_THRESHOLDS.get(counter, CounterThreshold())

    def switch(self, name: str) -> Switch | None:
        return next((s for s in self.switches if s.name == name), None)


def config_of(inventory: Inventory) -> InfinibandConfig:
    cfg = inventory.plugin_configs.get("infiniband")
    return cfg if isinstance(cfg, InfinibandConfig) else InfinibandConfig()


def as_config(config: object) -> InfinibandConfig:
    return config if isinstance(config, InfinibandConfig) else InfinibandConfig()


def ib_nodes(inventory: Inventory) -> list[Node]:
    """Nodes the inventory says carry IB/RoCE ports, by name."""
    return [n for _, n in sorted(inventory.nodes.items()) if n.hardware.ib_ports > 0]
