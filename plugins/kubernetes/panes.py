"""The Kubernetes queue pane: per cluster, GPUs, what is pending and why, the longest waits.

The only module of the plugin that imports Textual.
"""

from __future__ import annotations

from textual.app import ComposeResult

from console.plugin import Severity
from console.sanitize import clean
from console.widgets.line_table import Column, LineTable, Row
from console.widgets.pane import Pane
from plugins.kubernetes.collect import cluster_target
from plugins.kubernetes.config import clusters_of

GLYPH = {Severity.OK: "●", Severity.WARNING: "▲", Severity.CRITICAL: "✖", Severity.UNKNOWN: "?"}


def _n(value: object) -> str:
    return "?" if value is None else str(value)


class KubernetesQueuePane(Pane):
    """One block per cluster: GPUs, pending pods by reason, longest waits, operator health."""

    def compose_body(self) -> ComposeResult:
        self.table = LineTable([Column("", 1), Column("what", 14), Column("", 0)])
        yield self.table

    def status_targets(self) -> list[str]:
        return list(clusters_of(self.ctx.inventory))

    def update_view(self) -> None:
        store = self.ctx.store
        rows: list[Row] = []
        clusters = clusters_of(self.ctx.inventory)
        for name in clusters:
            t = cluster_target(name)

            def v(metric: str, t: str = t) -> object:
                return store.value(t, f"kubernetes.{metric}")

            if v("nodes") is None:
                continue
            not_ready, cordoned = v("nodes_not_ready"), v("nodes_cordoned")
            sev = Severity.CRITICAL if not_ready else Severity.OK
            rows.append(
                Row(
                    f"{name}:nodes",
                    (
                        GLYPH[sev],
                        name,
                        f"{_n(v('nodes'))} nodes · {_n(not_ready)} not ready · "
                        f"{_n(cordoned)} cordoned",
                    ),
                    severity=sev,
                )
            )
            unavailable = v("gpus_unavailable")
            gsev = Severity.WARNING if isinstance(unavailable, int) and unavailable else Severity.OK
            rows.append(
                Row(
                    f"{name}:gpus",
                    (
                        GLYPH[gsev],
                        "  GPUs",
                        f"{_n(v('gpus_total'))} total · {_n(v('gpus_allocated'))} alloc · "
                        f"{_n(v('gpus_idle'))} idle · {_n(unavailable)} unavail",
                    ),
                    severity=gsev,
                )
            )
            if v("mig_summary"):
                rows.append(
                    Row(f"{name}:mig", (GLYPH[Severity.OK], "  MIG", clean(str(v("mig_summary")))))
                )
            pending = v("pending")
            psev = Severity.WARNING if isinstance(pending, int) and pending else Severity.OK
            rows.append(Row(f"{name}:pending", (GLYPH[psev], "  pending", f"{_n(pending)} pods")))
            for i, line in enumerate(str(v("pending_reasons") or "").splitlines()):
                count, _, reason = line.partition("\t")
                rows.append(
                    Row(
                        f"{name}:reason:{i}",
                        ("", f"    {count} ×", clean(reason)),
                        severity=Severity.WARNING,
                    )
                )
            for i, line in enumerate(str(v("longest_waits") or "").splitlines()):
                wait, key, gpus, reason = [*line.split("\t"), "", "", ""][:4]
                g = f" {gpus} GPU" if gpus not in ("", "0") else ""
                rows.append(
                    Row(
                        f"{name}:wait:{i}", ("", f"    waits {wait}", clean(f"{key}{g} · {reason}"))
                    )
                )
            bad = v("operator_unhealthy")
            osev = Severity.WARNING if isinstance(bad, int) and bad else Severity.OK
            rows.append(
                Row(
                    f"{name}:operator",
                    (
                        GLYPH[osev],
                        "  GPU Operator",
                        "all running" if bad == 0 else f"{_n(bad)} pods not running",
                    ),
                    severity=osev,
                )
            )
            for i, line in enumerate(str(v("operator_pods") or "").splitlines()):
                key, node, status = [*line.split("\t"), "", ""][:3]
                if self.ctx.node_filter.active and not self.ctx.node_filter(node):
                    continue
                rows.append(
                    Row(
                        f"{name}:op:{i}",
                        (GLYPH[Severity.WARNING], f"    {node}", clean(f"{key} {status}")),
                        node=node if node in self.ctx.inventory.nodes else None,
                        severity=Severity.WARNING,
                    )
                )
        self.table.set_rows(rows)
        if not clusters:
            self.set_empty(True, "no Kubernetes clusters (clusters.kubernetes)")
        else:
            self.set_empty(False)
