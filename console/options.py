"""What the command line asked for; free of heavy imports (read before the first frame)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def state_dir() -> Path:
    """Where the console keeps its files: $XDG_STATE_HOME/dcconsole (~/.local/state/dcconsole)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "dcconsole"


@dataclass(slots=True)
class LaunchOptions:
    """How to start a console."""

    inventory: Path | None = None
    """None: start the embedded demo lab."""
    layout: str = "overview"
    read_only: bool = False
    audit_db: Path | None = None
    roles: Path | None = None
    scenario: str | None = "demo"
    """The lab's timed faults (demo only); None for a quiet lab."""
    lab_state_dir: Path | None = None
    poll: bool = True
    """False in tests that drive the poller themselves."""
    approval_expire_s: float = 900.0
    source: str = "direct"
    """Demo only: ``prometheus`` reads the lab through a real Prometheus (dcc --source)."""
    """A two-person approval nobody decided within this many seconds expires."""

    @property
    def demo(self) -> bool:
        return self.inventory is None


def flow_cli_options(args: Any) -> LaunchOptions:
    """The session a flow's command (`dcc rollout run`, `dcc drill run`) starts: the site of
    ``--inventory`` (else the demo lab, without its timed faults) and no background polling
    (a flow reads what its checks need, when they need it)."""
    return LaunchOptions(
        inventory=getattr(args, "inventory", None),
        read_only=bool(getattr(args, "read_only", False)),
        audit_db=getattr(args, "audit_db", None),
        roles=getattr(args, "roles", None),
        scenario=None,
        poll=False,
    )
