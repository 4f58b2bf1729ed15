"""Audit append latency with synchronous=FULL (every row committed and fsynced).

``append`` returns only once the row is on disk: that is what "the intent is on
the record before the side effect" costs an action. Latencies of one append at
a time, as an operator's actions come (not a batch).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from console.audit import AuditLog


def run(appends: int = 300) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        audit = AuditLog(Path(tmp) / "audit" / "audit.db")
        try:
            synchronous = int(audit.pragma("synchronous"))
            lat = []
            for i in range(appends):
                start = time.perf_counter()
                audit.append(
                    "intent",
                    action="power.identify",
                    targets=[f"gpu{i % 1000:04d}"],
                    params={"seconds": 5},
                    action_uid=f"bench-{i}",
                )
                lat.append(time.perf_counter() - start)
        finally:
            audit.close()
    lat.sort()
    return {
        "appends": float(appends),
        "synchronous": float(synchronous),
        "p50_ms": statistics.median(lat) * 1000,
        "p99_ms": lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1000,
        "per_s": len(lat) / sum(lat),
    }
