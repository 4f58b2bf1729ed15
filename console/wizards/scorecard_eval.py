"""The scorecard engine: every item of a checklist judged now, with its evidence.

Pure over what it is given: the Store (live readings and alerts), the
inventory, the plugins' checks and targets (through the contract, by id), the
sign-offs, and the drill history. No I/O and no Textual: the TUI re-runs it
whenever the Store changes, the CLI once after a poll.

Verdicts: ``pass``; ``fail`` (a check said warning or critical, something
declared is missing); ``unknown`` (no reading yet, nothing to check, not
signed off). Only ``pass`` counts towards a phase.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from console.filtering import FilterError, parse_filter
from console.plugin import CheckSpec, Finding, Plugin, Severity, Target
from console.wizards.scorecard_items import (
    Inputs,
    Judgement,
    SignOff,
    first,
    iso,
    judge_alerts,
    judge_backups,
    judge_drills,
    judge_manual,
    judge_racked,
)
from console.wizards.scorecard_model import Item, LoadedChecklist
from console.wizards.scorecard_result import (
    ItemResult,
    PhaseResult,
    ScorecardResult,
    Status,
    tidy,
)

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory
    from console.store import StoreView

log = logging.getLogger(__name__)

MAX_EVIDENCE = 200
"""Evidence lines kept per item (a fleet of thousands still gives a readable export)."""

__all__ = ["Inputs", "ScorecardEngine", "SignOff", "verdict"]

JUDGES: dict[str, Callable[[Item, Inventory, StoreView, Inputs], Judgement]] = {
    "racked": judge_racked,
    "backups": judge_backups,
    "drills": judge_drills,
    "alerts": judge_alerts,
    "manual": judge_manual,
}


def _status(sev: Severity) -> Status:
    if sev == Severity.OK:
        return "pass"
    return "unknown" if sev == Severity.UNKNOWN else "fail"


def verdict(statuses: Sequence[Status]) -> Status:
    """Any fail fails; else any unknown is unknown; all pass (and at least one) pass."""
    if "fail" in statuses:
        return "fail"
    return "unknown" if "unknown" in statuses or not statuses else "pass"


class ScorecardEngine:
    """A checklist bound to a site's inventory and plugins; ``evaluate`` judges it now."""

    def __init__(
        self,
        checklist: LoadedChecklist,
        inventory: Inventory,
        plugins: Sequence[Plugin],
    ) -> None:
        self.checklist = checklist
        self.inventory = inventory
        self.plugins = list(plugins)
        self.checks: dict[str, tuple[Plugin, CheckSpec]] = {
            c.id: (p, c) for p in self.plugins for c in p.checks
        }
        self._declared: dict[str, dict[tuple[str, str], Target]] = {}
        self._targets: dict[str, tuple[list[Target], str]] = {}

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, store: StoreView, inputs: Inputs) -> ScorecardResult:
        doc = self.checklist.doc
        phases = [
            PhaseResult(
                id=p.id,
                title=p.title,
                description=p.description,
                items=[self.evaluate_item(i, store, inputs) for i in p.items],
            )
            for p in doc.phases
        ]
        return ScorecardResult(
            title=doc.title,
            site=self.inventory.site.name,
            checklist=self.checklist.label,
            evaluated_at=iso(inputs.now),
            operator=inputs.operator,
            phases=phases,
        )

    def evaluate_item(self, item: Item, store: StoreView, inputs: Inputs) -> ItemResult:
        try:
            if item.kind == "check":
                status, summary, evidence = self._check(item, store)
            else:
                status, summary, evidence = JUDGES[item.kind](item, self.inventory, store, inputs)
        except Exception as exc:  # one broken item must not hide the rest of the card
            log.exception("scorecard item %s failed", item.id)
            status, summary, evidence = "unknown", f"could not evaluate: {exc!r}", []
        result = ItemResult(
            id=item.id,
            title=item.title,
            kind=item.kind,
            status=status,
            summary=tidy(summary),
            evidence=[tidy(e) for e in evidence[:MAX_EVIDENCE]],
            check=item.check,
        )
        signed = inputs.signoffs.get(item.id)
        if item.kind == "manual" and signed is not None:
            result.signed_by, result.signed_at = signed.operator, iso(signed.at)
            result.note = tidy(signed.note)
        return result

    # ------------------------------------------------------------------ check items

    def targets(self, item: Item) -> tuple[list[Target], str]:
        """The targets a check item applies to (with its params), or none and why."""
        found = self._targets.get(item.id)
        if found is None:
            found = self._targets[item.id] = self._resolve(item)
        return found

    def _declared_by(self, plugin: Plugin) -> dict[tuple[str, str], Target]:
        """(kind, name) -> the plugin's own Target, attributes merged across its declarations."""
        found = self._declared.get(plugin.name)
        if found is not None:
            return found
        config = self.inventory.plugin_configs.get(plugin.name)
        out: dict[tuple[str, str], Target] = {}
        for fn in (*(c.targets for c in plugin.collectors), *(a.targets for a in plugin.actions)):
            try:
                declared = list(fn(self.inventory, config))
            except Exception as exc:  # a plugin's bad config: its items show unknown
                log.warning("targets of %s: %s", plugin.name, exc)
                continue
            for t in declared:
                old = out.get((t.kind, t.name))
                out[(t.kind, t.name)] = (
                    t if old is None else replace(old, attrs={**t.attrs, **old.attrs})
                )
        self._declared[plugin.name] = out
        return out

    def _resolve(self, item: Item) -> tuple[list[Target], str]:
        assert item.check is not None
        owner = self.checks.get(item.check)
        if owner is None:
            return [], f"no plugin declares the check {item.check!r}"
        plugin, spec = owner
        kind = spec.target_kind
        declared = self._declared_by(plugin)
        of_kind = {name: t for (k, name), t in declared.items() if k == kind}
        if item.targets is not None and kind == "node" and isinstance(item.targets, str):
            try:
                names = parse_filter(item.targets, self.inventory) or frozenset()
            except FilterError as exc:
                return [], f"targets: {exc}"
            chosen = [
                of_kind.get(n) or Target("node", n, node=n)
                for n in self.inventory.nodes
                if n in names
            ]
        elif item.targets is not None:
            patterns = [item.targets] if isinstance(item.targets, str) else item.targets
            chosen = [
                t for n, t in of_kind.items() if any(fnmatch.fnmatchcase(n, p) for p in patterns)
            ]
            have = {t.name for t in chosen}
            chosen += [
                Target(kind, p, node=p if kind == "node" else None)
                for p in patterns
                if not any(c in p for c in "*?[") and p not in have
            ]
        elif of_kind:
            chosen = list(of_kind.values())
        elif kind == "node":
            chosen = [Target("node", n, node=n) for n in self.inventory.nodes]
        else:
            chosen = []
        chosen = [t for t in chosen if _matches(t, item.match)]
        if not chosen:
            what = f" matching {_describe(item.match)}" if item.match else ""
            return [], (
                f"no {kind}{what} for {item.check} in this inventory "
                "(declare it, or drop the item from the site's scorecard)"
            )
        extra: dict[str, Any] = dict(item.params)
        if kind == "node":
            # Node checks that compare a node with its peers (versions) compare within
            # the item's selection, not with every node the Store has heard of.
            extra.setdefault("peers", tuple(t.name for t in chosen))
        if extra:
            chosen = [replace(t, attrs={**t.attrs, **extra}) for t in chosen]
        return chosen, ""

    def _check(self, item: Item, store: StoreView) -> Judgement:
        targets, why = self.targets(item)
        if not targets:
            if item.min_targets == 0:
                return "pass", f"nothing to check ({why})", []
            return "unknown", why, []
        if len(targets) < item.min_targets:
            return "unknown", f"{len(targets)} targets, {item.min_targets} needed", []
        assert item.check is not None
        _, spec = self.checks[item.check]
        findings: list[tuple[Target, Finding]] = []
        for t in targets:
            try:
                finding = spec.check(store, t)
            except Exception as exc:  # a check's bug is an unknown, not a crash
                log.exception("check %s on %s failed", spec.id, t.name)
                finding = Finding(Severity.UNKNOWN, t.name, f"check failed: {exc!r}")
            findings.append((t, finding))
        noun = {"node": "nodes", "service": "services", "cluster": "clusters"}.get(
            spec.target_kind, "targets"
        )
        return _aggregate(findings, noun)


