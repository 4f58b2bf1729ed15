"""Each kind of inventory problem: its message names the file, the line, the field and a hint."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from console.inventory import InventoryError, apply_plugin_configs, load_inventory

BASE = """\
site:
  name: t1
rooms:
  - name: hall
    racks:
      - {name: R01, power_budget_kw: 30}
      - {name: R02, power_budget_kw: 30, units: 10}
ssh:
  user: ops
  known_hosts: kh
nodes:
  - nodes: gpu[01-04]
    role: gpu-train
    rack: R01
    u_start: 1
    u_height: 4
    bmc:
      address: "10.0.0.{num}"
      password: env:BMC
  - nodes: cpu[01-02]
    role: cpu
    rack: R02
    u_start: 1
    clusters: {slurm: train, kubernetes: k8s}
clusters:
  kubernetes:
    k8s: {context: k8s}
  slurm:
    train: {controller: cpu01}
"""


def line_of(text: str, needle: str) -> int:
    """1-based number of the first line containing ``needle``."""
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in the text")


def refuse(tmp_path: Path, text: str | bytes) -> tuple[str, InventoryError]:
    path = tmp_path / "site.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    return str(path), info.value


def assert_problem(err: InventoryError, where: str, field: str, message: str, hint: str) -> None:
    text = str(err)
    matching = [line for line in text.splitlines() if line.startswith(where)]
    assert matching, f"no problem at {where!r} in:\n{text}"
    line = matching[0]
    assert f"{where}: {field}:" in line if field else f"{where}: " in line, line
    assert message in line, line
    assert f"(hint: {hint}" in line, line


def test_the_base_inventory_loads(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(BASE)
    assert len(load_inventory(path).nodes) == 6


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    text = BASE.replace("  name: t1\n", "  name: t1\n  description: [unclosed\n")
    path, err = refuse(tmp_path, text)
    assert "YAML syntax error at line" in str(err)
    assert "column" in str(err)
    problem = err.problems[0]
    assert problem.file == path and problem.line is not None and problem.hint


def test_tab_indentation_is_named(tmp_path: Path) -> None:
    text = BASE.replace("  name: t1", "\tname: t1")
    path, err = refuse(tmp_path, text)
    assert_problem(
        err, f"{path}:2", "", "a tab is used for indentation", "YAML indents with spaces"
    )


def test_empty_file_is_refused_clearly(tmp_path: Path) -> None:
    path, err = refuse(tmp_path, "# nothing yet\n\n")
    assert str(err) == f"{path}: the file is empty (hint: start from inventory/example-site.yaml)"


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    path, err = refuse(tmp_path, BASE.encode().replace(b"name: t1", b"name: t\xff1"))
    assert_problem(err, f"{path}:2", "", "the file is not UTF-8 text", "save it as UTF-8")


def test_top_level_list_is_refused(tmp_path: Path) -> None:
    path, err = refuse(tmp_path, "- a\n- b\n")
    assert_problem(err, f"{path}:1", "", "the inventory must be a mapping", "start from")


def test_duplicate_key_is_an_error_not_last_wins(tmp_path: Path) -> None:
    text = BASE.replace("    role: cpu\n", "    role: cpu\n    role: storage\n")
    path, err = refuse(tmp_path, text)
    line = line_of(text, "role: storage")
    assert_problem(
        err,
        f"{path}:{line}",
        "nodes[1].role",
        f"the key 'role' appears twice (lines {line - 1} and {line})",
        "remove one of them",
    )


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    bomb = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        bomb.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    started = time.perf_counter()
    path, err = refuse(tmp_path, "\n".join(bomb) + "\n")
    assert time.perf_counter() - started < 1.0
    assert_problem(
        err, path, "", "aliases would expand the document", "this looks like an alias bomb"
    )


def test_alias_loop_is_refused(tmp_path: Path) -> None:
    path, err = refuse(tmp_path, "site: &s [*s]\n")
    assert_problem(err, f"{path}:1", "", "an alias refers to a node that contains it", "")


def test_unsafe_tag_is_refused(tmp_path: Path) -> None:
    text = BASE.replace("  name: t1", "  name: !!python/object/apply:os.system [id]")
    path, err = refuse(tmp_path, text)
    assert_problem(
        err,
        f"{path}:2",
        "site.name",
        "the tag '!!python/object/apply:os.system' is not allowed",
        "only plain values are accepted",
    )


def test_huge_number_is_refused(tmp_path: Path) -> None:
    text = BASE.replace("u_start: 1\n    clusters", "u_start: " + "9" * 100_000 + "\n    clusters")
    path, err = refuse(tmp_path, text)
    assert_problem(
        err, f"{path}:23", "nodes[1].u_start", "the number is too long", "write a shorter number"
    )


def test_unknown_key_suggests_the_closest(tmp_path: Path) -> None:
    text = BASE.replace("    u_height: 4", "    u_hieght: 4")
    path, err = refuse(tmp_path, text)
    line = line_of(text, "u_hieght")
    assert_problem(
        err,
        f"{path}:{line}",
        "nodes[0].u_hieght",
        "unknown key 'u_hieght'",
        "did you mean 'u_height'?",
    )


def test_wrong_type_says_what_was_expected(tmp_path: Path) -> None:
    text = BASE.replace("{name: R01, power_budget_kw: 30}", "{name: R01, power_budget_kw: lots}")
    path, err = refuse(tmp_path, text)
    assert_problem(
        err,
        f"{path}:6",
        "rooms[0].racks[0].power_budget_kw",
        "wrong type: expected a number, got 'lots'",
        "write a number",
    )


def test_missing_required_key_points_at_its_section(tmp_path: Path) -> None:
    text = BASE.replace("    train: {controller: cpu01}", "    train: {}")
    path, err = refuse(tmp_path, text)
    line = line_of(text, "train: {}")
    assert_problem(
        err,
        f"{path}:{line}",
        "clusters.slurm.train.controller",
        "the required key 'controller' is missing",
        "add 'controller:' here",
    )


def test_bad_choice_suggests_the_closest(tmp_path: Path) -> None:
    text = BASE.replace("role: gpu-train", "role: gpu-trian")
    path, err = refuse(tmp_path, text)
    assert_problem(
        err, f"{path}:13", "nodes[0].role", "must be one of", "did you mean 'gpu-train'?"
    )


def test_node_set_that_does_not_parse(tmp_path: Path) -> None:
    text = BASE.replace("nodes: gpu[01-04]", "nodes: gpu[01-4")
    path, err = refuse(tmp_path, text)
    assert_problem(
        err,
        f"{path}:12",
        "nodes[0].nodes",
        "the node set does not parse",
        "write it like gpu[001-016]",
    )


def test_invalid_host_name_in_node_set(tmp_path: Path) -> None:
    text = BASE.replace("nodes: cpu[01-02]", "nodes: cpü[01-02]")
    path, err = refuse(tmp_path, text)
    assert_problem(
        err, f"{path}:20", "nodes[1].nodes", "'cpü01' is not a valid host name", "use ASCII"
    )


def test_duplicate_node_names_both_places(tmp_path: Path) -> None:
    text = BASE.replace("nodes: cpu[01-02]", "nodes: cpu01,gpu[03-04]")
    path, err = refuse(tmp_path, text)
    assert_problem(
        err,
        f"{path}:20",
        "nodes[1].nodes",
        "node gpu[03-04] is declared twice: in nodes[0].nodes (line 12) "
        "and in nodes[1].nodes (line 20)",
        "each node belongs to exactly one group",
    )


def test_rack_not_declared(tmp_path: Path) -> None:
    text = BASE.replace("rack: R02", "rack: R2")
    path, err = refuse(tmp_path, text)
    assert_problem(
        err,
        f"{path}:22",
        "nodes[1].rack",
        "rack 'R2' is not declared under rooms",
        "did you mean 'R02'?",
    )


def test_kubernetes_cluster_not_declared(tmp_path: Path) -> None:
    text = BASE.replace("kubernetes: k8s}", "kubernetes: k9s}")
    path, err = refuse(tmp_path, text)
    assert_problem(
        err,
        f"{path}:24",
        "nodes[1].clusters.kubernetes",
        "kubernetes cluster 'k9s' is not declared under clusters.kubernetes",
        "did you mean 'k8s'?",
    )


def test_slurm_cluster_not_declared(tmp_path: Path) -> None:
    text = BASE.replace("{slurm: train,", "{slurm: training,")
    path, err = refuse(tmp_path, text)
    assert_problem(
        err,
        f"{path}:24",
        "nodes[1].clusters.slurm",
        "slurm cluster 'training' is not declared under clusters.slurm",
        "did you mean 'train'?",
    )


def test_slurm_controller_must_be_a_node(tmp_path: Path) -> None:
    text = BASE.replace("{controller: cpu01}", "{controller: cpu03}")
    path, err = refuse(tmp_path, text)
    assert_problem(
        err,
        f"{path}:29",
        "clusters.slurm.train.controller",
        "the slurm controller 'cpu03' is not a node of this inventory",
        "did you mean",
    )


def test_literal_password_is_refused_without_echoing_it(tmp_path: Path) -> None:
    text = BASE.replace("password: env:BMC", "password: hunter2")
    path, err = refuse(tmp_path, text)
    assert_problem(
        err,
        f"{path}:19",
        "nodes[0].bmc.password",
        "a literal password is not allowed",
        "use env:NAME or file:PATH",
    )
    assert "hunter2" not in str(err)


def test_literal_secret_in_a_plugin_section_is_refused(tmp_path: Path) -> None:
    text = BASE + "plugins:\n  services:\n    grafana:\n      api_token: abc123\n"
    path, err = refuse(tmp_path, text)
    line = line_of(text, "api_token")
    assert_problem(
        err,
        f"{path}:{line}",
        "plugins.services.grafana.api_token",
        "a literal token is not allowed",
        "use env:NAME or file:PATH",
    )
    assert "abc123" not in str(err)


def test_credential_field_needs_a_reference(tmp_path: Path) -> None:
    text = BASE.replace("  user: ops\n", "  user: ops\n  identity: ~/.ssh/id\n")
    path, err = refuse(tmp_path, text)
    assert_problem(
        err,
        f"{path}:10",
        "ssh.identity",
        "must be a reference to the secret",
        "use env:NAME or file:PATH",
    )


def test_u_slots_overlapping_in_a_rack(tmp_path: Path) -> None:
    text = BASE.replace("rack: R02\n    u_start: 1", "rack: R01\n    u_start: 16")
    path, err = refuse(tmp_path, text)
    assert_problem(
        err,
        f"{path}:23",
        "nodes[1].u_start",
        "cpu01 at U16-U16 overlaps gpu04 of nodes[0].u_start (line 15) in rack R01",
        "change u_start so the groups' U slots do not overlap",
    )


def test_u_slots_beyond_the_rack(tmp_path: Path) -> None:
    text = BASE.replace("rack: R02\n    u_start: 1", "rack: R02\n    u_start: 10")
    path, err = refuse(tmp_path, text)
    assert_problem(
        err,
        f"{path}:23",
        "nodes[1].u_start",
        "cpu02 would sit at U11-U11, beyond the 10 units of rack R02",
        "lower u_start",
    )


def test_u_start_without_rack(tmp_path: Path) -> None:
    text = BASE.replace("    rack: R02\n", "")
    path, err = refuse(tmp_path, text)
    assert_problem(
        err,
        f"{path}:22",
        "nodes[1].u_start",
        "u_start is set but the group has no rack",
        "add rack",
    )


def test_duplicate_rack_names(tmp_path: Path) -> None:
    text = BASE.replace("{name: R02, power", "{name: R01, power")
    path, err = refuse(tmp_path, text)
    assert_problem(
        err,
        f"{path}:7",
        "rooms[0].racks[1].name",
        "rack 'R01' is declared twice: rooms[0].racks[0].name (line 6)",
        "rack names must be unique across the site",
    )


def test_unknown_placeholder(tmp_path: Path) -> None:
    text = BASE.replace('"10.0.0.{num}"', '"10.0.0.{number}"')
    path, err = refuse(tmp_path, text)
    assert_problem(
        err,
        f"{path}:18",
        "nodes[0].bmc.address",
        "unknown placeholder {number}",
        "use {name}, {index} or {num}",
    )


def test_num_placeholder_needs_a_number_in_the_name(tmp_path: Path) -> None:
    text = BASE.replace("    rack: R02\n", "    rack: R02\n    ssh: {host: 'h{num}'}\n").replace(
        "nodes: cpu[01-02]", "nodes: alpha,cpu01"
    )
    path, err = refuse(tmp_path, text)
    assert_problem(
        err, f"{path}:23", "nodes[1].ssh.host", "{num} needs a number", "use {name} or {index}"
    )


class _Services(BaseModel):
    model_config = ConfigDict(extra="forbid")
    interval: float = 15.0


def test_plugin_section_of_a_plugin_not_installed(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(BASE + "plugins:\n  servces: {}\n")
    inventory = load_inventory(path)
    with pytest.raises(InventoryError) as info:
        apply_plugin_configs(inventory, {"services": _Services})
    assert_problem(
        info.value,
        f"{path}:31",
        "plugins.servces",
        "plugin 'servces' is not installed",
        "did you mean 'services'?",
    )


def test_plugin_section_validated_by_the_plugin_model(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(BASE + "plugins:\n  services:\n    interval: 15\n    intreval: 3\n")
    inventory = load_inventory(path)
    with pytest.raises(InventoryError) as info:
        apply_plugin_configs(inventory, {"services": _Services})
    assert_problem(
        info.value,
        f"{path}:33",
        "plugins.services.intreval",
        "unknown key 'intreval'",
        "did you mean 'interval'?",
    )
