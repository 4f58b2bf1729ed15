"""Roles: the roles file and how an operator's role is resolved (default deny)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from console.plugin import Role
from console.roles import RolesFileError, load_roles, resolve_role


def write(tmp_path: Path, text: str, mode: int = 0o644) -> Path:
    p = tmp_path / "roles.yaml"
    p.write_text(text)
    os.chmod(p, mode)
    return p


def test_without_a_roles_file_a_real_site_gives_viewer_and_the_demo_admin() -> None:
    assert resolve_role("alice", None, demo=False) is Role.VIEWER
    assert resolve_role("alice", None, demo=True) is Role.ADMIN


def test_a_listed_operator_gets_their_role_and_others_the_default(tmp_path: Path) -> None:
    p = write(tmp_path, "default: viewer\noperators:\n  alice: admin\n  bob: operator\n")
    assert resolve_role("alice", p, demo=False) is Role.ADMIN
    assert resolve_role("bob", p, demo=False) is Role.OPERATOR
    assert resolve_role("mallory", p, demo=False) is Role.VIEWER


def test_the_roles_file_wins_over_the_demo_default(tmp_path: Path) -> None:
    p = write(tmp_path, "default: viewer\n")
    assert resolve_role("alice", p, demo=True) is Role.VIEWER


def test_an_empty_roles_file_denies_by_default(tmp_path: Path) -> None:
    assert load_roles(write(tmp_path, "")).role_of("anyone") is Role.VIEWER


def test_an_unknown_role_names_file_line_and_choices(tmp_path: Path) -> None:
    p = write(tmp_path, "default: viewer\noperators:\n  alice: root\n")
    with pytest.raises(RolesFileError) as err:
        load_roles(p)
    msg = str(err.value)
    assert f"{p}:3" in msg and "operators.alice" in msg and "viewer, operator, admin" in msg


def test_an_unknown_key_is_refused_with_its_line(tmp_path: Path) -> None:
    p = write(tmp_path, "default: viewer\nadmins:\n  - alice\n")
    with pytest.raises(RolesFileError) as err:
        load_roles(p)
    assert f"{p}:2" in str(err.value) and "unknown key" in str(err.value)


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    p = write(tmp_path, "default: viewer\noperators: [alice: admin\n")
    with pytest.raises(RolesFileError) as err:
        load_roles(p)
    assert str(p) in str(err.value) and "not valid YAML" in str(err.value)


def test_a_missing_roles_file_is_an_error_not_a_silent_default(tmp_path: Path) -> None:
    with pytest.raises(RolesFileError, match="not found"):
        resolve_role("alice", tmp_path / "nope.yaml", demo=False)


def test_a_roles_file_others_can_write_is_refused(tmp_path: Path) -> None:
    p = write(tmp_path, "default: admin\n", mode=0o666)
    with pytest.raises(RolesFileError, match="chmod go-w"):
        load_roles(p)
