"""Pure parsing for Kubernetes API JSON: the shared values and the list envelope.

No I/O here. The collectors get raw JSON from kubernetes-asyncio (lists read
with ``_preload_content=False``, watch events' ``raw_object``) and turn it into
frozen records: nodes in ``parse_nodes``, pods and PodDisruptionBudgets in
``parse_pods``, events and the scheduler's reasons in ``parse_events``, error
bodies (``v1 Status``) in ``api_status``. Parsers raise only
``console.plugin.ParseError``; a field that is missing or odd becomes ``None``
(unknown), never a zero.
"""

from __future__ import annotations

import calendar
import json
import re
import time
from collections.abc import Mapping
from typing import Any

from console.plugin import ParseError

__all__ = ["ParseError"]  # re-exported for the collectors

GPU = "nvidia.com/gpu"
MIG_PREFIX = "nvidia.com/mig-"

# Annotations the console writes when it cordons a node, so "why and by whom"
# survives the console and is visible to kubectl users (`kubectl describe node`).
ANN_REASON = "dcconsole.io/cordon-reason"
ANN_BY = "dcconsole.io/cordoned-by"
ANN_AT = "dcconsole.io/cordoned-at"

UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def nonempty_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def parse_time(value: Any) -> float | None:
    """RFC 3339 (``2025-03-19T20:41:16Z``, with fractions or an offset) to epoch seconds."""
    if not isinstance(value, str):
        return None
    m = re.match(
        r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$", value
    )
    if not m:
        return None
    try:
        base = calendar.timegm((*(int(m.group(i)) for i in range(1, 7)), 0, 0, 0))
    except (ValueError, OverflowError):
        return None
    frac = float(m.group(7)) if m.group(7) else 0.0
    zone = m.group(8)
    offset = 0
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset = sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return base + frac - offset


def format_time(ts: float) -> str:
    """Epoch seconds as the API writes them (``2025-03-19T20:41:16Z``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def parse_count(value: Any) -> int | None:
    """A count-like quantity (``"8"``, ``8``, ``"2k"``) as an int; odd values are unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if not isinstance(value, str):
        return None
    m = re.fullmatch(r"(\d+)(k|M|G|Ki|Mi|Gi)?", value.strip())
    if not m:
        return None
    mult = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    return int(m.group(1)) * mult[m.group(2)]


def gpu_resources(resources: Mapping[str, Any]) -> dict[str, int]:
    """``nvidia.com/gpu`` and ``nvidia.com/mig-*`` counts from a resource map."""
    out: dict[str, int] = {}
    for key, raw in resources.items():
        if key == GPU or key.startswith(MIG_PREFIX):
            n = parse_count(raw)
            if n is not None:
                out[key] = n
    return out


def api_object(data: Any, kind: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ParseError(f"a {kind} must be a JSON object, got {type(data).__name__}")
    meta = data.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        raise ParseError(f"a {kind} without metadata.name")
    if "kind" in data and data["kind"] not in (kind, None):
        raise ParseError(f"expected a {kind}, got kind {data['kind']!r}")
    return data


def resource_version_of(meta: Mapping[str, Any]) -> str | None:
    raw = meta.get("resourceVersion")
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return str(raw)
    return nonempty_str(raw)


def items_of(data: Any, kind: str) -> tuple[list[Any], str | None, str | None]:
    """(items, list resourceVersion, continue token) of a ``<Kind>List`` or a kubectl ``List``."""
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"a {kind}List is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ParseError(f"a {kind}List must be a JSON object")
    if data.get("kind") not in (f"{kind}List", "List", None):
        raise ParseError(f"expected a {kind}List, got kind {data.get('kind')!r}")
    items = data.get("items")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise ParseError(f"{kind}List.items is not a list")
    meta = as_dict(data.get("metadata"))
    return items, resource_version_of(meta), nonempty_str(meta.get("continue"))


def plain_int(value: Any) -> int | None:
    """An int as JSON gives it (not a bool, not a string); anything else is unknown."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None