# --------------------------------------------------------------------------- helpers


def _matches(target: Target, match: Mapping[str, str | list[str]]) -> bool:
    for key, wanted in match.items():
        allowed = [wanted] if isinstance(wanted, str) else wanted
        if str(target.attrs.get(key)) not in allowed:
            return False
    return True


def _describe(match: Mapping[str, str | list[str]]) -> str:
    return ", ".join(
        f"{k} {v}" if isinstance(v, str) else f"{k} in [{', '.join(v)}]" for k, v in match.items()
    )


def _named(target: Target, message: str) -> str:
    """The finding's message, with the target's name in front when it does not say it."""
    return message if target.name in message else f"{target.name}: {message}"


def _aggregate(findings: Sequence[tuple[Target, Finding]], noun: str) -> Judgement:
    by_status: dict[Status, list[str]] = {"fail": [], "unknown": [], "pass": []}
    for t, f in findings:
        by_status[_status(f.severity)].append(_named(t, f.message))
    status = verdict([_status(f.severity) for _, f in findings])
    n = len(findings)
    evidence = by_status["fail"] + by_status["unknown"] + by_status["pass"]
    if status == "pass":
        summary = by_status["pass"][0] if n == 1 else f"{n} {noun} OK"
    else:
        bad = by_status[status]
        word = "failing" if status == "fail" else "unknown"
        summary = f"{len(bad)} of {n} {noun} {word}: " + first(bad)
    return status, summary, evidence
