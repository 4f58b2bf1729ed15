"""What the lab's nvidia-smi prints: CSV, XML (nvsmi_device_v12) and MIG tables.

Shapes follow the real captures in ``../shared/samples/nvidia-smi-*``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

if TYPE_CHECKING:  # pragma: no cover
    from plugins.gpu.lab_model import SimGpu


def _f(value: float | None, fmt: str = "{:.2f}") -> str:
    return "[N/A]" if value is None else fmt.format(value)


def csv_line(g: SimGpu, driver: str) -> str:
    """One ``--format=csv,noheader,nounits`` line in QUERY_FIELDS order."""
    mig = g.mig_enabled if g.mig_capable else None
    pend = g.mig_pending if g.mig_capable else None

    def onoff(v: bool | None) -> str:
        return "[N/A]" if v is None else ("Enabled" if v else "Disabled")

    util = "[N/A]" if g.mig_enabled else f"{g.util:.0f}"
    memutil = "[N/A]" if g.mig_enabled else f"{g.mem_util:.0f}"
    ecc = "ERR!" if g.ecc_err_field else str(g.ecc_unc_volatile)
    cells = [
        str(g.index),
        g.uuid,
        g.model,
        g.bus,
        driver,
        util,
        memutil,
        f"{g.mem_used:.0f}",
        f"{g.mem_total:.0f}",
        f"{g.temp:.0f}",
        f"{g.temp + 6:.0f}",
        _f(g.power),
        _f(g.power_limit),
        f"{g.sm_clock:.0f}",
        "P0",
        onoff(mig),
        onoff(pend),
        ecc,
        f"0x{g.throttle_mask:016X}",
        "[N/A]",
    ]
    return ", ".join(cells)


def lost_line(g: SimGpu) -> str:
    return (
        f"Unable to determine the device handle for GPU{g.bus}: GPU is lost.  "
        "Reboot the system to recover this GPU"
    )


def _reasons(g: SimGpu, tag: str) -> str:
    names = (
        ("gpu_idle", 0x1),
        ("applications_clocks_setting", 0x2),
        ("sw_power_cap", 0x4),
        ("hw_slowdown", 0x8),
        ("hw_thermal_slowdown", 0x40),
        ("hw_power_brake_slowdown", 0x80),
        ("sync_boost", 0x10),
        ("sw_thermal_slowdown", 0x20),
        ("display_clocks_setting", 0x100),
    )
    rows = "".join(
        f"\t\t\t<{tag}_{n}>{'Active' if g.throttle_mask & bit else 'Not Active'}</{tag}_{n}>\n"
        for n, bit in names
    )
    return f"\t\t<{tag}s>\n{rows}\t\t</{tag}s>\n"


def _mig_devices(g: SimGpu) -> str:
    if not g.mig_enabled or not g.instances:
        return "\t\t<mig_devices>\n\t\t\tNone\n\t\t</mig_devices>\n" if g.mig_enabled else ""
    out = ["\t\t<mig_devices>\n"]
    for i, inst in enumerate(g.instances):
        out.append(
            "\t\t\t<mig_device>\n"
            f"\t\t\t\t<index>{i}</index>\n"
            f"\t\t\t\t<gpu_instance_id>{inst.gi}</gpu_instance_id>\n"
            f"\t\t\t\t<compute_instance_id>{inst.ci}</compute_instance_id>\n"
            "\t\t\t\t<device_attributes>\n\t\t\t\t\t<shared>\n"
            f"\t\t\t\t\t\t<multiprocessor_count>{inst.slices * 16}</multiprocessor_count>\n"
            "\t\t\t\t\t</shared>\n\t\t\t\t</device_attributes>\n"
            "\t\t\t\t<fb_memory_usage>\n"
            f"\t\t\t\t\t<total>{inst.mem_mib:.0f} MiB</total>\n"
            f"\t\t\t\t\t<used>{inst.used_mib:.0f} MiB</used>\n"
            f"\t\t\t\t\t<free>{inst.mem_mib - inst.used_mib:.0f} MiB</free>\n"
            "\t\t\t\t</fb_memory_usage>\n"
            "\t\t\t</mig_device>\n"
        )
    out.append("\t\t</mig_devices>\n")
    return "".join(out)


def _processes(g: SimGpu) -> str:
    rows = "".join(
        "\t\t\t<process_info>\n"
        f"\t\t\t\t<gpu_instance_id>{'N/A' if p.gi is None else p.gi}</gpu_instance_id>\n"
        f"\t\t\t\t<compute_instance_id>{'N/A' if p.gi is None else 0}</compute_instance_id>\n"
        f"\t\t\t\t<pid>{p.pid}</pid>\n\t\t\t\t<type>C</type>\n"
        f"\t\t\t\t<process_name>{escape(p.name)}</process_name>\n"
        f"\t\t\t\t<used_memory>{p.used_mib:.0f} MiB</used_memory>\n"
        "\t\t\t</process_info>\n"
        for p in g.processes
    )
    return f"\t\t<processes>\n{rows}\t\t</processes>\n"


def gpu_xml(g: SimGpu) -> str:
    mig = g.mig_capable

    def mode(v: bool) -> str:
        return ("Enabled" if v else "Disabled") if mig else "N/A"

    util = "N/A" if g.mig_enabled else f"{g.util:.0f} %"
    return (
        f'\t<gpu id="{g.bus}">\n'
        f"\t\t<product_name>{escape(g.model)}</product_name>\n"
        "\t\t<product_architecture>Hopper</product_architecture>\n"
        f"\t\t<mig_mode>\n\t\t\t<current_mig>{mode(g.mig_enabled)}</current_mig>\n"
        f"\t\t\t<pending_mig>{mode(g.mig_pending)}</pending_mig>\n\t\t</mig_mode>\n"
        + _mig_devices(g)
        + f"\t\t<serial>{g.serial}</serial>\n\t\t<uuid>{g.uuid}</uuid>\n"
        f"\t\t<minor_number>{g.index}</minor_number>\n"
        "\t\t<vbios_version>96.00.89.00.01</vbios_version>\n"
        "\t\t<pci>\n\t\t\t<pci_gpu_link_info>\n"
        "\t\t\t\t<pcie_gen>\n\t\t\t\t\t<max_link_gen>5</max_link_gen>\n"
        "\t\t\t\t\t<current_link_gen>5</current_link_gen>\n\t\t\t\t</pcie_gen>\n"
        "\t\t\t\t<link_widths>\n\t\t\t\t\t<max_link_width>16x</max_link_width>\n"
        "\t\t\t\t\t<current_link_width>16x</current_link_width>\n\t\t\t\t</link_widths>\n"
        "\t\t\t</pci_gpu_link_info>\n"
        f"\t\t\t<pci_bus_id>{g.bus}</pci_bus_id>\n\t\t</pci>\n"
        "\t\t<performance_state>P0</performance_state>\n"
        + _reasons(g, "clocks_event_reason")
        + "\t\t<fb_memory_usage>\n"
        f"\t\t\t<total>{g.mem_total:.0f} MiB</total>\n\t\t\t<reserved>551 MiB</reserved>\n"
        f"\t\t\t<used>{g.mem_used:.0f} MiB</used>\n"
        f"\t\t\t<free>{g.mem_total - g.mem_used:.0f} MiB</free>\n\t\t</fb_memory_usage>\n"
        f"\t\t<utilization>\n\t\t\t<gpu_util>{util}</gpu_util>\n"
        f"\t\t\t<memory_util>{'N/A' if g.mig_enabled else f'{g.mem_util:.0f} %'}</memory_util>\n"
        "\t\t</utilization>\n"
        "\t\t<ecc_mode>\n\t\t\t<current_ecc>Enabled</current_ecc>\n"
        "\t\t\t<pending_ecc>Enabled</pending_ecc>\n\t\t</ecc_mode>\n"
        "\t\t<ecc_errors>\n\t\t\t<volatile>\n"
        "\t\t\t\t<sram_correctable>0</sram_correctable>\n"
        f"\t\t\t\t<sram_uncorrectable>0</sram_uncorrectable>\n"
        f"\t\t\t\t<dram_correctable>{g.ecc_corr}</dram_correctable>\n"
        f"\t\t\t\t<dram_uncorrectable>{g.ecc_unc_volatile}</dram_uncorrectable>\n"
        "\t\t\t</volatile>\n\t\t\t<aggregate>\n"
        "\t\t\t\t<sram_correctable>0</sram_correctable>\n"
        "\t\t\t\t<sram_uncorrectable>0</sram_uncorrectable>\n"
        f"\t\t\t\t<dram_correctable>{g.ecc_corr}</dram_correctable>\n"
        f"\t\t\t\t<dram_uncorrectable>{g.ecc_unc_aggregate}</dram_uncorrectable>\n"
        "\t\t\t</aggregate>\n\t\t</ecc_errors>\n"
        "\t\t<retired_pages>\n\t\t\t<multiple_single_bit_retirement>\n"
        "\t\t\t\t<retired_count>N/A</retired_count>\n"
        "\t\t\t</multiple_single_bit_retirement>\n\t\t\t<double_bit_retirement>\n"
        "\t\t\t\t<retired_count>N/A</retired_count>\n\t\t\t</double_bit_retirement>\n"
        "\t\t\t<pending_blacklist>N/A</pending_blacklist>\n"
        "\t\t\t<pending_retirement>N/A</pending_retirement>\n\t\t</retired_pages>\n"
        "\t\t<remapped_rows>\n"
        f"\t\t\t<remapped_row_corr>0</remapped_row_corr>\n"
        f"\t\t\t<remapped_row_unc>{g.remap_unc}</remapped_row_unc>\n"
        f"\t\t\t<remapped_row_pending>{'Yes' if g.remap_pending else 'No'}</remapped_row_pending>\n"
        "\t\t\t<remapped_row_failure>No</remapped_row_failure>\n\t\t</remapped_rows>\n"
        "\t\t<temperature>\n"
        f"\t\t\t<gpu_temp>{g.temp:.0f} C</gpu_temp>\n"
        "\t\t\t<gpu_temp_slow_threshold>87 C</gpu_temp_slow_threshold>\n"
        "\t\t</temperature>\n"
        "\t\t<gpu_power_readings>\n"
        f"\t\t\t<power_draw>{g.power:.2f} W</power_draw>\n"
        f"\t\t\t<current_power_limit>{g.power_limit:.2f} W</current_power_limit>\n"
        f"\t\t\t<power_limit>{g.power_limit:.2f} W</power_limit>\n"
        "\t\t</gpu_power_readings>\n"
        f"\t\t<clocks>\n\t\t\t<sm_clock>{g.sm_clock:.0f} MHz</sm_clock>\n"
        "\t\t\t<mem_clock>2619 MHz</mem_clock>\n\t\t</clocks>\n"
        "\t\t<max_clocks>\n\t\t\t<sm_clock>1980 MHz</sm_clock>\n\t\t</max_clocks>\n"
        + _processes(g)
        + "\t</gpu>\n"
    )


def smi_xml(gpus: Sequence[SimGpu], driver: str, cuda: str, now: float) -> str:
    present = [g for g in gpus if not g.lost]
    stamp = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(now))
    return (
        '<?xml version="1.0" ?>\n'
        '<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v12.dtd">\n'
        "<nvidia_smi_log>\n"
        f"\t<timestamp>{stamp}</timestamp>\n"
        f"\t<driver_version>{driver}</driver_version>\n"
        f"\t<cuda_version>{cuda}</cuda_version>\n"
        f"\t<attached_gpus>{len(gpus)}</attached_gpus>\n"
        + "".join(gpu_xml(g) for g in present)
        + "</nvidia_smi_log>\n"
    )


_LGI_HEAD = (
    "+-------------------------------------------------------+\n"
    "| GPU instances:                                        |\n"
    "| GPU   Name             Profile  Instance   Placement  |\n"
    "|                          ID       ID       Start:Size |\n"
    "|=======================================================|\n"
)
_LCI_HEAD = (
    "+--------------------------------------------------------------------+\n"
    "| Compute instances:                                                 |\n"
    "| GPU     GPU       Name             Profile   Instance   Placement  |\n"
    "|       Instance                       ID        ID       Start:Size |\n"
    "|         ID                                                         |\n"
    "|====================================================================|\n"
)


def mig_lgi(gpus: Sequence[SimGpu]) -> tuple[str, int]:
    rows = [
        f"|  {g.index:2d}  MIG {inst.profile:<14s} {inst.profile_id:3d}  {inst.gi:7d}  "
        f"{inst.start:6d}:{inst.slices:<4d}|\n"
        "+-------------------------------------------------------+\n"
        for g in gpus
        if g.mig_enabled and not g.lost
        for inst in g.instances
    ]
    if not rows:
        return "No GPU instances found: Not Found\n", 6
    return _LGI_HEAD + "".join(rows), 0


def mig_lci(gpus: Sequence[SimGpu]) -> tuple[str, int]:
    rows = [
        f"|  {g.index:2d}  {inst.gi:6d}       MIG {inst.profile:<14s} {0:3d}  {inst.ci:8d}  "
        f"{0:8d}:{inst.slices:<4d}|\n"
        "+--------------------------------------------------------------------+\n"
        for g in gpus
        if g.mig_enabled and not g.lost
        for inst in g.instances
    ]
    if not rows:
        return "No compute instances found: Not Found\n", 6
    return _LCI_HEAD + "".join(rows), 0


def nvlink_status(gpus: Sequence[SimGpu]) -> str:
    out = []
    for g in gpus:
        if g.lost:
            continue
        out.append(f"GPU {g.index}: {g.model} (UUID: {g.uuid})\n")
        if g.mig_enabled:
            out.append("Nvlink queries are not supported for Devices in MIG mode\n")
        elif g.nvlinks == 0:
            out.append("Device does not have or support Nvlink\n")
        else:
            out += [
                f"\t Link {i}: {'<inactive>' if i in g.links_down else '26.562 GB/s'}\n"
                for i in range(g.nvlinks)
            ]
    return "".join(out)


_TOPO_LEGEND = """
Legend:

  X    = Self
  SYS  = Connection traversing PCIe as well as the SMP interconnect between NUMA nodes (e.g., QPI/UPI)
  NODE = Connection traversing PCIe as well as the interconnect between PCIe Host Bridges within a NUMA node
  PHB  = Connection traversing PCIe as well as a PCIe Host Bridge (typically the CPU)
  PXB  = Connection traversing multiple PCIe bridges (without traversing the PCIe Host Bridge)
  PIX  = Connection traversing at most a single PCIe bridge
  NV#  = Connection traversing a bonded set of # NVLinks
