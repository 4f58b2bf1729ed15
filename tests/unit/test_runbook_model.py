"""Runbook files: problems at file:line with the field, secrets refused, placeholders
checked; the library (built-ins with their plugins, site overrides); offers from alerts;
``dcc runbook list/show``."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.cli import main
from console.inventory.problems import InventoryError
from console.plugin import Finding, Plugin, Severity
from console.registry import discover
from console.wizards.runbook_library import load_library
from console.wizards.runbook_model import load_runbook, render, runbook_from_data

GOOD = """\
id: disk-full
title: Disk full
target_kind: node
answers:
  - key: "threshold:disk.used_pct:*"
    target: node
steps:
  - id: confirm
    check: rbtest.ok
    expect: fail
  - id: ask
    note: Which directory fills it?
    answer: true
  - id: clean
    action: rbtest.fix
    inputs:
      path: "{steps.ask.answer} on {node}"
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(InventoryError) as err:
        load_runbook(path)
    return [str(p) for p in err.value.problems]


def test_a_valid_runbook_loads_with_its_step_kinds_and_labels(tmp_path: Path) -> None:
    rb = load_runbook(write(tmp_path, "disk.yaml", GOOD))
    assert [s.kind for s in rb.steps] == ["check", "note", "action"]
    assert rb.steps[0].label == "rbtest.ok shows the problem"
    values = {"node": "cpu01", "steps.ask.answer": "/var/log"}
    assert render(rb.steps[2].inputs["path"], values) == "/var/log on cpu01"


def test_a_step_with_two_kinds_and_an_unknown_key_are_named_at_their_line(
    tmp_path: Path,
) -> None:
    text = GOOD.replace("    expect: fail\n", "    expect: fail\n    note: also a note\n")
    text = text.replace("    answer: true\n", "    answer: true\n    colour: red\n")
    found = problems(write(tmp_path, "bad.yaml", text))
    assert any(
        p.startswith(f"{tmp_path}/bad.yaml:") and "steps[0]" in p and "exactly one of" in p
        for p in found
    ), found
    assert any(":15: steps[1].colour: unknown key 'colour'" in p for p in found), found


def test_a_literal_secret_in_a_runbook_is_refused_with_its_line(tmp_path: Path) -> None:
    text = GOOD + "      password: hunter2\n"
    found = problems(write(tmp_path, "secret.yaml", text))
    assert any(":18: steps[2].inputs.password: a literal password" in p for p in found), found
    assert not any("hunter2" in p for p in found)


def test_placeholders_must_be_known_and_answers_come_from_earlier_notes(tmp_path: Path) -> None:
    unknown = GOOD.replace("{node}", "{hostname}")
    assert any(
        "unknown placeholder {hostname}" in p for p in problems(write(tmp_path, "a.yaml", unknown))
    )
    later = GOOD.replace("{steps.ask.answer}", "{steps.clean.answer}")
    assert any(
        "{steps.clean.answer} names no earlier note step" in p
        for p in problems(write(tmp_path, "b.yaml", later))
    )


def test_a_bad_message_pattern_and_duplicate_step_ids_are_refused() -> None:
    data = runbook_from_data({"id": "x", "title": "X", "target_kind": "node",
                              "steps": [{"id": "a", "note": "hi"}]}).model_dump()  # fmt: skip
    with pytest.raises(InventoryError, match=r"answers\[0\].message: not a valid regular"):
        runbook_from_data({**data, "answers": [{"key": "k", "message": "(unclosed"}]})
    with pytest.raises(InventoryError, match="step ids must be unique: a"):
        runbook_from_data({**data, "steps": [*data["steps"], {"id": "a", "note": "again"}]})


def plugin_with(tmp_path: Path, name: str, *files: tuple[str, str]) -> Plugin:
    paths = tuple(write(tmp_path, f, t) for f, t in files)
    return Plugin(name=name, description="test", runbooks=paths)


