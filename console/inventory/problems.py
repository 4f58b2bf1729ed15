"""Problems found in an inventory or layout, and the error that carries them.

Every problem names the file, the line, the field and what to do about it, so
an operator can fix the file without reading a traceback.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Loc = tuple[str | int, ...]
"""A path into the document: ``("nodes", 1, "bmc", "password")``."""

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a file."""

    file: str
    line: int | None
    field: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        text = (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )
        return f"{text} (hint: {self.hint})" if self.hint else text


class InventoryError(Exception):
    """The inventory was refused; ``problems`` says why, one entry per problem."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


def format_loc(loc: Iterable[str | int]) -> str:
    """``("nodes", 1, "bmc", "password")`` -> ``nodes[1].bmc.password``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{part}]"
    return out


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate nearest to ``word`` (for "did you mean"), or None."""
    found = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return found[0] if found else None


def did_you_mean(word: str, candidates: Iterable[str], what: str = "known") -> str:
    """A hint naming the closest candidate, or listing them all when none is close."""
    names = sorted(candidates)
    near = closest(word, names)
    if near is not None:
        return f"did you mean {near!r}?"
    if not names:
        return f"there are no {what} names here"
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    return f"{what}: {shown}"
