"""Turning pydantic errors and literal secrets into Problems with file:line.

Shared by the inventory loader, plugin config sections and layouts.
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from console.inventory.model import CREDENTIAL_REF
from console.inventory.problems import (
    InventoryError,
    Loc,
    Problem,
    closest,
    did_you_mean,
    format_loc,
)
from console.inventory.yamlio import LineMap

_SECRET_WORDS = ("password", "passwd", "secret", "token", "passphrase", "api_key", "apikey")
SECRET_HINT = "use env:NAME or file:PATH"  # noqa: S105 - a hint, not a secret

_EXPECTED: dict[str, tuple[str, str]] = {
    "int": ("a whole number", "write a number such as 22, without quotes"),
    "float": ("a number", "write a number such as 30 or 2.5"),
    "bool": ("true or false", "write true or false"),
    "string": ("a text", "quote the value"),
    "list": ("a list", "write a YAML list, one '- item' per line"),
    "dict": ("a mapping", "write 'key: value' lines indented under this key"),
    "model": ("a mapping", "write 'key: value' lines indented under this key"),
    "model_attributes": ("a mapping", "write 'key: value' lines indented under this key"),
}


def secret_kind(key: object) -> str | None:
    """The kind of secret a key names (``password``, ``token`` ...), or None."""
    if not isinstance(key, str):
        return None
    norm = key.lower().replace("-", "_")
    for word in _SECRET_WORDS:
        if norm == word or norm.endswith("_" + word):
            return "api key" if word in ("api_key", "apikey") else word
    return None


def find_literal_secrets(data: Any, lines: LineMap, file: str, loc: Loc = ()) -> list[Problem]:
    """Every secret-named key whose value is not an ``env:``/``file:`` reference."""
    found: list[Problem] = []
    stack: list[tuple[Loc, Any]] = [(loc, data)]
    while stack:
        here, value = stack.pop()
        if isinstance(value, Mapping):
            for key, child in value.items():
                kind = secret_kind(key)
                if kind is not None and _is_literal(child):
                    found.append(
                        Problem(
                            file,
                            lines.line((*here, key)),
                            format_loc((*here, key)),
                            f"a literal {kind} is not allowed",
                            SECRET_HINT,
                        )
                    )
                else:
                    stack.append(((*here, key), child))
        elif isinstance(value, list):
            stack.extend(((*here, i), child) for i, child in enumerate(value))
    found.sort(key=lambda p: (p.line or 0, p.field))
    return found


def _is_literal(value: Any) -> bool:
    if value is None or isinstance(value, bool | dict | list):
        return False
    return not (isinstance(value, str) and CREDENTIAL_REF.match(value))


def _unwrap(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class found by following ``loc`` from ``root``."""
    tp: Any = root
    for part in loc:
        tp = _unwrap(tp)
        origin = get_origin(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str):
            info = tp.model_fields.get(part)
            if info is None:
                return None
            tp = info.annotation
        elif origin is list and isinstance(part, int):
            tp = get_args(tp)[0]
        elif origin is dict:
            tp = get_args(tp)[1]
        else:
            return None
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def problems_from_validation(
    exc: ValidationError,
    root: type[BaseModel],
    lines: LineMap,
    file: str,
    prefix: Loc = (),
    skip: set[str] | None = None,
    example: str = "inventory/example-site.yaml",
) -> list[Problem]:
    """One Problem per pydantic error, located by ``lines`` (``prefix`` + the error's loc).

    ``example`` is the shipped file the hints point to (each document kind has its own).
    """
    out: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for err in exc.errors(include_url=False):
        loc: Loc = tuple(err["loc"])
        field = format_loc((*prefix, *loc))
        if skip and field in skip:
            continue
        problem = _one(err, loc, root, lines.line((*prefix, *loc)), file, field, example)
        if (problem.field, problem.message) not in seen:
            seen.add((problem.field, problem.message))
            out.append(problem)
    return out


def _one(
    err: ErrorDetails,
    loc: Loc,
    root: type[BaseModel],
    line: int | None,
    file: str,
    field: str,
    example: str,
) -> Problem:
    kind = err["type"]
    secret = any(secret_kind(p) for p in loc)
    given = "" if secret else f", got {_short(err.get('input'))}"
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        parent = model_at(root, loc[:-1])
        known = list(parent.model_fields) if parent is not None else []
        return Problem(
            file, line, field, f"unknown key {key!r}", did_you_mean(key, known, "known keys")
        )
    if kind == "missing":
        key = str(loc[-1]) if loc else "?"
        return Problem(
            file, line, field, f"the required key {key!r} is missing", f"add '{key}:' here"
        )
    if kind == "literal_error":
        expected = str((err.get("ctx") or {}).get("expected", ""))
        options = re.findall(r"'([^']*)'", expected)
        near = closest(str(err.get("input")), options)
        hint = f"did you mean {near!r}?" if near else f"one of {expected}"
        return Problem(file, line, field, f"must be one of {expected}{given}", hint)
    if kind == "value_error" and "credential" in err["msg"]:
        return Problem(
            file, line, field, "must be a reference to the secret, not the value", SECRET_HINT
        )
    for name, (what, hint) in _EXPECTED.items():
        if kind in (f"{name}_type", f"{name}_parsing", f"{name}_from_float"):
            return Problem(file, line, field, f"wrong type: expected {what}{given}", hint)
    if kind in ("string_too_short", "too_short"):
        return Problem(file, line, field, f"must not be empty{given}", "fill in a value")
    msg = err["msg"].removeprefix("Value error, ")
    hint = "see the allowed range" if "than" in msg else f"see {example}"
    return Problem(file, line, field, f"{msg[:1].lower()}{msg[1:]}{given}", hint)


M = TypeVar("M", bound=BaseModel)


def validate_document(
    data: Any, model: type[M], lines: LineMap, label: str, *, what: str, example: str
) -> M:
    """A YAML document as ``model``, or InventoryError with every problem at its file:line.

    Shared by the inventory, rollouts and drill catalogues: a mapping is required,
    literal secrets are refused anywhere, and validation errors name their line.

    Args:
        what: What the document must be (``"the inventory must be a mapping (site:, ...)"``).
        example: The shipped file to start from, for the hint.
    """
    if not isinstance(data, dict):
        raise InventoryError(
            [
                Problem(
                    label,
                    lines.line(()),
                    "",
                    f"{what}, not {type(data).__name__}",
                    f"start from {example}",
                )
            ]
        )
    secrets = find_literal_secrets(data, lines, label)
    try:
        doc = model.model_validate(data)
    except ValidationError as exc:
        skip = {p.field for p in secrets}
        found = secrets + problems_from_validation(
            exc, model, lines, label, skip=skip, example=example
        )
        raise InventoryError(sorted(found, key=lambda p: p.line or 0)) from None
    if secrets:
        raise InventoryError(secrets)
    return doc
