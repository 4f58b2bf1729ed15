"""Redaction: secrets never reach the audit log, the screen or a log file.

Redaction is by key name (anything that looks like a credential) and by the
field names an action declares secret (``ActionSpec.secret_inputs``). Free
text (command output, error messages) is scrubbed of known secret values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[redacted]"

SECRET_WORDS: tuple[str, ...] = (
    "password",
    "passwd",
    "secret",
    "token",
    "passphrase",
    "api_key",
    "apikey",
    "authorization",
    "cookie",
    "credential",
    "private_key",
    "privatekey",
)
"""Substrings of a normalised key that mark its value secret."""

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")


def _normalise(key: str) -> str:
    # "X-Auth-Token" -> "x_auth_token"; "apiKey" -> "api_key".
    return _NON_WORD.sub("_", _CAMEL.sub("_", key).lower()).strip("_")


def is_secret_key(key: str, secret_fields: Iterable[str] = ()) -> bool:
    """True when a key's value must never be recorded."""
    if key in set(secret_fields):
        return True
    norm = _normalise(key)
    if any(word in norm for word in SECRET_WORDS):
        return True
    # "auth" alone would also match "author"; require it as a whole word.
    return "auth" in norm.split("_")


def _redact_value(value: Any, secret_fields: frozenset[str]) -> Any:
    if isinstance(value, Mapping):
        return redact(value, secret_fields)
    if isinstance(value, list | tuple):
        return [_redact_value(v, secret_fields) for v in value]
    return value


def redact(params: Mapping[str, Any], secret_fields: Iterable[str] = ()) -> dict[str, Any]:
    """A copy of ``params`` with the values of secret-looking keys replaced.

    Nested mappings and lists are walked; tuples become lists (JSON has no
    tuples). ``secret_fields`` are matched exactly, at any depth.
    """
    fields = frozenset(secret_fields)
    out: dict[str, Any] = {}
    for key, value in params.items():
        k = str(key)
        if is_secret_key(k, fields):
            out[k] = REDACTED
        else:
            out[k] = _redact_value(value, fields)
    return out


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each (non-empty) secret replaced.

    Longest secrets first, so a secret that contains another is removed whole.
    """
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def secret_values(params: Mapping[str, Any], secret_fields: Iterable[str] = ()) -> list[str]:
    """The string values that ``redact`` would hide, for scrubbing free text with them."""
    fields = frozenset(secret_fields)
    found: list[str] = []

    def walk(value: Any, secret: bool) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(v, secret or is_secret_key(str(k), fields))
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v, secret)
        elif secret and value is not None:
            # pydantic SecretStr/SecretBytes print as stars; scrub the real value.
            reveal = getattr(value, "get_secret_value", None)
            text = str(reveal() if callable(reveal) else value)
            if text:
                found.append(text)

    walk(params, False)
    return found
