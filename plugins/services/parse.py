"""Pure parsers: ``systemctl show``/``status`` text and HTTP health answers.

No I/O here. Parsers raise only ``console.plugin.ParseError``; a field that is
missing or odd becomes ``None`` (unknown), never a zero.
"""

from __future__ import annotations

import calendar
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from console.plugin import ParseError
from plugins.services.catalog import CatalogEntry

State = Literal["ok", "slow", "degraded", "down", "unknown"]

STATE_RANK: dict[str, int] = {"ok": 0, "unknown": 1, "slow": 2, "degraded": 3, "down": 4}
"""Worse states rank higher (``max(..., key=STATE_RANK.get)`` gives the worst)."""

SHOW_PROPERTIES = (
    "Id",
    "LoadState",
    "ActiveState",
    "SubState",
    "Result",
    "NRestarts",
    "ActiveEnterTimestamp",
    "ExecMainStatus",
)
"""What the collector asks ``systemctl show -p`` for."""

_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


@dataclass(frozen=True, slots=True)
class UnitState:
    """One systemd unit as ``systemctl show``/``status`` describe it; None is unknown."""

    id: str | None = None
    """``Id``: the unit's canonical name (``minio.service``)."""
    load_state: str | None = None
    """``LoadState``: loaded, not-found, masked, error ..."""
    active_state: str | None = None
    """``ActiveState``: active, reloading, inactive, failed, activating, deactivating."""
    sub_state: str | None = None
    """``SubState``: running, exited, dead, failed, auto-restart ..."""
    result: str | None = None
    """``Result``: success, exit-code, signal, timeout, core-dump, start-limit-hit ..."""
    n_restarts: int | None = None
    """``NRestarts``: automatic restarts since the unit was last started by hand."""
    active_enter: str | None = None
    """``ActiveEnterTimestamp`` as printed (``Thu 2025-03-20 13:55:26 UTC``)."""
    active_enter_ts: float | None = None
    """The same as epoch seconds, when the zone was UTC/GMT (else unknown)."""
    exec_main_status: int | None = None
    """``ExecMainStatus``: the main process's exit status."""
    description: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    """Other properties printed, unparsed."""
    log: tuple[str, ...] = ()
    """Journal lines that ``systemctl status`` printed after the unit's fields."""

    @property
    def failed(self) -> bool:
        return self.active_state == "failed"

    @property
    def summary(self) -> str:
        """``active (running)``, ``failed (exit-code)``, ``unknown``."""
        if self.active_state is None:
            return "unknown"
        if self.active_state == "failed" and self.result and self.result != "success":
            return f"failed ({self.result})"
        return f"{self.active_state} ({self.sub_state})" if self.sub_state else self.active_state


