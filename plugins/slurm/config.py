"""The ``plugins.slurm`` section of the inventory, and the clusters it reads.

The clusters themselves are declared by the core inventory
(``clusters.slurm.<name>``: ``controller``, ``slurmrestd``, ``token``); this
section only tunes how they are read. Example::

    plugins:
      slurm:
        interval: 15
        long_wait_h: 12
        source: direct         # or prometheus: a Slurm exporter's series (plugins.slurm.prom)
        clusters:
          train: {format: auto, rest_user: dcconsole, api_version: v0.0.38}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from console.sources.config import SourceFields, uses_prometheus

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory, SlurmCluster


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClusterOptions(_Model):
    """How one cluster is read."""

    format: Literal["auto", "json", "text"] = "auto"
    """``auto``: ``--json`` with the text formats when the tools refuse it (Slurm < 21.08)."""
    via: Literal["ssh", "slurmrestd"] | None = None
    """Default: slurmrestd when the inventory names one, else SSH on the controller."""
    rest_user: str = Field(default="dcconsole", pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
    """The user the JWT belongs to (``X-SLURM-USER-NAME``)."""
    api_version: str = Field(default="v0.0.38", pattern=r"^v\d+\.\d+\.\d+$")
    """slurmrestd's ``/slurm/<version>/`` path (22.05: v0.0.38)."""


class SlurmConfig(SourceFields):
    """The slurm plugin's section (``source: prometheus`` reads a Slurm exporter's series:
    ``plugins.slurm.prom``; the fields are ``console.sources.config.SourceFields``)."""

    interval: float = Field(default=15.0, ge=2, le=3600)
    """Seconds between two reads of a cluster (one SSH round trip each)."""
    timeout: float = Field(default=20.0, gt=0, le=300)
    """Seconds the commands of one read may take."""
    long_wait_h: float = Field(default=12.0, gt=0)
    """A pending GPU job waiting longer than this is a warning."""
    clusters: dict[str, ClusterOptions] = Field(default_factory=dict)

    def options(self, cluster: str) -> ClusterOptions:
        return self.clusters.get(cluster) or ClusterOptions()


def reads_prometheus(inventory: Inventory, config: object, cluster: str) -> bool:
    """Whether ``cluster`` is read from Prometheus: the plugin section says so for every
    cluster, or the cluster itself does (``clusters.slurm.<name>.source``)."""
    found = inventory.doc.clusters.slurm.get(cluster)
    return uses_prometheus(config) or (found is not None and found.source == "prometheus")


def config_of(inventory: Inventory) -> SlurmConfig:
    cfg = inventory.plugin_configs.get("slurm")
    return cfg if isinstance(cfg, SlurmConfig) else SlurmConfig()


def as_config(config: object) -> SlurmConfig:
    return config if isinstance(config, SlurmConfig) else SlurmConfig()


def clusters(inventory: Inventory) -> dict[str, SlurmCluster]:
    return dict(inventory.doc.clusters.slurm)


def cluster_of_node(inventory: Inventory, node: str) -> str | None:
    """The Slurm cluster a node belongs to, from its inventory membership."""
    found = inventory.nodes.get(node)
    return found.clusters.slurm if found is not None else None


def read_token(ref: str, inventory: Inventory) -> str:
    """The JWT behind an ``env:NAME`` / ``file:PATH`` reference (never logged).

    Raises:
        LookupError: the variable is unset or the file unreadable (named, not shown).
    """
    if ref.startswith("env:"):
        value = os.environ.get(ref[4:])
        if not value:
            raise LookupError(f"slurmrestd token: environment variable {ref[4:]} is not set")
        return value.strip()
    if ref.startswith("file:"):
        path = inventory.resolve_path(ref[5:])
        try:
            text = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise LookupError(f"slurmrestd token: cannot read {path}: {exc.strerror}") from None
        # ``scontrol token`` prints ``SLURM_JWT=...``: accept the file as written.
        return text.removeprefix("SLURM_JWT=")
    raise LookupError("slurmrestd token must be env:NAME or file:PATH")
