"""The slurm plugin against real Slurm 22.05 (Debian's slurm-wlm + munge) on loopback.

One slurmctld and three ``slurmd -N`` nodes with fake H100 gres are started once
per test session (scripts/peers/slurm/start.sh). The plugin's commands run
locally through a small adapter with the SshPool's interface: the output is the
real tools'. Real jobs come from ``sbatch``; drain/resume are checked with
``sinfo --json`` directly.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from console.inventory.load import inventory_from_data
from console.inventory.model import Inventory, Node
from console.plugin import Target
from console.transports import CommandResult, CommandTimeout, Transports
from console.transports.http import HttpClient
from console.transports.proc import ProcRunner
from plugins.slurm.actions import ACTIONS
from plugins.slurm.collect import collect_cluster, read_cluster, read_rest, read_ssh
from plugins.slurm.config import SlurmConfig
from plugins.slurm.parse_text import parse_partitions_text
from tests.integration.support import CollectCtx, action_runner, eventually

ROOT = Path(__file__).resolve().parents[2]
START = ROOT / "scripts" / "peers" / "slurm" / "start.sh"
STOP = ROOT / "scripts" / "peers" / "slurm" / "stop.sh"
PORT = 16917
REST_PORT = 16920
SPECS = {a.id: a for a in ACTIONS}


@dataclass
class SlurmPeer:
    root: Path
    env: dict[str, str]
    rest: bool

    def run(self, *argv: str) -> str:
        return subprocess.run(
            argv, env=self.env, check=True, capture_output=True, text=True, timeout=30
        ).stdout

    def sinfo_node(self, name: str) -> dict[str, Any]:
        doc = json.loads(self.run("sinfo", "--json"))
        return next(n for n in doc["nodes"] if n["name"] == name)


@pytest.fixture(scope="session")
def slurm_peer() -> Iterator[SlurmPeer]:
    if os.geteuid() != 0 or shutil.which("slurmctld") is None:
        pytest.skip("real Slurm needs root and slurm-wlm (scripts/install-peers.sh)")
    # Not under pytest's tmp dir: that is 0700, and slurmrestd runs as nobody and
    # must read slurm.conf.
    root = Path(tempfile.mkdtemp(prefix="dcc-slurm-"))
    os.chmod(root, 0o755)
    env = {
        **os.environ,
        "SLURM_ROOT": str(root),
        "SLURM_PORT": str(PORT),
        "SLURM_REST_PORT": str(REST_PORT),
        "SLURM_CONF": str(root / "etc" / "slurm.conf"),
    }
    started = subprocess.run(
        ["bash", str(START)], env=env, capture_output=True, text=True, timeout=60
    )
    peer = SlurmPeer(root, env, (root / "run" / "slurmrestd.pid").exists())
    try:
        if started.returncode != 0:
            pytest.fail(f"Slurm did not start: {started.stderr[-2000:]}")
        yield peer
    finally:
        subprocess.run(["bash", str(STOP)], env=env, capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


class LocalShell:
    """The SshPool interface, running the command here (where the real tools are)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.commands: list[str] = []

    async def run(self, node: Node, command: str, *, timeout: float) -> CommandResult:
        self.commands.append(command)
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            command,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(timeout):
                out, err = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise CommandTimeout(f"{node.name}: {command!r} timed out") from None
        return CommandResult(
            proc.returncode, out.decode(), err.decode(), time.monotonic() - started
        )

    async def close(self) -> None:
        return None


def peer_inventory(rest_url: str | None = None, token: str | None = None) -> Inventory:
    cluster: dict[str, Any] = {"controller": "ctl01"}
    if rest_url:
        cluster |= {"slurmrestd": rest_url, "token": token}
    return inventory_from_data(
        {
            "site": {"name": "slurm-peer"},
            "nodes": [
                {
                    "nodes": "gpu[01-03]",
                    "role": "gpu-train",
                    "hardware": {"gpu_count": 8},
                    "clusters": {"slurm": "testcluster", "partitions": ["gpu"]},
                },
                {"nodes": "ctl01", "role": "cpu"},
            ],
            "clusters": {"slurm": {"testcluster": cluster}},
            "plugins": {"slurm": {"clusters": {"testcluster": {"rest_user": "clusterops"}}}},
        },
        None,
    )


@pytest.fixture
async def transports(slurm_peer: SlurmPeer) -> AsyncIterator[Transports]:
    t = Transports(LocalShell(slurm_peer.env), HttpClient(), ProcRunner())  # type: ignore[arg-type]
    try:
        yield t
    finally:
        await t.http.close()


