"""What the lab's dcgm-exporter serves for one host: ``DCGM_FI_*`` gauges per GPU.

Labels as dcgm-exporter writes them (``gpu``, ``UUID``, ``pci_bus_id``, ``device``,
``modelName``, ``Hostname``, ``DCGM_FI_DRIVER_VERSION``; see the real scrape in
DataDog's dcgm fixture and ``../shared/samples/dcgm``). Values come from the
same ``GpuHost`` state nvidia-smi prints, rounded the way nvidia-smi's CSV is,
so both sources read the same numbers. A GPU that fell off the bus is not
reported (dcgm-exporter drops a GPU it cannot read), nor are the GPUs of a host
whose driver does not answer; a powered-off host's exporter does not answer.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from console.sources.exposition import format_family

if TYPE_CHECKING:  # pragma: no cover
    from plugins.gpu.lab import GpuHost
    from plugins.gpu.lab_model import SimGpu

_XID = re.compile(r"Xid \(PCI:([0-9a-fA-F:.]+)\): (\d+)")

#: (name, type, help) in dcgm-exporter's default-counters order.
FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz)."),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C)."),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W)."),
    ("DCGM_FI_DEV_POWER_MGMT_LIMIT", "gauge", "Power management limit (in W)."),
    ("DCGM_FI_DEV_PSTATE", "gauge", "Performance state."),
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %)."),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered."),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB)."),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB)."),
    ("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "counter", "Total number of single-bit volatile ECC errors."),
    ("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "counter", "Total number of double-bit volatile ECC errors."),
    (
        "DCGM_FI_DEV_ECC_SBE_AGG_TOTAL",
        "counter",
        "Total number of single-bit persistent ECC errors.",
    ),
    (
        "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL",
        "counter",
        "Total number of double-bit persistent ECC errors.",
    ),
    (
        "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
        "counter",
        "Number of remapped rows for uncorrectable errors",
    ),
    ("DCGM_FI_DEV_ROW_REMAP_FAILURE", "gauge", "Whether remapping of rows has failed"),
    ("DCGM_FI_DEV_ROW_REMAP_PENDING", "gauge", "Whether a row remap is pending"),
    ("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "gauge", "Current clock throttle reasons."),
)


def last_xids(gh: GpuHost) -> dict[str, int]:
    """PCI bus (``18:00.0`` form, lower case) -> the last XID the kernel logged for it."""
    out: dict[str, int] = {}
    for line in gh.kernel_log:
        m = _XID.search(line)
        if m:
            out[m.group(1).lower()] = int(m.group(2))
    return out


def _values(g: SimGpu, xid: int) -> dict[str, Any]:
    used = round(g.mem_used)
    total = round(g.mem_total)
    values: dict[str, Any] = {
        "DCGM_FI_DEV_SM_CLOCK": round(g.sm_clock),
        "DCGM_FI_DEV_GPU_TEMP": round(g.temp),
        "DCGM_FI_DEV_POWER_USAGE": round(g.power, 2),
        "DCGM_FI_DEV_POWER_MGMT_LIMIT": round(g.power_limit, 2),
        "DCGM_FI_DEV_PSTATE": 0,
        "DCGM_FI_DEV_XID_ERRORS": xid,
        "DCGM_FI_DEV_FB_FREE": total - used,
        "DCGM_FI_DEV_FB_USED": used,
        "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL": g.ecc_corr,
        "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL": g.ecc_unc_volatile,
        "DCGM_FI_DEV_ECC_SBE_AGG_TOTAL": g.ecc_corr,
        "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL": g.ecc_unc_aggregate,
        "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS": g.remap_unc,
        "DCGM_FI_DEV_ROW_REMAP_FAILURE": 0,
        "DCGM_FI_DEV_ROW_REMAP_PENDING": int(g.remap_pending),
        "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS": g.throttle_mask,
    }
    if not g.mig_enabled:
        # Under MIG the GPU-level utilisation is not reported (nvidia-smi says [N/A]).
        values["DCGM_FI_DEV_GPU_UTIL"] = round(g.util)
    return values


def dcgm_text(gh: GpuHost, driver: str) -> str:
    """The exposition one scrape of this host's dcgm-exporter returns."""
    xids = last_xids(gh)
    rows: dict[str, list[tuple[dict[str, str], Any]]] = {name: [] for name, _, _ in FAMILIES}
    for g in gh.gpus:
        if g.lost:
            continue
        labels = {
            "gpu": str(g.index),
            "UUID": g.uuid,
            "pci_bus_id": g.bus,
            "device": f"nvidia{g.index}",
            "modelName": g.model,
            "Hostname": gh.name,
            "DCGM_FI_DRIVER_VERSION": driver,
        }
        if g.mig_enabled and g.instances:
            # dcgm-exporter reports a MIG GPU per GPU instance, labelled with it.
            per = [
                {**labels, "GPU_I_PROFILE": i.profile, "GPU_I_ID": str(i.gi)} for i in g.instances
            ]
        else:
            per = [labels]
        xid = xids.get(g.bus.lower()[4:-2], 0)
        for name, value in _values(g, xid).items():
            rows[name] += [(lab, value) for lab in per]
    return "".join(format_family(name, kind, text, rows[name]) for name, kind, text in FAMILIES)


def make_render(gpu_lab: Any, lab: Any) -> Any:
    """``render(host name)`` for the lab's ExporterSet, over the GpuLab's state."""
    from console.lab.exporters import host_answers

    def render(name: str) -> str | None:
        gh = gpu_lab.hosts.get(name)
        host = lab.hosts.get(name)
        if gh is None or host is None or not host_answers(host):
            return None
        gh.update(host)  # faults injected since the last tick show at once, as over SSH
        if host.fault("gpu.no_driver") is not None:
            return ""  # DCGM cannot reach the driver: the exporter serves no GPU
        drift = host.fault("gpu.driver_drift")
        driver = str(drift.get("driver", "535.161.08")) if drift is not None else gh.driver
        return dcgm_text(gh, driver)

    return render


async def start_exporters(gpu_lab: Any, lab: Any) -> None:
    """Serve dcgm-exporter on every GPU host (unless the lab serves no exporters)."""
    from console.lab.exporters import ExporterSet, exporters_enabled, host_addresses

    if not exporters_enabled(lab) or not gpu_lab.hosts:
        return
    exporter = ExporterSet("dcgm", make_render(gpu_lab, lab))
    gpu_lab.exporters["dcgm"] = exporter
    await exporter.start(host_addresses(lab, gpu_lab.hosts))