def test_the_site_overrides_a_built_in_by_id_and_a_broken_file_leaves_the_rest(
    tmp_path: Path,
) -> None:
    builtin = plugin_with(tmp_path, "rbtest", ("disk.yaml", GOOD))
    site = tmp_path / "site"
    site.mkdir()
    write(site, "disk.yaml", GOOD.replace("title: Disk full", "title: Disk full (our way)"))
    write(site, "broken.yaml", "id: broken\nsteps: []\n")
    write(site, "other.yaml", GOOD.replace("id: disk-full", "id: disk-other"))
    lib = load_library([builtin], site)
    entry = lib.get("disk-full")
    assert entry is not None and entry.runbook.title == "Disk full (our way)"
    assert entry.origin == "site" and entry.replaces == str(tmp_path / "disk.yaml")
    assert lib.get("disk-other") is not None and lib.get("broken") is None
    assert any("broken.yaml" in str(p) and "title" in str(p) for p in lib.problems)


def test_unknown_checks_and_actions_are_reported_against_the_registry(tmp_path: Path) -> None:
    lib = load_library(
        [plugin_with(tmp_path, "rbtest", ("disk.yaml", GOOD))], None, checks={}, actions={}
    )
    text = [str(p) for p in lib.problems]
    assert any("steps[0].check: unknown check 'rbtest.ok'" in t for t in text), text
    assert any("steps[2].action: unknown action 'rbtest.fix'" in t for t in text), text


def test_an_alert_offers_the_runbooks_that_answer_it_with_the_target_filled_in() -> None:
    lib = load_library(discover().plugins, None)
    lost = Finding(Severity.CRITICAL, "gpu007/2", "gpu007 GPU 2: lost (fallen off the bus)",
                   key="gpu.health:gpu007/2:lost", node="gpu007")  # fmt: skip
    xid = Finding(Severity.CRITICAL, "gpu007/2", "gpu007 GPU 2: XID 79 fallen off the bus",
                  key="gpu.health:gpu007/2:xid", node="gpu007")  # fmt: skip
    rack = Finding(Severity.CRITICAL, "rack:R02", "rack R02 draws 31.2 kW > budget 30 kW",
                   key="power.rack:R02")  # fmt: skip
    warn = Finding(Severity.WARNING, "rack:R02", "rack R02 draws 28 kW, 93% of budget",
                   key="power.rack:R02")  # fmt: skip
    offers = [(o.runbook.id, o.target) for o in lib.offers([lost, xid, rack, warn])]
    assert offers == [("gpu-xid79", "gpu007/2"), ("rack-over-budget", "rack:R02")]


def test_every_built_in_runbook_is_valid_and_names_only_declared_checks_and_actions() -> None:
    reg = discover()
    lib = load_library(reg.plugins, None, checks=reg.checks(), actions=reg.actions())
    assert lib.problems == []
    assert {e.runbook.id for e in lib.all()} >= {
        "gpu-xid79", "gpu-ecc-uncorrectable", "ib-link-flapping", "node-not-responding",
        "psu-lost", "service-down", "rack-over-budget",
    }  # fmt: skip
    assert {e.origin for e in lib.all()} == {"gpu", "infiniband", "power", "services"}


def test_dcc_runbook_list_and_show(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runbook", "list"]) == 0
    out = capsys.readouterr().out
    assert "gpu-xid79" in out and "answers gpu.health:*:lost" in out
    assert main(["runbook", "show", "gpu-xid79"]) == 0
    out = capsys.readouterr().out
    assert " 6. reset          action gpu.reset" in out
    assert "check slurm.drained (if slurm; within 1800s)" in out
    assert main(["runbook", "show", "nope"]) == 1
    assert "no runbook 'nope'" in capsys.readouterr().err


def test_dcc_runbook_list_reads_the_sites_runbooks_beside_its_inventory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "runbooks").mkdir()
    ours = GOOD.replace("id: disk-full", "id: service-down").replace("rbtest.", "services.")
    write(tmp_path / "runbooks", "ours.yaml", ours.replace("services.fix", "services.restart"))
    write(tmp_path / "runbooks", "bad.yaml", "id: bad\n")
    site = ["--inventory", str(tmp_path / "site.yaml"), "--audit-db", str(tmp_path / "a.db")]
    assert main([*site, "runbook", "list"]) == 1  # a problem in a file: exit 1, with file:line
    out, err = capsys.readouterr()
    assert (
        "service-down             node      3 steps  site (overrides a built-in) Disk full" in out
    )
    assert "bad.yaml" in err and "'title' is missing" in err
    assert main([*site, "runbook", "runs"]) == 0
    assert "no runbook runs yet" in capsys.readouterr().out
