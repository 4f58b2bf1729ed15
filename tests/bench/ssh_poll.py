"""One poll of N lab hosts over SSH: a cold pool (connect every host) against a warm one.

The lab runs N simulated hosts, each with its own SSH server on loopback, in
this process. The poll is what a collector round does: one command per host,
all hosts at once under the pool's concurrency cap.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from console.inventory import inventory_from_data
from console.lab import Lab
from console.transports.ssh import SshPool


def fleet(hosts: int) -> dict[str, Any]:
    return {
        "site": {"name": "bench"},
        "demo": True,
        "rooms": [{"name": "hall", "racks": [{"name": "R01", "power_budget_kw": 40}]}],
        "ssh": {"user": "ops"},
        "nodes": [{"nodes": f"h[001-{hosts:03d}]", "role": "cpu"}],
    }


async def _poll(pool: SshPool, nodes: list[Any]) -> float:
    start = time.perf_counter()
    results = await asyncio.gather(*(pool.run(n, "hostname", timeout=30) for n in nodes))
    elapsed = time.perf_counter() - start
    assert all(r.ok for r in results)
    return elapsed


async def run(hosts: int = 100, rounds: int = 3) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        lab = Lab(inventory_from_data(fleet(hosts), None), Path(tmp), [], scenario=None)
        await lab.start()
        try:
            nodes = list(lab.inventory.nodes.values())
            cold, warm = [], []
            for _ in range(rounds):
                pool = SshPool()
                try:
                    cold.append(await _poll(pool, nodes))
                    warm.append(await _poll(pool, nodes))
                    assert pool.stats.connects == hosts
                finally:
                    await pool.close()
        finally:
            await lab.stop()
    c, w = min(cold), min(warm)
    return {"hosts": float(hosts), "cold_s": c, "warm_s": w, "ratio": c / w}
