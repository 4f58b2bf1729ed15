"""gpu parsers on every nvidia-smi/dcgm sample, the unknown tokens, and arbitrary input."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.plugin import ParseError
from plugins.gpu.parse import (
    QUERY_FIELDS,
    parse_dcgm_diag,
    parse_mig_list,
    parse_nvlink_status,
    parse_query_csv,
    parse_xids,
)
from plugins.gpu.parse_smi_q import parse_smi_q
from plugins.gpu.parse_text import (
    parse_dmon,
    parse_smi_table,
    parse_topo,
)
from plugins.gpu.parse_xml import parse_smi_xml

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples"


def sample(*parts: str) -> Path:
    """One sample by name; the test is skipped where ../shared/samples is not laid out."""
    path = SAMPLES.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path


def samples(folder: str, pattern: str) -> list[Path]:
    found = sorted((SAMPLES / folder).glob(pattern)) if SAMPLES.exists() else []
    return [p for p in found if not p.name.endswith(".source.txt")]


@pytest.mark.parametrize("path", samples("nvidia-smi-csv", "*.csv"), ids=lambda p: p.name)
def test_query_csv_with_header_reads_every_capture(path: Path) -> None:
    (gpu,) = parse_query_csv(path.read_text())
    assert gpu.index == 0 and gpu.name and gpu.name.startswith("NVIDIA")
    assert gpu.mem_total_mib and gpu.mem_total_mib > 40000
    assert gpu.power_w and gpu.power_limit_w and gpu.temp_c
    if "mig" in path.name:
        assert gpu.mig_current is True and gpu.util_pct is None  # [N/A] under MIG, not 0
    if "l40s" in path.name:
        assert gpu.mig_current is None and gpu.mem_temp_c is None  # [N/A] / N/A


@pytest.mark.parametrize("path", samples("nvidia-smi-xml", "*.xml"), ids=lambda p: p.name)
def test_xml_reads_every_schema(path: Path) -> None:
    log = parse_smi_xml(path.read_text())
    assert log.driver and log.cuda and len(log.gpus) == 1
    gpu = log.gpus[0]
    assert gpu.uuid and gpu.uuid.startswith("GPU-") and gpu.ecc_mode is True
    assert gpu.throttle is not None
    if "mig" in path.name:
        assert gpu.mig_current is True and [d.gi for d in gpu.mig_devices] == [1, 2]
        assert gpu.ecc_unc_volatile is None  # all N/A
        assert gpu.util_pct is None
    if "p100" in path.name:
        assert gpu.ecc_corr_aggregate == 3 and gpu.ecc_unc_aggregate == 0  # old single/double-bit
    if "t4" in path.name:
        assert [p.pid for p in gpu.processes] == [675, 5762]
    if "a10g" in path.name:
        assert gpu.remap_pending is False and gpu.remap_unc == 0


def test_mig_compute_instances_sample() -> None:
    path = sample("nvidia-smi-mig", "nvidia-smi-mig-lci-a100-gfd-257.txt")
    rows = parse_mig_list(path.read_text())
    assert [(r.gi, r.profile) for r in rows] == [(13, "1g.5gb"), (5, "2g.10gb"), (1, "3g.20gb")]


@pytest.mark.parametrize("path", samples("nvidia-smi-nvlink", "*.txt"), ids=lambda p: p.name)
def test_nvlink_status_every_sample(path: Path) -> None:
    states = parse_nvlink_status(path.read_text())
    if "a10-" in path.name:
        assert states == []
    elif "mig" in path.name or "l40s" in path.name:
        assert states[0].links == {} and states[0].note
    else:
        assert states and all(v and v > 20 for v in states[0].links.values())


def test_dcgm_diag_sample_passes() -> None:
    result = parse_dcgm_diag(sample("dcgm", "gcm-dcgmi-diag-json-pass.json").read_text())
    assert result.passed is True and ("Inforom", "Pass") in result.tests


UNKNOWNS = (
    "0, GPU-1, NVIDIA H100 80GB HBM3, 00000000:18:00.0, 550.90.07, [N/A], [Not Supported], ERR!, "
    "81559, N/A, [Unknown Error], 300.5, 700.00, 1980, P0, Disabled, Disabled, ERR!, "
    "0x0000000000000040, [N/A]"
)
HEALTHY = (
    "0, GPU-1, NVIDIA H100, 00000000:18:00.0, 550, 90, 10, 1, 81559, 40, 45, 300, 700, 1980, "
    "P0, Disabled, Disabled, 0, 0x0, [N/A]"
)


def test_unknown_tokens_and_err_are_none_never_zero() -> None:
    (g,) = parse_query_csv(UNKNOWNS)
    assert g.util_pct is None and g.mem_util_pct is None and g.mem_used_mib is None
    assert g.temp_c is None and g.ecc_unc_volatile is None
    assert "memory.used" in g.errors and g.throttle_mask == 0x40


def test_a_gpu_fallen_off_the_bus_is_lost_with_its_index() -> None:
    two = HEALTHY.replace("0, GPU-1", "2, GPU-3", 1).replace("18:00", "38:00")
    lost_line = "Unable to determine the device handle for GPU0000:28:00.0: GPU is lost.  Reboot"
    gpus = parse_query_csv(f"{HEALTHY}\n{lost_line}\n{two}\n", QUERY_FIELDS)
    lost = [g for g in gpus if g.lost]
    assert [g.index for g in lost] == [1] and lost[0].util_pct is None


def test_xids_from_journalctl_and_dmesg() -> None:
    text = (
        "2026-11-29T10:00:01+0000 gpu001 kernel: NVRM: Xid (PCI:0000:3b:00): 79, pid=0, "
        "GPU has fallen off the bus.\n"
        "[ 1234.5] NVRM: Xid (PCI:0000:18:00): 48, pid=1, An uncorrectable double bit error\n"
        "unrelated line\n"
    )
    xids = parse_xids(text)
    assert [(x.xid, x.pci) for x in xids] == [(79, "0000:3b:00"), (48, "0000:18:00")]


def test_xml_with_an_internal_dtd_or_entities_is_refused() -> None:
    bomb = (
        '<?xml version="1.0"?>\n<!DOCTYPE nvidia_smi_log [<!ENTITY a "aaaa">]>\n'
        "<nvidia_smi_log><driver_version>&a;</driver_version></nvidia_smi_log>"
    )
    with pytest.raises(ParseError, match="refused"):
        parse_smi_xml(bomb)
    with pytest.raises(ParseError, match="larger"):
        parse_smi_xml("<nvidia_smi_log>" + " " * (9 * 1024 * 1024) + "</nvidia_smi_log>")
    plain = '<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v12.dtd">\n<nvidia_smi_log/>'
    assert parse_smi_xml(plain).gpus == ()


PARSERS = (
    parse_query_csv,
    parse_smi_xml,
    parse_mig_list,
    parse_nvlink_status,
    parse_dcgm_diag,
    parse_smi_q,
    parse_smi_table,
    parse_dmon,
    parse_topo,
)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=400))
def test_arbitrary_text_raises_only_parse_error(text: str) -> None:
    for fn in PARSERS:
        with contextlib.suppress(ParseError):
            fn(text)


NEAR_MISSES = st.sampled_from(
    [
        "Driver Version: 1 CUDA Version: 2\n",
        "|   0  X  On  |   00000000:19:00.0 Off |  0 |\n",
        "| N/A 27C P0 72W / 700W | 1MiB / 81559MiB | 0% Default |\n",
        "# gpu pwr sm\n# Idx W %\n",
        "\tGPU0\tNIC0\tCPU Affinity\nGPU0\t X \tPIX\t0-3\n",
        "GPU 00000000:07:00.0\n    Product Name : A\n",
        "    MIG Device\n        Index : 0\n",
        "  NIC0: mlx5_0\n",
        "\n",
    ]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(NEAR_MISSES, st.text(max_size=40)), max_size=12))
def test_shuffled_fragments_of_the_text_formats_raise_only_parse_error(parts: list[str]) -> None:
    text = "".join(parts)
    for fn in (parse_smi_q, parse_smi_table, parse_dmon, parse_topo):
        with contextlib.suppress(ParseError):
            fn(text)


def test_a_lost_gpu_shifts_the_report_positions_back_to_nvidia_smi_indexes() -> None:
    from plugins.gpu.parse import bus_order_indexes, lost_bus_ids

    text = "Unable to determine the device handle for GPU00000000:38:00.0: GPU is lost.\n<?xml"
    lost = lost_bus_ids(text)
    assert lost == ["00000000:38:00.0"]
    present = ["00000000:18:00.0", "00000000:28:00.0", "00000000:48:00.0"]
    assert bus_order_indexes(present, lost) == [0, 1, 3]
    assert bus_order_indexes(present, []) is None  # nothing lost: positions are right
    assert bus_order_indexes([None, "00000000:28:00.0"], lost) is None  # cannot tell
