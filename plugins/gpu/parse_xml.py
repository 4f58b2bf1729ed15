"""``nvidia-smi -q -x`` (nvsmi_device_v11/v12 and the older single/double-bit ECC layout).

Newer drivers renamed ``clocks_throttle_reasons`` to ``clocks_event_reasons``
(v12); both are read. Pure; raises only ParseError.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from console.plugin import ParseError
from plugins.gpu.model import GpuDetail, GpuProcess, MigDevice, SmiLog
from plugins.gpu.parse import enabled, integer, is_error, number, token

MAX_XML = 8 * 1024 * 1024
_EXTERNAL_DTD = re.compile(r'<!DOCTYPE\s+\w+\s+(?:SYSTEM|PUBLIC)(?:\s+"[^"<>\[\]]*"){1,2}\s*>')


def _text(el: ET.Element | None, path: str) -> str | None:
    if el is None:
        return None
    found = el.find(path)
    if found is None or found.text is None:
        return None
    return token(found.text)


def _sum(*values: int | None) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _ecc(block: ET.Element | None) -> tuple[int | None, int | None]:
    """(correctable, uncorrectable) of a ``volatile``/``aggregate`` block, any schema."""
    if block is None:
        return None, None
    if block.find("single_bit") is not None or block.find("double_bit") is not None:
        return integer(_text(block, "single_bit/total")), integer(_text(block, "double_bit/total"))
    corr = _sum(
        integer(_text(block, "sram_correctable")), integer(_text(block, "dram_correctable"))
    )
    unc = _sum(
        integer(_text(block, "sram_uncorrectable")),
        integer(_text(block, "dram_uncorrectable")),
        integer(_text(block, "sram_uncorrectable_parity")),
        integer(_text(block, "sram_uncorrectable_secded")),
    )
    return corr, unc


def _throttle(gpu: ET.Element) -> tuple[str, ...] | None:
    block = gpu.find("clocks_event_reasons")
    prefix = "clocks_event_reason_"
    if block is None:
        block = gpu.find("clocks_throttle_reasons")
        prefix = "clocks_throttle_reason_"
    if block is None:
        return None
    active = []
    known = False
    for child in block:
        value = (child.text or "").strip()
        if value in ("Active", "Not Active"):
            known = True
        if value == "Active":
            active.append(child.tag.removeprefix(prefix).removeprefix("clocks_event_reason_"))
    return tuple(active) if known else None


def _width(raw: str | None) -> int | None:
    return integer(raw.rstrip("x")) if raw else None


def _gpu(index: int, gpu: ET.Element) -> GpuDetail:
    mig = tuple(
        MigDevice(
            index=integer(_text(d, "index")),
            gi=integer(_text(d, "gpu_instance_id")),
            ci=integer(_text(d, "compute_instance_id")),
            mem_total_mib=number(_text(d, "fb_memory_usage/total")),
            mem_used_mib=number(_text(d, "fb_memory_usage/used")),
            sm_count=integer(_text(d, "device_attributes/shared/multiprocessor_count")),
        )
        for d in gpu.findall("mig_devices/mig_device")
    )
    corr_v, unc_v = _ecc(gpu.find("ecc_errors/volatile"))
    corr_a, unc_a = _ecc(gpu.find("ecc_errors/aggregate"))
    remap = gpu.find("remapped_rows")
    processes = tuple(
        GpuProcess(
            pid=integer(_text(p, "pid")),
            kind=_text(p, "type"),
            name=_text(p, "process_name"),
            used_mib=number(_text(p, "used_memory")),
            gi=integer(_text(p, "gpu_instance_id")),
            ci=integer(_text(p, "compute_instance_id")),
        )
        for p in gpu.findall("processes/process_info")
    )
    errors = tuple(
        sorted({el.tag for el in gpu.iter() if el.text and not len(el) and is_error(el.text)})
    )
    power = gpu.find("power_readings")
    if power is None:
        power = gpu.find("gpu_power_readings")
    return GpuDetail(
        index=index,
        pci_bus_id=gpu.get("id") or _text(gpu, "pci/pci_bus_id"),
        name=_text(gpu, "product_name"),
        uuid=_text(gpu, "uuid"),
        serial=_text(gpu, "serial"),
        vbios=_text(gpu, "vbios_version"),
        mig_current=enabled(_text(gpu, "mig_mode/current_mig")),
        mig_pending=enabled(_text(gpu, "mig_mode/pending_mig")),
        mig_devices=mig,
        ecc_mode=enabled(_text(gpu, "ecc_mode/current_ecc")),
        ecc_corr_volatile=corr_v,
        ecc_unc_volatile=unc_v,
        ecc_corr_aggregate=corr_a,
        ecc_unc_aggregate=unc_a,
        retired_sbe=integer(
            _text(gpu, "retired_pages/multiple_single_bit_retirement/retired_count")
        ),
        retired_dbe=integer(_text(gpu, "retired_pages/double_bit_retirement/retired_count")),
        retire_pending=enabled(_text(gpu, "retired_pages/pending_retirement")),
        remap_corr=integer(_text(remap, "remapped_row_corr")),
        remap_unc=integer(_text(remap, "remapped_row_unc")),
        remap_pending=enabled(_text(remap, "remapped_row_pending")),
        remap_failure=enabled(_text(remap, "remapped_row_failure")),
        throttle=_throttle(gpu),
        sm_clock_mhz=number(_text(gpu, "clocks/sm_clock")),
        mem_clock_mhz=number(_text(gpu, "clocks/mem_clock")),
        max_sm_clock_mhz=number(_text(gpu, "max_clocks/sm_clock")),
        power_w=number(_text(power, "power_draw")) if power is not None else None,
        power_limit_w=number(_text(power, "power_limit")) if power is not None else None,
        temp_c=number(_text(gpu, "temperature/gpu_temp")),
        temp_slow_c=number(_text(gpu, "temperature/gpu_temp_slow_threshold")),
        util_pct=number(_text(gpu, "utilization/gpu_util")),
        mem_used_mib=number(_text(gpu, "fb_memory_usage/used")),
        mem_total_mib=number(_text(gpu, "fb_memory_usage/total")),
        pcie_gen=integer(_text(gpu, "pci/pci_gpu_link_info/pcie_gen/current_link_gen")),
        pcie_width=_width(_text(gpu, "pci/pci_gpu_link_info/link_widths/current_link_width")),
        pcie_max_width=_width(_text(gpu, "pci/pci_gpu_link_info/link_widths/max_link_width")),
        processes=processes,
        errors=errors,
    )


def _checked(text: str) -> str:
    """The document with its external-DTD line removed, or ParseError when it is unsafe.

    nvidia-smi prints ``<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v12.dtd">``.
    Only that plain external reference is accepted (expat never fetches it); it
    is removed, and then any ``<!DOCTYPE`` or ``<!ENTITY`` left (an internal
    subset: entity expansion, "billion laughs") refuses the whole document.
    """
    if len(text) > MAX_XML:
        raise ParseError(f"nvidia-smi XML larger than {MAX_XML} bytes")
    cleaned = _EXTERNAL_DTD.sub("", text, count=1)
    upper = cleaned.upper()
    if "<!DOCTYPE" in upper or "<!ENTITY" in upper:
        raise ParseError("nvidia-smi XML with an internal DTD or entities: refused")
    return cleaned


def parse_smi_xml(text: str) -> SmiLog:
    """A whole ``nvidia-smi -q -x`` document (see ``_checked`` for what is refused)."""
    cleaned = _checked(text)
    try:
        # The input was checked above: bounded size, no DTD, no entity declarations,
        # so expat has nothing to expand or fetch (defusedxml is not available here).
        root = ET.fromstring(cleaned)  # noqa: S314
    except (ET.ParseError, ValueError) as exc:
        raise ParseError(f"nvidia-smi XML: {exc}") from None
    if root.tag != "nvidia_smi_log":
        raise ParseError(f"not an nvidia_smi_log document (root <{root.tag[:40]}>)")
    gpus = tuple(_gpu(i, g) for i, g in enumerate(root.findall("gpu")))
    return SmiLog(driver=_text(root, "driver_version"), cuda=_text(root, "cuda_version"), gpus=gpus)
