"""nvidia-smi's human formats on every sample: -q (text), the default table, dmon, topo -m."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.plugin import ParseError
from plugins.gpu.parse_smi_q import parse_smi_q
from plugins.gpu.parse_text import (
    dmon_means,
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


def samples(folder: str) -> list[Path]:
    found = sorted((SAMPLES / folder).glob("*.txt")) if SAMPLES.exists() else []
    return [p for p in found if not p.name.endswith(".source.txt")]


# Golden values per sample: what an operator reads off the capture by eye.
Q_GOLDEN = {
    "gpud-a10-535.129.03-q.txt": ("535.129.03", "12.2", "NVIDIA A10", None, 43.89, 33.0),
    "nvgpuexp-h100-mig-idle.txt": ("590.48.01", "13.1", "NVIDIA H100 80GB HBM3", True, 72.63, 42.0),
    "nvgpuexp-h100-sxm-idle.txt": (
        "590.48.01",
        "13.1",
        "NVIDIA H100 80GB HBM3",
        False,
        69.62,
        41.0,
    ),
    "nvgpuexp-h200-idle.txt": ("590.48.01", "13.1", "NVIDIA H200", False, 77.88, 28.0),
    "nvgpuexp-l40s-idle.txt": ("595.80", "13.2", "NVIDIA L40S", None, 119.88, 64.0),
}


@pytest.mark.parametrize("path", samples("nvidia-smi-q"), ids=lambda p: p.name)
def test_smi_q_text_reads_every_sample(path: Path) -> None:
    log = parse_smi_q(path.read_text())
    driver, cuda, name, mig, power, temp = Q_GOLDEN[path.name]
    (g,) = log.gpus
    assert (log.driver, log.cuda, g.name, g.mig_current) == (driver, cuda, name, mig)
    assert (g.power_w, g.temp_c) == (power, temp)
    assert g.uuid and g.uuid.startswith("GPU-") and g.pci_bus_id and g.ecc_mode is True
    assert g.throttle is not None and g.pcie_width == 16 and g.errors == ()
    if "mig" in path.name:
        assert [d.gi for d in g.mig_devices] == [2, 3, 9, 10]
        assert [d.mem_total_mib for d in g.mig_devices][:2] == [40448.0, 20096.0]
        assert g.util_pct is None  # N/A under MIG, not 0
        assert g.remap_pending is None  # "Remapped Rows : N/A"
    if "a10" in path.name:
        assert g.remap_unc == 4 and g.remap_pending is True and g.remap_failure is False
        assert g.temp_slow_c == 98.0 and g.ecc_unc_volatile == 0
    if "l40s" in path.name:
        assert g.util_pct == 100.0 and g.throttle == ()


def test_smi_q_text_matches_the_xml_parser_field_for_field() -> None:
    """The fallback gives the same readings: one GPU written both ways agrees."""
    xml = sample("nvidia-smi-xml", "a10g-v11.xml").read_text()
    from_xml = parse_smi_xml(xml).gpus[0]
    text = "\n".join(
        [
            "==============NVSMI LOG==============",
            "Driver Version                            : 1.2",
            f"GPU {from_xml.pci_bus_id}",
            f"    Product Name                          : {from_xml.name}",
            "    Clocks Event Reasons",
            "        Idle                              : Active",
            "        HW Slowdown                       : Not Active",
            "            HW Thermal Slowdown           : Active",
            "    Processes",
            "        GPU instance ID                   : N/A",
            "        Compute instance ID               : N/A",
            "        Process ID                        : 675",
            "            Type                          : C",
            "            Name                          : python3",
            "            Used GPU Memory               : 100 MiB",
            "    Temperature",
            "        GPU Current Temp                  : ERR!",
        ]
    )
    (g,) = parse_smi_q(text).gpus
    assert g.name == from_xml.name and g.pci_bus_id == from_xml.pci_bus_id
    assert g.throttle == ("gpu_idle", "hw_thermal_slowdown")
    assert [(p.pid, p.kind, p.name, p.used_mib, p.gi) for p in g.processes] == [
        (675, "C", "python3", 100.0, None)
    ]
    assert g.temp_c is None and g.errors == ("GPU Current Temp",)


TABLE_GOLDEN = {
    # name: (driver, cuda, GPUs, GPU0 util, GPU0 MiB used, GPU0 W, MIG, processes)
    "gpud-8xh100-550.90.07.txt": ("550.90.07", "12.4", 8, 0.0, 1.0, 72.0, False, 0),
    "nvgpuexp-h100-mig-idle.txt": ("590.48.01", "13.1", 1, None, 59.0, 98.0, True, 0),
    "nvgpuexp-h100-mig-load.txt": ("590.48.01", "13.1", 1, None, 11125.0, 432.0, True, 3),
    "nvgpuexp-h100-sxm-idle.txt": ("590.48.01", "13.1", 1, 0.0, 0.0, 69.0, False, 0),
    "nvgpuexp-h100-sxm-load.txt": ("590.48.01", "13.1", 1, 100.0, 19818.0, 629.0, False, 3),
    "nvgpuexp-h200-idle.txt": ("590.48.01", "13.1", 1, 0.0, 0.0, 77.0, False, 0),
    "nvgpuexp-h200-load.txt": ("590.48.01", "13.1", 1, 100.0, 32362.0, 628.0, False, 3),
    "nvgpuexp-h200-mig-idle.txt": ("590.48.01", "13.1", 1, None, 55.0, 78.0, True, 0),
    "nvgpuexp-l40s-idle.txt": ("595.80", "13.2", 1, 100.0, 0.0, 242.0, None, 0),
    "nvgpuexp-l40s-load.txt": ("595.80", "13.2", 1, 9.0, 1235.0, 110.0, None, 2),
}


@pytest.mark.parametrize("path", samples("nvidia-smi-table"), ids=lambda p: p.name)
def test_default_table_reads_every_sample(path: Path) -> None:
    t = parse_smi_table(path.read_text())
    driver, cuda, count, util, used, watts, mig, procs = TABLE_GOLDEN[path.name]
    assert (t.driver, t.cuda, len(t.gpus)) == (driver, cuda, count)
    g = t.gpus[0]
    assert (g.index, g.util_pct, g.mem_used_mib, g.power_w, g.mig_current) == (
        0,
        util,
        used,
        watts,
        mig,
    )
    assert g.name and g.name.startswith("NVIDIA") and g.pci_bus_id and g.temp_c
    assert g.power_limit_w in (350.0, 700.0) and g.fan_pct is None  # fan "N/A"
    assert [gpu.index for gpu in t.gpus] == list(range(count))
    assert len(t.processes) == procs
    if "mig" in path.name:
        assert t.mig and t.mig[0][1].gi == 2 and t.mig[0][1].mem_total_mib in (40448.0, 71424.0)
    if path.name == "nvgpuexp-h100-mig-load.txt":
        assert t.processes[2][1].name == "./gpu_burn" and t.processes[2][1].gi == 2
    if "l40s-load" in path.name:
        assert t.processes[0][1].gi is None and t.processes[0][1].used_mib == 538.0


def test_old_two_row_table_without_mig_column() -> None:
    old = """\
