"""Kubernetes Events, and the scheduler's reasons a pod is pending."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from plugins.kubernetes.parse import api_object, as_dict, items_of, nonempty_str, parse_time


@dataclass(frozen=True, slots=True)
class EventInfo:
    namespace: str
    name: str
    reason: str | None
    message: str | None
    type: str | None
    object_kind: str | None
    object_namespace: str | None
    object_name: str | None
    object_uid: str | None
    count: int | None
    last_seen: float | None


def parse_event(data: Any) -> EventInfo:
    obj = api_object(data, "Event")
    meta, inv = obj["metadata"], as_dict(obj.get("involvedObject"))
    last = (
        parse_time(obj.get("lastTimestamp"))
        or parse_time(as_dict(obj.get("series")).get("lastObservedTime"))
        or parse_time(obj.get("eventTime"))
        or parse_time(obj.get("firstTimestamp"))
    )
    count = obj.get("count")
    return EventInfo(
        namespace=nonempty_str(meta.get("namespace")) or "default",
        name=meta["name"],
        reason=nonempty_str(obj.get("reason")),
        message=nonempty_str(obj.get("message")),
        type=nonempty_str(obj.get("type")),
        object_kind=nonempty_str(inv.get("kind")),
        object_namespace=nonempty_str(inv.get("namespace")),
        object_name=nonempty_str(inv.get("name")),
        object_uid=nonempty_str(inv.get("uid")),
        count=count if isinstance(count, int) and not isinstance(count, bool) else None,
        last_seen=last,
    )


def parse_event_list(data: Any) -> tuple[list[EventInfo], str | None]:
    items, rv, _ = items_of(data, "Event")
    return [parse_event(i) for i in items], rv


# --------------------------------------------------------------------------- scheduling


_COUNTED = re.compile(r"^(\d+)\s+(.*)$")


def scheduling_reasons(message: str | None) -> list[tuple[int | None, str]]:
    """The scheduler's per-node reasons: ``0/5 nodes are available: 2 Insufficient
    nvidia.com/gpu, 3 node(s) were unschedulable.`` -> [(2, ...), (3, ...)]."""
    if not message:
        return []
    text = message.split(" preemption:", 1)[0].strip()
    if "are available:" in text:
        text = text.split("are available:", 1)[1]
    text = text.strip().rstrip(".")
    out: list[tuple[int | None, str]] = []
    for part in re.split(r",\s+(?=\d+\s)", text):
        part = part.strip()
        if not part:
            continue
        m = _COUNTED.match(part)
        out.append((int(m.group(1)), m.group(2).strip()) if m else (None, part))
    return out


def short_reason(message: str | None) -> str | None:
    """One reason to group pending pods by: an ``Insufficient ...`` first, else the commonest."""
    reasons = scheduling_reasons(message)
    if not reasons:
        return None
    insufficient = [r for n, r in reasons if r.startswith("Insufficient")]
    if insufficient:
        return " + ".join(insufficient)
    return max(reasons, key=lambda r: r[0] or 0)[1]
