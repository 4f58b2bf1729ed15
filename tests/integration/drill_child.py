"""A drill run in its own process, against a lab running elsewhere (for the dead man's switch test).

``python -m tests.integration.drill_child LAB_STATE_DIR WORK_DIR SCENARIO_JSON TYPED``

It connects to the lab as another console would: the inventory the lab wrote,
SSH and HTTP on loopback, the lab's control API for the lab actions. It prints
``observing`` once the fault is in, then keeps observing until it is killed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from console.actions import ActionRunner
from console.audit import AuditLog
from console.identity import Operator
from console.inventory import apply_plugin_configs, load_inventory
from console.lab.actions import RemoteLab, lab_actions
from console.plugin import Role
from console.poller import Poller
from console.registry import discover
from console.store import Store
from console.transports import Transports
from console.wizards.drill_env import PollerProbe, build_env
from console.wizards.drill_model import catalogue_from_data
from console.wizards.drill_report import DrillStore
from console.wizards.drill_run import DrillRun
from plugins.services.manifest import plugin as services


async def main(lab_dir: Path, work: Path, scenario_json: str, typed: str) -> None:
    models = {p.name: p.config_model for p in discover().plugins}
    inventory = apply_plugin_configs(load_inventory(lab_dir / "inventory.yaml"), models)
    store = Store()
    transports = Transports.create()
    audit = AuditLog(work / "audit.db", fallback_path=work / "fallback.jsonl")
    runner = ActionRunner(
        audit,
        inventory,
        transports,
        store,
        Operator(user="bob"),
        Role.ADMIN,
        False,
        inventory.plugin_configs,
    )
    poller = Poller(store, inventory, transports, [(services, c) for c in services.collectors])
    env = build_env(
        [services],
        runner,
        store,
        PollerProbe(poller),
        DrillStore(work / "drills.db"),
        extra_actions=lab_actions(RemoteLab(lab_dir)),
    )
    scenario = catalogue_from_data({"drills": [json.loads(scenario_json)]}).drills[0]
    said = False

    def progress(run: DrillRun) -> None:
        nonlocal said
        if run.step == "observe" and not said:
            said = True
            print("observing", flush=True)

    await DrillRun(scenario, env, progress).run(typed)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]))