def _int_or_none(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _timestamp(value: str | None) -> float | None:
    """``Thu 2025-03-20 13:55:26 UTC`` -> epoch seconds; other zones are unknown."""
    if not value:
        return None
    parts = value.split()
    if len(parts) != 4 or parts[3] not in ("UTC", "GMT"):
        return None
    try:
        parsed = time.strptime(f"{parts[1]} {parts[2]}", "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return float(calendar.timegm(parsed))


def _none_if_blank(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def unit_from_properties(props: Mapping[str, str]) -> UnitState:
    """A UnitState from ``Key=Value`` properties (unknown where missing or odd)."""
    known = set(SHOW_PROPERTIES) | {"Description"}
    enter = _none_if_blank(props.get("ActiveEnterTimestamp"))
    if enter == "n/a":
        enter = None
    return UnitState(
        id=_none_if_blank(props.get("Id")),
        load_state=_none_if_blank(props.get("LoadState")),
        active_state=_none_if_blank(props.get("ActiveState")),
        sub_state=_none_if_blank(props.get("SubState")),
        result=_none_if_blank(props.get("Result")),
        n_restarts=_int_or_none(props.get("NRestarts")),
        active_enter=enter,
        active_enter_ts=_timestamp(enter),
        exec_main_status=_int_or_none(props.get("ExecMainStatus")),
        description=_none_if_blank(props.get("Description")),
        extra={k: v for k, v in props.items() if k not in known},
    )


def parse_systemctl_show(text: str) -> list[UnitState]:
    """Units from ``systemctl show [-p ...] UNIT...``: ``Key=Value`` lines, blank between units.

    Raises:
        ParseError: a non-blank line is not ``Key=Value`` (the message names the line).
    """
    units: list[UnitState] = []
    props: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            if props:
                units.append(unit_from_properties(props))
                props = {}
            continue
        key, sep, value = line.partition("=")
        if not sep or not _KEY.match(key):
            raise ParseError(f"line {number} is not Key=Value: {line[:60]!r}")
        props[key] = value
    if props:
        units.append(unit_from_properties(props))
    return units


# --------------------------------------------------------------------------- systemctl status

_HEADER = re.compile(r"^\s*(?:[●×○↻✗*]\s+)?(?P<id>\S+\.[a-z]+)(?:\s+-\s+(?P<desc>.*))?$")
_ACTIVE = re.compile(
    r"^(?P<state>[a-z-]+)(?:\s+\((?P<paren>[^)]*)\))?(?:\s+since\s+(?P<since>[^;]+))?"
)
_LOADED = re.compile(r"^(?P<state>[a-z-]+)")
_MAIN_PID = re.compile(r"status=(?P<status>\d+)")


def parse_systemctl_status(text: str) -> UnitState:
    """The unit described by ``systemctl status UNIT`` (the first one, if several).

    Raises:
        ParseError: no unit header line, or no ``Active:`` line.
    """
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _HEADER.match(line)), None)
    if start is None:
        raise ParseError("no unit header line (`● name.service - Description`)")
    header = _HEADER.match(lines[start])
    assert header is not None  # matched just above
    fields: dict[str, str] = {}
    log: list[str] = []
    in_log = False
    for line in lines[start + 1 :]:
        if not line.strip():
            if fields:
                in_log = True
            continue
        if in_log:
            if _HEADER.match(line) and not line.startswith(" "):
                break  # the next unit's block
            log.append(line)
            continue
        key, sep, value = line.strip().partition(":")
        if sep and key and " " not in key.replace("Main PID", "MainPID"):
            fields.setdefault(key, value.strip())
    active_text = fields.get("Active")
    if active_text is None:
        raise ParseError(f"no 'Active:' line for {header.group('id')}")
    active = _ACTIVE.match(active_text)
    state = active.group("state") if active else None
    paren = (active.group("paren") or "") if active else ""
    result: str | None = None
    sub: str | None = None
    if paren.startswith("Result:"):
        result = paren.removeprefix("Result:").strip() or None
        sub = state if state == "failed" else None
    elif paren:
        sub = paren.strip()
        result = "success" if state == "active" else None
    since = active.group("since").strip() if active and active.group("since") else None
    loaded = _LOADED.match(fields.get("Loaded", ""))
    main = _MAIN_PID.search(fields.get("Main PID", ""))
    return UnitState(
        id=header.group("id"),
        description=header.group("desc"),
        load_state=loaded.group("state") if loaded else None,
        active_state=state,
        sub_state=sub,
        result=result,
        active_enter=since,
        active_enter_ts=_timestamp(since),
        exec_main_status=int(main.group("status")) if main else None,
        extra={k: v for k, v in fields.items() if k not in ("Active", "Loaded", "Main PID")},
        log=tuple(log),
    )


# --------------------------------------------------------------------------- HTTP judgement


@dataclass(frozen=True, slots=True)
class ServiceHealth:
    """What one health answer says about a service."""

    state: State
    detail: str = ""


def _json(body: bytes | str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def _status_of(obj: Any, key: str) -> str | None:
    part = obj.get(key) if isinstance(obj, dict) else None
    value = part.get("status") if isinstance(part, dict) else None
    return value if isinstance(value, str) else None


def _judge_harbor(doc: Any) -> ServiceHealth:
    comps = doc.get("components") if isinstance(doc, dict) else None
    if not isinstance(comps, list):
        return ServiceHealth("degraded", "health body without components")
    bad = [
        str(c.get("name", "?"))
        for c in comps
        if isinstance(c, dict) and str(c.get("status", "")).lower() != "healthy"
    ]
    if not bad:
        return ServiceHealth("ok", f"{len(comps)} components healthy")
    vital = {"core", "database", "registry"} & set(bad)
    return ServiceHealth("down" if vital else "degraded", "unhealthy: " + ", ".join(bad))


def _judge_elasticsearch(doc: Any) -> ServiceHealth:
    status = doc.get("status") if isinstance(doc, dict) else None
    unassigned = doc.get("unassigned_shards") if isinstance(doc, dict) else None
    has_unassigned = isinstance(unassigned, int) and unassigned > 0
    extra = f", {unassigned} unassigned shards" if has_unassigned else ""
    if status == "green":
        return ServiceHealth("ok", "cluster green")
    if status == "yellow":
        return ServiceHealth("degraded", f"cluster yellow{extra}")
    if status == "red":
        return ServiceHealth("down", f"cluster red{extra}")
    return ServiceHealth("degraded", f"unexpected cluster status {status!r}")


def _judge_airflow(doc: Any) -> ServiceHealth:
    if not isinstance(doc, dict):
        return ServiceHealth("degraded", "unexpected health body")
    db = _status_of(doc, "metadatabase")
    if db != "healthy":
        return ServiceHealth("down", f"metadatabase {db or 'unknown'}")
    # triggerer/dag_processor report null when not deployed: not a problem.
    bad = [
        f"{part} {_status_of(doc, part)}"
        for part in ("scheduler", "triggerer", "dag_processor")
        if _status_of(doc, part) not in (None, "healthy")
    ]
    if _status_of(doc, "scheduler") is None:
        bad.insert(0, "scheduler unknown")
    return ServiceHealth("degraded", ", ".join(bad)) if bad else ServiceHealth("ok", "healthy")


def _judge_gitlab(body: bytes | str, doc: Any) -> ServiceHealth:
    if not isinstance(doc, dict):
        text = body.decode(errors="replace") if isinstance(body, bytes) else body
        return (
            ServiceHealth("ok", "GitLab OK")
            if "GitLab OK" in text
            else ServiceHealth("degraded", "unexpected health body")
        )
    failing = sorted(
        name
        for name, checks in doc.items()
        if isinstance(checks, list)
        and any(isinstance(c, dict) and c.get("status") != "ok" for c in checks)
    )
    if doc.get("status") not in (None, "ok"):
        return ServiceHealth("down", "readiness failed: " + (", ".join(failing) or "?"))
    if failing:
        return ServiceHealth("degraded", "failing: " + ", ".join(failing))
    return ServiceHealth("ok", "ready")


def _judge_gitea(doc: Any) -> ServiceHealth:
    status = str(doc.get("status", "")).lower() if isinstance(doc, dict) else ""
    checks = doc.get("checks") if isinstance(doc, dict) else None
    noted = []
    if isinstance(checks, dict):
        for name, items in checks.items():
            if isinstance(items, list) and any(
                isinstance(i, dict) and str(i.get("status", "")).lower() not in ("pass", "ok", "up")
                for i in items
            ):
                noted.append(str(name))
    detail = ", ".join(sorted(noted))
    if status in ("pass", "ok", "up"):
        return ServiceHealth("ok", "pass")
    if status == "warn":
        return ServiceHealth("degraded", f"warn: {detail}" if detail else "warn")
    if status in ("fail", "error", "down"):
        return ServiceHealth("down", f"fail: {detail}" if detail else "fail")
    return ServiceHealth("degraded", f"unexpected status {status!r}")


def _judge_body(entry: CatalogEntry, body: bytes | str) -> ServiceHealth:
    kind = entry.judge
    if kind == "status":
        return ServiceHealth("ok", "")
    if kind == "text":
        text = body.decode(errors="replace") if isinstance(body, bytes) else body
        if entry.expect_text is None or entry.expect_text in text:
            return ServiceHealth("ok", "")
        return ServiceHealth("degraded", f"body lacks {entry.expect_text!r}")
    doc = _json(body)
    if kind == "gitlab":
        return _judge_gitlab(body, doc)
    if not isinstance(doc, dict):
        return ServiceHealth("degraded", "health body is not a JSON object")
    if kind == "harbor":
        return _judge_harbor(doc)
    if kind == "elasticsearch":
        return _judge_elasticsearch(doc)
    if kind == "airflow":
        return _judge_airflow(doc)
    if kind == "gitea":
        return _judge_gitea(doc)
    if kind == "grafana":
        db = doc.get("database")
        return (
            ServiceHealth("ok", "database ok")
            if db == "ok"
            else ServiceHealth("degraded", f"database {db!r}")
        )
    if kind == "kong":
        database = doc.get("database")
        reachable = database.get("reachable") if isinstance(database, dict) else None
        if reachable is False:
            return ServiceHealth("degraded", "database unreachable")
        return ServiceHealth("ok", "database reachable" if reachable else "")
    if kind == "label_studio":
        status = doc.get("status")
        return (
            ServiceHealth("ok", "UP")
            if status == "UP"
            else ServiceHealth("degraded", f"status {status!r}")
        )
    return ServiceHealth("unknown", f"no judgement for {kind!r}")


def judge_http(
    entry: CatalogEntry | None,
    status: int,
    body: bytes | str,
    latency_ms: float | None,
    slow_ms: float | None,
    expect_status: Iterable[int] = (200,),
) -> ServiceHealth:
    """The health an HTTP answer shows: status first, then the body, then the latency.

    Never raises: a body that cannot be read is itself a finding (degraded).
    """
    latency = f"{latency_ms:.0f} ms" if latency_ms is not None else ""
    if status not in set(expect_status):
        return ServiceHealth("down", f"HTTP {status}")
    health = _judge_body(entry, body) if entry is not None else ServiceHealth("ok", "")
    too_slow = slow_ms is not None and latency_ms is not None and latency_ms > slow_ms
    if health.state == "ok" and too_slow:
        return ServiceHealth("slow", f"{latency} > {slow_ms:g} ms")
    detail = health.detail or f"HTTP {status}"
    return ServiceHealth(health.state, detail)


def worst(states: Iterable[str]) -> State:
    """The worst of some states (``ok`` for none)."""
    result: State = "ok"
    for s in states:
        if STATE_RANK.get(s, 1) > STATE_RANK[result]:
            result = s if s in STATE_RANK else "unknown"  # type: ignore[assignment]
    return result
