"""Judging the scorecard's items that are not plugin checks: racked, backups, drills,
alerts and manual sign-offs. Pure functions over the inventory, the Store's alerts and
what the flow read (sign-offs, the drill history); each returns (status, summary,
evidence lines)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from console.filtering import parse_filter
from console.plugin import Severity
from console.wizards.scorecard_model import Item
from console.wizards.scorecard_result import Status

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory
    from console.store import StoreView
    from console.wizards.drill_report import DrillReport

Judgement = tuple[Status, str, list[str]]
"""(verdict, one-line summary, evidence lines)."""

SHOWN_IN_SUMMARY = 2


@dataclass(frozen=True, slots=True)
class SignOff:
    """The latest sign-off of a manual item."""

    item: str
    operator: str
    at: float
    """Wall clock (seconds)."""
    note: str


@dataclass(frozen=True, slots=True)
class Inputs:
    """What the engine reads besides the Store."""

    signoffs: Mapping[str, SignOff] = field(default_factory=dict)
    drills: Sequence[DrillReport] = ()
    """The drill history (every report, any order)."""
    scenarios: Sequence[str] | None = None
    """The drill catalogue's scenario ids; None when there is no catalogue."""
    catalogue: str = ""
    """Where the catalogue is (or was looked for), for messages."""
    now: float = field(default_factory=time.time)
    operator: str = ""


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def first(lines: Sequence[str]) -> str:
    """The first lines joined for a summary, an ellipsis when there are more."""
    shown = "; ".join(lines[:SHOWN_IN_SUMMARY])
    return shown + ("; …" if len(lines) > SHOWN_IN_SUMMARY else "")


def judge_racked(item: Item, inventory: Inventory, store: StoreView, inputs: Inputs) -> Judgement:
    assert item.racked is not None
    nodes = list(inventory.nodes.values())
    if item.racked.targets:
        wanted = parse_filter(item.racked.targets, inventory) or frozenset()
        nodes = [n for n in nodes if n.name in wanted]
    if not nodes:
        return "unknown", "no node selected", []
    missing = [
        f"{n.name}: no rack" if n.rack is None else f"{n.name}: rack {n.rack}, no U slot"
        for n in nodes
        if n.rack is None or n.u is None
    ]
    by_rack: dict[str, list[str]] = {}
    for n in nodes:
        if n.rack is not None and n.u is not None:
            by_rack.setdefault(n.rack, []).append(f"{n.name} U{n.u}")
    placed = [f"{rack}: {', '.join(names)}" for rack, names in by_rack.items()]
    if missing:
        return (
            "fail",
            f"{len(missing)} of {len(nodes)} nodes not placed: " + first(missing),
            missing + placed,
        )
    return "pass", f"{len(nodes)} nodes placed in {len(by_rack)} racks", placed


def judge_backups(item: Item, inventory: Inventory, store: StoreView, inputs: Inputs) -> Judgement:
    assert item.backups is not None
    req = item.backups
    declared = list(inventory.doc.backups)
    if not declared:
        return "fail", "no backup declared in the inventory (add a backups: section)", []
    evidence = [
        f"{b.name}: {b.covers}, {b.schedule} → {b.destination}, kept {b.retention_days} days"
        + (f", restore tested {b.restore_tested}" if b.restore_tested else "")
        for b in declared
    ]
    problems: list[str] = []
    relevant = declared
    if req.require:
        relevant = []
        for word in req.require:
            hits = [b for b in declared if b.name == word or word.lower() in b.covers.lower()]
            if not hits:
                problems.append(f"{word}: no backup declared")
            relevant += [b for b in hits if b not in relevant]
    if req.restore_tested_within_days is not None:
        limit = req.restore_tested_within_days
        today = datetime.fromtimestamp(inputs.now, UTC).date()
        for b in relevant:
            tested: date | None = b.restore_tested
            if tested is None:
                problems.append(f"{b.name}: restore never tested")
            elif (today - tested).days > limit:
                problems.append(
                    f"{b.name}: restore last tested {tested} "
                    f"({(today - tested).days} days ago, over {limit})"
                )
    if problems:
        return "fail", first(problems), problems + evidence
    what = f"{len(declared)} backups declared"
    if req.restore_tested_within_days is not None:
        what += f", restores tested within {req.restore_tested_within_days} days"
    return "pass", what, evidence


