"""The lab's simulated GPUs: the state nvidia-smi, dcgmi and the exporter render."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(slots=True)
class SimInstance:
    gi: int
    profile: str
    profile_id: int
    slices: int
    start: int
    mem_mib: float
    ci: int = 0
    used_mib: float = 0.0


@dataclass(slots=True)
class SimProcess:
    pid: int
    name: str
    used_mib: float
    gi: int | None = None


@dataclass(slots=True)
class SimGpu:
    index: int
    model: str
    bus: str
    uuid: str
    serial: str
    mem_total: float
    power_limit: float
    idle_w: float
    mig_capable: bool
    nvlinks: int
    util: float = 0.0
    mem_util: float = 0.0
    mem_used: float = 0.0
    temp: float = 30.0
    power: float = 0.0
    sm_clock: float = 1980.0
    throttle_mask: int = 0
    mig_enabled: bool = False
    mig_pending: bool = False
    instances: list[SimInstance] = field(default_factory=list)
    processes: list[SimProcess] = field(default_factory=list)
    ecc_unc_volatile: int = 0
    ecc_unc_aggregate: int = 0
    ecc_corr: int = 0
    remap_unc: int = 0
    remap_pending: bool = False
    ecc_err_field: bool = False
    lost: bool = False
    links_down: set[int] = field(default_factory=set)
    resets: int = 0


def mem_of_profile(profile: str) -> float:
    """MiB a MIG profile gives its instance (``2g.24gb`` -> 24320), 0 when unnamed."""
    m = re.search(r"\.(\d+)gb", profile)
    return float(m.group(1)) * 1024 - 256 if m else 0.0
