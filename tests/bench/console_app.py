"""The console against the lab at fleet size, in its own process (tests.bench.console_run)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.bench.labproc import LabProcess

COLLECTORS = ("gpu.fast", "gpu.full")
"""What "polling 1,000 hosts" polls here: the GPU plugin over SSH (a 10 s fast read and a
60 s full one). At this size power, fabric and schedulers come from Prometheus (DESIGN.md)."""


def run(
    lab: LabProcess,
    poll_s: float,
    idle_s: float,
    action_nodes: int = 20,
    collectors: tuple[str, ...] = COLLECTORS,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "console.json"
        cmd = [sys.executable, "-m", "tests.bench.console_run", "--inventory", str(lab.inventory)]
        cmd += ["--out", str(out), "--poll-s", str(poll_s), "--idle-s", str(idle_s)]
        cmd += ["--connected-s", str(min(10.0, idle_s)), "--collectors", ",".join(collectors)]
        cmd += ["--action-nodes", str(action_nodes)]
        subprocess.run(cmd, check=True, timeout=poll_s + 2 * idle_s + 180)
        result: dict[str, Any] = json.loads(out.read_text())
        return result
