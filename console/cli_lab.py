"""`dcc lab`: run the simulated datacenter alone, and inject faults into a running one."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory
    from console.plugin import Plugin

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_INVENTORY = REPO_ROOT / "inventory" / "demo.yaml"


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "dcconsole" / "lab"


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``lab`` (and ``lab fault ...``) to the ``dcc`` sub-commands."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "lab",
        help="run the simulated datacenter (or change faults in a running one)",
        description="Run the simulated datacenter on loopback until Ctrl-C, so that "
        "`dcc --inventory STATE/inventory.yaml` or a plain ssh can be pointed at it.",
    )
    p.add_argument(
        "--state-dir", type=Path, default=None, help="default: " + str(default_state_dir())
    )
    p.add_argument("--inventory", type=Path, default=None, help="default: inventory/demo.yaml")
    p.add_argument(
        "--hosts",
        type=int,
        default=None,
        metavar="N",
        help="instead of an inventory: a generated fleet of N GPU servers (8 GPUs, a BMC, "
        "8 InfiniBand ports each; 4 to a rack), one loopback address each",
    )
    p.add_argument(
        "--scenario",
        default=None,
        help="a scenario name or file, or 'none' (default: demo; none with --hosts)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--speed", type=float, default=1.0, help="lab seconds per real second")
    p.set_defaults(lab_command=None, handler=run)
    sub = p.add_subparsers(dest="lab_command")
    fault = sub.add_parser("fault", help="list, add or clear faults in the running lab")
    fsub = fault.add_subparsers(dest="fault_command", required=True)

    def state_dir_option(parser: argparse.ArgumentParser) -> None:
        # SUPPRESS: `dcc lab --state-dir D fault list` keeps D when not repeated here.
        parser.add_argument(
            "--state-dir", type=Path, default=argparse.SUPPRESS, help="the running lab's state dir"
        )

    add = fsub.add_parser("add", help="start a fault")
    add.add_argument("name", help="e.g. host.down, host.slow, services.down")
    add.add_argument("target", help="a host name, or a plugin target (a service name)")
    add.add_argument("--param", action="append", default=[], metavar="K=V")
    add.add_argument("--for", dest="duration", type=float, default=None, metavar="SECONDS")
    state_dir_option(add)
    ls = fsub.add_parser("list", help="the active faults and the fault names known")
    state_dir_option(ls)
    clear = fsub.add_parser("clear", help="end one fault (by id) or all")
    clear.add_argument("id", nargs="?")
    clear.add_argument("--all", action="store_true")
    state_dir_option(clear)
    return p


def _err(message: str) -> int:
    print(f"dcc lab: {message}", file=sys.stderr)
    return 2


def _param(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"--param {text!r} must be KEY=VALUE")
    for conv in (int, float):
        with contextlib.suppress(ValueError):
            return key, conv(value)
    return key, value


def run(args: argparse.Namespace, plugins: Sequence[Plugin]) -> int:
    """Run ``dcc lab ...``; returns the exit status."""
    state_dir = (args.state_dir or default_state_dir()).expanduser()
    if getattr(args, "lab_command", None) == "fault":
        return _fault(args, state_dir)
    try:
        return asyncio.run(_serve(args, state_dir, plugins))
    except KeyboardInterrupt:
        return 130


def _fault(args: argparse.Namespace, state_dir: Path) -> int:
    from console.lab.control import ControlClient, LabNotRunning
    from console.lab.faults import FaultError

    client = ControlClient(state_dir)
    try:
        if args.fault_command == "add":
            params = dict(_param(p) for p in args.param)
            body: dict[str, Any] = {"name": args.name, "target": args.target}
            body.update(params=params, duration=args.duration)
            data = asyncio.run(client.call("POST", "/faults", body))
            until = f" for {args.duration:g}s" if args.duration else ""
            print(f"{data['id']}: {args.name} on {args.target}{until}")
        elif args.fault_command == "list":
            status = asyncio.run(client.call("GET", "/status"))
            faults = status.get("faults", [])
            if not faults:
                print("no active faults")
            for f in faults:
                shown = " ".join(f"{k}={v}" for k, v in f["params"].items())
                print(f"{f['id']:>5}  {f['name']:<20} {f['target']:<12} {shown}".rstrip())
            print("known faults: " + ", ".join(status.get("fault_names", [])))
        else:
            if args.all:
                data = asyncio.run(client.call("DELETE", "/faults"))
                print(f"cleared {data['cleared']} fault(s)")
            elif args.id:
                asyncio.run(client.call("DELETE", f"/faults/{args.id}"))
                print(f"cleared {args.id}")
            else:
                return _err("say which fault to clear: an ID, or --all")
    except (LabNotRunning, FaultError, ValueError) as exc:
        return _err(str(exc))
    return 0


def _already_running(state_dir: Path) -> int | None:
    try:
        info = json.loads((state_dir / "lab.json").read_text(encoding="utf-8"))
        pid = int(info["pid"])
        os.kill(pid, 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pid if pid != os.getpid() else None


def _load(path: Path) -> tuple[Inventory, str] | str:
    """The inventory at ``path``, or the loader's message (file, line, field)."""
    try:
        from console.inventory.load import load_inventory

        return load_inventory(path.expanduser()), ""
    except ImportError:
        return "the inventory loader is not available"
    except Exception as exc:
        return str(exc) or type(exc).__name__


