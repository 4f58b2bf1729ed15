"""Typed values the gpu plugin's parsers produce, and the MIG profile catalogue.

Every field that a tool may leave out, print as ``[N/A]``/``[Not Supported]``
or fail to read (``ERR!``) is ``None``: unknown, never 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Clock event ("throttle") reason bits, as NVML and nvidia-smi number them.
THROTTLE_BITS: dict[int, str] = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}
BAD_THROTTLE = frozenset(
    {"hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown"}
)
"""Reasons that mean the GPU is held back by heat or power delivery, not by policy."""

CRITICAL_XIDS: dict[int, str] = {
    48: "double-bit ECC error",
    63: "ECC page retirement / row remap recorded",
    64: "ECC page retirement / row remap failed",
    74: "NVLink error",
    79: "GPU has fallen off the bus",
    92: "high single-bit ECC error rate",
    94: "contained ECC error",
    95: "uncontained ECC error",
}
"""XIDs that make a busy GPU unhealthy (the issue's list; NVIDIA's XID catalogue)."""


def throttle_names(mask: int | None) -> tuple[str, ...] | None:
    if mask is None:
        return None
    return tuple(name for bit, name in THROTTLE_BITS.items() if mask & bit)


@dataclass(frozen=True, slots=True)
class GpuFast:
    """One GPU from ``nvidia-smi --query-gpu`` (or NVML): the fast-changing fields."""

    index: int
    uuid: str | None = None
    name: str | None = None
    pci_bus_id: str | None = None
    driver: str | None = None
    util_pct: float | None = None
    mem_util_pct: float | None = None
    mem_used_mib: float | None = None
    mem_total_mib: float | None = None
    temp_c: float | None = None
    mem_temp_c: float | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    sm_clock_mhz: float | None = None
    pstate: str | None = None
    mig_current: bool | None = None
    mig_pending: bool | None = None
    ecc_unc_volatile: int | None = None
    throttle_mask: int | None = None
    fan_pct: float | None = None
    errors: tuple[str, ...] = ()
    """Fields the tool printed as ``ERR!`` or an error in brackets."""
    lost: bool = False
    """nvidia-smi could not get a handle: the GPU is lost (fallen off the bus)."""
    lost_reason: str = ""


@dataclass(frozen=True, slots=True)
class MigDevice:
    """A MIG device (GPU instance + compute instance) as ``-q -x`` lists it."""

    index: int | None
    gi: int | None
    ci: int | None
    mem_total_mib: float | None = None
    mem_used_mib: float | None = None
    sm_count: int | None = None
    profile: str | None = None
    """``1g.10gb``: from ``nvidia-smi mig -lgi`` when the round trip had it."""


@dataclass(frozen=True, slots=True)
class GpuInstance:
    """A row of ``nvidia-smi mig -lgi`` (or ``-lci``: then ``ci`` is set)."""

    gpu: int
    profile: str
    profile_id: int
    instance_id: int
    placement: str
    gi: int | None = None
    """For compute instances: the GPU instance they live in."""


@dataclass(frozen=True, slots=True)
class GpuProcess:
    pid: int | None
    kind: str | None
    name: str | None
    used_mib: float | None
    gi: int | None = None
    ci: int | None = None


@dataclass(frozen=True, slots=True)
class GpuDetail:
    """One GPU from ``nvidia-smi -q -x``: the full picture."""

    index: int
    pci_bus_id: str | None = None
    name: str | None = None
    uuid: str | None = None
    serial: str | None = None
    vbios: str | None = None
    mig_current: bool | None = None
    mig_pending: bool | None = None
    mig_devices: tuple[MigDevice, ...] = ()
    ecc_mode: bool | None = None
    ecc_corr_volatile: int | None = None
    ecc_unc_volatile: int | None = None
    ecc_corr_aggregate: int | None = None
    ecc_unc_aggregate: int | None = None
    retired_sbe: int | None = None
    retired_dbe: int | None = None
    retire_pending: bool | None = None
    remap_corr: int | None = None
    remap_unc: int | None = None
    remap_pending: bool | None = None
    remap_failure: bool | None = None
    throttle: tuple[str, ...] | None = None
    sm_clock_mhz: float | None = None
    mem_clock_mhz: float | None = None
    max_sm_clock_mhz: float | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    temp_c: float | None = None
    temp_slow_c: float | None = None
    util_pct: float | None = None
    mem_used_mib: float | None = None
    mem_total_mib: float | None = None
    pcie_gen: int | None = None
    pcie_width: int | None = None
    pcie_max_width: int | None = None
    processes: tuple[GpuProcess, ...] = ()
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SmiLog:
    """A whole ``nvidia-smi -q -x`` document."""

    driver: str | None
    cuda: str | None
    gpus: tuple[GpuDetail, ...]


@dataclass(frozen=True, slots=True)
class XidEvent:
    """``NVRM: Xid (PCI:0000:3b:00): 79, pid=..., GPU has fallen off the bus.``"""

    xid: int
    pci: str
    """Bus id as the kernel prints it, lower case (``0000:3b:00``)."""
    text: str
    ts: str | None = None
    """The log line's time stamp as printed (ISO from journalctl -o short-iso)."""


