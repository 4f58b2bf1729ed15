"""The ``plugins.power`` section of the inventory.

Example::

    plugins:
      power:
        inlet_warn_c: 27          # ASHRAE A1 recommended upper limit
        inlet_crit_c: 32          # ASHRAE A1 allowable upper limit
        ipmi_tool: ipmitool       # or freeipmi
        freeipmi_nodes: "stor[01-02]"   # these BMCs are read with freeipmi instead

BMC addresses and credentials are on the node groups (``bmc:``); the password
is a reference (``env:NAME``/``file:PATH``) read only when a BMC is contacted.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from console.inventory.nodeset import NodeSetError, expand
from console.sources.config import SourceFields

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory, Node


class PowerConfig(SourceFields):
    """``source: prometheus`` reads ipmi_exporter's series (console.sources.config); actions
    still go to the BMCs directly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval: float = Field(default=15.0, ge=1.0)
    """Seconds between two polls of one BMC."""
    timeout: float = Field(default=6.0, gt=0)
    """Seconds one BMC request (one ipmitool run, one HTTP request) may take."""
    retries: int = Field(default=1, ge=0, le=5)
    """IPMI retransmissions (``-R``); Redfish requests are not retried within a poll."""
    inlet_warn_c: float = 27.0
    inlet_crit_c: float = 32.0
    budget_warn_fraction: float = Field(default=0.9, gt=0, le=1.0)
    """A rack drawing more than this share of its budget is a warning."""
    ipmi_tool: Literal["ipmitool", "freeipmi"] = "ipmitool"
    freeipmi_nodes: str = ""
    """A node set whose IPMI BMCs are read with freeipmi (``ipmi-sensors`` ...)."""
    cipher_suite: int = Field(default=17, ge=0, le=17)
    """ipmitool ``-C``: 17 (SHA256/AES) on current BMCs; 3 on older ones and ipmi_sim."""
    freeipmi_workaround: str = ""
    """freeipmi ``-W`` flags some BMCs need (``opensesspriv``)."""
    sel_entries: int = Field(default=20, ge=1, le=500)
    soft_shutdown_wait_s: float = Field(default=120.0, gt=0)
    """How long verification of a soft shutdown waits for the OS to power off."""

    @field_validator("freeipmi_nodes")
    @classmethod
    def _nodeset(cls, value: str) -> str:
        if value:
            try:
                expand(value)
            except NodeSetError as exc:
                raise ValueError(f"freeipmi_nodes: {exc}") from None
        return value

    @model_validator(mode="after")
    def _order(self) -> PowerConfig:
        if self.inlet_crit_c < self.inlet_warn_c:
            raise ValueError("inlet_crit_c must not be below inlet_warn_c")
        return self

    def tool_for(self, node: str) -> Literal["ipmitool", "freeipmi"]:
        if self.freeipmi_nodes and node in expand(self.freeipmi_nodes):
            return "freeipmi"
        return self.ipmi_tool


def cfg(config: Any) -> PowerConfig:
    return config if isinstance(config, PowerConfig) else PowerConfig()


def config_of(inventory: Inventory) -> PowerConfig:
    return cfg(inventory.plugin_configs.get("power"))


class SecretUnavailable(LookupError):
    """A credential reference could not be read (variable unset, file missing)."""


def read_secret(ref: str | None, inventory: Inventory) -> str | None:
    """The secret a reference names. Never logged, never returned in a message."""
    if ref is None:
        return None
    if ref.startswith("env:"):
        value = os.environ.get(ref[4:])
        if value is None:
            raise SecretUnavailable(f"environment variable {ref[4:]} is not set")
        return value
    if ref.startswith("file:"):
        path = inventory.resolve_path(ref[5:])
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecretUnavailable(f"cannot read {path}: {exc.strerror or exc}") from None
    raise SecretUnavailable("not a credential reference")


def bmc_host(node: Node) -> str:
    """The BMC address (the loader has filled the ``{name}`` templates)."""
    assert node.bmc is not None
    return node.bmc.address


def bmc_nodes(inventory: Inventory) -> list[Node]:
    return [n for n in inventory.nodes.values() if n.bmc is not None]
