"""A fleet refresh: main-loop time at 10,000 GPUs against 100, and bytes to a real terminal.

The console runs in a child process on a pseudo-terminal (tests.bench.fleet_app),
so what is counted is what an operator's SSH session would carry. Each cycle
changes 3 nodes' readings (3 rows of the GPU grid) and refreshes the panes once.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path
from typing import Any

COLUMNS, LINES = 120, 40


def _drain(fd: int, until: float, chunks: list[tuple[float, int]], tail: bytearray) -> None:
    while time.monotonic() < until:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if not ready:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            return
        if not data:
            return
        chunks.append((time.monotonic(), len(data)))
        tail.extend(data)
        del tail[:-4000]  # the end of what it printed, for an error message


def run_in_pty(
    nodes: int, cycles: int = 15, settle: float = 2.0, timeout: float = 120.0
) -> dict[str, Any]:
    """Run the fleet app for ``nodes`` on a pty; its timeline and the bytes it wrote."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(COLUMNS), LINES=str(LINES))
        env.pop("NO_COLOR", None)
        cmd = [sys.executable, "-m", "tests.bench.fleet_app", "--nodes", str(nodes)]
        cmd += ["--cycles", str(cycles), "--settle", str(settle), "--out", str(out)]
        # Textual draws on stderr: all three are the terminal, as in an SSH session.
        proc = subprocess.Popen(
            cmd, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
        os.close(slave)
        tail = bytearray()
        chunks: list[tuple[float, int]] = []
        try:
            deadline = time.monotonic() + timeout
            while proc.poll() is None and time.monotonic() < deadline:
                _drain(master, min(deadline, time.monotonic() + 0.5), chunks, tail)
            _drain(master, time.monotonic() + 0.3, chunks, tail)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            os.close(master)
        if not out.exists():
            text = tail.decode("utf-8", errors="replace")
            raise RuntimeError(f"the fleet app ({nodes} nodes) wrote no result: {text[-2000:]}")
        result: dict[str, Any] = json.loads(out.read_text())
    result["chunks"] = chunks
    return result


def _bytes_between(chunks: list[tuple[float, int]], start: float, end: float) -> int:
    return sum(n for ts, n in chunks if start <= ts < end)


def summarize(result: dict[str, Any]) -> dict[str, float]:
    """Per phase (warm, cadence): median refresh and loop CPU, bytes per cycle."""
    cycles = result["cycles"]
    ends = [c["start"] for c in cycles[1:]] + [result["end"]]
    for c, end in zip(cycles, ends, strict=True):
        c["bytes"] = _bytes_between(result["chunks"], c["start"], end)
    quiet = result["quiet"]
    out = {
        "nodes": float(result["nodes"]),
        "quiet_bytes": float(_bytes_between(result["chunks"], quiet["start"], quiet["end"])),
    }
    for phase in ("warm", "cadence"):
        mine = [c for c in cycles if c.get("phase", "cadence") == phase]
        if not mine:
            continue
        loops = sorted(c["loop_s"] for c in mine)
        out |= {
            f"{phase}_refresh_ms": statistics.median(c["refresh_s"] for c in mine) * 1000,
            f"{phase}_loop_ms": statistics.median(loops) * 1000,
            f"{phase}_loop_p90_ms": loops[int(0.9 * (len(loops) - 1))] * 1000,
            f"{phase}_bytes": float(statistics.median(c["bytes"] for c in mine)),
            f"{phase}_bytes_max": float(max(c["bytes"] for c in mine)),
        }
    return out


def run(
    small: int = 13, large: int = 1250, cycles: int = 15, settle: float = 2.0
) -> dict[str, float]:
    """Main-loop time and bytes per refresh at ``large`` nodes against ``small`` (x8 GPUs)."""
    s = summarize(run_in_pty(small, cycles, settle))
    big = summarize(run_in_pty(large, cycles, settle))
    out = {"small_gpus": s["nodes"] * 8, "large_gpus": big["nodes"] * 8}
    for phase in ("warm", "cadence"):
        out |= {
            f"small_{phase}_ms": s[f"{phase}_loop_ms"],
            f"large_{phase}_ms": big[f"{phase}_loop_ms"],
            f"large_{phase}_p90_ms": big[f"{phase}_loop_p90_ms"],
            f"large_{phase}_refresh_ms": big[f"{phase}_refresh_ms"],
            f"{phase}_ratio": big[f"{phase}_loop_ms"] / s[f"{phase}_loop_ms"],
        }
    out |= {
        "bytes": big["cadence_bytes"],
        "bytes_max": big["cadence_bytes_max"],
        "quiet_bytes": big["quiet_bytes"],
    }
    return out