@dataclass(frozen=True, slots=True)
class NvlinkState:
    """``nvidia-smi nvlink -s`` for one GPU: link speeds, or why there are none."""

    gpu: int
    links: dict[int, float | None] = field(default_factory=dict)
    """Link -> GB/s; None for ``<inactive>``."""
    note: str = ""


@dataclass(frozen=True, slots=True)
class DiagResult:
    """``dcgmi diag -r 1 -j``: overall verdict and each test's."""

    passed: bool | None
    tests: tuple[tuple[str, str], ...]


# --------------------------------------------------------------------------- MIG profiles


@dataclass(frozen=True, slots=True)
class MigProfile:
    name: str
    """``1g.10gb``."""
    profile_id: int
    """The GPU instance profile id ``nvidia-smi mig -cgi`` takes."""
    slices: int
    """Compute slices it uses (of 7 on A100/H100/H200, of 4 on A30)."""
    max_count: int


_SEVEN_COUNTS = (7, 1, 4, 3, 2, 1, 1)
_SEVEN_SLICES = (1, 1, 1, 2, 3, 4, 7)
_SEVEN_IDS = (19, 20, 15, 14, 9, 5, 0)


def _seven(*names: str) -> tuple[MigProfile, ...]:
    return tuple(
        MigProfile(n, i, s, c)
        for n, i, s, c in zip(names, _SEVEN_IDS, _SEVEN_SLICES, _SEVEN_COUNTS, strict=True)
    )


# NVIDIA MIG user guide, "Supported MIG profiles" (GPU instance profile ids, how many fit).
MIG_PROFILES: dict[str, tuple[MigProfile, ...]] = {
    "A100-40GB": _seven(
        "1g.5gb", "1g.5gb+me", "1g.10gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb"
    ),
    "A100-80GB": _seven(
        "1g.10gb", "1g.10gb+me", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"
    ),
    "H100-80GB": _seven(
        "1g.10gb", "1g.10gb+me", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"
    ),
    "H200": _seven("1g.18gb", "1g.18gb+me", "1g.35gb", "2g.35gb", "3g.71gb", "4g.71gb", "7g.141gb"),
    "A30": (
        MigProfile("1g.6gb", 14, 1, 4),
        MigProfile("1g.6gb+me", 21, 1, 1),
        MigProfile("2g.12gb", 5, 2, 2),
        MigProfile("2g.12gb+me", 6, 2, 1),
        MigProfile("4g.24gb", 0, 4, 1),
    ),
}


def mig_family(model: str | None) -> str | None:
    """The profile table for a product name (``NVIDIA A100-SXM4-40GB`` -> ``A100-40GB``)."""
    if not model:
        return None
    m = model.upper()
    if "H200" in m:
        return "H200"
    if "H100" in m or "H800" in m:
        return "H100-80GB"
    if "A100" in m:
        return "A100-80GB" if "80GB" in m else "A100-40GB"
    if "A30" in m:
        return "A30"
    return None


def mig_profiles(model: str | None) -> tuple[MigProfile, ...]:
    family = mig_family(model)
    return MIG_PROFILES.get(family, ()) if family else ()


def profile_by_name(model: str | None, name: str) -> MigProfile | None:
    for p in mig_profiles(model):
        if p.name == name:
            return p
    return None


def slices_total(model: str | None) -> int | None:
    family = mig_family(model)
    if family is None:
        return None
    return 4 if family == "A30" else 7
