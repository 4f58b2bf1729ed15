"""What the lab's node_exporter serves for one host: its infiniband collector's families.

Names, labels (``device``, ``port``) and units as node_exporter writes them
(``../shared/samples/prometheus/node-exporter-infiniband-metrics.txt``): data
counters in octets (the sysfs value times 4), states as ids. Values come from
the same ``PortSim`` state the lab's sysfs/ibstat/perfquery answers are made
from, so both sources read the same numbers.
"""

from __future__ import annotations

from typing import Any

from console.sources.exposition import format_family

#: node_exporter family -> (sysfs counter, factor, help)
_P = "node_infiniband_"
#: node_exporter family -> (sysfs counter, factor: data counters are in octets, 4 per unit)
COUNTER_FAMILIES: dict[str, tuple[str, int]] = {
    _P + "excessive_buffer_overrun_errors_total": ("excessive_buffer_overrun_errors", 1),
    _P + "link_downed_total": ("link_downed", 1),
    _P + "link_error_recovery_total": ("link_error_recovery", 1),
    _P + "local_link_integrity_errors_total": ("local_link_integrity_errors", 1),
    _P + "port_constraint_errors_received_total": ("port_rcv_constraint_errors", 1),
    _P + "port_constraint_errors_transmitted_total": ("port_xmit_constraint_errors", 1),
    _P + "port_data_received_bytes_total": ("port_rcv_data", 4),
    _P + "port_data_transmitted_bytes_total": ("port_xmit_data", 4),
    _P + "port_discards_transmitted_total": ("port_xmit_discards", 1),
    _P + "port_errors_received_total": ("port_rcv_errors", 1),
    _P + "port_packets_received_total": ("port_rcv_packets", 1),
    _P + "port_packets_transmitted_total": ("port_xmit_packets", 1),
    _P + "port_receive_remote_physical_errors_total": ("port_rcv_remote_physical_errors", 1),
    _P + "port_receive_switch_relay_errors_total": ("port_rcv_switch_relay_errors", 1),
    _P + "port_transmit_wait_total": ("port_xmit_wait", 1),
    _P + "symbol_error_total": ("symbol_error", 1),
    _P + "vl15_dropped_total": ("VL15_dropped", 1),
}


def node_text(ib_lab: Any, host: Any) -> str:
    """One scrape of ``host``'s node_exporter (infiniband collector only)."""
    ports = ib_lab._host_ports(host.name)
    info, state, phys, rate = [], [], [], []
    counters: dict[str, list[tuple[dict[str, str], float]]] = {f: [] for f in COUNTER_FAMILIES}
    for p in ports:
        labels = {"device": p.device, "port": "1"}
        info.append(
            (
                {
                    "board_id": "MT_0000000838",
                    "device": p.device,
                    "firmware_version": "28.39.1002",
                    "hca_type": "MT4129",
                },
                1,
            )
        )
        s, ph = ib_lab._state(p, host.now)
        state.append((labels, int(s.split(":")[0])))
        phys.append((labels, int(ph.split(":")[0])))
        gbps, _width, _speed = ib_lab._rate(p)
        rate.append((labels, gbps * 1e9 / 8))
        for family, (counter, factor) in COUNTER_FAMILIES.items():
            counters[family].append((labels, int(p.counters.get(counter, 0.0)) * factor))
    parts = [
        format_family(
            "node_infiniband_info",
            "gauge",
            "Non-numeric data from /sys/class/infiniband/<device>, value is always 1.",
            info,
        ),
        format_family(
            "node_infiniband_physical_state_id",
            "gauge",
            "Physical state of the InfiniBand port (0: no change, 1: sleep, 2: polling, "
            "3: disable, 4: shift, 5: link up, 6: link error recover, 7: phytest)",
            phys,
        ),
        format_family(
            "node_infiniband_rate_bytes_per_second", "gauge", "Maximum signal transfer rate", rate
        ),
        format_family(
            "node_infiniband_state_id",
            "gauge",
            "State of the InfiniBand port (0: no change, 1: down, 2: init, 3: armed, "
            "4: active, 5: act defer)",
            state,
        ),
    ]
    parts += [
        format_family(
            family, "counter", f"Counter {counter} of the port (sysfs).", counters[family]
        )
        for family, (counter, _f) in COUNTER_FAMILIES.items()
    ]
    return "".join(parts)


async def start_exporters(ib_lab: Any, lab: Any) -> None:
    """Serve node_exporter (its infiniband collector) on every host with HCA ports."""
    from console.lab.exporters import (
        ExporterSet,
        exporters_enabled,
        host_addresses,
        host_answers,
    )

    names = sorted({p.host for p in ib_lab.ports.values()})
    if not exporters_enabled(lab) or not names:
        return

    def render(name: str) -> str | None:
        host = lab.hosts.get(name)
        if host is None or not host_answers(host):
            return None
        return node_text(ib_lab, host)

    exporter = ExporterSet("node", render)
    ib_lab.exporters["node"] = exporter
    await exporter.start(host_addresses(lab, names))
