"""The scorecard checklist and the inventory's backups: problems name file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.filtering import parse_filter
from console.inventory import InventoryError, load_inventory
from console.registry import discover
from console.wizards.drill_model import default_catalogue, load_catalogue
from console.wizards.scorecard_model import (
    DEFAULT_CHECKLIST,
    check_references,
    load_checklist,
    site_checklist,
)

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "inventory" / "demo.yaml"


def problems_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "card.yaml"
    path.write_text(text)
    with pytest.raises(InventoryError) as err:
        load_checklist(path)
    return [str(p) for p in err.value.problems]


def test_the_default_checklist_is_the_seeds_three_phases_and_names_only_installed_checks() -> None:
    checklist = load_checklist(DEFAULT_CHECKLIST)
    assert [p.id for p in checklist.doc.phases] == ["base", "platform", "production"]
    inventory = load_inventory(DEMO)
    scenarios = [d.id for d in load_catalogue(default_catalogue(None)).drills]
    problems = check_references(
        checklist, discover().checks(), scenarios, lambda t: parse_filter(t, inventory)
    )
    assert problems == []
    kinds = {i.kind for p in checklist.doc.phases for i in p.items}
    assert kinds == {"check", "racked", "backups", "drills", "alerts", "manual"}


def test_an_item_with_two_kinds_is_refused_at_its_line(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        "phases:\n"
        "  - id: base\n"
        "    title: Base\n"
        "    items:\n"
        "      - id: bmc\n"
        "        title: BMCs\n"
        "        check: power.bmc_answering\n"
        "        manual: true\n",
    )
    assert len(problems) == 1
    assert problems[0].startswith(f"{tmp_path / 'card.yaml'}:5: phases[0].items[0]: ")
    assert "give exactly one of check, racked, backups, drills, alerts, manual" in problems[0]


def test_a_typo_and_a_bad_id_are_reported_each_with_its_line_and_field(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        "phases:\n"
        "  - id: base\n"
        "    title: Base\n"
        "    items:\n"
        "      - id: Bad Id\n"
        "        title: t\n"
        "        manual: true\n"
        "      - id: ok\n"
        "        title: t\n"
        "        chek: gpu.healthy\n",
    )
    text = "\n".join(problems)
    assert ":5: phases[0].items[0].id:" in text
    assert ":10: phases[0].items[1].chek:" in text


def test_targets_on_a_manual_item_and_duplicate_ids_are_refused(tmp_path: Path) -> None:
    (problem,) = problems_of(
        tmp_path,
        "phases:\n"
        "  - {id: a, title: A, items: [{id: x, title: t, manual: true, targets: gpu01}]}\n",
    )
    assert ":2: phases[0].items[0]: targets belong to a 'check' item" in problem
    (problem,) = problems_of(
        tmp_path,
        "phases:\n"
        "  - {id: a, title: A, items: [{id: x, title: t, manual: true}]}\n"
        "  - {id: b, title: B, items: [{id: x, title: t, racked: true}]}\n",
    )
    assert "item ids must be unique: x" in problem


def test_unknown_checks_scenarios_and_node_groups_are_named_with_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "card.yaml"
    path.write_text(
        "phases:\n"
        "  - id: base\n"
        "    title: Base\n"
        "    items:\n"
        "      - {id: a, title: t, check: gpu.healthyy}\n"
        "      - {id: b, title: t, check: gpu.healthy, targets: '@rak:R01'}\n"
        "      - {id: c, title: t, drills: {scenarios: [minio-nod]}}\n"
    )
    checklist = load_checklist(path)
    inventory = load_inventory(DEMO)
    problems = [
        str(p)
        for p in check_references(
            checklist,
            discover().checks(),
            ["minio-node"],
            lambda t: parse_filter(t, inventory),
        )
    ]
    assert problems[0] == (
        f"{path}:5: phases[0].items[0].check: unknown check 'gpu.healthyy' "
        "(hint: did you mean 'gpu.healthy'?)"
    )
    assert problems[1].startswith(f"{path}:6: phases[0].items[1].targets: @rak:R01: unknown group")
    assert problems[2] == (
        f"{path}:7: phases[0].items[2].drills.scenarios[0]: no drill scenario 'minio-nod' "
        "in the catalogue (hint: did you mean 'minio-node'?)"
    )


def test_a_sites_own_checklist_replaces_the_default_beside_its_inventory(tmp_path: Path) -> None:
    site = tmp_path / "prod.yaml"
    assert site_checklist(site) == DEFAULT_CHECKLIST
    own = tmp_path / "scorecard" / "prod.yaml"
    own.parent.mkdir()
    own.write_text("phases: [{id: a, title: A, items: [{id: x, title: t, manual: true}]}]\n")
    assert site_checklist(site) == own
    assert site_checklist(site, demo=True) == DEFAULT_CHECKLIST


INVENTORY = """\
site: {name: t}
ssh: {user: ops}
nodes:
  - {nodes: "cpu01", role: cpu}
backups:
  - {name: etcd, covers: Kubernetes etcd, schedule: daily, destination: "s3://b/etcd",
     retention_days: 14, restore_tested: 2026-11-01}
  - {name: etcd, covers: again, schedule: daily, destination: x, retention_days: 1}
  - name: gitlab
    covers: GitLab
    schedule: daily
    destination: "s3://b/gitlab"
    retention_days: 0
    restore_tested: last week
"""


def test_backups_in_the_inventory_are_validated_with_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(INVENTORY)
    with pytest.raises(InventoryError) as err:
        load_inventory(path)
    text = "\n".join(str(p) for p in err.value.problems)
    assert f"{path}:13: backups[2].retention_days:" in text
    assert f"{path}:14: backups[2].restore_tested:" in text
    twice = path.with_name("twice.yaml")
    twice.write_text(INVENTORY.split("  - name: gitlab")[0])
    with pytest.raises(InventoryError) as err:
        load_inventory(twice)
    assert "backup names must be unique: etcd" in str(err.value)
    good = path.with_name("good.yaml")
    good.write_text(INVENTORY.split("  - {name: etcd, covers: again")[0])
    (backup,) = load_inventory(good).doc.backups
    assert backup.restore_tested is not None and backup.restore_tested.isoformat() == "2026-11-01"
