"""S3 as MinIO speaks it: AWS Signature V4, and the ``services.objects`` data probe.

Drills measure an RPO by writing small objects (markers) to a MinIO (or any S3)
endpoint and listing them back after a failover. Requests are path-style
(``<endpoint>/<bucket>/<key>``) and signed with SigV4 (``s3``, the check's
region) using the check's ``s3`` credentials; the secret key is a reference
(``env:``/``file:``), read when a request is signed, never logged.

The lab's MinIO verifies the same signatures (``verify``), so a wrong key or a
tampered request is refused there as MinIO would.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

from pydantic import Field

from console.plugin import ActionContext, ActionInputs, DataProbeSpec, Target
from plugins.services.config import ServiceCheck, ServicesConfig, check_url, config_of

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_SKEW_S = 900.0
"""S3 refuses a request dated more than 15 minutes away (RequestTimeTooSkewed)."""
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/s3/aws4_request, "
    r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$"
)


class S3Error(RuntimeError):
    """The endpoint refused a request (its S3 error code in the message)."""


# --------------------------------------------------------------------------- SigV4


def _enc(text: str, keep_slash: bool) -> str:
    return quote(text, safe="-_.~" + ("/" if keep_slash else ""))


def canonical_query(pairs: Sequence[tuple[str, str]]) -> str:
    return "&".join(f"{_enc(k, False)}={_enc(v, False)}" for k, v in sorted(pairs))


def canonical_request(
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    signed: Sequence[str],
    payload_hash: str,
) -> str:
    lines = [
        method,
        _enc(path or "/", True),
        canonical_query(query),
        "".join(f"{h}:{' '.join(headers[h].split())}\n" for h in signed),
        ";".join(signed),
        payload_hash,
    ]
    return "\n".join(lines)


def signature(secret: str, date: str, region: str, amz_date: str, canonical: str) -> str:
    scope = f"{date}/{region}/s3/aws4_request"
    to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("AWS4" + secret).encode()
    for part in (date, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def sign(
    method: str,
    url: str,
    query: Sequence[tuple[str, str]],
    body: bytes,
    access_key: str,
    secret: str,
    region: str,
    now: float | None = None,
) -> dict[str, str]:
    """The headers that sign a request (Host, X-Amz-Date, X-Amz-Content-Sha256, Authorization)."""
    parts = urlsplit(url)
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    payload = hashlib.sha256(body).hexdigest()
    headers = {"host": parts.netloc, "x-amz-content-sha256": payload, "x-amz-date": amz_date}
    signed = sorted(headers)
    canonical = canonical_request(method, parts.path, query, headers, signed, payload)
    sig = signature(secret, amz_date[:8], region, amz_date, canonical)
    return {
        "Host": parts.netloc,
        "X-Amz-Date": amz_date,
        "X-Amz-Content-Sha256": payload,
        "Authorization": f"{ALGORITHM} Credential={access_key}/{amz_date[:8]}/{region}/s3/"
        f"aws4_request, SignedHeaders={';'.join(signed)}, Signature={sig}",
    }


def verify(
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
    secret_of: Callable[[str], str | None],
    now: float | None = None,
) -> str | None:
    """None when the request is signed by a known key; else the S3 error code to answer.

    ``headers`` with lower-case names.
    """
    m = _AUTH.match(headers.get("authorization", ""))
    if m is None:
        return "AccessDenied"
    access_key, date, region, signed_text, sig = m.groups()
    secret = secret_of(access_key)
    if secret is None:
        return "InvalidAccessKeyId"
    amz_date = headers.get("x-amz-date", "")
    try:
        when = time.mktime(time.strptime(amz_date, "%Y%m%dT%H%M%SZ")) - time.timezone
    except ValueError:
        return "AccessDenied"
    if abs((time.time() if now is None else now) - when) > MAX_SKEW_S or amz_date[:8] != date:
        return "RequestTimeTooSkewed"
    payload = headers.get("x-amz-content-sha256", "")
    if payload != hashlib.sha256(body).hexdigest():
        return "XAmzContentSHA256Mismatch"
    signed = signed_text.split(";")
    if any(h not in headers for h in signed):
        return "AccessDenied"
    canonical = canonical_request(method, path, query, headers, signed, payload)
    expected = signature(secret, date, region, amz_date, canonical)
    return None if hmac.compare_digest(expected, sig) else "SignatureDoesNotMatch"


def error_xml(code: str, message: str, resource: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<Resource>{resource}</Resource><RequestId>17A0000000000000</RequestId></Error>"
    )


def parse_list(body: bytes) -> tuple[list[str], str | None]:
    """Keys of a ListObjectsV2 answer, and its continuation token (None: the last page).

    Read with patterns, not an XML parser: the answer is flat, and nothing in it
    gets expanded or fetched.
    """
    text = body.decode("utf-8", errors="replace")
    if "<ListBucketResult" not in text:
        raise S3Error("not a ListObjectsV2 answer")
    keys = [html.unescape(k) for k in re.findall(r"<Key>([^<]*)</Key>", text)]
    truncated = re.search(r"<IsTruncated>true</IsTruncated>", text) is not None
    token = re.search(r"<NextContinuationToken>([^<]*)</NextContinuationToken>", text)
    return keys, html.unescape(token.group(1)) if truncated and token else None


# --------------------------------------------------------------------------- the probe


class ObjectsInputs(ActionInputs):
    bucket: str = Field(default="dcc-drills", pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    """The bucket the markers go to (created if missing)."""


def read_ref(ref: str, ctx: ActionContext) -> str:
    """A secret from ``env:NAME`` / ``file:PATH`` (never logged, never in a message)."""
    if ref.startswith("env:"):
        value = os.environ.get(ref[4:])
        if value is None:
            raise LookupError(f"environment variable {ref[4:]} is not set")
        return value
    path = ctx.inventory.resolve_path(ref.removeprefix("file:"))
    try:
        return str(path.read_text(encoding="utf-8").strip())
    except OSError as exc:
        raise LookupError(f"cannot read {path}: {exc.strerror or exc}") from None


def endpoint(check: ServiceCheck, ctx: ActionContext) -> str:
    """The S3 endpoint of a check: its health URL without the health path."""
    url = check_url(check, ctx.inventory)
    if url is None:
        raise LookupError(f"{check.name} has no HTTP address")
    parts = urlsplit(url)
    health = (check.http.path if check.http else None) or (check.entry.path if check.entry else "")
    path = parts.path
    base = path[: -len(health)] if health and path.endswith(health) else ""
    return f"{parts.scheme}://{parts.netloc}{base}"


def _check(ctx: ActionContext, target: Target) -> ServiceCheck:
    name = target.name.removeprefix("svc:")
    check = config_of_ctx(ctx).get(name)
    if check is None:
        raise LookupError(f"no service check {name!r}")
    if check.s3 is None:
        raise LookupError(f"{name}: no s3 credentials in its check (plugins.services)")
    return check


def config_of_ctx(ctx: ActionContext) -> ServicesConfig:
    cfg = ctx.config
    return cfg if isinstance(cfg, ServicesConfig) else config_of(ctx.inventory)


async def _request(
    ctx: ActionContext,
    target: Target,
    method: str,
    path: str,
    query: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
) -> Any:
    check = _check(ctx, target)
    assert check.s3 is not None
    url = endpoint(check, ctx) + path
    headers = sign(
        method, url, query, body, check.s3.access_key, read_ref(check.s3.secret_key, ctx),
        check.s3.region,
    )  # fmt: skip
    full = url + ("?" + canonical_query(query) if query else "")
    http = check.http
    return await ctx.transports.http.request(
        method,
        full,
        timeout=http.timeout if http else 5.0,
        headers=headers,
        data=body if method == "PUT" else None,
        tls_fingerprint=http.tls_fingerprint if http else None,
        ca_file=str(ctx.inventory.resolve_path(http.ca_file)) if http and http.ca_file else None,
    )


def _code(resp: Any) -> str:
    m = re.search(r"<Code>([^<]+)</Code>", resp.text() if resp.body else "")
    return m.group(1) if m else f"HTTP {resp.status}"


async def write(ctx: ActionContext, target: Target, inputs: Any, name: str, body: bytes) -> None:
    bucket = inputs.bucket
    resp = await _request(ctx, target, "PUT", f"/{bucket}/{name}", body=body)
    if resp.status == 404 and _code(resp) == "NoSuchBucket":
        made = await _request(ctx, target, "PUT", f"/{bucket}")
        if made.status not in (200, 409):
            raise S3Error(f"create bucket {bucket}: {_code(made)}")
        resp = await _request(ctx, target, "PUT", f"/{bucket}/{name}", body=body)
    if resp.status != 200:
        raise S3Error(f"PUT {bucket}/{name}: {_code(resp)}")


async def names(ctx: ActionContext, target: Target, inputs: Any, prefix: str) -> Sequence[str]:
    out: list[str] = []
    token: str | None = None
    while True:
        query = [("list-type", "2"), ("prefix", prefix)]
        if token:
            query.append(("continuation-token", token))
        resp = await _request(ctx, target, "GET", f"/{inputs.bucket}", query)
        if resp.status == 404 and _code(resp) == "NoSuchBucket":
            return out
        if resp.status != 200:
            raise S3Error(f"list {inputs.bucket}/{prefix}: {_code(resp)}")
        keys, token = parse_list(resp.body)
        out += keys
        if token is None:
            return out


async def read(ctx: ActionContext, target: Target, inputs: Any, name: str) -> bytes | None:
    resp = await _request(ctx, target, "GET", f"/{inputs.bucket}/{name}")
    if resp.status == 404:
        return None
    if resp.status != 200:
        raise S3Error(f"GET {inputs.bucket}/{name}: {_code(resp)}")
    body: bytes = resp.body
    return body


PROBES = (
    DataProbeSpec(
        id="services.objects",
        label="Objects written and listed over S3 (MinIO), SigV4-signed",
        target_kind="service",
        write=write,
        names=names,
        read=read,
        inputs=ObjectsInputs,
    ),
)
