"""Which cluster a cluster-level exporter's series belong to (kube-state-metrics, Slurm).

A scheduler's exporter runs once per cluster, not once per host: its series
name their node in a label (``node``), and nothing in them says which cluster
they describe. ``ClusterResolver`` decides, per series, in order:

1. a ``cluster`` label equal to a cluster's name (the external label a
   multi-cluster Prometheus, Thanos or Mimir adds; another value is ignored);
2. its ``instance`` equals an exporter address a node of the inventory
   declares (``exporters: {kube-state-metrics: "10.0.0.5:8080"}``): that node's
   cluster (the plugin says which: membership, or the Slurm controller it is);
3. the cluster most of the nodes that ``instance`` reports belong to
   (inventory membership), when the plugin taught it with ``learn``;
4. the only cluster read from Prometheus, for an instance that reports no
   node of the inventory at all.

A series resolved to a cluster that is not read from Prometheus (or to none)
is ignored by the plugin: two exporters of two clusters scraped by one
Prometheus never mix.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping

from console.transports.prometheus import Sample

CLUSTER_LABEL = "cluster"


class ClusterResolver:
    """Maps a series' labels to one of ``clusters`` (the rule is in the module docstring)."""

    def __init__(
        self,
        clusters: Iterable[str],
        declared: Mapping[str, str] | None = None,
        *,
        label: str = CLUSTER_LABEL,
    ) -> None:
        """``clusters``: the names read from Prometheus; ``declared``: instance -> cluster."""
        self.clusters = frozenset(clusters)
        self.declared = dict(declared or {})
        self.label = label
        self._votes: dict[str, Counter[str]] = defaultdict(Counter)

    def learn(
        self,
        samples: Iterable[Sample],
        cluster_of_series: Callable[[Mapping[str, str]], str | None],
    ) -> None:
        """Count, per ``instance``, the clusters the nodes of its series belong to."""
        for s in samples:
            cluster = cluster_of_series(s.labels)
            if cluster is not None:
                self._votes[s.labels.get("instance", "")][cluster] += 1

    def cluster_of(self, labels: Mapping[str, str]) -> str | None:
        named = labels.get(self.label)
        if named in self.clusters:
            return named
        instance = labels.get("instance", "")
        found = self.declared.get(instance)
        if found is None:
            votes = self._votes.get(instance)
            if votes:
                found = votes.most_common(1)[0][0]
            elif len(self.clusters) == 1:
                found = next(iter(self.clusters))
        return found if found in self.clusters else None
