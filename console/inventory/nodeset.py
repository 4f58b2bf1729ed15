"""Node sets (``gpu[001-016]``), a thin wrapper over ClusterShell.

ClusterShell does the parsing; this module only keeps the order the names were
written in, refuses ``@group`` lookups (they would read the machine's
clustershell config) and bounds the size, so a typo like ``n[1-100000000]``
is an error rather than a hang.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ClusterShell.NodeSet import RESOLVER_NOGROUP, NodeSet

MAX_NODES = 100_000
"""The most names one node set may expand to."""
_BRACKET = re.compile(r"\[([^\[\]]*)\]")


class NodeSetError(ValueError):
    """A node set that does not parse (the message says why)."""


def _estimate(pattern: str) -> int:
    """An upper bound on the names in ``pattern``, from its brackets alone.

    ClusterShell builds every name while parsing, so a huge range must be
    caught before it is handed over.
    """
    total = 0
    for part in _top_level_parts(pattern):
        size = 1
        for body in _BRACKET.findall(part):
            within = 0
            for item in body.split(","):
                bounds, _, step = item.partition("/")
                low, dash, high = bounds.partition("-")
                try:
                    span = int(high) - int(low) + 1 if dash else 1
                    within += max(span, 1) // max(int(step or 1), 1)
                except ValueError:
                    within += 1  # not a number: ClusterShell will say what is wrong
            size *= max(within, 1)
        total += size
    return total


def _parse(pattern: str) -> NodeSet:
    if not isinstance(pattern, str) or not pattern.strip():
        raise NodeSetError("the node set is empty")
    if "@" in pattern:
        raise NodeSetError("@groups are not supported in the inventory; list the nodes")
    if len(pattern) > 10_000:
        raise NodeSetError("the node set is longer than 10,000 characters")
    if _estimate(pattern) > MAX_NODES:
        raise NodeSetError(f"{pattern!r} expands to more than {MAX_NODES:,} names")
    # ClusterShell materialises every name of a range, so bound the size first:
    # n[1-100000000] would otherwise take minutes and gigabytes before len() runs.
    bound = _upper_bound(pattern)
    if bound > MAX_NODES:
        raise NodeSetError(f"{pattern!r} expands to up to {bound:,} names (at most {MAX_NODES:,})")
    try:
        nodes = NodeSet(pattern, resolver=RESOLVER_NOGROUP)
    except Exception as exc:  # ClusterShell raises several unrelated types on bad input
        raise NodeSetError(f"cannot parse {pattern!r}: {exc}") from None
    try:
        count = len(nodes)
    except Exception as exc:
        raise NodeSetError(f"cannot parse {pattern!r}: {exc}") from None
    if count > MAX_NODES:
        raise NodeSetError(f"{pattern!r} expands to more than {MAX_NODES:,} names")
    if count == 0:
        raise NodeSetError(f"{pattern!r} names no node")
    return nodes


_BRACKETS = re.compile(r"\[([^\[\]]*)\]")
_RANGE = re.compile(r"\s*(\d+)-(\d+)(?:/(\d+))?\s*")


def _upper_bound(pattern: str) -> int:
    """At least as many names as ``pattern`` holds, computed without listing them."""
    total = 0
    for part in _top_level_parts(pattern):
        size = 1
        for group in _BRACKETS.findall(part):
            n = 0
            for item in group.split(","):
                m = _RANGE.fullmatch(item)
                if m is None:
                    n += 1
                else:
                    step = max(1, int(m[3] or 1))
                    n += max(0, int(m[2]) - int(m[1])) // step + 1
            size *= max(1, n)
        total += size
    return total


def _top_level_parts(pattern: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(pattern):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
    parts.append(pattern[start:])
    return [p.strip() for p in parts if p.strip()]


def expand(pattern: str) -> list[str]:
    """All names in ``pattern``, in the order they were written.

    ClusterShell sorts; here ``cpu[01-02],gpu1`` keeps ``cpu`` first and
    ``b1,a1`` stays ``b1, a1``. Operators (``!``, ``&``, ``^``) work as in
    ClusterShell.
    """
    plain = pattern.strip() if isinstance(pattern, str) else ""
    if plain and not any(c in plain for c in "[],!&^@ "):
        return [plain]  # one name: the common case of a 10,000-line inventory
    wanted = _parse(pattern)
    parts = _top_level_parts(pattern)
    if len(parts) == 1 and not any(c in pattern for c in "!&^"):
        return list(wanted)  # one range expression: ClusterShell's order is the written one
    members = set(wanted)
    out: list[str] = []
    seen: set[str] = set()
    for part in parts:
        try:
            names = list(NodeSet(part, resolver=RESOLVER_NOGROUP))
        except Exception:  # a part may only make sense with the rest (operators)
            names = []
        for name in names:
            if name in members and name not in seen:
                seen.add(name)
                out.append(name)
    out.extend(n for n in wanted if n not in seen)
    return out


def count(pattern: str) -> int:
    """How many names ``pattern`` holds, without listing them."""
    return len(_parse(pattern))


def fold(names: Iterable[str]) -> str:
    """The shortest node set for ``names``: ``gpu001 gpu002 gpu003`` -> ``gpu[001-003]``."""
    names = [n for n in names if n]
    if not names:
        return ""
    try:
        return str(NodeSet.fromlist(names, resolver=RESOLVER_NOGROUP))
    except Exception as exc:
        raise NodeSetError(f"cannot fold {names[:3]!r}...: {exc}") from None
