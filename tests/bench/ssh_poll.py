"""One direct poll round of N lab hosts over SSH: the first (connecting) and pooled ones.

The lab runs in its own process (tests.bench.labproc), so this process's CPU
time is the console's alone. A round is what the poller does for the GPU
plugin's fast collector: one `nvidia-smi --query-gpu` per host over the pooled
connection, parsed into readings and written to the Store, every host at once
under the poller's concurrency cap. A bare `hostname` round shows the SSH
transport's own share (DESIGN.md's figures).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

from console.inventory import apply_plugin_configs
from console.inventory.load import load_inventory
from console.poller import Poller
from console.registry import discover
from console.store import Store
from console.transports import Transports
from tests.bench.labproc import LabProcess

COLLECTOR = "gpu.fast"


async def _rounds(inventory_path: Path, rounds: int) -> dict[str, float]:
    registry = discover()
    inventory = apply_plugin_configs(
        load_inventory(inventory_path), {p.name: p.config_model for p in registry.plugins}
    )
    collectors = [(p, c) for p, c in registry.collectors() if c.id == COLLECTOR]
    transports = Transports.create()
    poller = Poller(Store(), inventory, transports, collectors)
    hosts = len(poller.jobs)
    walls: list[float] = []
    cpus: list[float] = []
    try:
        for _ in range(rounds + 1):
            cpu, start = time.process_time(), time.perf_counter()
            ok = await poller.poll_once()
            walls.append(time.perf_counter() - start)
            cpus.append(time.process_time() - cpu)
            if ok != hosts:
                raise RuntimeError(f"only {ok} of {hosts} hosts answered the poll")
        bare = []
        nodes = list(inventory.nodes.values())
        for _ in range(2):
            start = time.perf_counter()
            await asyncio.gather(*(transports.ssh.run(n, "hostname", timeout=30) for n in nodes))
            bare.append(time.perf_counter() - start)
        connects = transports.ssh.stats.connects
    finally:
        await transports.close()
    pooled_w, pooled_c = walls[1:], cpus[1:]
    return {
        "hosts": float(hosts),
        "first_s": walls[0],
        "first_cpu_ms_per_host": cpus[0] / hosts * 1000,
        "pooled_s": statistics.median(pooled_w),
        "pooled_best_s": min(pooled_w),
        "pooled_cpu_ms_per_host": statistics.median(pooled_c) / hosts * 1000,
        "hostname_round_s": min(bare),
        "connects": float(connects),
    }


def run(lab: LabProcess, rounds: int = 3) -> dict[str, float]:
    lab_cpu = lab.cpu_s()
    result = asyncio.run(_rounds(lab.inventory, rounds))
    result["lab_cpu_s"] = lab.cpu_s() - lab_cpu
    return result
