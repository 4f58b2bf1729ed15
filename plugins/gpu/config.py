"""The ``plugins.gpu`` section of the inventory.

Example::

    plugins:
      gpu:
        source: ssh            # or nvml: read the local GPUs through NVML (console on a GPU node)
                               # or prometheus: dcgm-exporter's series (see console.sources)
        nvml_node: gpu001      # with source nvml: the node the console runs on
        fast_interval: 10      # nvidia-smi --query-gpu (util, memory, temperature, power)
        full_interval: 60      # nvidia-smi -q -x, MIG tables, NVLink, XIDs from the kernel log
        idle_util_pct: 5       # an allocated GPU below this ...
        idle_minutes: 15       # ... for this long is "idle but allocated"
        expected_driver: 550.90.07   # version drift: nodes without hardware.driver_version
        expected_cuda: "12.4"
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ConfigDict, Field

from console.sources.config import SourceFields

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory, Node


class GpuConfig(SourceFields):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["ssh", "direct", "nvml", "prometheus"] = "ssh"  # type: ignore[assignment]
    """``ssh`` (or ``direct``): nvidia-smi over SSH; ``nvml``: the local GPUs; ``prometheus``:
    dcgm-exporter's series (``prometheus:``, ``prometheus_interval``: console.sources.config)."""
    nvml_node: str | None = None
    """With ``source: nvml``: the node whose GPUs NVML reads (the console's own host)."""
    fast_interval: float = Field(default=10.0, ge=1, le=3600)
    full_interval: float = Field(default=60.0, ge=5, le=3600)
    timeout: float = Field(default=15.0, gt=0, le=300)
    idle_util_pct: float = Field(default=5.0, ge=0, le=100)
    idle_minutes: float = Field(default=15.0, gt=0, le=1440)
    xid_since_minutes: int = Field(default=60, ge=1, le=10080)
    """How far back the kernel log is read for XIDs."""
    expected_driver: str | None = Field(default=None, max_length=40)
    """Fleet-wide expected driver; a node's ``hardware.driver_version`` overrides it."""
    expected_cuda: str | None = Field(default=None, max_length=20)
    """Fleet-wide expected CUDA version; a node's ``hardware.cuda_version`` overrides it."""
    hot_c: float = Field(default=85.0, gt=0, le=150)
    """GPU temperature that counts as hot (a warning) even without a throttle reason."""


def config_of(inventory: Inventory) -> GpuConfig:
    cfg = inventory.plugin_configs.get("gpu")
    return cfg if isinstance(cfg, GpuConfig) else GpuConfig()


def cfg(config: Any) -> GpuConfig:
    return config if isinstance(config, GpuConfig) else GpuConfig()


def gpu_nodes(inventory: Inventory) -> list[Node]:
    """Nodes that have GPUs: a GPU role or a declared GPU count."""
    return [
        n
        for n in inventory.nodes.values()
        if n.role in ("gpu-train", "gpu-infer") or n.hardware.gpu_count > 0
    ]


def expected_versions(node: Node, config: GpuConfig) -> tuple[str | None, str | None]:
    """(driver, CUDA) the node should run: its hardware fields, else the plugin's."""
    return (
        node.hardware.driver_version or config.expected_driver,
        node.hardware.cuda_version or config.expected_cuda,
    )


def gpu_target(node: str, index: int) -> str:
    """The Store target of one GPU: ``gpu001/3``.

    Interned: every reading of the GPU (about 40 a node poll) holds its target, and
    at 1,000 hosts a fresh copy in each was 4 MB of identical strings.
    """
    return sys.intern(f"{node}/{index}")
