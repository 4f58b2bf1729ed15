"""A lab for drills: a small site with every subsystem a demo drill touches, and a rig
that runs scenarios through the real engine, ActionRunner, audit log and poller.

Each test starts only the emulations it needs (a lab with fewer plugins starts
faster) with short lab delays (takeovers of a second or two).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.inventory.load import inventory_from_data
from console.inventory.model import Inventory
from console.lab import Lab
from console.plugin import Plugin, Role
from console.poller import Poller
from console.store import Store
from console.wizards.drill_deadman import DEADMAN_ACTIONS
from console.wizards.drill_env import DrillEnv, PollerProbe, build_env
from console.wizards.drill_lab import lab_fault_actions
from console.wizards.drill_model import Scenario, catalogue_from_data
from console.wizards.drill_report import DrillStore
from console.wizards.drill_run import DrillRun
from tests.integration.support import action_runner, open_transports, running_lab

BMC = {
    "address": "{name}-bmc",
    "protocol": "redfish",
    "user": "admin",
    "password": "env:UNUSED_IN_LAB",
}
HEALTHY = "services.healthy"


def site_data() -> dict[str, Any]:
    """Two racks of training nodes, the Slurm controllers, two MinIOs behind an address."""
    gpu = {
        "role": "gpu-train",
        "u_height": 4,
        "bmc": BMC,
        "hardware": {"gpu_count": 8, "ib_ports": 1, "ib_rate_gbps": 400},
        "clusters": {"slurm": "train", "partitions": ["gpu"]},
    }
    minio = {"service": "minio", "interval": 1}
    return {
        "site": {"name": "drill-site"},
        "rooms": [
            {
                "name": "hall",
                "racks": [{"name": r, "power_budget_kw": 30} for r in ("R01", "R02", "R03")],
            }
        ],
        "ssh": {"user": "ops"},
        "nodes": [
            {"nodes": "gpu[01-02]", "rack": "R01", "u_start": 1, **gpu},
            {"nodes": "gpu03", "rack": "R02", "u_start": 1, **gpu},
            {
                "nodes": "cpu[01-02]",
                "role": "cpu",
                "rack": "R02",
                "u_start": 10,
                "bmc": BMC,
                "clusters": {"slurm": "train", "partitions": ["cpu"], "kubernetes": "k1"},
            },
            {
                "nodes": "cpu03",
                "role": "cpu",
                "rack": "R02",
                "u_start": 12,
                "clusters": {"kubernetes": "k1"},
            },
            {
                "nodes": "stor[01-02]",
                "role": "storage",
                "rack": "R03",
                "u_start": 1,
                "hardware": {"ib_ports": 1, "ib_rate_gbps": 200},
            },
        ],
        "clusters": {
            "slurm": {"train": {"controller": "cpu01", "backup_controller": "cpu02"}},
            "kubernetes": {"k1": {"context": "k1-admin"}},
        },
        "plugins": {
            "services": {
                "checks": [
                    {
                        "name": "minio-stor01",
                        "node": "stor01",
                        **minio,
                        "systemd": {"unit": "minio.service"},
                    },
                    {
                        "name": "minio-stor02",
                        "node": "stor02",
                        **minio,
                        "systemd": {"unit": "minio.service"},
                    },
                    {
                        "name": "minio",
                        **minio,
                        "http": {"url": "http://minio.drill.lab:9000/minio/health/live"},
                        "backends": {"members": ["minio-stor01", "minio-stor02"]},
                    },
                    *(
                        {
                            "name": f"triton-{n}",
                            "service": "triton",
                            "node": n,
                            "interval": 1,
                            "systemd": {"unit": "tritonserver.service"},
                        }
                        for n in ("gpu01", "gpu03")
                    ),
                    {
                        "name": "gateway",
                        "service": "kong",
                        "node": "cpu03",
                        "interval": 1,
                        "backends": {
                            "members": ["triton-gpu01", "triton-gpu03"],
                            "mode": "balance",
                        },
                    },
                ]
            },
            "infiniband": {
                "fabric_node": "stor01",
                "switches": [
                    {"name": n} for n in ("leaf01", "leaf02", "leaf03", "spine01", "spine02")
                ],
            },
            "power": {"timeout": 2.0},
        },
    }


def site() -> Inventory:
    return inventory_from_data(site_data(), None)


def scenario(**fields: Any) -> Scenario:
    """One scenario with the short test timings unless given."""
    data: dict[str, Any] = {
        "id": "t",
        "title": "test drill",
        "scope": "drill-test",
        "max_duration_s": 20,
        "preflight_timeout_s": 15,
        "postflight_timeout_s": 15,
        "poll_interval_s": 0.25,
        **fields,
    }
    return catalogue_from_data({"drills": [data]}).drills[0]


@dataclass
class Rig:
    lab: Lab
    env: DrillEnv
    runner: Any
    drills: DrillStore
    audit_db: Path

    def run(self, s: Scenario) -> DrillRun:
        return DrillRun(s, self.env)

    def audit(self) -> list[tuple[str, str, str]]:
        """(phase, action, outcome) of every audit row, oldest first."""
        return [(r.phase, r.action, r.outcome) for r in self.runner.audit.page(newest_first=False)]


@asynccontextmanager
async def drill_rig(
    tmp_path: Path,
    plugins: Sequence[Plugin],
    seed: int = 21,
    before_stop: Callable[[], Awaitable[Any]] | None = None,
) -> AsyncIterator[Rig]:
    async with (
        running_lab(site(), tmp_path / "lab", plugins, seed, before_stop=before_stop) as lab,
        open_transports() as transports,
        action_runner(lab.inventory, transports, tmp_path / "audit.db", role=Role.ADMIN) as runner,
    ):
        store = runner.store
        assert isinstance(store, Store)
        poller = Poller(
            store, lab.inventory, transports, [(p, c) for p in plugins for c in p.collectors]
        )
        drills = DrillStore(tmp_path / "drills.db")
        env = build_env(
            plugins,
            runner,
            store,
            PollerProbe(poller),
            drills,
            extra_actions=[*lab_fault_actions(lab), *DEADMAN_ACTIONS],
        )
        yield Rig(lab, env, runner, drills, tmp_path / "audit.db")


def audit_rows(db: Path) -> list[tuple[str, str, str]]:
    """(phase, action, outcome) from an audit database another process wrote."""
    con = sqlite3.connect(db)
    try:
        return [
            tuple(r) for r in con.execute("SELECT phase, action, outcome FROM events ORDER BY id")
        ]
    finally:
        con.close()
