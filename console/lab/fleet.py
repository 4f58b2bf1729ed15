"""A generated inventory for a lab of N GPU hosts: `dcc lab --hosts N`.

The shape follows a large training cluster: 8-GPU servers four to a rack
(about 37 kW a rack at full load), each rack with its own InfiniBand leaf
(4 hosts x 8 NDR ports = the leaf's 32 host ports; the lab's fabric joins the
leaves through two spines), racks in halls of ``RACKS_PER_ROOM``, and a
Redfish BMC per host. Node sets keep the document short: one group per rack.
"""

from __future__ import annotations

import math
from typing import Any

HOSTS_PER_RACK = 4
RACKS_PER_ROOM = 40
GPUS_PER_HOST = 8
IB_PORTS_PER_HOST = 8
MAX_HOSTS = 20_000
"""Far more than one process can serve well; a guard against a typo (--hosts 100000)."""

HARDWARE: dict[str, Any] = {
    "gpu_model": "NVIDIA H100 80GB HBM3",
    "gpu_count": GPUS_PER_HOST,
    "ib_ports": IB_PORTS_PER_HOST,
    "ib_rate_gbps": 400,
    "driver_version": "550.90.07",
    "cuda_version": "12.4",
}


def _width(count: int) -> int:
    return max(4, len(str(count)))


def host_name(index: int, hosts: int) -> str:
    """The name of host number ``index`` (1-based) in a fleet of ``hosts``: gpu0001."""
    return f"gpu{index:0{_width(hosts)}d}"


def fleet_document(
    hosts: int,
    *,
    hosts_per_rack: int = HOSTS_PER_RACK,
    racks_per_room: int = RACKS_PER_ROOM,
    site: str = "dc-fleet",
) -> dict[str, Any]:
    """Inventory data (as YAML would give it) for ``hosts`` GPU servers.

    Raises:
        ValueError: ``hosts`` is not in 1..MAX_HOSTS.
    """
    if not 1 <= hosts <= MAX_HOSTS:
        raise ValueError(f"--hosts must be between 1 and {MAX_HOSTS}, not {hosts}")
    width = _width(hosts)
    rack_count = math.ceil(hosts / hosts_per_rack)
    rack_width = max(3, len(str(rack_count)))
    rooms: list[dict[str, Any]] = []
    groups: list[dict[str, Any]] = []
    for r in range(rack_count):
        rack = f"R{r + 1:0{rack_width}d}"
        if r % racks_per_room == 0:
            rooms.append({"name": f"hall-{len(rooms) + 1}", "racks": []})
        rooms[-1]["racks"].append(
            {"name": rack, "units": 42, "power_budget_kw": 45, "cooling_limit_kw": 48}
        )
        first = r * hosts_per_rack + 1
        last = min(hosts, first + hosts_per_rack - 1)
        members = (
            f"gpu{first:0{width}d}" if first == last else f"gpu[{first:0{width}d}-{last:0{width}d}]"
        )
        groups.append(
            {
                "nodes": members,
                "role": "gpu-train",
                "rack": rack,
                "u_start": 3,
                "u_height": 4,
                # Placeholders: the lab points every BMC at its own server.
                "bmc": {
                    "address": "{name}-bmc",
                    "protocol": "redfish",
                    "user": "admin",
                    "password": "env:DCC_BMC_PASSWORD",
                },
                "hardware": dict(HARDWARE),
                "labels": {"pod": f"p{r // racks_per_room + 1}"},
            }
        )
    return {
        "demo": True,
        "site": {
            "name": site,
            "description": f"Simulated fleet of {hosts} GPU servers (the lab); nothing is real",
        },
        "rooms": rooms,
        "ssh": {"host": "127.0.0.1", "port": 22, "user": "ops"},
        "nodes": groups,
    }
