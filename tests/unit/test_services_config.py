"""The services section of the inventory: what it accepts and how it says no."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from console.inventory.load import inventory_from_data
from plugins.services.config import ServicesConfig, check_url, node_problems, tcp_address


def inventory():
    return inventory_from_data(
        {
            "site": {"name": "t"},
            "ssh": {"user": "ops"},
            "nodes": [{"nodes": "stor[01-02]", "role": "storage", "ssh": {"host": "10.0.4.{num}"}}],
        },
        None,
    )


def errors(section: dict) -> str:
    with pytest.raises(ValidationError) as info:
        ServicesConfig.model_validate(section)
    return str(info.value)


def test_a_catalogue_service_alone_means_its_http_check_on_the_nodes_address():
    cfg = ServicesConfig.model_validate(
        {"checks": [{"name": "minio", "service": "minio", "node": "stor01"}]}
    )
    (check,) = cfg.checks
    assert check.http is not None and check.tcp is None
    assert check_url(check, inventory()) == "http://10.0.4.1:9000/minio/health/live"
    assert check.target_name == "svc:minio"


def test_port_path_scheme_and_url_override_the_catalogue():
    cfg = ServicesConfig.model_validate(
        {
            "checks": [
                {
                    "name": "a",
                    "service": "minio",
                    "node": "stor02",
                    "http": {"scheme": "https", "port": 9443, "path": "/minio/health/cluster"},
                },
                {
                    "name": "b",
                    "service": "grafana",
                    "http": {"url": "https://g.example/api/health"},
                },
                {"name": "c", "node": "stor01", "tcp": {"port": 5432}},
            ]
        }
    )
    a, b, c = cfg.checks
    inv = inventory()
    assert check_url(a, inv) == "https://10.0.4.2:9443/minio/health/cluster"
    assert check_url(b, inv) == "https://g.example/api/health"
    assert tcp_address(c, inv) == ("10.0.4.1", 5432) and check_url(c, inv) is None


def test_unknown_service_lists_the_catalogue():
    text = errors({"checks": [{"name": "x", "service": "minoi", "node": "stor01"}]})
    assert "checks.0.service" in text
    assert "unknown service 'minoi'" in text and "minio" in text and "elasticsearch" in text


def test_unknown_field_is_refused_with_its_name():
    text = errors({"checks": [{"name": "x", "service": "minio", "node": "stor01", "prot": 1}]})
    assert "checks.0.prot" in text and "Extra inputs are not permitted" in text


def test_duplicate_names_are_refused():
    check = {"name": "m", "service": "minio", "node": "stor01"}
    assert "two checks are named 'm'" in errors({"checks": [check, check]})


def test_a_check_must_check_something_and_say_where():
    assert "needs http, tcp or systemd" in errors({"checks": [{"name": "x"}]})
    assert "needs a node" in errors({"checks": [{"name": "x", "service": "minio"}]})
    assert "systemd needs the node" in errors(
        {"checks": [{"name": "x", "systemd": {"unit": "minio"}}]}
    )
    assert "catalogue or both port and path" in errors(
        {"checks": [{"name": "x", "node": "stor01", "http": {"port": 80}}]}
    )


def test_bad_values_name_their_field():
    text = errors({"checks": [{"name": "x", "http": {"url": "ftp://h/"}}]})
    assert "checks.0.http.url" in text and "not an http:// or https:// URL" in text
    text = errors({"checks": [{"name": "x", "node": "n", "tcp": {"port": 70000}}]})
    assert "checks.0.tcp.port" in text
    text = errors({"checks": [{"name": "x", "node": "n", "systemd": {"unit": "a b;reboot"}}]})
    assert "checks.0.systemd.unit" in text and "not a systemd unit name" in text
    text = errors(
        {"checks": [{"name": "x", "http": {"url": "https://h/", "tls_fingerprint": "AB"}}]}
    )
    assert "tls_fingerprint" in text


def test_unit_names_get_the_service_suffix():
    cfg = ServicesConfig.model_validate(
        {
            "checks": [
                {"name": "x", "node": "stor01", "systemd": {"unit": "minio"}},
                {"name": "y", "node": "stor01", "systemd": {"unit": "backup.timer"}},
            ]
        }
    )
    assert [c.systemd.unit for c in cfg.checks if c.systemd] == ["minio.service", "backup.timer"]


def test_dangling_node_references_are_reported_by_name():
    cfg = ServicesConfig.model_validate(
        {"checks": [{"name": "m", "service": "minio", "node": "stor09"}]}
    )
    assert node_problems(cfg, inventory()) == [
        "plugins.services.checks[0] (m): node 'stor09' is not in the inventory"
    ]
    with pytest.raises(ValidationError, match="node 'stor09' is not in the inventory"):
        ServicesConfig.model_validate(
            {"checks": [{"name": "m", "service": "minio", "node": "stor09"}]},
            context={"nodes": {"stor01", "stor02"}},
        )


def test_the_shipped_inventories_validate_and_reference_real_nodes():
    from pathlib import Path

    from console.inventory.load import load_inventory

    root = Path(__file__).resolve().parents[2] / "inventory"
    for name in ("demo.yaml", "example-site.yaml"):
        inv = load_inventory(root / name)
        cfg = ServicesConfig.model_validate(inv.doc.plugins["services"])
        assert cfg.checks and node_problems(cfg, inv) == [], name
