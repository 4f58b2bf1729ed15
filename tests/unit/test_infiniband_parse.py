"""The infiniband parsers on the real samples, on odd output, and on arbitrary text."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.plugin import ParseError
from plugins.infiniband.dump import parse_fabric_dump, parse_node_dump, split_sections
from plugins.infiniband.parse import (
    merge_perf,
    parse_head_dump,
    parse_ibstat,
    parse_ibstatus,
    parse_perfquery,
    parse_rate,
    parse_state,
    parse_sysfs,
)
from plugins.infiniband.parse_fabric import parse_iblinkinfo, parse_ibnetdiscover_ports

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples"
IB = SAMPLES / "infiniband"
SYSFS = SAMPLES / "sysfs-infiniband"


def sample(path: Path) -> str:
    if not path.exists():
        pytest.skip(f"sample {path} not present")
    return path.read_text()


def listing(path: Path) -> dict[str, str]:
    """The samples' ``path -> contents`` listings as {path: first line}."""
    files: dict[str, str] = {}
    lines = sample(path).splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(/sys/\S+) -> (.*)$", lines[i])
        i += 1
        if not m or m.group(2) == "<directory>":
            continue
        value = m.group(2)
        if value == "<<<":  # a multi-line value: its first line
            value = lines[i] if i < len(lines) else ""
            while i < len(lines) and lines[i] != ">>>":
                i += 1
            i += 1
        files[m.group(1)] = value
    return files


def test_ibstat_hdr200_that_ibpanics_half_way_keeps_the_eight_cas_and_the_error():
    r = parse_ibstat(sample(IB / "gpud-ibstat-a100-hdr200-ibpanic-exit255.txt"))
    assert [c.name for c in r.cas] == [f"mlx5_{i}" for i in range(8)]
    assert r.error is not None and r.error.startswith("ibpanic:") and "mlx5_8" in r.error
    p = r.cas[0].ports[0]
    assert (p.state, p.phys_state, p.rate.gbps, p.link_layer, p.lid) == (
        "ACTIVE",
        "LinkUp",
        200.0,
        "InfiniBand",
        13247,
    )
    assert r.cas[0].ca_type == "MT4124" and r.cas[0].firmware == "20.41.1000"


def test_ibstat_ndr400_h100_reads_ethernet_ports_at_400_and_100():
    r = parse_ibstat(sample(IB / "gpud-ibstat-h100-ndr400.txt"))
    assert r.error is None
    ports = [p for c in r.cas for p in c.ports]
    assert {p.link_layer for p in ports} == {"Ethernet"}
    assert {p.rate.gbps for p in ports} == {400.0, 100.0}
    assert all(p.state == "ACTIVE" for p in ports)


def test_ibstat_mixed_roce_and_ib_keeps_each_port_link_layer():
    r = parse_ibstat(sample(IB / "gpud-ibstat-a100-mixed-eth-ib.txt"))
    layers = {c.name: c.ports[0].link_layer for c in r.cas}
    assert layers["mlx5_0"] == "Ethernet" and layers["mlx5_1"] == "InfiniBand"
    assert len(r.cas) == 9


def test_ibstat_some_down_reports_down_disabled_ports():
    r = parse_ibstat(sample(IB / "gpud-ibstat-h100-some-down.txt"))
    down = {c.name: c.ports[0] for c in r.cas if c.ports[0].state != "ACTIVE"}
    assert sorted(down) == ["mlx5_2", "mlx5_7", "mlx5_8"]
    assert {p.phys_state for p in down.values()} == {"Disabled"}
    assert {p.state for p in down.values()} == {"DOWN"}


def test_ibstatus_reads_hdr_rate_width_and_speed():
    ports = parse_ibstatus(sample(IB / "gpud-ibstatus-a100-hdr.txt"))
    assert len(ports) == 9
    assert (ports[0].rate.gbps, ports[0].rate.width, ports[0].rate.speed) == (200.0, 4, "HDR")
    assert ports[0].lid == 0x33BF and ports[0].state == "ACTIVE"
    assert ports[-1].link_layer == "Ethernet" and ports[-1].rate.speed == "QDR"


def test_perfquery_x_hca_maps_names_to_sysfs_counters():
    (b,) = parse_perfquery(sample(IB / "perfquery-x-hca-edr.txt"))
    assert (b.lid, b.port, b.kind) == (134, 1, "extended counters")
    assert b.counters["port_xmit_data"] == 9049592493976
    assert b.counters["symbol_error"] == 0 and b.counters["link_downed"] == 0


def test_perfquery_x_switch_has_one_block_per_port_with_nonzero_xmit_wait():
    blocks = parse_perfquery(sample(IB / "perfquery-x-switch-edr.txt"))
    assert [b.port for b in blocks] == [1, 2]
    assert blocks[0].counters["port_xmit_wait"] == 22730501
    assert blocks[1].counters["port_xmit_wait"] == 36510964


