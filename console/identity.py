"""Who is at the console: the operator identity written on every audit row.

The console runs on a jump host as the operator's own OS user, usually over
SSH; the audit log records the OS user, where the SSH session comes from and
which terminal, so a row names a person and a session, not just "root".
"""

from __future__ import annotations

import getpass
import os
import pwd
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass


def _os_user() -> str:
    # The password database names the real uid; $USER/$LOGNAME can be set by anyone.
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        try:
            return getpass.getuser()
        except Exception:  # getpass raises OSError (3.13) or KeyError (older)
            return f"uid{os.getuid()}"


def _ssh_client(env: Mapping[str, str]) -> str | None:
    # SSH_CONNECTION is "client_addr client_port server_addr server_port";
    # SSH_CLIENT (older) is "client_addr client_port server_port".
    for var in ("SSH_CONNECTION", "SSH_CLIENT"):
        parts = env.get(var, "").split()
        if len(parts) >= 2:
            return f"{parts[0]} {parts[1]}"
    return None


def _tty() -> str | None:
    try:
        return os.ttyname(sys.stdin.fileno())
    except (OSError, ValueError, AttributeError):
        # No stdin, stdin closed, or not a terminal (tests, pipes, systemd).
        return None


@dataclass(frozen=True, slots=True)
class Operator:
    """The person (OS user and session) on whose behalf the console acts."""

    user: str
    """OS user name, from the password database."""
    ssh_client: str | None = None
    """``"addr port"`` of the SSH client, from ``SSH_CONNECTION``/``SSH_CLIENT``; None if local."""
    tty: str | None = None
    """The controlling terminal of stdin (``/dev/pts/3``), or None."""
    console_host: str = ""
    """The host the console runs on."""
    pid: int = 0
    """The console's process id."""

    @classmethod
    def current(cls, env: Mapping[str, str] | None = None) -> Operator:
        """The operator of this process."""
        return cls(
            user=_os_user(),
            ssh_client=_ssh_client(os.environ if env is None else env),
            tty=_tty(),
            console_host=socket.gethostname(),
            pid=os.getpid(),
        )

    def describe(self) -> str:
        """``alice from 10.0.0.5 57022 on /dev/pts/3`` for screens and messages."""
        text = self.user
        if self.ssh_client:
            text += f" from {self.ssh_client}"
        if self.tty:
            text += f" on {self.tty}"
        return text
