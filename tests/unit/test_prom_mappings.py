"""Exporter series -> the plugins' readings (pure mappings), on the real exporter samples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from console.inventory.load import apply_plugin_configs, inventory_from_data
from console.inventory.model import Inventory
from console.plugin import Target
from console.sources.fleet import LIVE, Frame, NodeMatcher, frame_from_expositions, selector
from console.transports.prometheus import Sample
from plugins.gpu import prom as gpu_prom
from plugins.gpu.config import GpuConfig
from plugins.infiniband import prom as ib_prom
from plugins.infiniband.config import InfinibandConfig
from plugins.infiniband.health import CounterTracker
from plugins.power import prom as power_prom
from plugins.power.config import PowerConfig

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples"
NOW = 1_800_000_000.0


def sample(rel: str) -> str:
    return (SAMPLES / rel).read_text(encoding="utf-8")


def inventory(gpus: int = 1, extra_nodes: bool = False) -> Inventory:
    nodes: list[dict[str, Any]] = [
        {
            "nodes": "gpu01",
            "role": "gpu-train",
            "ssh": {"host": "10.0.0.1"},
            "bmc": {"address": "10.0.2.1"},
            "hardware": {"gpu_count": gpus, "ib_ports": 3, "ib_rate_gbps": 40},
            "exporters": {"dcgm": "10.0.0.1:9400", "node": "10.0.0.1:9100"},
        }
    ]
    if extra_nodes:
        nodes.append(
            {
                "nodes": "gpu[02-03]",
                "role": "gpu-train",
                "ssh": {"host": "127.0.0.1"},  # shared: an address that names no node
                "hardware": {"gpu_count": 8},
            }
        )
    inv = inventory_from_data({"site": {"name": "t"}, "nodes": nodes})
    return apply_plugin_configs(
        inv, {"gpu": GpuConfig, "power": PowerConfig, "infiniband": InfinibandConfig}
    )


def targets(inv: Inventory, *names: str) -> list[Target]:
    return [Target("node", n, node=n) for n in names or inv.nodes]


def values(result: Any, target: str) -> dict[str, Any]:
    return {r.metric: r.value for r in result.readings if r.target == target}


# --------------------------------------------------------------------------- gpu


def test_dcgm_readme_scrape_maps_to_the_gpu_of_the_declared_exporter_instance():
    inv = inventory()
    frame = frame_from_expositions(
        {"10.0.0.1:9400": sample("dcgm/dcgm-exporter-readme-metrics.txt")},
        gpu_prom.PLAN,
        at=NOW,
    )
    result = gpu_prom.map_dcgm(frame, inv, targets(inv), stale_after=120, now=NOW)
    gpu = values(result, "gpu01/0")
    assert gpu["gpu.sm_clock_mhz"] == 139.0
    assert gpu["gpu.state"] == "ok"
    # Not in this scrape: unknown, never 0.
    for metric in ("gpu.util_pct", "gpu.temp_c", "gpu.power_w", "gpu.mem_total_mib"):
        assert gpu[metric] is None, metric
    assert values(result, "gpu01")["gpu.count"] == 1
    assert not result.absent and not result.errors


def test_dcgm_blank_sentinels_are_unknown():
    assert gpu_prom.dcgm_value(float(9223372036854775794)) is None  # the README's MEMORY_TEMP
    assert gpu_prom.dcgm_value(140737488355328.0) is None  # DCGM_FP64_BLANK
    assert gpu_prom.dcgm_value(float(0x7FFFFFF0)) is None  # DCGM_INT32_BLANK
    assert gpu_prom.dcgm_value(81559.0) == 81559.0


def test_dcgm_kubernetes_scrape_maps_the_same_way():
    inv = inventory()
    frame = frame_from_expositions(
        {"10.0.0.1:9400": sample("dcgm/dcgm-exporter-readme-metrics-k8s.txt")},
        gpu_prom.PLAN,
        at=NOW,
    )
    result = gpu_prom.map_dcgm(frame, inv, targets(inv), stale_after=120, now=NOW)
    assert values(result, "gpu01/0")["gpu.sm_clock_mhz"] == 139.0


def _dcgm(host: str, gpu: int, **fields: float) -> str:
    labels = (
        f'gpu="{gpu}",UUID="GPU-{host}-{gpu}",modelName="NVIDIA H100 80GB HBM3",'
        f'Hostname="{host}",DCGM_FI_DRIVER_VERSION="550.90.07"'
    )
    return "".join(f"DCGM_FI_DEV_{k}{{{labels}}} {v}\n" for k, v in fields.items())


FULL = {
    "GPU_UTIL": 97,
    "GPU_TEMP": 64,
    "POWER_USAGE": 612.48,
    "FB_USED": 49447,
    "FB_FREE": 32112,
    "XID_ERRORS": 0,
    "CLOCK_THROTTLE_REASONS": 0x40 | 0x20,
    "ECC_DBE_VOL_TOTAL": 2,
    "ROW_REMAP_PENDING": 1,
}


def test_a_full_dcgm_gpu_maps_to_every_reading_the_grid_and_checks_read():
    inv = inventory(gpus=2)
    text = _dcgm("gpu01.site.example", 0, **FULL) + _dcgm("gpu01.site.example", 1, **FULL)
    # The instance names nothing; dcgm-exporter's Hostname (its first DNS label) does.
    frame = frame_from_expositions({"10.9.9.9:9400": text}, gpu_prom.PLAN, at=NOW)
    result = gpu_prom.map_dcgm(frame, inv, targets(inv), stale_after=120, now=NOW)
    gpu = values(result, "gpu01/1")
    assert gpu["gpu.util_pct"] == 97.0 and gpu["gpu.temp_c"] == 64.0
    assert gpu["gpu.mem_total_mib"] == 81559.0 and gpu["gpu.mem_pct"] == 60.6
    assert gpu["gpu.xid_last"] is None  # 0: no XID, not "XID 0"
    assert gpu["gpu.throttle"] == "sw_thermal_slowdown,hw_thermal_slowdown"
    assert gpu["gpu.ecc_unc_volatile"] == 2 and gpu["gpu.remap_pending"] is True
    assert gpu["gpu.uuid"] == "GPU-gpu01.site.example-1" and gpu["gpu.mig_current"] is False
    assert values(result, "gpu01")["gpu.driver"] == "550.90.07"


def test_a_gpu_the_inventory_expects_but_prometheus_lacks_is_absent_not_zero():
    inv = inventory(gpus=2)
    frame = frame_from_expositions(
        {"10.0.0.1:9400": _dcgm("gpu01", 0, **FULL)}, gpu_prom.PLAN, at=NOW
    )
    result = gpu_prom.map_dcgm(frame, inv, targets(inv), stale_after=120, now=NOW)
    (absent,) = result.absent
    assert absent.target == "gpu01/1" and absent.why == "no series in Prometheus"
    assert "gpu.util_pct" in absent.metrics and "gpu.state" in absent.metrics
    assert not any(r.target == "gpu01/1" for r in result.readings)
    assert not result.errors  # the node's other GPU reports


def test_a_sample_older_than_stale_after_is_absent_with_its_own_timestamp():
    inv = inventory()
    frame = frame_from_expositions(
        {"10.0.0.1:9400": _dcgm("gpu01", 0, **FULL)}, gpu_prom.PLAN, at=NOW
    )
    old = NOW - 300
    frame.samples[LIVE] = [Sample(s.labels, NOW, old) for s in frame.samples[LIVE]]
    result = gpu_prom.map_dcgm(frame, inv, targets(inv), stale_after=120, now=NOW)
    gpu_absent = next(a for a in result.absent if a.target == "gpu01/0")
    assert gpu_absent.why == "stale in Prometheus" and gpu_absent.last_seen == old
    assert "no current series" in result.errors["gpu01"]


def test_a_node_without_any_series_is_failing_and_its_node_readings_absent():
    inv = inventory(extra_nodes=True)
    frame = frame_from_expositions(
        {"10.0.0.1:9400": _dcgm("gpu01", 0, **FULL)}, gpu_prom.PLAN, at=NOW
    )
    result = gpu_prom.map_dcgm(frame, inv, targets(inv), stale_after=120, now=NOW)
    assert set(result.errors) == {"gpu02", "gpu03"}
    node_absent = [a for a in result.absent if a.target == "gpu02"]
    assert node_absent and "gpu.count" in node_absent[0].metrics
    assert len([a for a in result.absent if a.node == "gpu03"]) == 9  # 8 GPUs and the node


# --------------------------------------------------------------------------- power


def test_ipmi_exporter_documentation_maps_to_the_bmc_readings():
    inv = inventory()
    # ipmi_exporter's multi-target mode: the instance is the BMC's address.
    frame = frame_from_expositions(
        {"10.0.2.1": sample("prometheus/ipmi-exporter-docs-metrics.txt")},
        power_prom.PLAN,
        at=NOW,
    )
    result = power_prom.map_ipmi(frame, inv, targets(inv), stale_after=120, now=NOW)
    v = values(result, "gpu01")
    assert v["power.inlet_c"] == 24.0
    assert v["power.power_w"] == 70.0
    assert v["power.fans"] == 1 and v["power.fans_failed"] == 0
    assert v["power.psus"] is None and v["power.psus_failed"] is None  # no PSU sensor: unknown
    assert v["power.sel_critical"] == 0  # counted by state, none critical
    assert v["power.bmc_ok"] is None  # the excerpt has no ipmi_up
    assert v["power.exhaust_c"] is None
    rows = json.loads(v["power.sensors"])
    assert ["Inlet Temp", 24.0, "°C", "ok", ""] in rows


def test_ipmi_up_zero_is_the_bmc_not_answering():
    inv = inventory()
    text = 'ipmi_up{collector="ipmi"} 0\nipmi_up{collector="chassis"} 0\n'
    frame = frame_from_expositions({"10.0.2.1:9290": text}, power_prom.PLAN, at=NOW)
    result = power_prom.map_ipmi(frame, inv, targets(inv), stale_after=120, now=NOW)
    (reading,) = result.readings
    assert reading.metric == "power.bmc_ok" and reading.value is False
    assert "chassis, ipmi" in reading.detail


def test_a_failed_psu_and_fan_count_as_failed():
    inv = inventory()
    text = (
        'ipmi_up{collector="ipmi"} 1\n'
        'ipmi_fan_speed_rpm{id="1",name="Fan 1"} 0\n'
        'ipmi_fan_speed_state{id="1",name="Fan 1"} 2\n'
        'ipmi_fan_speed_rpm{id="2",name="Fan 2"} 9000\n'
        'ipmi_fan_speed_state{id="2",name="Fan 2"} 0\n'
        'ipmi_sensor_state{id="7",name="PS1 Status",type="Power Supply"} 0\n'
        'ipmi_sensor_state{id="8",name="PS2 Status",type="Power Supply"} 2\n'
        "ipmi_chassis_power_state 1\n"
    )
    frame = frame_from_expositions({"10.0.2.1": text}, power_prom.PLAN, at=NOW)
    v = values(power_prom.map_ipmi(frame, inv, targets(inv), stale_after=120, now=NOW), "gpu01")
    assert v["power.fans_failed"] == 1 and v["power.psus"] == 2 and v["power.psus_failed"] == 1
    assert v["power.redundancy"] == "lost" and v["power.state"] == "on" and v["power.bmc_ok"]


# --------------------------------------------------------------------------- infiniband


def test_node_exporter_infiniband_families_map_to_the_port_readings():
    inv = inventory()
    cfg = inv.plugin_configs["infiniband"]
    frame = frame_from_expositions(
        {"10.0.0.1:9100": sample("prometheus/node-exporter-infiniband-metrics.txt")},
        ib_prom.PLAN,
        at=NOW,
    )
    result = ib_prom.map_node_exporter(
        frame, inv, targets(inv), cfg, stale_after=120, now=NOW, counters=CounterTracker()
    )
    port = values(result, "ib:gpu01:mlx4_0/1")
    assert port["infiniband.state"] == "ACTIVE" and port["infiniband.phys_state"] == "LinkUp"
    assert port["infiniband.rate_gbps"] == 40.0
    assert port["infiniband.err.port_xmit_discards"] == 5
    assert port["infiniband.err.link_downed"] == 0
    assert port["infiniband.err.symbol_error"] is None  # not in this scrape: unknown
    assert port["infiniband.health"] == "ok"
    assert values(result, "ib:gpu01:i40iw0/1")["infiniband.rate_gbps"] == 10.0
    node = values(result, "gpu01")
    assert node["infiniband.ports_found"] == 3 and node["infiniband.ports_active"] == 3


def test_a_port_down_is_judged_like_the_direct_path_does():
    inv = inventory()
    text = (
        'node_infiniband_state_id{device="mlx5_0",port="1"} 1\n'
        'node_infiniband_physical_state_id{device="mlx5_0",port="1"} 2\n'
    )
    frame = frame_from_expositions({"10.0.0.1:9100": text}, ib_prom.PLAN, at=NOW)
    result = ib_prom.map_node_exporter(
        frame,
        inv,
        targets(inv),
        inv.plugin_configs["infiniband"],
        stale_after=120,
        now=NOW,
        counters=CounterTracker(),
    )
    port = values(result, "ib:gpu01:mlx5_0/1")
    assert port["infiniband.state"] == "DOWN" and port["infiniband.phys_state"] == "Polling"
    assert port["infiniband.health"] == "critical"
    assert values(result, "gpu01")["infiniband.ports_active"] == 0


# --------------------------------------------------------------------------- nodes


@pytest.mark.parametrize(
    ("labels", "node"),
    [
        ({"instance": "10.0.0.1:9400"}, "gpu01"),  # declared exporter address
        ({"instance": "x:1", "Hostname": "GPU02"}, "gpu02"),  # host label, any case
        ({"instance": "gpu03.site.example:9100"}, "gpu03"),  # instance's first DNS label
        ({"instance": "10.0.2.1"}, "gpu01"),  # the BMC's address (ipmi multi-target)
        ({"instance": "10.0.0.1:9100"}, "gpu01"),  # the SSH address, only gpu01's
        ({"instance": "127.0.0.1:9400"}, None),  # shared by gpu02 and gpu03: nobody
        ({"instance": "gpu04:9400"}, None),
    ],
)
def test_which_node_a_series_is(labels: dict[str, str], node: str | None):
    matcher = NodeMatcher(inventory(extra_nodes=True), "dcgm", ("Hostname",))
    assert matcher.node_of(labels) == node


def test_the_node_selector_is_the_matching_rule_in_promql():
    inv = inventory(extra_nodes=True)
    matcher = NodeMatcher(inv, "dcgm", ("Hostname",))
    assert selector(matcher, "gpu01", inv, "dcgm") == 'instance="10.0.0.1:9400"'
    assert selector(matcher, "gpu02", inv, "dcgm") == 'Hostname=~"(?i)gpu02(\\\\..*)?"'
    frame = Frame({}, NOW)
    assert frame.family("anything") == []
