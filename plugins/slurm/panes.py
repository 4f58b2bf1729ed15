"""The ``slurm.queue`` pane: per cluster, GPUs by state, pending jobs by reason, longest waits.

The only module of the plugin that imports Textual.
"""

from __future__ import annotations

from textual.app import ComposeResult

from console.plugin import Severity
from console.widgets.line_table import Column, LineTable, Row
from console.widgets.pane import Pane
from plugins.slurm.config import clusters
from plugins.slurm.status import GLYPH, duration, gpu_line, pending_line, queue_status


class SlurmQueuePane(Pane):
    """One block per cluster: GPUs, pending by reason, the longest waits (job rows)."""

    def compose_body(self) -> ComposeResult:
        self.table = LineTable(
            [Column("", 1), Column("cluster", 8), Column("what", 8), Column("", 0)],
            show_header=False,
        )
        yield self.table

    def update_view(self) -> None:
        rows: list[Row] = []
        names = list(clusters(self.ctx.inventory))
        for name in names:
            cfg = clusters(self.ctx.inventory)[name]
            q = queue_status(self.ctx.store, name)
            known = q.ts is not None
            unav = q.gpus_unavail or 0
            sev = Severity.UNKNOWN if not known else Severity.WARNING if unav else Severity.OK
            node = cfg.controller
            rows.append(Row(f"{name}:gpus", (GLYPH[sev], name, "GPUs", gpu_line(q)), node, sev))
            waiting = q.jobs_pending or 0
            psev = Severity.UNKNOWN if not known else Severity.OK
            rows.append(
                Row(f"{name}:pending", (GLYPH[psev], "", "pending", pending_line(q)), node, psev)
            )
            if q.jobs_running is not None:
                out = f" · {q.nodes_out} nodes out of service" if q.nodes_out else ""
                text = f"{q.jobs_running} jobs{out}"
                rows.append(Row(f"{name}:running", (" ", "", "running", text), node))
            for w in q.waits[: 5 if waiting else 0]:
                gpus = f"{w.get('gpus')} GPU " if w.get("gpus") else ""
                text = (
                    f"job {w.get('job')} {w.get('name') or ''} ({w.get('user') or '?'}) "
                    f"{gpus}{w.get('reason') or ''}"
                )
                rows.append(
                    Row(
                        f"{name}:wait:{w.get('job')}",
                        (" ", "", duration(w.get("wait_s")), text),
                        node,
                        data=(("kind", "job"), ("target", f"{name}:{w.get('job')}")),
                    )
                )
        self.table.set_rows(rows)
        self.set_empty(not names, "no Slurm cluster in the inventory (clusters.slurm)")
