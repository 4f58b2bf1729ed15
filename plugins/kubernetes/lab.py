"""The Kubernetes emulation for the lab: one HTTPS API server per cluster of the inventory.

Each cluster in ``clusters.kubernetes`` gets an aiohttp server on loopback
with a lab CA, a bearer token and a kubeconfig (``<state>/kubernetes/<name>.kubeconfig``);
``rewrite_inventory`` points the cluster at it, so kubernetes-asyncio talks
to it exactly as to a real apiserver. The objects and their dynamics are in
``lab_sim.py``; the store, lists and watches in ``lab_api.py``.

Faults (target: a cluster name, or a node):

- ``kubernetes.watch_drop`` (cluster): every open watch is cut now.
- ``kubernetes.compact`` (cluster): history compacted and watches cut; a
  resumed watch gets 410 Gone and must relist.
- ``kubernetes.api_down`` (cluster): every request answers 503.
- ``kubernetes.node_not_ready`` (node): the kubelet reports NotReady.
- ``kubernetes.device_plugin_crash`` (node): the NVIDIA device plugin crash-loops and
  the node's allocatable GPUs drop to 0.
- ``kubernetes.control_plane_down`` (node): the node's control plane (apiserver,
  etcd member) and kubelet stop.

The API's address is a load-balanced VIP over three control-plane nodes (``lab_vip.py``).

A powered-off host (``host.power_off``) becomes Ready=Unknown; after the pods'
``tolerationSeconds`` (``toleration_s``, 300 s as in a real cluster) the taint
manager evicts them: they stay Terminating and their controllers replace them.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from console.lab.tls import ensure_cert, server_context
from console.plugin import CommandReply, LabHostContext
from plugins.kubernetes.lab_api import ApiStore, truthy
from plugins.kubernetes.lab_disruption import disruption_target
from plugins.kubernetes.lab_objects import pdb_429, status
from plugins.kubernetes.lab_sim import ClusterSim
from plugins.kubernetes.lab_vip import CONTROL_PLANE_SIZE, ApiVip
from plugins.kubernetes.parse import format_time

log = logging.getLogger(__name__)

FAULTS = {
    "kubernetes.watch_drop": "every open watch of the cluster is cut",
    "kubernetes.compact": "history compacted and watches cut: resumed watches get 410 Gone",
    "kubernetes.api_down": "the cluster's API answers 503",
    "kubernetes.node_not_ready": "the node's kubelet reports NotReady",
    "kubernetes.device_plugin_crash": "the device plugin crash-loops; allocatable GPUs 0",
    "kubernetes.control_plane_down": "the node's apiserver, etcd member and kubelet stop",
}


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """JSON merge patch (RFC 7386): dicts merge, null deletes."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


