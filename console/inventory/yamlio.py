"""Safe YAML reading that remembers the line of every value.

The document is *composed* by libyaml's C parser (``CSafeLoader``: fast, see
DESIGN.md) and turned into plain Python values here, so that:

- every key and list item keeps its line (for messages naming file:line);
- a duplicate key is an error instead of silently keeping the last one;
- aliases are measured before they are expanded, so an alias bomb ("billion
  laughs") is refused in microseconds instead of eating the memory;
- only plain tags are accepted: ``!!python/object`` and friends are refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from console.inventory.problems import InventoryError, Loc, Problem, format_loc

MAX_EXPANDED_NODES = 2_000_000
"""Upper bound on the document's size with every alias expanded."""
MAX_ALIAS_GROWTH = 100_000
"""How many more nodes alias expansion may add over the nodes actually written."""
MAX_DEPTH = 100
"""Nesting deeper than this is refused (no inventory needs it; it would only recurse)."""

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_TAG}{t}" for t in ("str", "null", "bool", "int", "float", "timestamp")}
_CONSTRUCTOR = SafeConstructor()


@dataclass(slots=True)
class LineMap:
    """Where each key / list item of a document was written (1-based lines)."""

    lines: dict[Loc, int] = field(default_factory=dict)

    def line(self, loc: Loc) -> int | None:
        """The line of ``loc``, or of its nearest ancestor that was written."""
        for end in range(len(loc), -1, -1):
            found = self.lines.get(tuple(loc[:end]))
            if found is not None:
                return found
        return None


