"""A Prometheus round for N hosts x 8 GPUs: queries, bytes and client CPU.

A real Prometheus (the Debian package, console.lab.prometheus_peer) scrapes
the lab's dcgm-exporter on every host; the console's GPU plugin is switched
to ``source: prometheus`` and one round of its fleet collector is measured:
how many queries (one per metric family, never one per host), how many bytes
came back, and this process's CPU time for it.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from console.inventory import apply_plugin_configs
from console.inventory.load import load_inventory
from console.poller import Poller
from console.registry import discover
from console.store import Store
from console.transports import Transports
from tests.bench.labproc import LabProcess

COLLECTOR = "gpu.prom"
SCRAPE_S = 5.0
"""The peer's scrape interval: 1,000 targets every second would be the lab's whole CPU."""


def dcgm_jobs(inventory_path: Path) -> dict[str, dict[str, str]]:
    """job -> {host: instance} from the lab's effective inventory (nodes' ``exporters``)."""
    inventory = load_inventory(inventory_path)
    jobs: dict[str, dict[str, str]] = {}
    for name, node in inventory.nodes.items():
        instance = (getattr(node, "exporters", None) or {}).get("dcgm")
        if instance:
            jobs.setdefault("dcgm", {})[name] = instance
    return jobs


def prometheus_inventory(lab_inventory: Path, url: str, out: Path) -> Path:
    """The lab's inventory with the GPU plugin reading from Prometheus at ``url``."""
    data: dict[str, Any] = yaml.safe_load(lab_inventory.read_text(encoding="utf-8"))
    data["prometheus"] = {"url": url}
    plugins = data.setdefault("plugins", {})
    plugins["gpu"] = dict(plugins.get("gpu") or {}) | {"source": "prometheus"}
    out.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return out


async def _rounds(inventory_path: Path, rounds: int) -> dict[str, float]:
    registry = discover()
    inventory = apply_plugin_configs(
        load_inventory(inventory_path), {p.name: p.config_model for p in registry.plugins}
    )
    collectors = [(p, c) for p, c in registry.collectors() if c.id == COLLECTOR]
    if not collectors:
        raise RuntimeError(f"no {COLLECTOR} collector: the GPU plugin has no Prometheus source")
    transports = Transports.create()
    store = Store()
    poller = Poller(store, inventory, transports, collectors)
    walls, cpus, queries, nbytes = [], [], [], []
    try:
        for _ in range(rounds):
            before = [c.stats.snapshot() for c in transports.prometheus.all()]
            cpu, start = time.process_time(), time.perf_counter()
            await poller.poll_once(lambda j: j.spec.id == COLLECTOR)
            walls.append(time.perf_counter() - start)
            cpus.append(time.process_time() - cpu)
            after = [c.stats.snapshot() for c in transports.prometheus.all()]
            q = sum(a[0] + a[1] for a in after) - sum(b[0] + b[1] for b in before)
            queries.append(q)
            nbytes.append(sum(a[2] for a in after) - sum(b[2] for b in before))
        gpus = len(
            [t for t in store.targets_with_prefix("") if "/" in t and not t.startswith("ib:")]
        )
        ok = sum(1 for s in store.collector_statuses() if s.last_error is None and s.last_ok)
    finally:
        await transports.close()
    return {
        "hosts": float(len(inventory.nodes)),
        "gpus": float(gpus),
        "targets_ok": float(ok),
        "first_queries": float(queries[0]),
        "queries": float(statistics.median(queries[1:] or queries)),
        "first_bytes": float(nbytes[0]),
        "bytes": float(statistics.median(nbytes[1:] or nbytes)),
        "round_s": statistics.median(walls[1:] or walls),
        "cpu_ms": statistics.median(cpus[1:] or cpus) * 1000,
        "first_cpu_ms": cpus[0] * 1000,
    }


def run(lab: LabProcess, rounds: int = 3, scrape_s: float = SCRAPE_S) -> dict[str, float]:
    from console.lab.prometheus_peer import PrometheusPeer, find_binary

    if find_binary() is None:
        raise RuntimeError("prometheus is not installed (scripts/peers/prometheus.packages)")
    jobs = dcgm_jobs(lab.inventory)
    if not jobs:
        raise RuntimeError("the lab serves no dcgm-exporter (exporters off?)")
    with tempfile.TemporaryDirectory() as tmp:
        peer = PrometheusPeer(Path(tmp) / "prom", jobs, interval=scrape_s)
        peer.start(ready_timeout=120.0)
        try:
            inv = prometheus_inventory(lab.inventory, peer.url, Path(tmp) / "inventory.yaml")
            return asyncio.run(_rounds(inv, rounds))
        finally:
            peer.stop()