def test_perfquery_rcv_error_details_block():
    (b,) = parse_perfquery(sample(IB / "perfquery-E-rcverrordetails.txt"))
    assert b.kind == "PortRcvErrorDetails counters" and b.counters["PortLoopingErrors"] == 0


def test_ibnetdiscover_p_links_hcas_to_switch_ports_and_keeps_unconnected_ports():
    ports = parse_ibnetdiscover_ports(sample(IB / "ibnetdiscover-p-edr.txt"))
    first = ports[0]
    assert (first.kind, first.name, first.port, first.peer_name, first.peer_port) == (
        "CA",
        "o0001 HCA-1",
        1,
        "ib-i1l1s01",
        10,
    )
    assert (first.width, first.speed, first.host, first.device) == (4, "EDR", "o0001", "HCA-1")
    lone = [p for p in ports if p.peer_name is None]
    assert [(p.name, p.port, p.speed) for p in lone] == [
        ("ib-i4l1s01", 37, None),
        ("ib-i7l2s01", 80, None),
    ]


def test_sysfs_procfs_fixture_reads_state_rate_counters_and_hw_counters():
    ports = parse_sysfs(listing(SYSFS / "procfs-fixture-infiniband.txt"))
    keys = [p.key for p in ports]
    assert "hfi1_0/1" in keys and "mlx4_0/1" in keys and "mlx4_0/2" in keys
    hfi = next(p for p in ports if p.key == "hfi1_0/1")
    assert (hfi.state, hfi.phys_state, hfi.rate.gbps, hfi.rate.speed) == (
        "ACTIVE",
        "LinkUp",
        100.0,
        "EDR",
    )
    assert hfi.counters["port_rcv_data"] == 345091702026
    assert any(p.hw_counters for p in ports)


def test_sysfs_no_pma_counters_are_unknown_not_zero():
    ports = parse_sysfs(listing(SYSFS / "node-exporter-fixture-infiniband.txt"))
    i40 = next(p for p in ports if p.device == "i40iw0")
    assert i40.counters["symbol_error"] is None and i40.counters["port_rcv_data"] is None
    assert i40.rate.gbps == 10.0 and i40.rate.width == 4 and i40.rate.speed == "SDR"


def test_rate_and_state_formats():
    assert parse_rate("400 Gb/sec (4X NDR)").speed == "NDR"
    assert parse_rate("100 Gb/sec (2X HDR)").width == 2
    assert parse_rate("N/A").gbps is None
    assert parse_state("4: ACTIVE") == "ACTIVE" and parse_state("") is None


def test_head_dump_and_node_dump_merge_sysfs_with_perfquery():
    text = (
        "@@ sysfs\n==> /sys/class/infiniband/ibsim0/ports/1/state <==\n4: ACTIVE\n\n"
        "==> /sys/class/infiniband/ibsim0/ports/1/rate <==\n10 Gb/sec (4X)\n\n"
        "@@ ibstat\nCA 'ibsim0'\n\tCA type: simulator\n\tPort 1:\n\t\tState: Active\n"
        "\t\tLink layer: IB\n@@ rc 0\n@@ perfquery ibsim0 1\n# Port counters: Lid 7 port 1\n"
        "SymbolErrorCounter:..............42\n@@ rc 0\n"
    )
    dump = parse_node_dump(text)
    (p,) = dump.ports
    assert p.link_layer == "InfiniBand" and p.counters["symbol_error"] == 42
    assert p.rate.width == 4 and dump.tool_errors == ()


def test_node_dump_records_an_ibpanic_as_a_tool_error():
    body = sample(IB / "gpud-ibstat-a100-hdr200-ibpanic-exit255.txt")
    dump = parse_node_dump(f"@@ sysfs\n@@ ibstat\n{body}\n@@ rc 255\n")
    assert len(dump.ports) == 8 and dump.tool_errors[0].startswith("ibpanic:")


def test_fabric_dump_that_failed_raises_parse_error_naming_the_tool():
    with pytest.raises(ParseError, match="iblinkinfo exited 1"):
        parse_fabric_dump("@@ iblinkinfo\nibwarn: umad open failed\n@@ rc 1\n")


def test_garbage_is_refused_with_parse_error():
    for fn in (
        parse_ibstat,
        parse_perfquery,
        parse_iblinkinfo,
        parse_ibnetdiscover_ports,
        parse_head_dump,
        split_sections,
    ):
        with pytest.raises(ParseError):
            fn("hello world\nthis: is not it\n")
    assert merge_perf([]) == {}


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=400))
def test_arbitrary_text_raises_nothing_but_parse_error(text: str):
    for fn in (
        parse_ibstat,
        parse_ibstatus,
        parse_perfquery,
        parse_iblinkinfo,
        parse_ibnetdiscover_ports,
        parse_head_dump,
        parse_node_dump,
        parse_fabric_dump,
    ):
        with contextlib.suppress(ParseError):
            fn(text)  # type: ignore[operator]
