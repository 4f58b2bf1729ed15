"""A team folder lets operators who are different OS users share one audit record.

The two-person rule needs two people on one audit database; each runs dcc as
their own OS user. A setgid folder owned by the operators' group is the one
place where group bits are allowed; others stay refused everywhere.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.audit import AuditLog, AuditPermissionError
from console.audit_files import team_group
from console.identity import Operator

OP = Operator(user="alice", console_host="jump01")
OPERATORS_GID = 100  # Debian's "users" group stands in for dcc-operators
OTHER_UID = 65534  # nobody


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture
def team_folder() -> Iterator[Path]:
    # Outside pytest's 0700 tmp tree, so another user can reach it.
    outer = Path(tempfile.mkdtemp(prefix="dcc-team-"))
    os.chmod(outer, 0o711)
    folder = outer / "audit"
    folder.mkdir()
    if os.geteuid() == 0:
        os.chown(folder, 0, OPERATORS_GID)
    os.chmod(folder, 0o2770)
    yield folder
    shutil.rmtree(outer)


def test_a_setgid_group_folder_closed_to_others_is_a_team_folder(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir(mode=0o700)
    assert team_group(plain) is None
    os.chmod(plain, 0o2770)
    assert team_group(plain) == plain.stat().st_gid
    os.chmod(plain, 0o2775)  # others may list it: not a team folder
    assert team_group(plain) is None
    os.chmod(plain, 0o0770)  # no setgid: new files would not get the group
    assert team_group(plain) is None


def test_files_in_a_team_folder_are_0660_with_the_folders_group(team_folder: Path) -> None:
    db = team_folder / "audit.db"
    old = os.umask(0o022)
    try:
        log = AuditLog(db, operator=OP, fallback_path=team_folder / "fb.jsonl")
        log.append("note", detail="shared")
        log.write_fallback({"phase": "result", "detail": "x"})
        log.close()
    finally:
        os.umask(old)
    for p in (db, Path(f"{db}-wal"), team_folder / "fb.jsonl"):
        if p.exists():
            assert mode(p) == 0o660, (p, oct(mode(p)))
            assert p.stat().st_gid == team_folder.stat().st_gid
    AuditLog(db, operator=OP).close()  # accepted again on the next start


@pytest.mark.parametrize("bad_mode", [0o664, 0o666, 0o604])
def test_others_are_refused_even_in_a_team_folder(team_folder: Path, bad_mode: int) -> None:
    db = team_folder / "audit.db"
    AuditLog(db, operator=OP).close()
    os.chmod(db, bad_mode)
    with pytest.raises(AuditPermissionError) as err:
        AuditLog(db, operator=OP)
    assert "team folder" in str(err.value) and f"chmod 600 {db}" in str(err.value)


def test_group_bits_outside_a_team_folder_are_still_refused(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    AuditLog(db, operator=OP).close()
    os.chmod(db, 0o660)
    with pytest.raises(AuditPermissionError):
        AuditLog(db, operator=OP)


def reachable_by_others(path: Path) -> bool:
    """Every folder above ``path`` lets other users through (the second user imports from it)."""
    return all(mode(p) & 0o001 for p in path.resolve().parents if p != Path("/"))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a second OS user")
def test_a_second_os_user_of_the_group_writes_to_the_same_chain(team_folder: Path) -> None:
    project = Path(__file__).resolve().parents[2]
    if not reachable_by_others(project / "console"):
        pytest.skip(f"{project} is not reachable by other users (a 0700 checkout folder)")
    db = team_folder / "audit.db"
    log = AuditLog(db, operator=OP)
    log.append("note", detail="alice was here")
    log.close()
    script = (
        "from pathlib import Path\n"
        "from console.audit import AuditLog\n"
        "from console.identity import Operator\n"
        "op = Operator(user='bob', console_host='jump01')\n"
        f"log = AuditLog(Path({str(db)!r}), operator=op)\n"
        "log.append('note', detail='bob approves')\n"
        "log.close()\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": "/", "PYTHONPATH": str(project)}
    done = subprocess.run(
        ["setpriv", f"--reuid={OTHER_UID}", f"--regid={OPERATORS_GID}", "--clear-groups",
         sys.executable, "-c", script],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    log = AuditLog(db, operator=OP)
    try:
        report = log.verify()
        assert report.ok, report
        details = [e.detail for e in log.page(limit=10)]
        assert "bob approves" in details and "alice was here" in details
    finally:
        log.close()