class LabCluster:
    """One cluster's API server."""

    def __init__(self, name: str, context: str, sim: ClusterSim, store: ApiStore) -> None:
        self.name = name
        self.context = context
        self.sim = sim
        self.store = store
        self.token = secrets.token_urlsafe(24)
        self.kubeconfig: Path | None = None
        self.url = ""
        self.now: Callable[[], float] = lambda: 0.0
        self.gate: Callable[[], str | None] = lambda: None
        """``drop`` (nobody holds the VIP), ``no-quorum``, or None: the API answers."""

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        r.add_get("/version", self._version)
        r.add_get("/api/v1/nodes", self._list("nodes", "NodeList", "v1"))
        r.add_get("/api/v1/nodes/{name}", self._get_node)
        r.add_patch("/api/v1/nodes/{name}", self._patch_node)
        r.add_get("/api/v1/pods", self._list("pods", "PodList", "v1"))
        r.add_get("/api/v1/namespaces/{ns}/pods", self._list("pods", "PodList", "v1"))
        r.add_get("/api/v1/namespaces/{ns}/pods/{name}", self._get_pod)
        r.add_delete("/api/v1/namespaces/{ns}/pods/{name}", self._delete_pod)
        r.add_post("/api/v1/namespaces/{ns}/pods/{name}/eviction", self._evict)
        r.add_get("/api/v1/events", self._list("events", "EventList", "v1"))
        r.add_get("/api/v1/namespaces/{ns}/events", self._list("events", "EventList", "v1"))
        pdbs = self._list("pdbs", "PodDisruptionBudgetList", "policy/v1")
        r.add_get("/apis/policy/v1/poddisruptionbudgets", pdbs)
        r.add_get("/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets", pdbs)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        gate = self.gate()
        if gate == "drop":
            # The load balancer still sends to the lost apiserver: its own 503 page.
            return web.Response(
                status=503,
                text="<html><body><h1>503 Service Unavailable</h1>\nNo server is available "
                "to handle this request.\n</body></html>\n",
                content_type="text/html",
            )
        if gate == "no-quorum":
            return web.json_response(status(500, "etcdserver: request timed out"), status=500)
        self.store.requests.append((request.method, request.path_qs))
        del self.store.requests[:-500]
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response(status(401, "Unauthorized"), status=401)
        if self.store.down:
            return web.json_response(
                status(503, "the server is currently unable to handle the request"), status=503
            )
        resp: web.StreamResponse = await handler(request)
        return resp

    async def _version(self, _: web.Request) -> web.Response:
        return web.json_response(
            {"major": "1", "minor": "30", "gitVersion": "v1.30.2", "platform": "linux/amd64"}
        )

    def _list(self, resource: str, kind: str, api_version: str) -> Any:
        async def handler(request: web.Request) -> web.StreamResponse:
            ns = request.match_info.get("ns")
            if truthy(request.query.get("watch")):
                return await self.store.watch_response(
                    request, resource, kind.removesuffix("List"), api_version, ns
                )
            return self.store.list_response(request, resource, kind, api_version, ns)

        return handler

    @staticmethod
    def _not_found(kind: str, name: str) -> web.Response:
        return web.json_response(
            status(404, f'{kind}s "{name}" not found', "NotFound", {"name": name, "kind": kind}),
            status=404,
        )

    async def _get_node(self, request: web.Request) -> web.Response:
        node = self.store.get("nodes", request.match_info["name"])
        if node is None:
            return self._not_found("node", request.match_info["name"])
        return web.json_response(node)

    async def _patch_node(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        node = self.store.get("nodes", name)
        if node is None:
            return self._not_found("node", name)
        try:
            patch = await request.json()
        except ValueError:
            return web.json_response(status(400, "the patch is not JSON"), status=400)
        if not isinstance(patch, dict):
            return web.json_response(status(400, "the patch must be an object"), status=400)
        _merge(node, patch)
        taints = [
            t
            for t in node["spec"].get("taints") or []
            if t["key"] != "node.kubernetes.io/unschedulable"
        ]
        if node["spec"].get("unschedulable"):
            taints.append(
                {
                    "key": "node.kubernetes.io/unschedulable",
                    "effect": "NoSchedule",
                    "timeAdded": format_time(self.now()),
                }
            )
        else:
            node["spec"].pop("unschedulable", None)
        node["spec"]["taints"] = taints
        stored = self.store.put("nodes", node)
        return web.json_response(stored)

    async def _get_pod(self, request: web.Request) -> web.Response:
        key = f"{request.match_info['ns']}/{request.match_info['name']}"
        pod = self.store.get("pods", key)
        if pod is None:
            return self._not_found("pod", request.match_info["name"])
        return web.json_response(pod)

    async def _delete_pod(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        key = f"{request.match_info['ns']}/{name}"
        pod = self.store.get("pods", key)
        if pod is None:
            return self._not_found("pod", name)
        body: dict[str, Any] = {}
        if request.can_read_body:
            try:
                body = await request.json() or {}
            except ValueError:
                body = {}
        want_uid = (body.get("preconditions") or {}).get("uid")
        if want_uid and want_uid != pod["metadata"]["uid"]:
            msg = (
                f'Operation cannot be fulfilled on pods "{name}": Precondition failed: UID in '
                f"precondition: {want_uid}, UID in object meta: {pod['metadata']['uid']}"
            )
            return web.json_response(
                status(409, msg, "Conflict", {"name": name, "kind": "pods"}), status=409
            )
        grace_raw = request.query.get("gracePeriodSeconds", body.get("gracePeriodSeconds"))
        grace = (
            int(grace_raw)
            if grace_raw is not None
            else pod["spec"].get("terminationGracePeriodSeconds", 30)
        )
        if grace == 0:
            gone = self.store.delete("pods", key)
            return web.json_response(gone)
        return web.json_response(self._terminate(pod, grace))

    def _terminate(self, pod: dict[str, Any], grace: int) -> dict[str, Any]:
        if "deletionTimestamp" not in pod["metadata"]:
            pod["metadata"]["deletionTimestamp"] = format_time(self.now() + grace)
            pod["metadata"]["deletionGracePeriodSeconds"] = grace
            return self.store.put("pods", pod)
        return pod

    async def _evict(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        key = f"{request.match_info['ns']}/{name}"
        pod = self.store.get("pods", key)
        if pod is None:
            return self._not_found("pod", name)
        try:
            body = await request.json()
        except ValueError:
            body = {}
        # An absent kind takes the endpoint's, as the apiserver's decoder defaults it.
        if not isinstance(body, dict) or body.get("kind", "Eviction") != "Eviction":
            return web.json_response(
                status(400, "the body must be a policy/v1 Eviction"), status=400
            )
        if "deletionTimestamp" in pod["metadata"]:
            return web.json_response(status(201, ""), status=201)
        pdbs = self.sim.pdbs_for(pod)
        if len(pdbs) > 1:
            return web.json_response(
                status(
                    500,
                    "This pod has more than one "
                    "PodDisruptionBudget, which the eviction "
                    "subresource does not support.",
                ),
                status=500,
            )
        # As the eviction subresource: terminal and Pending pods ignore budgets; a
        # running pod that is not Ready may go while the budget is met (IfHealthyBudget);
        # otherwise the budget must allow a disruption now.
        if pdbs and pod["status"].get("phase") == "Running":
            try:
                b = self.sim.budget_of(pdbs[0])
            except ValueError:
                b = None
            unready_ok = (
                b is not None
                and not self.sim.is_healthy(pod)
                and b.healthy >= b.desired
                and b.desired > 0
            )
            if not unready_ok and (b is None or b.allowed == 0):
                st = pdbs[0]["status"]
                return web.json_response(
                    pdb_429(
                        pdbs[0]["metadata"]["name"],
                        b.desired if b else int(st.get("desiredHealthy", 0)),
                        b.healthy if b else int(st.get("currentHealthy", 0)),
                    ),
                    status=429,
                )
        disruption_target(pod, "EvictionByEvictionAPI", "Eviction API: evicting", self.now())
        grace = (body.get("deleteOptions") or {}).get("gracePeriodSeconds")
        self._terminate(
            pod,
            int(grace)
            if grace is not None
            else min(2, pod["spec"].get("terminationGracePeriodSeconds", 30)),
        )
        return web.json_response(status(201, ""), status=201)


class KubernetesLab:
    """``console.plugin.LabEmulation`` for the kubernetes plugin."""

    def __init__(
        self, bookmark_s: float = 5.0, toleration_s: int = 300, vip_failover_s: float = 4.0
    ) -> None:
        """
        Args:
            bookmark_s: seconds between BOOKMARK events of an idle watch.
            toleration_s: the apiserver's default ``tolerationSeconds`` for the
                ``not-ready`` / ``unreachable`` NoExecute taints (real default 300):
                how long pods stay on a dead node before the taint manager evicts them.
            vip_failover_s: lab seconds before a surviving control-plane node takes
                the API's VIP over.
        """
        self.bookmark_s = bookmark_s
        self.toleration_s = toleration_s
        self.vip_failover_s = vip_failover_s
        self.vips: dict[str, ApiVip] = {}
        """cluster -> who holds its API's VIP."""
        self.clusters: dict[str, LabCluster] = {}
        self._lab: Any = None
        self._handled: set[str] = set()
        self.exporters: dict[str, Any] = {}
        """``kube-state-metrics``: one per cluster, on a control-plane node (lab_exporter)."""

    async def start(self, lab: Any) -> None:
        self._lab = lab
        directory = Path(lab.state_dir) / "kubernetes"
        directory.mkdir(mode=0o700, exist_ok=True)
        # One self-signed certificate that is its own CA: kubeconfig trusts it by file.
        ca_file, key_file = ensure_cert(directory / "apiserver", "kube-apiserver (lab)")
        ctx = server_context(ca_file, key_file)
        now = lab.clock.now()
        for name, cluster in lab.source.doc.clusters.kubernetes.items():
            members = [n for n in lab.source.nodes.values() if n.clusters.kubernetes == name]
            store = ApiStore(self.bookmark_s)
            sim = ClusterSim(name, members, store, now, lab.seed, self.toleration_s)
            lc = LabCluster(name, cluster.context or name, sim, store)
            lc.now = lab.clock.now
            vip = ApiVip(
                sorted(n.name for n in members if n.role == "cpu")[:CONTROL_PLANE_SIZE],
                self.vip_failover_s,
                lab,
                store,
            )
            self.vips[name] = vip
            lc.gate = vip.gate_now
            host, port = await lab.serve_http(lc.app(), ssl_context=ctx)
            lc.url = f"https://{host}:{port}"
            lc.kubeconfig = directory / f"{name}.kubeconfig"
            lc.kubeconfig.write_text(
                yaml.safe_dump(
                    {
                        "apiVersion": "v1",
                        "kind": "Config",
                        "current-context": lc.context,
                        "clusters": [
                            {
                                "name": name,
                                "cluster": {
                                    "server": lc.url,
                                    "certificate-authority": str(ca_file),
                                },
                            }
                        ],
                        "users": [{"name": f"{name}-admin", "user": {"token": lc.token}}],
                        "contexts": [
                            {
                                "name": lc.context,
                                "context": {"cluster": name, "user": f"{name}-admin"},
                            }
                        ],
                    }
                ),
                encoding="utf-8",
            )
            os.chmod(lc.kubeconfig, 0o600)
            self.clusters[name] = lc
        lab.faults.on_change(self._on_faults)
        from plugins.kubernetes.lab_exporter import start_exporters

        await start_exporters(self, lab)

    async def stop(self) -> None:
        for lc in self.clusters.values():
            lc.store.drop_watches()
        for exporter in self.exporters.values():
            await exporter.stop()

    async def command(self, host: LabHostContext, command: str) -> CommandReply | None:
        return None

    def fault_names(self) -> Sequence[str]:
        return tuple(FAULTS)

    def rewrite_config(self, section: dict[str, Any]) -> dict[str, Any]:
        return section

    def rewrite_inventory(self, data: dict[str, Any]) -> dict[str, Any]:
        k8s = data.setdefault("clusters", {}).setdefault("kubernetes", {})
        for name, lc in self.clusters.items():
            entry = dict(k8s.get(name) or {})
            entry.update(kubeconfig=str(lc.kubeconfig), context=lc.context, source="direct")
            k8s[name] = entry
        ksm = self.exporters.get("kube-state-metrics")
        if ksm is not None:  # the node KSM runs on declares its address
            from console.lab.exporters import declare_exporters

            data = declare_exporters(data, "kube-state-metrics", ksm.instances)
        return data

    def _on_faults(self) -> None:
        if self._lab is None:
            return
        for fault in self._lab.faults.active():
            if fault.id in self._handled:
                continue
            lc = self.clusters.get(fault.target)
            if lc is None:
                continue
            if fault.name == "kubernetes.watch_drop":
                self._handled.add(fault.id)
                lc.store.drop_watches()
            elif fault.name == "kubernetes.compact":
                self._handled.add(fault.id)
                lc.store.compact()
                lc.store.drop_watches()
        for lc in self.clusters.values():
            lc.store.down = self._lab.faults.get("kubernetes.api_down", lc.name) is not None
            if lc.store.down:
                lc.store.drop_watches()
        self.tick(self._lab.clock.now())

    def tick(self, now: float) -> None:
        if self._lab is None:
            return
        for lc in self.clusters.values():
            self.vips[lc.name].gate(now)
            for name in list(lc.store.objects["nodes"]):
                host = self._lab.hosts.get(name)
                if host is None:
                    continue
                if not host.powered or host.fault("kubernetes.control_plane_down") is not None:
                    health = (
                        "Unknown",
                        "NodeStatusUnknown",
                        "Kubelet stopped posting node status.",
                    )
                elif host.fault("kubernetes.node_not_ready") is not None:
                    health = (
                        "False",
                        "KubeletNotReady",
                        "container runtime network not ready: "
                        "NetworkReady=false reason:NetworkPluginNotReady",
                    )
                else:
                    health = ("True", "KubeletReady", "kubelet is posting ready status")
                crash = host.fault("kubernetes.device_plugin_crash") is not None
                lc.sim.set_node_health(name, *health, now, gpu_ok=not crash)
                lc.sim.set_device_plugin(name, crash)
            lc.sim.tick(now)

    def describe(self) -> dict[str, Any]:
        return {
            n: {"url": c.url, "kubeconfig": str(c.kubeconfig)} for n, c in self.clusters.items()
        }


__all__ = ["FAULTS", "KubernetesLab"]
