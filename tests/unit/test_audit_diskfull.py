"""A full disk under the audit log (F9): no side effect without a committed intent.

Needs a real tiny file system: a tmpfs mounted for the test (root with
CAP_SYS_ADMIN); skipped where that is not possible.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.actions import ActionRefused, ActionRunner
from console.audit import AuditLog, AuditWriteError
from console.identity import Operator
from console.inventory.model import Inventory, InventoryDoc, Site
from console.plugin import ActionContext, ActionSpec, Outcome, Preview, Role, Target
from console.store import Store
from console.transports import Transports

OP = Operator(user="alice", console_host="jump1", pid=1)


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mnt)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill_up(directory: Path) -> None:
    with contextlib.suppress(OSError), (directory / "filler").open("wb", buffering=0) as f:
        while True:
            f.write(b"\0" * 4096)


async def test_a_full_disk_refuses_the_action_before_any_side_effect(
    tiny_fs: Path, tmp_path: Path
) -> None:
    log = AuditLog(tiny_fs / "audit.db", operator=OP, fallback_path=tmp_path / "fb.jsonl")
    executed: list[str] = []

    async def preview(ctx: ActionContext, target: Target, inputs: Any) -> Preview:
        return Preview(("reboot",))

    async def execute(ctx: ActionContext, target: Target, inputs: Any) -> Outcome:
        executed.append(target.name)
        return Outcome(True)

    async def verify(ctx: ActionContext, target: Target, inputs: Any, out: Outcome) -> Outcome:
        return out

    spec = ActionSpec(
        "testplug.reboot", "Reboot", "node", lambda i, c: [], preview, execute, verify
    )
    inventory = Inventory(doc=InventoryDoc(site=Site(name="t")), nodes={})
    transports = Transports(None, None, None)  # type: ignore[arg-type]  # unused here
    runner = ActionRunner(log, inventory, transports, Store(), OP, Role.ADMIN, False, {})
    try:
        plan = await runner.plan(spec, [Target("node", "gpu001")], {})
        fill_up(tiny_fs)
        # Write until SQLite reports the disk full (the WAL may have had room for a few rows).
        with pytest.raises(AuditWriteError, match="full"):
            for _ in range(10_000):
                await log.append_async("note", detail="x" * 2000)
        with pytest.raises(ActionRefused, match="cannot record the intent"):
            await runner.execute(plan, None)
        assert executed == []
    finally:
        await asyncio.to_thread(log.close)
