"""Resolution: node sets expanded, SSH defaults overlaid, templates filled, paths absolute."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from console.inventory import (
    InventoryError,
    apply_plugin_configs,
    inventory_from_data,
    load_inventory,
)

REPO = Path(__file__).resolve().parents[2]

SITE = """\
site: {name: t1}
rooms:
  - name: hall
    racks: [{name: R01, power_budget_kw: 30}]
ssh:
  port: 2222
  user: ops
  identity: file:keys/id_ed25519
  known_hosts: known_hosts
nodes:
  - nodes: gpu[007-009]
    role: gpu-train
    rack: R01
    u_start: 5
    u_height: 4
    ssh: {host: "10.1.0.{num}", user: admin}
    bmc: {address: "bmc-{name}-{index}", password: file:secrets/bmc}
  - nodes: cpu01
    role: cpu
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(text)
    return path


def test_templates_fill_name_index_and_num(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, SITE))
    assert [n.name for n in inv.nodes.values()] == ["gpu007", "gpu008", "gpu009", "cpu01"]
    assert inv.nodes["gpu008"].ssh.host == "10.1.0.8"
    assert inv.nodes["gpu008"].index == 2
    bmc = inv.nodes["gpu009"].bmc
    assert bmc is not None and bmc.address == "bmc-gpu009-3"


def test_group_ssh_overlays_only_the_fields_it_sets(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, SITE))
    gpu = inv.nodes["gpu007"].ssh
    assert (gpu.user, gpu.port) == ("admin", 2222)
    cpu = inv.nodes["cpu01"].ssh
    assert (cpu.host, cpu.user, cpu.port) == ("cpu01", "ops", 2222)


def test_default_host_is_the_node_name(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, SITE))
    assert inv.nodes["cpu01"].ssh.host == "cpu01"


def test_paths_become_absolute_relative_to_the_inventory(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, SITE))
    ssh = inv.nodes["cpu01"].ssh
    assert ssh.known_hosts == str(tmp_path / "known_hosts")
    assert ssh.identity == f"file:{tmp_path / 'keys' / 'id_ed25519'}"
    bmc = inv.nodes["gpu007"].bmc
    assert bmc is not None and bmc.password == f"file:{tmp_path / 'secrets' / 'bmc'}"


def test_env_references_stay_as_written(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, SITE.replace("file:secrets/bmc", "env:BMC_PW")))
    bmc = inv.nodes["gpu007"].bmc
    assert bmc is not None and bmc.password == "env:BMC_PW"


def test_u_slots_stack_by_u_height(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, SITE))
    assert [inv.nodes[n].u for n in ("gpu007", "gpu008", "gpu009")] == [5, 9, 13]
    assert inv.nodes["gpu007"].room == "hall" and inv.nodes["gpu007"].rack == "R01"
    assert inv.nodes["cpu01"].u is None and inv.nodes["cpu01"].rack is None
    assert [n.name for n in inv.nodes_in_rack("R01")] == ["gpu007", "gpu008", "gpu009"]


def test_crlf_and_bom_load_with_the_right_lines(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + SITE.replace("\n", "\r\n").encode())
    assert len(load_inventory(path).nodes) == 4
    path.write_bytes(
        b"\xef\xbb\xbf" + SITE.replace("role: cpu", "role: cpx").replace("\n", "\r\n").encode()
    )
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    assert f"{path}:19: nodes[1].role:" in str(info.value)


def test_inventory_from_data_resolves_like_a_file(tmp_path: Path) -> None:
    data = {
        "site": {"name": "lab"},
        "ssh": {"known_hosts": "kh"},
        "nodes": [{"nodes": "n[1-3]", "role": "cpu", "ssh": {"host": "127.0.0.1", "port": 4000}}],
    }
    inv = inventory_from_data(data, tmp_path / "lab.yaml")
    assert list(inv.nodes) == ["n1", "n2", "n3"]
    assert inv.nodes["n2"].ssh.known_hosts == str(tmp_path / "kh")
    data["nodes"][0]["bmc"] = {"address": "x", "password": "plain"}  # type: ignore[index]
    with pytest.raises(InventoryError, match=r"nodes\[0\]\.bmc\.password: a literal password"):
        inventory_from_data(data, None)


def test_the_shipped_inventories_load() -> None:
    demo = load_inventory(REPO / "inventory" / "demo.yaml")
    assert demo.demo and demo.site.name == "dc-demo" and len(demo.nodes) == 16
    assert len(list(demo.racks())) == 4
    example = load_inventory(REPO / "inventory" / "example-site.yaml")
    assert not example.demo
    roles = [n.role for n in example.nodes.values()]
    assert (
        roles.count("gpu-train"),
        roles.count("gpu-infer"),
        roles.count("cpu"),
        roles.count("storage"),
    ) == (
        16,
        4,
        32,
        2,
    )
    gpu = example.nodes["gpu007"]
    assert gpu.hardware.gpu_count == 8 and gpu.bmc is not None and gpu.bmc.address == "10.10.101.7"


def test_a_thousand_nodes_load_fast(tmp_path: Path) -> None:
    racks = "\n".join(f"      - {{name: R{r:03d}, power_budget_kw: 40}}" for r in range(125))
    groups = "\n".join(
        f"  - {{nodes: 'n[{r * 8 + 1:04d}-{r * 8 + 8:04d}]', role: cpu, rack: R{r:03d}, u_start: 1,"
        f" ssh: {{host: '10.0.{r}.{{num}}'}}, bmc: {{address: 'b-{{name}}', password: env:P}}}}"
        for r in range(125)
    )
    path = write(
        tmp_path,
        f"site: {{name: big}}\nrooms:\n  - name: h\n    racks:\n{racks}\nnodes:\n{groups}\n",
    )
    started = time.perf_counter()
    inv = load_inventory(path)
    elapsed = time.perf_counter() - started
    assert len(inv.nodes) == 1000
    assert elapsed < 1.0, elapsed


class _Services(BaseModel):
    model_config = ConfigDict(extra="forbid")
    interval: float = 15.0


class _Needs(BaseModel):
    url: str


def test_plugin_configs_are_validated_and_defaulted(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, SITE + "plugins:\n  services: {interval: 5}\n"))
    out = apply_plugin_configs(
        inv, {"services": _Services, "other": _Services, "needs": _Needs, "bare": None}
    )
    assert out.plugin_configs["services"] == _Services(interval=5)
    assert out.plugin_configs["other"] == _Services()
    assert "needs" not in out.plugin_configs and "bare" not in out.plugin_configs
    assert out.nodes == inv.nodes and inv.plugin_configs == {}
