"""The lab of N hosts in its own process, so its CPU never counts against the client's.

`dcc lab --hosts N` runs until SIGTERM; the benchmarks read the inventory it
writes and measure the console side alone (process CPU time, RSS).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

READY = "Ctrl-C stops the lab."


@dataclass(frozen=True, slots=True)
class LabProcess:
    hosts: int
    state_dir: Path
    pid: int
    start_s: float

    @property
    def inventory(self) -> Path:
        return self.state_dir / "inventory.yaml"

    def cpu_s(self) -> float:
        """CPU seconds the lab process has used so far (user + system)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def rss_mib(self) -> float:
        pages = int(Path(f"/proc/{self.pid}/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@contextlib.contextmanager
def running_lab(hosts: int, state_dir: Path, timeout: float = 120.0) -> Iterator[LabProcess]:
    """Start `dcc lab --hosts N` and yield once it listens; stopped (SIGTERM) at exit."""
    log = state_dir.with_name(state_dir.name + ".log")
    started = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "console",
                "lab",
                "--hosts",
                str(hosts),
                "--state-dir",
                str(state_dir),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while READY not in log.read_text():
            if proc.poll() is not None:
                raise RuntimeError(f"the lab exited ({proc.returncode}): {log.read_text()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the lab did not start within {timeout:g}s")
            time.sleep(0.1)
        yield LabProcess(hosts, state_dir, proc.pid, time.perf_counter() - started)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
