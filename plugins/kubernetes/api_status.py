"""Kubernetes error bodies: the ``v1 Status`` the API answers a failed request with."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from console.plugin import ParseError
from plugins.kubernetes.parse import as_dict, nonempty_str, plain_int


@dataclass(frozen=True, slots=True)
class ApiStatus:
    """A ``v1 Status`` as the API answers an error (429 eviction, 404, 409, 410 ...)."""

    code: int | None
    reason: str | None
    message: str | None
    causes: tuple[tuple[str | None, str | None], ...] = ()

    def pdb_block(self, namespace: str) -> str | None:
        """``blocked by PDB ns/name (...)`` for an eviction refused by a disruption budget."""
        if self.code != 429:
            return None
        for reason, message in self.causes:
            if reason == "DisruptionBudget" and message:
                m = re.search(r"disruption budget (\S+) (.*)$", message)
                if m:
                    return f"blocked by PDB {namespace}/{m.group(1)} ({m.group(2)})"
                return f"blocked by a PDB: {message}"
        if self.message and "disruption budget" in self.message:
            return f"blocked by a PDB: {self.message}"
        return None


def parse_status(body: Any) -> ApiStatus:
    """A Status from its JSON text or object."""
    if isinstance(body, (str, bytes)):
        try:
            body = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"a Status is not JSON: {exc}") from None
    if not isinstance(body, dict) or body.get("kind") != "Status":
        raise ParseError("not a v1 Status object")
    causes = []
    for c in as_dict(body.get("details")).get("causes") or []:
        if isinstance(c, dict):
            causes.append((nonempty_str(c.get("reason")), nonempty_str(c.get("message"))))
    return ApiStatus(
        plain_int(body.get("code")),
        nonempty_str(body.get("reason")),
        nonempty_str(body.get("message")),
        tuple(causes),
    )
