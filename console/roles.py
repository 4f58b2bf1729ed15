"""Who may do what: the roles file and how an operator's role is resolved.

The roles file (YAML) names a default role and a role per OS user::

    default: viewer
    operators:
      alice: admin
      bob: operator

Without a roles file a real site gives everyone ``viewer`` (default deny);
only the demo, which changes nothing real, gives ``admin``.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from console.plugin import Role

RoleName = Literal["viewer", "operator", "admin"]

_ROLES: dict[str, Role] = {"viewer": Role.VIEWER, "operator": Role.OPERATOR, "admin": Role.ADMIN}


class RolesFileError(ValueError):
    """The roles file is missing, unreadable, unsafe or invalid; the message names file and line."""


class RolesFile(BaseModel):
    """The roles file as written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: RoleName = "viewer"
    """Role of an OS user not listed under ``operators``."""
    operators: dict[str, RoleName] = Field(default_factory=dict)
    """OS user name -> role."""

    def role_of(self, user: str) -> Role:
        return _ROLES[self.operators.get(user, self.default)]


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...], on_key: bool) -> int | None:
    """1-based line of the YAML key (``on_key``) or value at ``loc`` (the deepest one found)."""
    line = None if node is None else node.start_mark.line + 1
    for part in loc:
        if not isinstance(node, yaml.MappingNode):
            break
        match = next((kv for kv in node.value if kv[0].value == part), None)
        if match is None:
            break
        key, node = match
        line = (key if on_key else node).start_mark.line + 1
    return line


def load_roles(path: Path) -> RolesFile:
    """Read and validate a roles file.

    Raises:
        RolesFileError: naming the file (and line) and what to fix.
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RolesFileError(f"{path}: roles file not found") from None
    except OSError as exc:
        raise RolesFileError(f"{path}: cannot read the roles file: {exc.strerror}") from None
    if mode & 0o022:
        # Anyone who can write it can make themselves admin.
        raise RolesFileError(
            f"{path}: the roles file is writable by other users (mode {mode:04o}); "
            f"fix: chmod go-w {path}"
        )
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise RolesFileError(f"{where}: not valid YAML: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RolesFileError(f"{path}:1: expected a mapping with 'default' and 'operators'")
    try:
        return RolesFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        line = _line_of(node, loc, on_key=err["type"] == "extra_forbidden")
        where = f"{path}:{line}" if line else str(path)
        field = ".".join(str(p) for p in loc) or "(top)"
        msg = err["msg"]
        if err["type"] == "literal_error":
            msg = "must be one of viewer, operator, admin"
        elif err["type"] == "extra_forbidden":
            msg = "unknown key (allowed: default, operators)"
        raise RolesFileError(f"{where}: {field}: {msg}") from None


def resolve_role(user: str, roles_path: Path | None, *, demo: bool) -> Role:
    """The role of OS user ``user``.

    With a roles file: the user's entry, else the file's default. Without one:
    ADMIN for the demo (the lab), VIEWER for a real site (default deny).

    Raises:
        RolesFileError: a roles file was named but is missing, unsafe or invalid.
    """
    if roles_path is None:
        return Role.ADMIN if demo else Role.VIEWER
    return load_roles(roles_path).role_of(user)


def role_name(role: Role) -> str:
    """``viewer``/``operator``/``admin``."""
    return role.name.lower()
