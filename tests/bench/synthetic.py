"""A console session over a synthetic fleet: the real inventory, plugins, Store and panes,
with GPU readings made by the real parser from nvidia-smi's CSV (no lab, no network).

The refresh benchmarks need fleets larger than one process can simulate over SSH
(10,000 GPUs); what they measure is the console's main loop, which sees only the
Store, so readings produced by the collector's own parsing are what matters.
"""

from __future__ import annotations

import random

from console.inventory import apply_plugin_configs
from console.inventory.load import inventory_from_data
from console.lab.fleet import GPUS_PER_HOST, fleet_document
from console.options import LaunchOptions
from console.plugin import Reading
from console.registry import discover
from console.session import Session
from console.store import Store
from plugins.gpu.parse import parse_query_csv
from plugins.gpu.readings import fast_readings

FAST = "gpu.fast"
FULL = "gpu.full"
_LINE = (
    "{i}, GPU-{node:>08}-1d2e-4f50-8a6b-{i:012d}, NVIDIA H100 80GB HBM3, "
    "00000000:{bus:02X}:00.0, 550.90.07, {util}, {mutil}, {used}, 81559, {temp}, {mtemp}, "
    "{power:.2f}, 700.00, 1980, P0, Disabled, Disabled, 0, 0x0000000000000000, [N/A]"
)


def smi_csv(node: str, rng: random.Random, gpus: int = GPUS_PER_HOST) -> str:
    """What `nvidia-smi --query-gpu=... --format=csv,noheader,nounits` prints for a busy node."""
    lines = []
    for i in range(gpus):
        util = rng.randint(80, 100)
        lines.append(
            _LINE.format(
                i=i,
                node=node,
                bus=0x18 + 0x10 * i,
                util=util,
                mutil=util // 3,
                used=rng.randint(40000, 70000),
                temp=rng.randint(55, 72),
                mtemp=rng.randint(50, 70),
                power=70 + 6 * util,
            )
        )
    return "\n".join(lines) + "\n"


def node_readings(node: str, rng: random.Random) -> list[Reading]:
    """One fast read of a node, through the GPU plugin's parser and reading builder."""
    return fast_readings(node, parse_query_csv(smi_csv(node, rng)), "ssh")


def fleet_session(
    nodes: int, *, layout: str = "gpu", seed: int = 0, interval: float = 10.0
) -> Session:
    """A session over ``nodes`` GPU servers whose Store holds one fast read of each."""
    registry = discover()
    inventory = apply_plugin_configs(
        inventory_from_data(fleet_document(nodes), None),
        {p.name: p.config_model for p in registry.plugins},
    )
    store = Store()
    rng = random.Random(seed)
    for name in inventory.nodes:
        for _ in range(3):  # a little history, as after half a minute of polling
            store.put(node_readings(name, rng))
        store.record_attempt(FAST, name, interval, None)
        store.record_attempt(FULL, name, 6 * interval, None)
    options = LaunchOptions(inventory=None, layout=layout, poll=False)
    session = Session(inventory=inventory, registry=registry, store=store, options=options)
    session.refresh_alerts()
    return session


def touch(session: Session, names: list[str], rng: random.Random) -> None:
    """New fast reads for ``names``, as the poller would write them (visible changes)."""
    for name in names:
        session.store.put(node_readings(name, rng))
        session.store.record_attempt(FAST, name, 10.0, None)
