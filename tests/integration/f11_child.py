"""A console process that runs one real action and SIGKILLs itself at a FAULTPOINT (F11).

``python -m tests.integration.f11_child INVENTORY AUDIT_DB ROLES TRACE KILL_AT [ACTION TARGET]``

It starts a console session as ``dcc --inventory INVENTORY`` would (no TUI, no
polling), plans ``services.restart`` of ``minio-stor01`` through the session's
ActionRunner, types the confirmation and executes it against the lab served
by the test process. ``console.actions.FAULTPOINT`` is replaced: at every call
it appends one JSON line to TRACE -- the name, and the action uids whose
``intent`` and ``result`` rows a separate connection reads as committed at
that moment -- and when the name is KILL_AT it kills this process with
SIGKILL (no ``finally``, no ``atexit``: a power cut for the process). An
empty KILL_AT only records: the action runs to its end and the results are
printed as JSON. Exit 3: KILL_AT was never reached. ACTION and TARGET (default
``services.restart`` of ``minio-stor01``) choose another action of the session's
registry, run with its default inputs (``test_f11_reconcile``: ``power.soft``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
from pathlib import Path

import console.actions
from console.audit_files import private_umask
from console.options import LaunchOptions
from console.session import start_session

ACTION = "services.restart"
TARGET = "minio-stor01"
NOT_REACHED = 3


def committed(db: Path) -> dict[str, list[str]]:
    """The action uids with an intent / a result row on disk, read by another connection."""
    with private_umask(db.parent):  # a reader may create -shm: never open to others
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT phase, action_uid FROM events WHERE phase IN ('intent', 'result') ORDER BY id"
        ).fetchall()
    finally:
        con.close()
    return {
        "intents": [uid for phase, uid in rows if phase == "intent"],
        "results": [uid for phase, uid in rows if phase == "result"],
    }


def install_faultpoint(db: Path, trace: Path, kill_at: str) -> None:
    fd = os.open(trace, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def fault(name: str) -> None:
        line = {"name": name, "pid": os.getpid(), **committed(db)}
        # os.write: in the kernel before the kill, whatever the process does next.
        os.write(fd, (json.dumps(line) + "\n").encode())
        if name == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    console.actions.FAULTPOINT = fault  # looked up at call time by the runner


async def main(
    inventory: Path,
    audit_db: Path,
    roles: Path,
    trace: Path,
    kill_at: str,
    action: str = ACTION,
    target: str = TARGET,
) -> int:
    session = await start_session(
        LaunchOptions(inventory=inventory, audit_db=audit_db, roles=roles, poll=False)
    )
    try:
        assert session.runner is not None
        install_faultpoint(audit_db, trace, kill_at)
        spec = session.registry.actions()[action]
        config = session.inventory.plugin_configs.get(action.split(".", 1)[0])
        targets = [t for t in spec.targets(session.inventory, config) if t.name == target]
        plan = await session.runner.plan(spec, targets, {})
        results = await session.runner.execute(plan, plan.confirm_text)
        print(json.dumps([{"target": r.target.name, "outcome": r.outcome} for r in results]))
    finally:
        await session.stop()
    return NOT_REACHED if kill_at else 0


if __name__ == "__main__":
    inventory, audit_db, roles, trace = (Path(a) for a in sys.argv[1:5])
    sys.exit(asyncio.run(main(inventory, audit_db, roles, trace, *sys.argv[5:8])))