def _fleet_inventory(hosts: int) -> tuple[Inventory, str] | str:
    """A generated fleet of ``hosts``, once the open-file limit is known to fit it."""
    from console.inventory.load import inventory_from_data
    from console.lab.fleet import fleet_document
    from console.lab.limits import LabTooBig, ensure_fd_budget

    try:
        data = fleet_document(hosts)
        budget = ensure_fd_budget(hosts)
    except (ValueError, LabTooBig) as exc:
        return str(exc)
    return inventory_from_data(data, None), budget.note


async def _serve(args: argparse.Namespace, state_dir: Path, plugins: Sequence[Plugin]) -> int:
    from console.lab import Lab
    from console.lab.scenario import ScenarioError

    pid = _already_running(state_dir)
    if pid is not None:
        return _err(f"a lab already runs in {state_dir} (pid {pid})")
    hosts = getattr(args, "hosts", None)
    if hosts is not None:
        if args.inventory is not None:
            return _err("give either --inventory or --hosts, not both")
        loaded = _fleet_inventory(hosts)
    else:
        loaded = _load(args.inventory or DEFAULT_INVENTORY)
    if isinstance(loaded, str):
        return _err(loaded)
    inventory, note = loaded
    wanted = args.scenario if args.scenario is not None else ("none" if hosts else "demo")
    scenario = None if wanted in ("", "none") else wanted
    if args.speed <= 0:
        return _err("--speed must be positive")
    try:
        lab = Lab(
            inventory,
            state_dir,
            plugins,
            seed=args.seed,
            speed=args.speed,
            scenario=scenario,
            spread=hosts is not None,
        )
        await lab.start()
    except (ScenarioError, ValueError, OSError) as exc:
        return _err(str(exc))
    if note:
        print(f"dcc lab: {note}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        first = next(iter(lab.hosts.values()), None)
        d = lab.state_dir
        where = "127.1.0.0/16 (BMCs on 127.2.0.0/16)" if lab.spread else lab.bind
        print(f"dcc lab: {len(lab.hosts)} simulated hosts on {where}; state in {d}")
        print(f"  console:  dcc --inventory {d / 'inventory.yaml'}")
        if first is not None:
            print(
                f"  ssh:      ssh -i {d / 'id_ed25519'} -o UserKnownHostsFile={d / 'known_hosts'}"
                f" -p {first.port} {first.node.ssh.user}@{first.address} hostname"
            )
        print("  faults:   dcc lab fault list | add NAME TARGET [--param K=V] [--for S] | clear ID")
        print(f"  scenario: {scenario or 'none'}; Ctrl-C stops the lab.", flush=True)
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await lab.stop()
    print("dcc lab: stopped")
    return 0