"""  # noqa: E501  (nvidia-smi's own legend, verbatim)


def topo_matrix(gpus: Sequence[SimGpu], nics: int, cpus: int = 112) -> str:
    """``nvidia-smi topo -m``: GPU i shares a PCIe switch with NIC i; two NUMA nodes."""
    half = max(1, (len(gpus) + 1) // 2)
    numa = [0 if g.index < half else 1 for g in gpus]
    nic_numa = [0 if n < max(1, (nics + 1) // 2) else 1 for n in range(nics)]
    per = cpus // 2

    def gpu_gpu(a: SimGpu, b: SimGpu) -> str:
        if a.index == b.index:
            return " X "
        if a.nvlinks and b.nvlinks:
            return f"NV{a.nvlinks}"
        return "NODE" if numa[a.index] == numa[b.index] else "SYS"

    def gpu_nic(g: SimGpu, n: int) -> str:
        if n == g.index:
            return "PXB"
        return "NODE" if numa[g.index] == nic_numa[n] else "SYS"

    names = [f"GPU{g.index}" for g in gpus] + [f"NIC{n}" for n in range(nics)]
    head = "\t\x1b[4m" + "\t".join([*names, "CPU Affinity", "NUMA Affinity", "GPU NUMA ID"])
    rows = [head + "\x1b[0m"]
    for g in gpus:
        cells = [gpu_gpu(g, o) for o in gpus] + [gpu_nic(g, n) for n in range(nics)]
        lo = numa[g.index] * per
        rows.append(
            f"GPU{g.index}\t" + "\t".join(cells) + f"\t{lo}-{lo + per - 1}\t{numa[g.index]}\t\tN/A"
        )
    for n in range(nics):
        cells = [gpu_nic(g, n) for g in gpus] + [
            " X " if m == n else ("NODE" if nic_numa[m] == nic_numa[n] else "SYS")
            for m in range(nics)
        ]
        rows.append(f"NIC{n}\t" + "\t".join(cells))
    legend = "".join(f"  NIC{n}: mlx5_{n}\n" for n in range(nics))
    return "\n".join(rows) + "\n" + _TOPO_LEGEND + ("\nNIC Legend:\n\n" + legend if nics else "")
