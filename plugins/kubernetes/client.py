"""kubernetes-asyncio clients from a cluster's kubeconfig and context, and raw JSON calls.

Objects are read as raw JSON (``_preload_content=False``) and parsed by
the ``plugins.kubernetes.parse*`` modules: one parser for lists, watches and tests, and
no dependence on the client's model classes for fields we read.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from plugins.kubernetes import sdk
from plugins.kubernetes.api_status import ApiStatus, parse_status
from plugins.kubernetes.config import ClusterRef
from plugins.kubernetes.parse import ParseError

if TYPE_CHECKING:  # pragma: no cover
    from kubernetes_asyncio import client
    from kubernetes_asyncio.client.exceptions import ApiException

__all__ = ["api_client", "describe_api", "raw_json", "status_of"]


async def api_client(ref: ClusterRef) -> client.ApiClient:
    """A client for the cluster. The kubeconfig is read, never rewritten (persist_config=False)."""
    cfg = type.__call__(sdk.client.Configuration)
    await sdk.config.load_kube_config(
        config_file=str(ref.kubeconfig) if ref.kubeconfig else None,
        context=ref.context,
        client_configuration=cfg,
        persist_config=False,
    )
    api: client.ApiClient = sdk.client.ApiClient(configuration=cfg)
    return api


def describe_api(api: client.ApiClient, ref: ClusterRef) -> str:
    """``cluster k8s-demo (context k8s-demo, https://127.0.0.1:40123)``, for previews."""
    host = getattr(api.configuration, "host", "?")
    ctx = ref.context or "current context"
    return f"cluster {ref.name} ({ctx}, {host})"


async def raw_json(coro: Any) -> Any:
    """Await a client call made with ``_preload_content=False`` and return its JSON body."""
    resp = await coro
    try:
        body = await resp.read()
    finally:
        resp.release()
    status = getattr(resp, "status", 200)
    if status >= 400:
        # Without preloading the client does not raise: do what it would.
        exc = sdk.ApiException(status=status, reason=getattr(resp, "reason", None))
        exc.body = body.decode("utf-8", "replace")
        raise exc
    try:
        return json.loads(body)
    except ValueError as exc:
        raise ParseError(f"the API answered something that is not JSON: {exc}") from None


def status_of(exc: ApiException) -> ApiStatus:
    """The v1 Status an error carried (or what we know without one)."""
    try:
        return parse_status(exc.body or "")
    except ParseError:
        return ApiStatus(exc.status, exc.reason, None)
