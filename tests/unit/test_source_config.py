"""Choosing a source in the inventory: servers, references, credentials, and the errors'
file:line:field."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.inventory import InventoryError, apply_plugin_configs, load_inventory
from console.inventory.model import PrometheusSource
from console.sources.config import resolve_server
from plugins.gpu.collect import full_targets, node_targets
from plugins.gpu.config import GpuConfig
from plugins.gpu.prom import prom_targets
from plugins.power.config import PowerConfig

BASE = """\
site: {name: t}
nodes:
  - {nodes: "gpu[01-02]", role: gpu-train, hardware: {gpu_count: 8}}
"""
MODELS = {"gpu": GpuConfig, "power": PowerConfig}


def load(tmp_path: Path, text: str) -> tuple[Path, object]:
    path = tmp_path / "site.yaml"
    path.write_text(BASE + text, encoding="utf-8")
    return path, apply_plugin_configs(load_inventory(path), MODELS)


def refused(tmp_path: Path, text: str) -> tuple[Path, str]:
    path = tmp_path / "site.yaml"
    path.write_text(BASE + text, encoding="utf-8")
    with pytest.raises(InventoryError) as err:
        apply_plugin_configs(load_inventory(path), MODELS)
    return path, str(err.value)


def test_source_prometheus_reads_the_top_level_block_and_switches_the_collectors(tmp_path):
    _, inv = load(
        tmp_path,
        "prometheus: {url: 'https://prom.site:9090/', ca_file: ca.pem, token: env:PROM}\n"
        "plugins:\n  gpu: {source: prometheus, prometheus_interval: 30}\n",
    )
    cfg = inv.plugin_configs["gpu"]  # type: ignore[attr-defined]
    name, server = resolve_server(inv, cfg)  # type: ignore[arg-type]
    assert name == "default" and server.url == "https://prom.site:9090"
    assert [t.attrs["interval"] for t in prom_targets(inv, cfg)] == [30.0, 30.0]  # type: ignore[arg-type]
    assert node_targets(inv, cfg) == [] and full_targets(inv, cfg) == []  # type: ignore[arg-type]


def test_a_named_server_and_an_inline_one(tmp_path):
    _, inv = load(
        tmp_path,
        "prometheus_servers:\n  thanos: {url: 'http://thanos:10902'}\n"
        "plugins:\n  gpu: {source: prometheus, prometheus: thanos}\n"
        "  power: {source: prometheus, prometheus: {url: 'http://10.0.0.9:9090'}}\n",
    )
    assert resolve_server(inv, inv.plugin_configs["gpu"])[1].url == "http://thanos:10902"  # type: ignore[attr-defined,arg-type]
    name, server = resolve_server(inv, inv.plugin_configs["power"])  # type: ignore[attr-defined,arg-type]
    assert name == "inline" and server.url == "http://10.0.0.9:9090"


def test_a_dangling_server_name_is_refused_with_its_line(tmp_path):
    path, text = refused(
        tmp_path,
        "prometheus_servers:\n  thanos: {url: 'http://thanos:10902'}\n"
        "plugins:\n  gpu:\n    source: prometheus\n    prometheus: thanoss\n",
    )
    assert f"{path}:9: plugins.gpu.prometheus:" in text
    assert "no Prometheus server named 'thanoss' (declared: thanos)" in text


def test_source_prometheus_without_any_server_is_refused(tmp_path):
    path, text = refused(tmp_path, "plugins:\n  power:\n    source: prometheus\n")
    assert f"{path}:5: plugins.power" in text
    assert "source: prometheus needs a server" in text


def test_credentials_over_plain_http_are_refused(tmp_path):
    path = tmp_path / "site.yaml"
    path.write_text(BASE + "prometheus: {url: 'http://prom:9090', token: env:PROM}\n")
    with pytest.raises(InventoryError) as err:
        load_inventory(path)
    assert f"{path}:4: prometheus" in str(err.value)
    assert "a token or password is sent only over https" in str(err.value)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url": "https://u:p@prom:9090"}, "without user:password@"),
        ({"url": "prom:9090"}, "http(s)://host"),
        ({"url": "https://p", "token": "env:T", "username": "u"}, "either token"),
        ({"url": "https://p", "password": "env:P"}, "username is not"),
        ({"url": "https://p", "token": "hunter2"}, "a credential must be a reference"),
    ],
)
def test_prometheus_server_settings_that_are_refused(fields, message):
    with pytest.raises(ValueError) as err:
        PrometheusSource.model_validate(fields)
    assert message in str(err.value)


def test_the_direct_source_stays_the_default(tmp_path):
    _, inv = load(tmp_path, "")
    cfg = inv.plugin_configs["gpu"]  # type: ignore[attr-defined]
    assert cfg.source == "ssh" and prom_targets(inv, cfg) == []  # type: ignore[arg-type]
    assert len(node_targets(inv, cfg)) == 2  # type: ignore[arg-type]
