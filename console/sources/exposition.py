"""The Prometheus text exposition format (version 0.0.4): parse it, and write it.

Pure functions. The parser reads what exporters serve (the real samples in
``../shared/samples``, the lab's exporters); the writer is what the lab's
exporters serve. Values ``NaN``/``+Inf``/``-Inf`` are kept as floats here; the
query client turns them into unknown.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from console.plugin import ParseError

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_VALUE = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$|^[+-]?Inf$|^NaN$", re.I)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True, slots=True)
class ExpoSample:
    """One sample line: metric name, labels, value, optional timestamp (ms)."""

    name: str
    labels: Mapping[str, str]
    value: float
    timestamp_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Exposition:
    samples: tuple[ExpoSample, ...]
    types: Mapping[str, str]
    helps: Mapping[str, str]

    def family(self, name: str) -> list[ExpoSample]:
        return [s for s in self.samples if s.name == name]

    def names(self) -> list[str]:
        return sorted({s.name for s in self.samples})


def _unescape(raw: str, line_no: int) -> str:
    out: list[str] = []
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == "\\":
            if i + 1 >= len(raw):
                raise ParseError(f"line {line_no}: dangling backslash in a label value")
            nxt = raw[i + 1]
            out.append({"n": "\n", "\\": "\\", '"': '"'}.get(nxt, "\\" + nxt))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _labels(text: str, pos: int, line_no: int) -> tuple[dict[str, str], int]:
    """Labels from ``{`` at ``pos``; returns them and the index after ``}``."""
    labels: dict[str, str] = {}
    i = pos + 1
    n = len(text)
    while True:
        while i < n and text[i] in " \t,":
            i += 1
        if i < n and text[i] == "}":
            return labels, i + 1
        m = _LABEL_NAME.match(text, i)
        if m is None:
            raise ParseError(f"line {line_no}: bad label name at column {i + 1}")
        name = m.group(0)
        i = m.end()
        while i < n and text[i] in " \t":
            i += 1
        if i >= n or text[i] != "=":
            raise ParseError(f"line {line_no}: label {name!r} has no '='")
        i += 1
        while i < n and text[i] in " \t":
            i += 1
        if i >= n or text[i] != '"':
            raise ParseError(f"line {line_no}: label {name!r} value is not quoted")
        j = i + 1
        while j < n and text[j] != '"':
            j += 2 if text[j] == "\\" else 1
        if j >= n:
            raise ParseError(f"line {line_no}: label {name!r} value is not closed")
        if name in labels:
            raise ParseError(f"line {line_no}: label {name!r} appears twice")
        labels[name] = _unescape(text[i + 1 : j], line_no)
        i = j + 1


def parse_value(raw: str, line_no: int = 0) -> float:
    if not _VALUE.match(raw):
        raise ParseError(f"line {line_no}: {raw[:40]!r} is not a sample value")
    low = raw.lower()
    if low == "nan":
        return math.nan
    if low.endswith("inf"):
        return -math.inf if low.startswith("-") else math.inf
    return float(raw)


def parse_exposition(text: str, *, strict: bool = True) -> Exposition:
    """Every sample, TYPE and HELP of an exposition.

    ``strict=False`` skips lines that are not samples (documentation excerpts
    elide with ``...``) instead of raising.

    Raises:
        ParseError: naming the line, for a malformed line (when strict).
    """
    samples: list[ExpoSample] = []
    types: dict[str, str] = {}
    helps: dict[str, str] = {}
    # Lines end with \n only (str.splitlines would also split inside label values).
    for line_no, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line[1:].split(None, 2)
            if len(parts) >= 2 and parts[0] in ("HELP", "TYPE"):
                target = helps if parts[0] == "HELP" else types
                target[parts[1]] = parts[2] if len(parts) > 2 else ""
            continue
        try:
            samples.append(_sample(line, line_no))
        except ParseError:
            if strict:
                raise
    return Exposition(tuple(samples), types, helps)


def _sample(line: str, line_no: int) -> ExpoSample:
    m = _NAME.match(line)
    if m is None:
        raise ParseError(f"line {line_no}: no metric name")
    name = m.group(0)
    i = m.end()
    labels: dict[str, str] = {}
    if i < len(line) and line[i] == "{":
        labels, i = _labels(line, i, line_no)
    rest = line[i:].split()
    if not rest or (i < len(line) and line[i] not in " \t"):
        raise ParseError(f"line {line_no}: {name} has no value")
    if len(rest) > 2:
        raise ParseError(f"line {line_no}: {name}: unexpected {' '.join(rest[2:])[:40]!r}")
    value = parse_value(rest[0], line_no)
    ts: int | None = None
    if len(rest) == 2:
        try:
            ts = int(rest[1])
        except ValueError:
            raise ParseError(f"line {line_no}: {name}: bad timestamp {rest[1][:20]!r}") from None
    return ExpoSample(name, labels, value, ts)


# --------------------------------------------------------------------------- writing


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def format_value(value: float | int | bool) -> str:
    """Go's strconv-like text: integers without a point, NaN and +Inf spelled out."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def format_family(
    name: str,
    kind: str,
    help_text: str,
    rows: Iterable[tuple[Mapping[str, str], float | int | bool]],
) -> str:
    """One family: HELP, TYPE and a line per (labels, value). Empty rows: nothing at all."""
    lines = []
    for labels, value in rows:
        inner = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
        text = format_value(value)
        lines.append(f"{name}{{{inner}}} {text}" if inner else f"{name} {text}")
    if not lines:
        return ""
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n" + "\n".join(lines) + "\n"


def as_query_samples(
    samples: Sequence[ExpoSample], extra: Mapping[str, str] | None = None
) -> list[tuple[dict[str, str], float]]:
    """Labels as a query returns them after a scrape: ``__name__`` plus target labels."""
    add = dict(extra or {})
    return [({"__name__": s.name, **s.labels, **add}, s.value) for s in samples]
