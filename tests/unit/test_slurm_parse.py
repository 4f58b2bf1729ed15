"""Slurm parsers on real output of several versions, and on anything else."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.plugin import ParseError
from plugins.slurm.collect import Snapshot, node_readings, parse_snapshot, queue_summary
from plugins.slurm.model import gres_gpus, split_state
from plugins.slurm.parse import expand_nodes, jobs_by_node, parse_jobs, parse_nodes
from plugins.slurm.parse_json import load_document, parse_jobs_json, parse_nodes_json
from plugins.slurm.parse_text import (
    parse_partitions_text,
    parse_scontrol_jobs,
    parse_sinfo_summary,
    parse_sinfo_text,
    parse_squeue_text,
)

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples" / "slurm"


def sample(name: str) -> str:
    path = SAMPLES / name
    if not path.exists():
        pytest.skip(f"sample {name} absent")
    return path.read_text(encoding="utf-8")


def test_sinfo_json_21_08_has_string_states_and_flags_list() -> None:
    nodes = {n.name: n for n in parse_nodes(sample("rivos-sinfo-json-21.08.5.json"))}
    assert len(nodes) == 4
    assert nodes["cs5.example.company.com"].allocation == "down"
    assert nodes["cs4.example.company.com"].allocation == "alloc"
    assert nodes["cs2.example.company.com"].allocation == "mixed"
    # no gres: no GPUs is a known zero, not unknown
    assert nodes["cs3.example.company.com"].gpus_total == 0


def test_slurmrestd_24_05_nodes_have_list_states_and_number_objects() -> None:
    nodes = parse_nodes_json(sample("slurmweb-24.05-slurmrestd-nodes.json"))
    assert len(nodes) == 100
    first = nodes[0]
    assert first.state == "idle" and first.flags == ()
    assert first.reason is None and first.reason_since is None  # {"number": 0} is "never"
    assert first.partitions == ("batch",)


def test_squeue_json_21_08_pending_reason_and_time_objects() -> None:
    jobs = {j.job_id: j for j in parse_jobs(sample("rivos-squeue-json-21.08.5.json"))}
    pending = jobs["58948420"]
    assert pending.state == "PENDING" and pending.reason == "Dependency"
    assert pending.start_time is None and pending.submit_time == 1729715848.0
    running = jobs["26515966"]
    assert running.reason is None and running.nodes == "cs75" and running.gpus == 0


def test_slurmrestd_24_05_running_job_counts_gpus_from_gres_detail() -> None:
    (job,) = parse_jobs_json(sample("slurmweb-24.05-slurmrestd-job-gpus-running.json"))
    assert (job.job_id, job.state, job.gpus, job.user) == ("9", "RUNNING", 4, "dperez")
    assert jobs_by_node([job]) == {"gpu1": [job]}


def test_an_unknown_data_parser_version_is_refused_by_name() -> None:
    doc = json.loads(sample("slurmweb-24.05-slurmrestd-nodes.json"))
    doc["meta"]["plugin"]["data_parser"] = "data_parser/v0.0.99"
    with pytest.raises(ParseError, match=r"v0\.0\.99 is not supported"):
        parse_nodes_json(json.dumps(doc))
    with pytest.raises(ParseError, match=r"no meta\.plugin"):
        parse_nodes_json('{"nodes": []}')


def test_slurm_errors_in_the_document_are_reported() -> None:
    doc = {
        "meta": {"plugin": {"type": "openapi/v0.0.38"}},
        "errors": [{"error": "denied"}],
        "nodes": [],
    }
    with pytest.raises(ParseError, match="denied"):
        parse_nodes_json(json.dumps(doc))


def test_a_diag_document_is_not_a_node_list() -> None:
    with pytest.raises(ParseError, match="no 'nodes' list"):
        load_document(sample("telegraf-slurmrestd-v0.0.38-diag-22.05.9.json"), "nodes")


def test_sinfo_pipe_text_20_11_reads_drain_reason_user_and_time() -> None:
    nodes = {n.name: n for n in parse_sinfo_text(sample("gcm-sinfo-custom-pipe-format.txt"))}
    bad = nodes["node0201"]
    assert bad.allocation == "drained" and "NOT_RESPONDING" in bad.flags
    assert bad.reason == "replace" and bad.reason_by == "root"
    assert bad.reason_since is not None
    assert nodes["node1537"].allocation == "alloc" and nodes["node1537"].gpus_total == 8
    assert nodes["node4180"].gpus_total == 2


def test_scontrol_show_partition_reads_gpus_from_tres() -> None:
    parts = {p.name: p for p in parse_partitions_text(sample("gcm-scontrol-show-partition.txt"))}
    assert parts["partition1"].gpus == 22384 and parts["partition1"].default
    assert parts["partition1"].total_nodes == 3140
    assert parts["partition2"].gpus is None  # no gres/gpu in its TRES: unknown


@pytest.mark.parametrize(
    "name", ["gcm-scontrol-show-job-array-gpus.txt", "gcm-scontrol-show-job-some-gpus.txt"]
)
def test_scontrol_show_job_text_reads_array_tasks_and_gpus(name: str) -> None:
    jobs = parse_scontrol_jobs(sample(name))
    assert jobs and all(j.job_id.count("_") == 1 for j in jobs)
    assert jobs[0].state == "RUNNING" and jobs[0].gpus == 8 and jobs[0].user == "test_username"


def test_squeue_fallback_text_reads_gpus_per_node_times_nodes() -> None:
    text = (
        "JOBID|NAME|USER|STATE|PARTITION|NODES|TRES_PER_NODE|SUBMIT_TIME|START_TIME|REASON|NODELIST\n"
        "2|big|root|PENDING|gpu|3|gres:gpu:8|2026-11-29T14:51:53|N/A|Resources|\n"
        "1|train|root|RUNNING|gpu|1|gres:gpu:4|2026-11-29T14:51:53|2026-11-29T14:51:54|None|gpu01\n"
    )
    big, train = parse_squeue_text(text)
    assert (big.gpus, big.reason, big.start_time) == (24, "Resources", None)
    assert (train.gpus, train.reason, train.nodes) == (4, None, "gpu01")


@pytest.mark.parametrize(
    ("raw", "flags", "base", "want"),
    [
        ("idle", ["DRAIN"], "idle", ("DRAIN",)),
        (["IDLE", "DRAIN"], None, "idle", ("DRAIN",)),
        (["MIXED", "DRAIN", "REBOOT_REQUESTED"], None, "mixed", ("DRAIN", "REBOOT_REQUESTED")),
        ("drained*", None, "idle", ("DRAIN", "NOT_RESPONDING")),
        ("draining", None, "allocated", ("DRAIN",)),
        ("down*", None, "down", ("NOT_RESPONDING",)),
        ("mixed-", None, "mixed", ("PLANNED",)),
        # sinfo -N of a node whose reboot was issued (22.05, seen on the real peer);
        # its JSON says state "down", flags DRAIN, REBOOT_ISSUED
        ("reboot^", None, "down", ("REBOOT_ISSUED",)),
        ("???", None, "unknown", ()),
    ],
)
def test_states_as_string_list_or_text_mean_the_same(
    raw: object, flags: object, base: str, want: tuple[str, ...]
) -> None:
    assert split_state(raw, flags) == (base, want)


def test_gres_strings_count_gpus_of_every_type() -> None:
    assert gres_gpus("gpu:h100:8(S:0-1)") == 8
    assert gres_gpus("gpu:4,gpu:a100:2") == 6
    assert gres_gpus("gpu:h100:0(IDX:N/A)") == 0
    assert gres_gpus(None) is None


def test_bad_node_lists_raise_parse_error() -> None:
    assert expand_nodes("gpu[01-03]") == ["gpu01", "gpu02", "gpu03"]
    with pytest.raises(ParseError):
        expand_nodes("gpu[03-")


def test_queue_summary_counts_unavailable_gpus_on_drained_nodes() -> None:
    nodes_doc = {
        "meta": {"plugin": {"type": "openapi/v0.0.38"}},
        "errors": [],
        "nodes": [
            {
                "name": "a",
                "state": "mixed",
                "state_flags": [],
                "gres": "gpu:h100:8",
                "gres_used": "gpu:h100:4(IDX:0-3)",
            },
            {
                "name": "b",
                "state": "idle",
                "state_flags": ["DRAIN"],
                "gres": "gpu:h100:8",
                "gres_used": "gpu:h100:0(IDX:N/A)",
                "reason": "alice: fan",
                "reason_set_by_user": "root",
                "reason_changed_at": 1700000000,
            },
        ],
    }
    jobs_doc = {"meta": {"plugin": {"type": "openapi/v0.0.38"}}, "errors": [], "jobs": []}
    mark = "@@dcc-slurm@@\n"
    snap = parse_snapshot(json.dumps(nodes_doc) + "\n" + mark + json.dumps(jobs_doc) + "\n" + mark)
    summary = queue_summary(snap, 1700000100)
    assert (
        summary["gpus_total"],
        summary["gpus_alloc"],
        summary["gpus_idle"],
        summary["gpus_unavail"],
    ) == (16, 4, 4, 8)
    readings = {(r.target, r.metric): r.value for r in node_readings(snap, "t", 0.0, "ssh")}
    assert readings[("b", "slurm.allocation")] == "drained"
    assert readings[("b", "slurm.drained")] is True
    assert readings[("b", "slurm.reason")] == "alice: fan"
    assert readings[("b", "slurm.reason_by")] == "root"
    assert readings[("b", "slurm.reason_since")] == 1700000000.0
    assert readings[("a", "slurm.drained")] is False


def test_unknown_gpu_use_makes_the_idle_count_unknown_not_zero() -> None:
    from plugins.slurm.model import SlurmNode

    snap = Snapshot([SlurmNode("a", "idle", gpus_total=8, gpus_used=None)], [], [], "ssh")
    summary = queue_summary(snap, 0.0)
    assert summary["gpus_alloc"] is None and summary["gpus_idle"] is None


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "meta",
                    "plugin",
                    "type",
                    "data_parser",
                    "nodes",
                    "jobs",
                    "state",
                    "name",
                    "job_id",
                    "gres",
                    "errors",
                    "number",
                    "set",
                    "job_state",
                    "nodes",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(_json)
def test_arbitrary_json_raises_only_parse_error(value: object) -> None:
    text = json.dumps(value)
    for fn in (parse_nodes_json, parse_jobs_json):
        with contextlib.suppress(ParseError):
            fn(text)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_raises_only_parse_error(text: str) -> None:
    for fn in (
        parse_nodes,
        parse_jobs,
        parse_partitions_text,
        parse_scontrol_jobs,
        parse_snapshot,
        parse_sinfo_summary,
    ):
        with contextlib.suppress(ParseError):
            fn(text)


# --------------------------------------------------------------------------- every sample


def test_plain_sinfo_partition_summary_golden() -> None:
    parts = {p.name: p for p in parse_sinfo_summary(sample("colonialone-sinfo.txt"))}
    assert len(parts) == 13
    defq = parts["defq"]
    assert (defq.default, defq.state, defq.total_nodes) == (True, "up", 128)
    assert defq.node_states == (("alloc", 109), ("idle", 19))
    assert defq.nodes == "node[033-160]"
    # "14-00:00:0" is the 14-day limit cut by sinfo's 10-character column: not a time
    assert defq.max_time is None and parts["256gb"].max_time is None
    assert parts["gpu"].max_time == "7-00:00:00" and parts["debug"].max_time == "4:00:00"
    assert parts["allgpu-noecc"].nodes == "node[001-032,333-353]"
    assert parts["2tb"].node_states == (("alloc", 1),) and parts["2tb"].nodes == "node901"
    # the summary does not say how many GPUs: unknown, not 0
    assert all(p.gpus is None for p in parts.values())
    assert [p.name for p in parts.values() if p.default] == ["defq"]


def test_plain_sinfo_is_refused_as_per_node_output_saying_why() -> None:
    with pytest.raises(ParseError, match=r"partition summary \(plain sinfo\).*sinfo -N"):
        parse_nodes(sample("colonialone-sinfo.txt"))
    with pytest.raises(ParseError, match="not plain sinfo output"):
        parse_sinfo_summary(sample("gcm-sinfo-custom-pipe-format.txt"))


def test_headerless_squeue_with_a_custom_separator_is_refused_not_guessed() -> None:
    text = sample("gcm-squeue-custom-format.txt")
    with pytest.raises(ParseError, match=r"no JOBID column.*headerless.*unknown columns"):
        parse_squeue_text(text)
    with pytest.raises(ParseError, match="headerless"):
        parse_jobs(text)
    with pytest.raises(ParseError, match="headerless"):
        parse_squeue_text(text, sep="|#")


GCM_SQUEUE_O = (  # noqa: SIM905 - one word per -O field, as gcm writes them
    "TRES-PER-NODE MINCPUS JOBARRAYID JOBID NAME TIMELIMIT MINMEMORY COMMAND PRIORITY STATE "
    "USERNAME NUMCPUS NUMNODES TIMELEFT TIMEUSED NODELIST DEPENDENCY EXCNODES STARTTIME "
    "SUBMITTIME ELIGIBLETIME ACCRUETIME PENDINGTIME COMMENT PARTITION ACCOUNT QOS REASON "
    "TRES-ALLOC RESERVATION REQUEUE FEATURE RESTARTCNT SCHEDNODES LASTSCHEDEVAL"
).split()
"""gcm's ``squeue --all --noheader -O FIELD:|#,...`` (gcm/monitoring/slurm/client.py builds it
from JOB_DATA_SLURM_FIELDS, gcm/schemas/slurm/squeue.py): the format that made the sample."""


def test_headerless_squeue_reads_with_the_format_that_produced_it() -> None:
    jobs = {j.job_id: j for j in parse_squeue_text(
        sample("gcm-squeue-custom-format.txt"), GCM_SQUEUE_O, "|#")}  # fmt: skip
    assert list(jobs) == ["45704744", "42953390_320", "42956774_3", "22783212",
                          "42271120_[7-8%1]"]  # fmt: skip
    bash = jobs["45704744"]
    # running: GPUs from TRES-ALLOC (TRES-PER-NODE is N/A)
    assert (bash.state, bash.user, bash.nodes, bash.gpus) == ("RUNNING", "test_user", "node1321", 2)
    assert bash.reason is None and bash.start_time is not None
    big = jobs["42956774_3"]
    assert (big.node_count, big.gpus) == (32, 256)
    assert jobs_by_node([big])["node1283"] == [big]
    dep = jobs["22783212"]
    assert (dep.state, dep.reason, dep.gpus, dep.start_time) == (
        "PENDING", "DependencyNeverSatisfied", 0, None)  # fmt: skip
    arr = jobs["42271120_[7-8%1]"]
    assert (arr.reason, arr.gpus, arr.node_count) == ("JobArrayTaskLimit", 160, 20)


def test_every_slurm_sample_has_a_test_here() -> None:
    if not SAMPLES.is_dir():
        pytest.skip("samples absent")
    here = Path(__file__).read_text(encoding="utf-8")
    names = [p.name for p in SAMPLES.iterdir() if not p.name.endswith(".source.txt")]
    assert names and [n for n in names if f'"{n}"' not in here] == []


# --------------------------------------------------------------------------- reboot timed out


def _timed_out_24_05() -> str:
    """A real 24.05 node (slurmweb sample) as slurmctld leaves it when its reboot passed
    ResumeTimeout: DOWN (DRAIN kept from ``reboot ASAP``), reason "reboot timed out"."""
    doc = json.loads(sample("slurmweb-24.05-slurmrestd-nodes.json"))
    node = doc["nodes"][0]
    node |= {
        "state": ["DOWN", "DRAIN"],
        "reason": "reboot timed out",
        "reason_set_by_user": "slurm",
        "reason_changed_at": {"set": True, "infinite": False, "number": 1732800000},
    }
    doc["nodes"] = [node]
    return json.dumps(doc)


def _timed_out_21_08() -> str:
    doc = json.loads(sample("rivos-sinfo-json-21.08.5.json"))
    node = doc["nodes"][0]
    node |= {"state": "down", "state_flags": ["DRAIN"], "reason": "reboot timed out",
             "reason_set_by_user": "root", "reason_changed_at": 1732800000}  # fmt: skip
    doc["nodes"] = [node]
    return json.dumps(doc)


@pytest.mark.parametrize("make", [_timed_out_24_05, _timed_out_21_08])
def test_a_reboot_past_resume_timeout_shows_down_reboot_timed_out(make: object) -> None:
    from console.store import Store
    from console.workloads import out_of_service

    assert callable(make)
    (node,) = parse_nodes(make())
    assert (node.state, node.allocation, node.reboot) == ("down", "down", "timed out")
    assert node.reason == "reboot timed out" and node.reason_since == 1732800000.0
    assert node.out_of_service
    snap = Snapshot([node], [], [], "ssh")
    readings = {r.metric: r.value for r in node_readings(snap, "t", 1732800100.0, "ssh")}
    assert readings["slurm.allocation"] == "down"
    assert readings["slurm.reason"] == "reboot timed out"
    assert readings["slurm.reboot"] == "timed out"
    assert str(readings["slurm.state"]).startswith("down")
    # the "nodes out of service" pane draws exactly this (console.workloads.out_of_service)
    store = Store()
    store.put(node_readings(snap, "t", 1732800100.0, "ssh"))
    (row,) = out_of_service(store)
    assert (row.node, row.scheduler, row.allocation, row.reason) == (
        node.name, "slurm", "down", "reboot timed out")  # fmt: skip
    assert row.since == 1732800000.0 and row.by in ("slurm", "root")


def test_the_node_card_says_the_reboot_timed_out_and_alerts_are_critical() -> None:
    from console.inventory.load import inventory_from_data
    from console.plugin import Severity
    from console.store import Store
    from plugins.slurm.card import card
    from plugins.slurm.checks import alerts

    (node,) = parse_nodes(_timed_out_24_05())
    inv = inventory_from_data(
        {"site": {"name": "t"}, "nodes": [{"nodes": node.name, "role": "cpu"}]}, None
    )
    store = Store()
    store.put(node_readings(Snapshot([node], [], [], "ssh"), "t", 1732800100.0, "ssh"))
    lines = {line.label: line for line in card(store, inv.nodes[node.name])}
    assert "timed out" in lines["reboot"].text and lines["reboot"].severity == Severity.CRITICAL
    assert lines["reason"].text.startswith("reboot timed out")
    (finding,) = alerts(store, inv)
    assert finding.severity == Severity.CRITICAL
    assert "down in Slurm: reboot timed out" in finding.message


def test_a_pending_reboot_is_requested_not_timed_out() -> None:
    from plugins.slurm.model import SlurmNode

    node = SlurmNode("n", "mixed", ("DRAIN", "REBOOT_REQUESTED"), reason="alice: fw")
    assert node.reboot == "requested" and node.allocation == "drain"
    assert SlurmNode("n", "down", ("DRAIN", "REBOOT_ISSUED")).reboot == "issued"
    # DOWN for another reason is not a timed-out reboot
    assert SlurmNode("n", "down", (), reason="Not responding").reboot is None
