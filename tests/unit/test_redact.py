"""Redaction of secrets from parameters and free text."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from console.redact import REDACTED, is_secret_key, redact, redact_text, secret_values


@pytest.mark.parametrize(
    "key",
    [
        "password", "bmc_password", "Passwd", "client_secret", "token", "X-Auth-Token",
        "ssh_passphrase", "api_key", "apiKey", "APIKEY", "auth", "Authorization", "cookie",
        "Set-Cookie", "credentials", "private_key", "privateKey",
    ],
)  # fmt: skip
def test_secret_looking_keys_are_redacted(key: str) -> None:
    assert is_secret_key(key)
    assert redact({key: "s3cr3t", "unit": "minio"}) == {key: REDACTED, "unit": "minio"}


@pytest.mark.parametrize("key", ["unit", "node", "author", "reason", "count", "host"])
def test_ordinary_keys_are_kept(key: str) -> None:
    assert not is_secret_key(key)
    assert redact({key: "v"}) == {key: "v"}


def test_nested_mappings_and_lists_are_walked() -> None:
    params = {
        "nodes": ["gpu001", {"name": "gpu002", "bmc": {"password": "p", "user": "admin"}}],
        "headers": {"Authorization": "Bearer abc"},
        "n": 3,
    }
    assert redact(params) == {
        "nodes": ["gpu001", {"name": "gpu002", "bmc": {"password": REDACTED, "user": "admin"}}],
        "headers": {"Authorization": REDACTED},
        "n": 3,
    }


def test_declared_secret_fields_are_redacted_at_any_depth() -> None:
    assert redact({"pin": "1234", "x": {"pin": "5678"}, "y": 1}, secret_fields=["pin"]) == {
        "pin": REDACTED,
        "x": {"pin": REDACTED},
        "y": 1,
    }


def test_redact_does_not_change_its_argument() -> None:
    params = {"password": "p", "nested": {"token": "t"}}
    redact(params)
    assert params == {"password": "p", "nested": {"token": "t"}}


def test_redact_text_removes_every_occurrence_longest_first() -> None:
    text = "login with hunter2 failed; hunter2x is not hunter2"
    assert redact_text(text, ["hunter2", "hunter2x", ""]) == (
        f"login with {REDACTED} failed; {REDACTED} is not {REDACTED}"
    )
    assert redact_text("nothing here", []) == "nothing here"


def test_secret_values_reveals_what_to_scrub_including_pydantic_secrets() -> None:
    params = {"password": SecretStr("real-one"), "pin": 1234, "unit": "minio", "token": None}
    assert sorted(secret_values(params, ["pin"])) == ["1234", "real-one"]