def judge_drills(item: Item, inventory: Inventory, store: StoreView, inputs: Inputs) -> Judgement:
    assert item.drills is not None
    wanted = list(item.drills.scenarios or inputs.scenarios or [])
    if not wanted:
        where = f" ({inputs.catalogue})" if inputs.catalogue else ""
        if inputs.scenarios is None and not item.drills.scenarios:
            return "unknown", f"no drill catalogue{where}", []
        return "unknown", f"the drill catalogue has no scenario{where}", []
    limit = item.drills.within_days
    problems: list[str] = []
    passed: list[str] = []
    for scenario in wanted:
        runs = sorted(
            (r for r in inputs.drills if r.scenario == scenario),
            key=lambda r: r.ended or r.started,
            reverse=True,
        )
        good = next((r for r in runs if r.result == "passed"), None)
        if good is None:
            last = runs[0] if runs else None
            problems.append(
                f"{scenario}: never run"
                if last is None
                else f"{scenario}: never passed (last {last.result} {_when(last)} "
                f"by {last.operator})"
            )
            continue
        age = _age_days(good, inputs.now)
        line = f"{scenario}: passed {_when(good)} by {good.operator}" + _rto(good)
        if limit is not None and age is not None and age > limit:
            problems.append(f"{line}: {age:.0f} days ago, over {limit}")
        else:
            passed.append(f"{line} ({good.id})")
    if problems:
        return (
            "fail",
            f"{len(problems)} of {len(wanted)} drills not passed: " + first(problems),
            problems + passed,
        )
    return (
        "pass",
        f"{len(wanted)} drills passed" + (f" within {limit} days" if limit else ""),
        passed,
    )


def judge_alerts(item: Item, inventory: Inventory, store: StoreView, inputs: Inputs) -> Judgement:
    assert item.alerts is not None
    worst = Severity.OK if item.alerts.worst == "ok" else Severity.WARNING
    alerts = store.alerts()
    over = [a for a in alerts if a.finding.severity > worst]
    lines = [f"{a.finding.severity.name.lower()}: {a.finding.message}" for a in over]
    if over:
        return "fail", f"{len(over)} alerts open: " + first(lines), lines
    return "pass", f"no alert worse than {item.alerts.worst} ({len(alerts)} open)", []


def judge_manual(item: Item, inventory: Inventory, store: StoreView, inputs: Inputs) -> Judgement:
    assert item.manual is not None
    signed = inputs.signoffs.get(item.id)
    if signed is None:
        who = "an admin" if item.manual.role == "admin" else "an operator"
        return "unknown", f"not signed off ({who}: dcc scorecard sign {item.id})", []
    text = f"signed off by {signed.operator} on {day(signed.at)}: {signed.note}"
    valid = item.manual.valid_days
    if valid is not None and inputs.now - signed.at > valid * 86400:
        return "unknown", f"expired (older than {valid} days): {text}", [text]
    return "pass", text, [text]


# --------------------------------------------------------------------------- drill reports


def _parse_iso(text: str) -> datetime | None:
    try:
        found = datetime.fromisoformat(text)
    except ValueError:
        return None
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def _when(report: DrillReport) -> str:
    found = _parse_iso(report.ended or report.started)
    return found.strftime("%Y-%m-%d %H:%M") if found else (report.ended or report.started)


def _age_days(report: DrillReport, now: float) -> float | None:
    found = _parse_iso(report.ended or report.started)
    return None if found is None else (now - found.timestamp()) / 86400


def _rto(report: DrillReport) -> str:
    m = report.rto
    if m.measured_s is None:
        return ""
    target = f" / {m.target_s:g} s" if m.target_s is not None else ""
    return f", RTO {m.measured_s:.1f} s{target}"