def ctx(transports: Transports, inventory: Inventory | None = None) -> CollectCtx:
    inv = inventory or peer_inventory()
    return CollectCtx(inv, transports, SlurmConfig.model_validate(inv.doc.plugins.get("slurm", {})))


async def test_collector_reads_real_nodes_jobs_and_gpus(
    slurm_peer: SlurmPeer, transports: Transports
) -> None:
    job_id = slurm_peer.run(
        "sbatch",
        "--parsable",
        "-o",
        "/dev/null",
        "-J",
        "train-llm",
        "--gres=gpu:4",
        "-w",
        "gpu01",
        "--wrap",
        "sleep 120",
    ).strip()
    c = ctx(transports)

    async def running() -> Any:
        snap = await read_cluster(c, "testcluster")
        return any(j.job_id == job_id and j.state == "RUNNING" for j in snap.jobs)

    await eventually(running, f"job {job_id} to run", 20, 0.3)
    readings = await collect_cluster(c, Target("cluster", "testcluster", node="ctl01"))
    got = {(r.target, r.metric): r.value for r in readings}
    assert str(got[("gpu01", "slurm.workloads")]).startswith(f"job {job_id} train-llm (root) 4 GPU")
    assert got[("gpu01", "slurm.gpus_used")] == 4
    assert got[("gpu01", "slurm.allocation")] == "mixed"
    assert got[("slurm:testcluster", "slurm.gpus_total")] == 24
    assert got[("slurm:testcluster", "slurm.gpus_alloc")] == 4
    slurm_peer.run("scancel", job_id)


async def test_text_fallback_reads_the_same_nodes_as_json(
    slurm_peer: SlurmPeer, transports: Transports
) -> None:
    c = ctx(transports)
    as_json = await read_ssh(c, "testcluster", "json", 20)
    as_text = await read_ssh(c, "testcluster", "text", 20)
    assert sorted(n.name for n in as_json.nodes) == sorted(n.name for n in as_text.nodes)
    assert {n.name: n.allocation for n in as_json.nodes} == {
        n.name: n.allocation for n in as_text.nodes
    }
    assert {n.name: n.gpus_total for n in as_text.nodes} == {"gpu01": 8, "gpu02": 8, "gpu03": 8}
    parts = parse_partitions_text(slurm_peer.run("scontrol", "show", "partition", "-o"))
    assert [(p.name, p.total_nodes, p.default) for p in parts] == [("gpu", 3, True)]


async def test_drain_and_resume_through_the_runner_show_in_sinfo_json(
    slurm_peer: SlurmPeer, transports: Transports, tmp_path: Path
) -> None:
    inv = peer_inventory()
    target = Target("node", "gpu03", node="gpu03")
    async with action_runner(inv, transports, tmp_path / "audit.db") as runner:
        plan = await runner.plan(SPECS["slurm.drain"], [target], {"reason": "bad HBM on GPU 5"})
        (result,) = await runner.execute(plan, None)
        assert result.outcome == "ok", result.detail
        node = slurm_peer.sinfo_node("gpu03")
        assert "DRAIN" in node["state_flags"]
        assert node["reason"] == "alice: bad HBM on GPU 5"
        assert node["reason_set_by_user"] == "root" and node["reason_changed_at"] > 0
        plan = await runner.plan(SPECS["slurm.resume"], [target], {})
        (result,) = await runner.execute(plan, None)
        assert result.outcome == "ok", result.detail
        assert "DRAIN" not in slurm_peer.sinfo_node("gpu03")["state_flags"]
        phases = [(r.phase, r.action, r.outcome) for r in runner.audit.page(newest_first=False)]
        assert phases == [
            ("intent", "slurm.drain", ""),
            ("result", "slurm.drain", "ok"),
            ("intent", "slurm.resume", ""),
            ("result", "slurm.resume", "ok"),
        ]


