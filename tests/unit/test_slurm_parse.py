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
    for fn in (parse_nodes, parse_jobs, parse_partitions_text, parse_scontrol_jobs, parse_snapshot):
        with contextlib.suppress(ParseError):
            fn(text)
