"""The rollouts database: private file, committed steps survive a reopen."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from console.wizards.rollout_state import RolloutState


async def test_state_is_private_and_survives_a_reopen(tmp_path: Path) -> None:
    old = os.umask(0o022)  # a hostile default
    try:
        state = RolloutState.beside(tmp_path / "audit.db")
    finally:
        os.umask(old)
    assert state.path == tmp_path / "rollouts.db"
    assert stat.S_IMODE(state.path.stat().st_mode) == 0o600
    await state.create("r1", "x", "h" * 64, "alice", {"waves": []}, [(0, ("a",)), (1, ("b", "c"))])
    await state.set_step("r1", "a", "change", "started")
    await state.set_step("r1", "a", "change", "done", "exit status 0")
    await state.set_step("r1", "b", "change", "started")
    await state.set_node("r1", "a", "done")
    state.close()

    again = RolloutState.beside(tmp_path / "audit.db")
    try:
        steps = await again.steps("r1")
        assert steps[("a", "change")].state == "done"
        assert steps[("a", "change")].detail == "exit status 0"
        assert steps[("b", "change")].state == "started"
        nodes = await again.nodes("r1")
        assert nodes == {"a": (0, "done", ""), "b": (1, "pending", ""), "c": (1, "pending", "")}
        assert [r.id for r in await again.unfinished()] == ["r1"]
        await again.set_status("r1", "done")
        assert await again.unfinished() == []
        await again.clear_steps("r1", "b")
        assert ("b", "change") not in await again.steps("r1")
    finally:
        again.close()