async def test_reboot_asap_through_the_runner_shows_pending_in_sinfo_and_scontrol(
    slurm_peer: SlurmPeer, transports: Transports, tmp_path: Path
) -> None:
    # A busy node keeps an ASAP reboot pending (an idle one would reboot at once:
    # RebootProgram=/bin/true, and the fake node would never come back).
    job_id = slurm_peer.run(
        "sbatch", "--parsable", "-o", "/dev/null", "-J", "busy", "-w", "gpu02",
        "--wrap", "sleep 120",
    ).strip()  # fmt: skip
    inv = peer_inventory()
    target = Target("node", "gpu02", node="gpu02")
    async with action_runner(inv, transports, tmp_path / "audit.db") as runner:
        try:

            async def running() -> bool:
                return "RUN" in slurm_peer.run("squeue", "-h", "-j", job_id, "-o", "%T")

            await eventually(running, f"job {job_id} to run on gpu02", 20, 0.3)
            plan = await runner.plan(
                SPECS["slurm.reboot"], [target], {"next_state": "resume", "reason": "new firmware"}
            )
            assert plan.confirm_text  # destructive: typed confirmation
            (result,) = await runner.execute(plan, plan.confirm_text)
            assert result.outcome == "ok", result.detail
            assert "REBOOT_REQUESTED" in result.detail, result.detail
            node = slurm_peer.sinfo_node("gpu02")
            assert {"DRAIN", "REBOOT_REQUESTED"} <= set(node["state_flags"]), node["state_flags"]
            assert "RESUME" in node["next_state_after_reboot_flags"]
            assert node["reason"] == "alice: new firmware"
            shown = slurm_peer.run("scontrol", "show", "node", "gpu02")
            assert "REBOOT_REQUESTED" in shown and "NextState=RESUME" in shown, shown
            # the plugin's own reading of the same cluster
            snap = await read_cluster(ctx(transports, inv), "testcluster")
            (mine,) = [n for n in snap.nodes if n.name == "gpu02"]
            assert (mine.reboot, mine.next_state, mine.allocation) == (
                "requested",
                "resume",
                "drain",
            )
            phases = [(r.phase, r.action, r.outcome) for r in runner.audit.page(newest_first=False)]
            assert phases == [("intent", "slurm.reboot", ""), ("result", "slurm.reboot", "ok")]
        finally:
            # each step even if the one before failed: later tests need gpu02 in service
            for argv in (["scontrol", "cancel_reboot", "gpu02"], ["scancel", job_id]):
                subprocess.run(argv, env=slurm_peer.env, capture_output=True, timeout=30)
    # cancel_reboot undoes the ASAP drain too: the node is back in service
    node = slurm_peer.sinfo_node("gpu02")
    assert not {"DRAIN", "REBOOT_REQUESTED", "REBOOT_ISSUED"} & set(node["state_flags"])


async def test_hold_release_and_cancel_a_real_pending_job(
    slurm_peer: SlurmPeer, transports: Transports, tmp_path: Path
) -> None:
    job_id = slurm_peer.run(
        "sbatch",
        "--parsable",
        "-o",
        "/dev/null",
        "--begin=now+1hour",
        "-J",
        "later",
        "--wrap",
        "sleep 1",
    ).strip()
    inv = peer_inventory()
    target = Target("job", f"testcluster:{job_id}")
    async with action_runner(inv, transports, tmp_path / "audit.db") as runner:
        (held,) = await runner.execute(
            await runner.plan(SPECS["slurm.hold_job"], [target], {}), None
        )
        assert held.outcome == "ok" and "JobHeld" in held.detail, held.detail
        (rel,) = await runner.execute(
            await runner.plan(SPECS["slurm.release_job"], [target], {}), None
        )
        assert rel.outcome == "ok", rel.detail
        plan = await runner.plan(SPECS["slurm.cancel_job"], [target], {})
        (gone,) = await runner.execute(plan, plan.confirm_text)
        assert gone.outcome == "ok", gone.detail


async def test_slurmrestd_with_a_jwt_by_reference(
    slurm_peer: SlurmPeer, transports: Transports, tmp_path: Path
) -> None:
    if not slurm_peer.rest:
        pytest.skip("slurmrestd or the JWT plugin is not installed")
    token = slurm_peer.run("scontrol", "token", "username=clusterops", "lifespan=600").strip()
    path = tmp_path / "jwt"
    path.write_text(token + "\n")
    path.chmod(0o600)
    inv = peer_inventory(f"http://127.0.0.1:{REST_PORT}", f"file:{path}")

    async def answers() -> Any:
        try:
            return await read_rest(ctx(transports, inv), "testcluster", 5)
        except Exception:
            return None

    snap = await eventually(answers, "slurmrestd to answer", 20, 0.3)
    assert snap.via == "slurmrestd"
    assert {n.name: n.gpus_total for n in snap.nodes} == {"gpu01": 8, "gpu02": 8, "gpu03": 8}
    assert token not in " ".join(transports.ssh.commands)  # type: ignore[attr-defined]
