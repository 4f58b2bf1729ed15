"""`make bench` keeps working: every benchmark runs at a tiny size and reports a figure.

Timings are not asserted here (a shared CI machine makes them meaningless);
`make bench` measures them, and README's performance section records them.
"""

from __future__ import annotations

from console.lab.prometheus_peer import find_binary
from tests.bench import __main__ as bench

EXPECTED = (
    "cold start to first frame",
    "fleet refresh, main-loop CPU (back to back)",
    "fleet refresh, main-loop CPU (every 0.5 s)",
    "bytes to a real pty per refresh",
    "`dcc lab --hosts 4`",
    "direct SSH poll round, 4 hosts (GPU fast read): first",
    "direct SSH poll round, 4 hosts: pooled",
    "event-loop lag p99 while polling 4 hosts",
    "event-loop lag p99 while an action runs",
    "idle CPU over",
    "memory (RSS) at 4 hosts",
    "Prometheus round, 4 hosts x 8 GPUs",
    "audit append, synchronous=FULL",
)


def test_the_benchmark_harness_runs_every_benchmark_at_a_tiny_size_and_prints_a_table(
    capsys,
) -> None:
    table = bench.run(bench.TINY, quick=True)
    table.print()
    printed = capsys.readouterr().out
    names = [row[0] for row in table.rows]
    for expected in EXPECTED:
        assert any(n.startswith(expected) for n in names), f"no row for {expected!r}: {names}"
        assert expected.split(",")[0] in printed
    unmeasured = {row[0]: row[2] for row in table.rows if row[2].startswith("not measured")}
    if find_binary() is None:
        unmeasured = {k: v for k, v in unmeasured.items() if not k.startswith("Prometheus")}
    assert unmeasured == {}
    assert table.raw["ssh_poll"]["hosts"] == 4
    assert table.raw["console"]["action"]["ok"] == 2
    assert table.raw["audit"]["synchronous"] == 2  # FULL
    assert table.raw["refresh"]["bytes"] > 0  # the changed rows reached the terminal