| NVIDIA-SMI 390.116                Driver Version: 390.116                   |
|-------------------------------+----------------------+----------------------+
| GPU  Name        Persistence-M| Bus-Id        Disp.A | Volatile Uncorr. ECC |
| Fan  Temp  Perf  Pwr:Usage/Cap|         Memory-Usage | GPU-Util  Compute M. |
|===============================+======================+======================|
|   0  Tesla K80           Off  | 00000000:04:00.0 Off |                    0 |
| N/A   32C    P8    29W / 149W |      0MiB / 11439MiB |      0%      Default |
+-------------------------------+----------------------+----------------------+
|   1  Tesla K80           Off  | 00000000:05:00.0 Off |                    0 |
| N/A   ERR!   P0   ERR! / 149W |   2MiB / 11439MiB    |     97%      Default |
+-------------------------------+----------------------+----------------------+
"""
    t = parse_smi_table(old)
    assert t.driver == "390.116" and t.cuda is None
    assert [(g.index, g.name, g.temp_c, g.power_w, g.util_pct) for g in t.gpus] == [
        (0, "Tesla K80", 32.0, 29.0, 0.0),
        (1, "Tesla K80", None, None, 97.0),
    ]
    assert t.gpus[1].errors == ("temp", "power")


DMON_GOLDEN = {
    # name: (mean power W, mean SM %)  -- SM is "-" (unknown) under MIG, never 0
    "nvgpuexp-h100-mig-dmon-load.txt": (438.6, None),
    "nvgpuexp-h100-sxm-dmon-load.txt": (633.6, 100.0),
    "nvgpuexp-h200-dmon-load.txt": (629.8, 100.0),
    "nvgpuexp-h200-mig-dmon-load.txt": (294.8, None),
    "nvgpuexp-l40s-dmon-load.txt": (108.2, 9.4),
}


@pytest.mark.parametrize("path", samples("nvidia-smi-dmon"), ids=lambda p: p.name)
def test_dmon_reads_every_sample(path: Path) -> None:
    rows = parse_dmon(path.read_text())
    assert len(rows) == 5 and {r.gpu for r in rows} == {0}
    means = dmon_means(rows)[0]
    power, sm = DMON_GOLDEN[path.name]
    assert means["pwr"] == pytest.approx(power) and means["sm"] == (
        None if sm is None else pytest.approx(sm)
    )
    if "l40s" in path.name:
        assert means["mtemp"] is None  # "-" on a card without memory temperature


def test_dmon_refuses_rows_that_do_not_match_the_header() -> None:
    with pytest.raises(ParseError, match="fields"):
        parse_dmon("# gpu pwr\n# Idx W\n 0 100 7\n")


@pytest.mark.parametrize("path", samples("nvidia-smi-topo"), ids=lambda p: p.name)
def test_topo_reads_every_sample(path: Path) -> None:
    m = parse_topo(path.read_text())
    cpus = "0-7" if "l40s" in path.name else "0-23" if "h200" in path.name else "0-19"
    assert m.gpus == ("GPU0",) and m.nics == () and m.links["GPU0"]["GPU0"] == "X"
    assert m.cpu_affinity["GPU0"] == cpus and m.numa["GPU0"] == "0"
    assert m.nearest_nics("GPU0") == ()


def test_topo_names_each_gpus_nearest_nic_from_the_legend() -> None:
    text = (
        "\t\x1b[4mGPU0\tGPU1\tNIC0\tNIC1\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID\x1b[0m\n"
        "GPU0\t X \tNV18\tPXB\tSYS\t0-55\t0\t\tN/A\n"
        "GPU1\tNV18\t X \tSYS\tPIX\t56-111\t1\t\tN/A\n"
        "NIC0\tPXB\tSYS\t X \tSYS\n"
        "NIC1\tSYS\tPIX\tSYS\t X \n\nLegend:\n\n  X    = Self\n\n"
        "NIC Legend:\n\n  NIC0: mlx5_0\n  NIC1: mlx5_1\n"
    )
    m = parse_topo(text)
    assert m.gpus == ("GPU0", "GPU1") and m.nics == ("NIC0", "NIC1")
    assert m.links["GPU0"]["GPU1"] == "NV18"
    assert m.nearest_nics("GPU0") == (("mlx5_0", "PXB"),)
    assert m.nearest_nics("GPU1") == (("mlx5_1", "PIX"),)
    assert m.numa == {"GPU0": "0", "GPU1": "1", "NIC0": None, "NIC1": None}