class _Refused(Exception):
    def __init__(self, node: Node | None, loc: Loc, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.line = node.start_mark.line + 1 if node is not None else None
        self.loc = loc
        self.message = message
        self.hint = hint


def read_yaml_file(path: Path, label: str | None = None) -> tuple[Any, LineMap]:
    """Read and parse ``path``; raises InventoryError naming ``label`` (default: the path)."""
    name = label if label is not None else str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InventoryError(
            [Problem(name, None, "", f"cannot read the file: {exc.strerror or exc}")]
        ) from None
    return parse_yaml_bytes(raw, name)


def parse_yaml_bytes(raw: bytes, name: str) -> tuple[Any, LineMap]:
    """Decode (UTF-8, BOM allowed) and parse one YAML document."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InventoryError(
            [Problem(name, line, "", "the file is not UTF-8 text", "save it as UTF-8")]
        ) from None
    return parse_yaml_text(text, name)


def parse_yaml_text(text: str, name: str) -> tuple[Any, LineMap]:
    """Parse one YAML document into plain values and the line of each value."""
    text = text.removeprefix("\ufeff")
    if not text.strip() or all(
        not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()
    ):
        raise InventoryError(
            [Problem(name, None, "", "the file is empty", "start from inventory/example-site.yaml")]
        )
    try:
        root = yaml.compose(text, Loader=yaml.CSafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise InventoryError([_syntax_problem(name, text, exc)]) from None
    except yaml.YAMLError as exc:
        raise InventoryError(
            [Problem(name, None, "", f"YAML error: {exc}", "check the file is plain YAML")]
        ) from None
    except RecursionError:
        raise InventoryError(
            [Problem(name, None, "", "the YAML is nested too deeply", "flatten the structure")]
        ) from None
    if root is None:
        raise InventoryError(
            [Problem(name, None, "", "the file is empty", "start from inventory/example-site.yaml")]
        )
    lines = LineMap()
    try:
        if "*" in text:  # without an alias nothing can expand (the common, large case)
            _check_size(root)
        value = _build(root, (), 0, lines)
    except _Refused as exc:
        raise InventoryError(
            [Problem(name, exc.line, format_loc(exc.loc), exc.message, exc.hint)]
        ) from None
    lines.lines.setdefault((), root.start_mark.line + 1)
    return value, lines


def _syntax_problem(name: str, text: str, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    what = exc.problem or exc.context or "invalid YAML"
    rows = text.splitlines()
    # libyaml reports a tab in the indentation as an odd token; say what it is.
    suspects = [i for i in (line, (line or 0) - 1) if i and 0 < i <= len(rows)]
    for i in suspects:
        row = rows[i - 1]
        indent = row[: len(row) - len(row.lstrip())]
        if "\t" in indent or "'\\t'" in what:
            return Problem(
                name,
                i,
                "",
                "a tab is used for indentation",
                "YAML indents with spaces only; replace the tab with spaces",
            )
    where = f"line {line}, column {column}" if line is not None else "unknown place"
    hint = "check the indentation and the quoting around this place"
    if "mapping values are not allowed" in what:
        hint = "a value containing ': ' must be quoted, or the indentation is off"
    elif "could not find expected ':'" in what:
        hint = "a key is missing its ':' or a quote is not closed"
    elif "expected a single document" in what:
        hint = "an inventory is one YAML document: remove the extra '---'"
    return Problem(name, line, "", f"YAML syntax error at {where}: {what}", hint)


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_size(root: Node) -> None:
    """Measure the document as if every alias were expanded, without expanding it."""
    size: dict[int, int] = {}
    state: dict[int, int] = {}  # 1: on the current path, 2: measured
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            total = 1 + sum(size[id(c)] for c in _children(node))
            size[key] = min(total, MAX_EXPANDED_NODES + 1)
            state[key] = 2
            continue
        seen = state.get(key)
        if seen == 2:
            continue
        if seen == 1:  # reached again while still inside it: it contains itself
            raise _Refused(
                node,
                (),
                "an alias refers to a node that contains it (a loop)",
                "point the alias at a node outside the one it is in",
            )
        state[key] = 1
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node))
    expanded, written = size[id(root)], len(size)
    if expanded > MAX_EXPANDED_NODES or expanded - written > MAX_ALIAS_GROWTH:
        raise _Refused(
            None,
            (),
            f"aliases would expand the document to {expanded:,}+ values ({written:,} written)",
            "this looks like an alias bomb; write the values out or use fewer aliases",
        )


def _build(node: Node, loc: Loc, depth: int, lines: LineMap) -> Any:
    if depth > MAX_DEPTH:
        raise _Refused(
            node, loc, f"nested more than {MAX_DEPTH} levels deep", "flatten the structure"
        )
    if isinstance(node, ScalarNode):
        return _scalar(node, loc)
    if isinstance(node, SequenceNode):
        if node.tag != f"{_TAG}seq":
            raise _bad_tag(node, loc)
        items = []
        for i, child in enumerate(node.value):
            lines.lines[(*loc, i)] = child.start_mark.line + 1
            items.append(_build(child, (*loc, i), depth + 1, lines))
        return items
    if isinstance(node, MappingNode):
        if node.tag != f"{_TAG}map":
            raise _bad_tag(node, loc)
        return _mapping(node, loc, depth, lines)
    raise _Refused(node, loc, "unsupported YAML node")  # pragma: no cover


def _mapping(node: MappingNode, loc: Loc, depth: int, lines: LineMap) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    key_lines: dict[Any, int] = {}
    merged: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        if key_node.tag == f"{_TAG}merge":
            # `<<: *defaults`: keys written here win over merged ones, as in YAML 1.1.
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for src in sources:
                if not isinstance(src, MappingNode):
                    raise _Refused(
                        src,
                        loc,
                        "'<<' must merge a mapping (or a list of them)",
                        "write <<: *anchor where the anchor is on a mapping",
                    )
                for k, v in _build(src, loc, depth + 1, lines).items():
                    merged.setdefault(k, v)
            continue
        if not isinstance(key_node, ScalarNode):
            raise _Refused(
                key_node,
                loc,
                "a key must be a plain word, not a list or mapping",
                "check the indentation of this line",
            )
        key = _scalar(key_node, loc)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise _Refused(key_node, loc, "a key must be a plain word", "quote the key")
        line = key_node.start_mark.line + 1
        part: str | int = key if isinstance(key, str | int) else str(key)
        if key in key_lines:
            raise _Refused(
                key_node,
                (*loc, part),
                f"the key {key!r} appears twice (lines {key_lines[key]} and {line})",
                "remove one of them: YAML would silently keep only the last",
            )
        key_lines[key] = line
        lines.lines[(*loc, part)] = line
        out[key] = _build(value_node, (*loc, part), depth + 1, lines)
    for k, v in merged.items():
        out.setdefault(k, v)
    return out


def _bad_tag(node: Node, loc: Loc) -> _Refused:
    return _Refused(
        node,
        loc,
        f"the tag {node.tag.replace(_TAG, '!!')!r} is not allowed",
        "only plain values are accepted: remove the tag",
    )


def _scalar(node: ScalarNode, loc: Loc) -> Any:
    tag = node.tag
    if tag not in _SCALAR_TAGS:
        raise _bad_tag(node, loc)
    if tag == f"{_TAG}str" or tag == f"{_TAG}timestamp":
        return str(node.value)
    try:
        if tag == f"{_TAG}null":
            return None
        if tag == f"{_TAG}bool":
            return _CONSTRUCTOR.construct_yaml_bool(node)
        if tag == f"{_TAG}int":
            return _CONSTRUCTOR.construct_yaml_int(node)
        return _CONSTRUCTOR.construct_yaml_float(node)
    except ValueError:
        raise _Refused(
            node, loc, "the number is too long or malformed", "write a shorter number"
        ) from None
