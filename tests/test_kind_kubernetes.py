"""The kubernetes kind against a fake API server on loopback (tests/kubernetes_support).

No cluster exists here: the fake server serves hand-written list objects (see
tests/kubernetes_support/objects) the way the API server does, and records
every request, so the tests check both the verdict and the exact API calls.
One test runs against a real cluster when KUBECONFIG is set.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import maintd.checks.kubernetes as kubernetes_kind
from maintd.checks.base import CheckResult, Resources, RunContext, Status
from maintd.checks.kubernetes import api as kubernetes_api
from maintd.checks.kubernetes.health import Thresholds, assess_pods
from maintd.clock import SystemClock
from maintd.plan.models import Task
from tests.conftest import T0, run
from tests.kinds import REGISTRY, make_target, run_kind
from tests.kubernetes_support import OBJECTS, FakeKubeApi, Seen, cluster, load, write_kubeconfig
from tests.servers import make_certificate

TOKEN = "maintd-test-token"
ALL_LISTS = [
    "GET /api/v1/nodes?limit=500",
    "GET /api/v1/pods?limit=500",
    "GET /apis/apps/v1/daemonsets?limit=500",
    "GET /apis/apps/v1/deployments?limit=500",
    "GET /apis/apps/v1/statefulsets?limit=500",
]
HEALTHY_SUMMARY = (
    "pods 12/12 healthy, most restarts 0 (warning above 5); deployments 4/4 available; "
    "statefulsets 1/1 ready; daemonsets 1/1 available; nodes 3/3 Ready"
)


@dataclass
class Outcome:
    base: str
    result: CheckResult
    fake: FakeKubeApi

    @property
    def status(self) -> Status:
        return self.result.status

    @property
    def lines(self) -> list[str]:
        return self.result.output.splitlines()

    @property
    def requests(self) -> list[Seen]:
        return self.fake.requests

    def seen(self) -> list[str]:
        """The requests as ``METHOD path?query``, sorted (the lists are read concurrently)."""
        return sorted(self.fake.seen())


def probe(
    tmp_path: Path,
    fake: FakeKubeApi | None = None,
    params: dict[str, Any] | None = None,
    *,
    target: Any = None,
    timeout: float = 30,
    kubeconfig: bool = True,
    tls: tuple[Path, Path] | None = None,
) -> Outcome:
    """Run the kind once against a fake API server (through a kubeconfig pointing at it, by default)."""
    fake = fake if fake is not None else FakeKubeApi()

    async def go() -> tuple[str, CheckResult]:
        async with fake.serve(tls) as base:
            given = dict(params or {})
            if kubeconfig:
                given.setdefault("kubeconfig", str(write_kubeconfig(tmp_path, base)))
            return base, await run_kind("kubernetes", given, target, timeout=timeout)

    base, result = run(go())
    return Outcome(base, result, fake)


# ---------------------------------------------------------------- verdicts on recorded clusters


def test_a_healthy_cluster_is_ok_with_every_count_in_the_summary(tmp_path):
    outcome = probe(tmp_path)
    assert outcome.status is Status.ok
    assert outcome.lines == [f"kubernetes {outcome.base} (context fake), all namespaces: {HEALTHY_SUMMARY}"]
    metrics = outcome.result.metrics
    assert {k: metrics[k] for k in ("pods_total", "pods_running", "pods_succeeded", "pods_unhealthy")} == {
        "pods_total": 12.0,
        "pods_running": 11.0,
        "pods_succeeded": 1.0,
        "pods_unhealthy": 0.0,
    }
    assert metrics["restarts_max"] == 0.0
    assert metrics["deployments_total"] == 4.0
    assert metrics["deployments_unavailable"] == 0.0
    assert metrics["nodes_total"] == 3.0
    assert metrics["nodes_not_ready"] == 0.0
    assert metrics["nodes_pressure"] == 0.0
    assert metrics["problems"] == 0.0
    assert metrics["api_requests"] == 5.0
    assert all(isinstance(v, float) for v in metrics.values())


def test_every_list_is_one_request_with_the_bearer_token_from_the_kubeconfig(tmp_path):
    outcome = probe(tmp_path)
    assert outcome.seen() == ALL_LISTS
    for request in outcome.requests:
        assert request.method == "GET"
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert request.headers["User-Agent"] == kubernetes_api.USER_AGENT
        assert request.headers["Accept"] == "application/json"


def test_the_seeds_production_pods_check_lists_pods_in_that_namespace_only(tmp_path):
    # The seed: kubectl get pods -n production | grep -E 'Running|Completed'
    outcome = probe(tmp_path, params={"namespaces": ["production"], "resources": ["pods"]})
    assert outcome.seen() == ["GET /api/v1/namespaces/production/pods?limit=500"]
    assert outcome.status is Status.ok
    assert outcome.lines == [
        f"kubernetes {outcome.base} (context fake), namespace production: "
        "pods 6/6 healthy, most restarts 0 (warning above 5)"
    ]
    assert outcome.result.metrics["pods_succeeded"] == 1.0  # the finished migration job: "Completed"


def test_namespaces_are_listed_one_by_one_and_nodes_cluster_wide(tmp_path):
    outcome = probe(tmp_path, params={"namespaces": ["production", "kube-system"]})
    assert outcome.seen() == [
        "GET /api/v1/namespaces/kube-system/pods?limit=500",
        "GET /api/v1/namespaces/production/pods?limit=500",
        "GET /api/v1/nodes?limit=500",
        "GET /apis/apps/v1/namespaces/kube-system/daemonsets?limit=500",
        "GET /apis/apps/v1/namespaces/kube-system/deployments?limit=500",
        "GET /apis/apps/v1/namespaces/kube-system/statefulsets?limit=500",
        "GET /apis/apps/v1/namespaces/production/daemonsets?limit=500",
        "GET /apis/apps/v1/namespaces/production/deployments?limit=500",
        "GET /apis/apps/v1/namespaces/production/statefulsets?limit=500",
    ]
    assert outcome.lines[0] == (
        f"kubernetes {outcome.base} (context fake), namespaces production, kube-system: "
        "pods 8/8 healthy, most restarts 0 (warning above 5); deployments 3/3 available; "
        "statefulsets 1/1 ready; daemonsets 0/0 available; nodes 3/3 Ready"
    )


def test_the_label_selector_goes_to_pods_and_workloads_and_the_node_selector_to_nodes(tmp_path):
    outcome = probe(
        tmp_path,
        params={"label_selector": "app in (api,worker),tier!=frontend", "node_selector": "pool=general"},
    )
    selector = "labelSelector=app+in+%28api%2Cworker%29%2Ctier%21%3Dfrontend"
    assert outcome.seen() == [
        "GET /api/v1/nodes?labelSelector=pool%3Dgeneral&limit=500",
        f"GET /api/v1/pods?{selector}&limit=500",
        f"GET /apis/apps/v1/daemonsets?{selector}&limit=500",
        f"GET /apis/apps/v1/deployments?{selector}&limit=500",
        f"GET /apis/apps/v1/statefulsets?{selector}&limit=500",
    ]
    pods = next(r for r in outcome.requests if r.path == "/api/v1/pods")
    assert pods.query["labelSelector"] == "app in (api,worker),tier!=frontend"
    assert outcome.lines[0] == (
        f"kubernetes {outcome.base} (context fake), all namespaces, "
        "selector app in (api,worker),tier!=frontend: "
        "pods 5/5 healthy, most restarts 0 (warning above 5); deployments 3/3 available; "
        "statefulsets 0/0 ready; daemonsets 0/0 available; nodes 3/3 Ready"
    )


def test_a_crashlooping_pod_is_critical_with_its_reason_restarts_and_oom_kill(tmp_path):
    outcome = probe(tmp_path, FakeKubeApi(cluster("crashloop")))
    assert outcome.status is Status.critical
    assert outcome.lines == [
        f"kubernetes {outcome.base} (context fake), all namespaces: pods 10/12 healthy, most restarts 14 "
        "(warning above 5); deployments 3/4 available; statefulsets 1/1 ready; daemonsets 1/1 available; "
        "nodes 3/3 Ready; 3 problems",
        "critical deployment production/api: 2/3 available, 3/3 updated: MinimumReplicasUnavailable: "
        "Deployment does not have minimum availability.",
        "critical pod production/api-7d9c8b6f5-m2v8p: container api CrashLoopBackOff: back-off 5m0s "
        "restarting failed container=api pod=api-7d9c8b6f5-m2v8p_production"
        "(bb172036-ff2b-5891-a41d-8850b2108f9d); container api restarted 14 times (max 5); "
        "container api was OOMKilled 4m ago",
        "warning pod production/worker-5f6d7c8b9-q7rtn: container worker restarted 7 times (max 5)",
    ]
    metrics = outcome.result.metrics
    assert metrics["pods_unhealthy"] == 2.0
    assert metrics["containers_waiting"] == 1.0
    assert metrics["containers_oom_killed"] == 1.0
    assert metrics["restarts_max"] == 14.0
    assert metrics["restarts_total"] == 21.0
    assert metrics["deployments_unavailable"] == 1.0
    assert metrics["problems"] == 3.0


def test_restart_and_oom_thresholds_are_params(tmp_path):
    outcome = probe(
        tmp_path,
        FakeKubeApi(cluster("crashloop")),
        {"max_restarts": 20, "oom_window": "3m", "resources": ["pods"]},
    )
    assert outcome.lines[1:] == [
        "critical pod production/api-7d9c8b6f5-m2v8p: container api CrashLoopBackOff: back-off 5m0s "
        "restarting failed container=api pod=api-7d9c8b6f5-m2v8p_production"
        "(bb172036-ff2b-5891-a41d-8850b2108f9d)"
    ]
    assert "most restarts 14 (warning above 20)" in outcome.lines[0]
    assert outcome.result.metrics["containers_oom_killed"] == 0.0  # 4 minutes ago: outside the window


def test_pending_pods_are_critical_only_after_the_grace_period_but_image_pull_errors_at_once(tmp_path):
    outcome = probe(tmp_path, FakeKubeApi(cluster("pending")))
    assert outcome.status is Status.critical
    assert outcome.lines == [
        f"kubernetes {outcome.base} (context fake), all namespaces: pods 13/15 healthy, most restarts 0 "
        "(warning above 5); deployments 2/5 available; statefulsets 1/1 ready; daemonsets 1/1 available; "
        "nodes 3/3 Ready; 5 problems",
        "critical deployment production/web: 0/1 available, 1/1 updated: MinimumReplicasUnavailable: "
        "Deployment does not have minimum availability.",
        "critical pod production/api-7d9c8b6f5-x9k2l: Pending for 12m: Unschedulable: 0/3 nodes are "
        "available: 3 Insufficient memory. preemption: 0/3 nodes are available: 3 No preemption victims "
        "found for incoming pod.",
        "critical pod production/web-6b8f4d7c9-tz5wq: container web ImagePullBackOff: Back-off pulling "
        'image "registry.example.com/shop/web:2.4.0-rc1": ErrImagePull: failed to pull and unpack image '
        '"registry.example.com/shop/web:2.4.0-rc1": failed to resolve reference "registry.exampl…',
        "warning deployment production/api: 3/4 available, 4/4 updated",
        "warning deployment production/worker: 1/2 available, 2/2 updated",
    ]
    # worker-5f6d7c8b9-h4jnd is 40 s old and ContainerCreating: not (yet) a problem.
    assert "h4jnd" not in outcome.result.output
    assert outcome.result.metrics["pods_pending"] == 3.0


def test_a_longer_grace_period_forgives_the_pod_pending_for_twelve_minutes(tmp_path):
    outcome = probe(tmp_path, FakeKubeApi(cluster("pending")), {"grace": "15m", "resources": ["pods"]})
    assert [line.split(":")[0] for line in outcome.lines[1:]] == [
        "critical pod production/web-6b8f4d7c9-tz5wq"
    ]


def test_degraded_deployments_stuck_and_paused_rollouts_and_an_unready_statefulset(tmp_path):
    outcome = probe(tmp_path, FakeKubeApi(cluster("deployment_degraded")))
    assert outcome.status is Status.critical
    assert outcome.lines == [
        f"kubernetes {outcome.base} (context fake), all namespaces: pods 10/12 healthy, most restarts 0 "
        "(warning above 5); deployments 4/5 available; statefulsets 0/1 ready; daemonsets 1/1 available; "
        "nodes 3/3 Ready; 6 problems",
        "critical deployment production/api: 1/3 available, 3/3 updated: MinimumReplicasUnavailable: "
        "Deployment does not have minimum availability.",
        "critical deployment production/checkout: rollout stuck: ProgressDeadlineExceeded: "
        'ReplicaSet "checkout-59d7b6c8f4" has timed out progressing.',
        "critical statefulset production/postgres: 0/1 ready",
        "warning deployment production/worker: rollout paused",
        "warning pod production/api-7d9c8b6f5-m2v8p: not ready for 15m (containers api)",
        "warning pod production/api-7d9c8b6f5-r7wcn: not ready for 15m (containers api)",
    ]
    # staging/api is mid-rollout (1/2 updated, both available): not a problem.
    assert "staging/api" not in outcome.result.output
    metrics = outcome.result.metrics
    assert (
        metrics["deployments_unavailable"],
        metrics["deployments_stuck"],
        metrics["deployments_paused"],
    ) == (
        1.0,
        1.0,
        1.0,
    )
    assert metrics["statefulsets_unavailable"] == 1.0
    assert metrics["pods_not_ready"] == 2.0


def test_a_node_not_ready_is_critical_and_disk_pressure_a_warning(tmp_path):
    outcome = probe(tmp_path, FakeKubeApi(cluster("node_pressure")))
    assert outcome.status is Status.critical
    assert outcome.lines == [
        f"kubernetes {outcome.base} (context fake), all namespaces: pods 11/13 healthy, most restarts 0 "
        "(warning above 5); deployments 4/4 available; statefulsets 1/1 ready; daemonsets 0/1 available; "
        "nodes 2/3 Ready, 1 under pressure; 5 problems",
        "critical node node-c: NotReady (Ready=Unknown) for 18m: NodeStatusUnknown: Kubelet stopped "
        "posting node status.",
        "critical pod production/worker-5f6d7c8b9-d8s4v: Failed: Evicted: The node was low on resource: "
        "ephemeral-storage. Threshold quantity: 5073568Ki, available: 4825376Ki. Container worker was using "
        "3214560Ki, request is 0, has larger consumption of ephemeral-storage.",
        "warning node node-b: DiskPressure for 25m: KubeletHasDiskPressure: kubelet has disk pressure",
        "warning daemonset monitoring/node-exporter: 2/3 available",
        "warning pod production/api-7d9c8b6f5-r7wcn: stuck Terminating, 12m past its deletion deadline",
    ]
    metrics = outcome.result.metrics
    assert (metrics["nodes_ready"], metrics["nodes_not_ready"], metrics["nodes_pressure"]) == (2.0, 1.0, 1.0)
    assert (metrics["pods_failed"], metrics["pods_terminating"]) == (1.0, 1.0)


def test_a_node_not_ready_for_less_than_the_grace_period_is_counted_but_not_a_problem(tmp_path):
    outcome = probe(tmp_path, FakeKubeApi(cluster("node_pressure")), {"grace": "30m", "resources": ["nodes"]})
    assert outcome.status is Status.warning  # node-b's DiskPressure remains
    assert outcome.result.metrics["nodes_not_ready"] == 1.0
    assert "node-c" not in outcome.result.output


@pytest.mark.parametrize(
    ("cordoned", "status"), [(None, Status.warning), ("ok", Status.ok), ("critical", Status.critical)]
)
def test_a_cordoned_node_is_a_warning_unless_configured_otherwise(tmp_path, cordoned, status):
    params = {"resources": ["nodes"]} | ({"cordoned": cordoned} if cordoned else {})
    outcome = probe(tmp_path, FakeKubeApi(cluster("cordoned")), params)
    assert outcome.status is status
    summary = f"kubernetes {outcome.base} (context fake), all namespaces: nodes 3/3 Ready, 1 cordoned"
    if status is Status.ok:
        assert outcome.lines == [summary]
    else:
        assert outcome.lines == [
            f"{summary}; 1 problem",
            f"{status} node node-a: cordoned (SchedulingDisabled)",
        ]
    assert outcome.result.metrics["nodes_cordoned"] == 1.0


def test_fewer_pods_than_min_pods_is_critical(tmp_path):
    outcome = probe(tmp_path, params={"label_selector": "app=payments", "min_pods": 2, "resources": ["pods"]})
    assert outcome.status is Status.critical
    assert outcome.lines == [
        f"kubernetes {outcome.base} (context fake), all namespaces, selector app=payments: "
        "pods 0/0 healthy (min 2), most restarts 0 (warning above 5); 1 problem",
        "critical pods: 0 found, fewer than min_pods 2",
    ]


def test_many_problems_are_cut_to_fifty_lines(tmp_path):
    crashing = load("crashloop")["pods"][0]
    objects = cluster()
    for i in range(60):
        pod = json.loads(json.dumps(crashing))
        pod["metadata"]["name"] = f"api-7d9c8b6f5-{i:05d}"
        objects["pods"].append(pod)
    outcome = probe(tmp_path, FakeKubeApi(objects), {"resources": ["pods"]})
    assert len(outcome.lines) == 1 + 50 + 1
    assert outcome.lines[-1] == "… and 10 more problems"
    assert outcome.result.metrics["pods_unhealthy"] == 60.0


# ---------------------------------------------------------------- paging


def test_lists_are_read_in_pages_following_the_continue_token(tmp_path):
    outcome = probe(tmp_path, params={"chunk_size": 5, "resources": ["pods"]})
    pages = [r.query for r in outcome.requests]
    assert [p["limit"] for p in pages] == ["5", "5", "5"]
    assert "continue" not in pages[0]
    assert pages[1]["continue"] and pages[2]["continue"] != pages[1]["continue"]
    assert outcome.result.metrics["pods_total"] == 12.0
    assert outcome.result.metrics["api_requests"] == 3.0


def test_an_expired_continue_token_restarts_the_list_once(tmp_path):
    outcome = probe(tmp_path, FakeKubeApi(expire_continue=1), {"chunk_size": 5, "resources": ["pods"]})
    assert outcome.status is Status.ok
    assert ["continue" in r.query for r in outcome.requests] == [False, True, False, True, True]
    assert outcome.result.metrics["pods_total"] == 12.0


# ---------------------------------------------------------------- the API server failing


def test_an_api_server_that_is_down_is_critical_with_the_reason(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        kubeconfig = write_kubeconfig(tmp_path, f"http://127.0.0.1:{port}")
        result = run(run_kind("kubernetes", {"kubeconfig": str(kubeconfig)}))
    assert result.status is Status.critical
    assert result.output.startswith(
        f"kubernetes http://127.0.0.1:{port} (context fake): "
        f"unreachable: Cannot connect to host 127.0.0.1:{port}"
    )
    assert len(result.output.splitlines()) == 1  # five refused requests, one reason
    assert result.metrics == {"api_requests": 5.0}


def test_a_rejected_token_is_unknown_and_names_authentication(tmp_path):
    outcome = probe(tmp_path, FakeKubeApi(token="the-real-token"))
    assert outcome.status is Status.unknown
    assert outcome.lines == [
        f"kubernetes {outcome.base} (context fake): authentication failed (401 Unauthorized): Unauthorized"
    ]
    assert {r.headers["Authorization"] for r in outcome.requests} == {f"Bearer {TOKEN}"}


def test_a_forbidden_list_is_reported_and_the_rest_still_checked(tmp_path):
    outcome = probe(tmp_path, FakeKubeApi(cluster("crashloop"), forbidden={"nodes"}))
    assert outcome.status is Status.critical  # the crash loop it could still see
    assert outcome.lines[0].endswith("daemonsets 1/1 available; nodes not read; 4 problems")
    assert outcome.lines[1:3] == [
        "critical deployment production/api: 2/3 available, 3/3 updated: MinimumReplicasUnavailable: "
        "Deployment does not have minimum availability.",
        "critical pod production/api-7d9c8b6f5-m2v8p: container api CrashLoopBackOff: back-off 5m0s "
        "restarting failed container=api pod=api-7d9c8b6f5-m2v8p_production"
        "(bb172036-ff2b-5891-a41d-8850b2108f9d); container api restarted 14 times (max 5); "
        "container api was OOMKilled 4m ago",
    ]
    assert outcome.lines[3] == (
        'unknown nodes: forbidden (403 Forbidden): nodes is forbidden: User "system:serviceaccount:'
        'monitoring:maintd" cannot list resource "nodes" in API group "" at the cluster scope'
    )
    assert "nodes_total" not in outcome.result.metrics


def test_a_forbidden_check_of_nodes_only_is_unknown(tmp_path):
    outcome = probe(tmp_path, FakeKubeApi(forbidden={"nodes"}), {"resources": ["nodes"]})
    assert outcome.status is Status.unknown
    assert outcome.lines == [
        f"kubernetes {outcome.base} (context fake): forbidden (403 Forbidden): nodes is forbidden: User "
        '"system:serviceaccount:monitoring:maintd" cannot list resource "nodes" in API group "" at the '
        "cluster scope"
    ]


def test_a_hung_api_server_is_cut_off_at_the_deadline(tmp_path):
    fake = FakeKubeApi()

    async def go() -> CheckResult:
        fake.release = asyncio.Event()
        async with fake.serve() as base:
            kubeconfig = write_kubeconfig(tmp_path, base)
            try:
                return await run_kind("kubernetes", {"kubeconfig": str(kubeconfig)}, timeout=0.3)
            finally:
                fake.release.set()

    started = time.monotonic()
    result = run(go())
    assert time.monotonic() - started < 5
    assert result.status is Status.critical
    assert result.output.endswith("(context fake): the API server did not answer within 0.3 s")
    assert len(fake.requests) == 5  # all five lists were asked for, concurrently


def test_one_hung_list_times_out_alone_and_the_others_are_still_judged(tmp_path):
    fake = FakeKubeApi(cluster("crashloop"), hang={"nodes"})

    async def go() -> CheckResult:
        fake.release = asyncio.Event()
        async with fake.serve() as base:
            kubeconfig = write_kubeconfig(tmp_path, base)
            try:
                return await run_kind("kubernetes", {"kubeconfig": str(kubeconfig)}, timeout=1.0)
            finally:
                fake.release.set()

    result = run(go())
    lines = result.output.splitlines()
    assert result.status is Status.critical
    assert lines[0].endswith("daemonsets 1/1 available; nodes not read; 4 problems")
    assert lines[1] == "critical nodes: the API server did not answer within 0.9 s"
    assert lines[2].startswith("critical deployment production/api: 2/3 available")
    assert result.metrics["pods_unhealthy"] == 2.0


def test_the_client_is_closed_after_every_run(tmp_path, monkeypatch):
    opened: list[kubernetes_api.Cluster] = []
    real_connect = kubernetes_kind.connect

    async def recording_connect(settings: kubernetes_api.ConnectionSettings) -> kubernetes_api.Cluster:
        opened.append(await real_connect(settings))
        return opened[-1]

    monkeypatch.setattr(kubernetes_kind, "connect", recording_connect)
    probe(tmp_path)
    probe(tmp_path, FakeKubeApi(token="other"))
    assert len(opened) == 2
    assert all(c.api.rest_client.pool_manager.closed for c in opened)


# ---------------------------------------------------------------- how the cluster is reached


def test_the_context_param_picks_the_kubeconfig_context(tmp_path):
    fake = FakeKubeApi()

    async def go() -> CheckResult:
        async with fake.serve() as base:
            kubeconfig = write_kubeconfig(tmp_path, base, extra_contexts={"stale": "an-expired-token"})
            return await run_kind("kubernetes", {"kubeconfig": str(kubeconfig), "context": "stale"})

    result = run(go())
    assert result.status is Status.unknown
    assert "(context stale): authentication failed (401 Unauthorized)" in result.output
    assert {r.headers["Authorization"] for r in fake.requests} == {"Bearer an-expired-token"}


def test_kubeconfig_context_and_namespace_default_to_the_targets_connection(tmp_path):
    fake = FakeKubeApi()

    async def go() -> CheckResult:
        async with fake.serve() as base:
            kubeconfig = write_kubeconfig(tmp_path, base, extra_contexts={"ops": TOKEN})
            target = make_target(
                kind="cluster",
                connection={"kubeconfig": str(kubeconfig), "context": "ops", "namespace": "staging"},
            )
            return await run_kind("kubernetes", {"resources": ["pods"]}, target)

    result = run(go())
    assert result.status is Status.ok
    assert "(context ops), namespace staging: pods 1/1 healthy" in result.output
    assert fake.seen() == ["GET /api/v1/namespaces/staging/pods?limit=500"]


def test_a_missing_kubeconfig_is_unknown(tmp_path):
    result = run(run_kind("kubernetes", {"kubeconfig": str(tmp_path / "nope.yaml")}))
    assert result.status is Status.unknown
    assert result.output == f"kubernetes: kubeconfig {tmp_path / 'nope.yaml'}: no such file"


def test_an_unknown_context_is_unknown_and_named(tmp_path):
    kubeconfig = write_kubeconfig(tmp_path, "http://127.0.0.1:9")
    result = run(run_kind("kubernetes", {"kubeconfig": str(kubeconfig), "context": "prod"}))
    assert result.status is Status.unknown
    assert result.output.startswith(f"kubernetes: kubeconfig {kubeconfig}: Invalid kube-config file.")
    assert "prod" in result.output


def test_a_server_url_with_a_token_from_the_targets_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("K8S_TEST_TOKEN", TOKEN)
    fake = FakeKubeApi()

    async def go() -> CheckResult:
        async with fake.serve() as base:
            target = make_target(
                kind="cluster", connection={"server": base}, secrets={"token": "env:K8S_TEST_TOKEN"}
            )
            return await run_kind("kubernetes", {"resources": ["pods"]}, target)

    result = run(go())
    assert result.status is Status.ok
    assert result.output.startswith("kubernetes http://127.0.0.1:")
    assert "(context" not in result.output
    assert [r.headers["Authorization"] for r in fake.requests] == [f"Bearer {TOKEN}"]


def test_a_server_url_without_the_named_secret_is_unknown(tmp_path):
    outcome = probe(
        tmp_path, params={"server": "http://127.0.0.1:9", "token_secret": "k8s"}, kubeconfig=False
    )
    assert outcome.status is Status.unknown
    assert outcome.lines == ["kubernetes: http://127.0.0.1:9: target t1 has no secret named 'k8s'"]
    assert outcome.requests == []


def test_without_a_token_no_authorization_is_sent(tmp_path):
    fake = FakeKubeApi(token=None)  # like kubectl proxy on localhost

    async def go() -> CheckResult:
        async with fake.serve() as base:
            return await run_kind(
                "kubernetes", {"server": base, "token_secret": None, "resources": ["nodes"]}
            )

    assert run(go()).status is Status.ok
    assert "Authorization" not in fake.requests[0].headers


def test_tls_is_verified_against_ca_file_unless_verification_is_off(tmp_path, monkeypatch):
    monkeypatch.setenv("K8S_TEST_TOKEN", TOKEN)
    cert, key = make_certificate(tmp_path)
    target = make_target(kind="cluster", secrets={"token": "env:K8S_TEST_TOKEN"})

    def tls_probe(**params: Any) -> CheckResult:
        fake = FakeKubeApi()

        async def go() -> CheckResult:
            async with fake.serve((cert, key)) as base:
                return await run_kind(
                    "kubernetes", {"server": base, "resources": ["nodes"], **params}, target
                )

        return run(go())

    unverified = tls_probe()
    assert unverified.status is Status.critical
    assert "TLS: " in unverified.output
    assert "certificate verify failed" in unverified.output
    assert tls_probe(ca_file=str(cert)).status is Status.ok
    assert tls_probe(insecure_skip_tls_verify=True).status is Status.ok


def test_a_kubeconfig_with_an_https_server_uses_its_certificate_authority(tmp_path):
    cert, key = make_certificate(tmp_path)
    fake = FakeKubeApi()

    async def go() -> CheckResult:
        async with fake.serve((cert, key)) as base:
            kubeconfig = write_kubeconfig(tmp_path, base, ca_file=cert)
            return await run_kind("kubernetes", {"kubeconfig": str(kubeconfig), "resources": ["nodes"]})

    result = run(go())
    assert result.status is Status.ok
    assert result.output.startswith("kubernetes https://127.0.0.1:")
    assert fake.seen() == ["GET /api/v1/nodes?limit=500"]


def test_in_cluster_config_uses_the_service_account_token_and_ca(tmp_path, monkeypatch):
    cert, key = make_certificate(tmp_path)
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("in-cluster-token")
    (account / "ca.crt").write_text(cert.read_text())
    monkeypatch.setattr(kubernetes_api, "SERVICE_ACCOUNT", account)
    fake = FakeKubeApi(token="in-cluster-token")

    async def go() -> CheckResult:
        async with fake.serve((cert, key)) as base:
            monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
            monkeypatch.setenv("KUBERNETES_SERVICE_PORT", base.rsplit(":", 1)[1])
            return await run_kind("kubernetes", {"in_cluster": True, "resources": ["pods"]})

    result = run(go())
    assert result.status is Status.ok
    assert result.output.startswith("kubernetes https://127.0.0.1:")
    assert "(in-cluster), all namespaces: pods 12/12 healthy" in result.output
    assert fake.requests[0].headers["Authorization"] == "Bearer in-cluster-token"


def test_in_cluster_config_outside_a_cluster_is_unknown(monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    result = run(run_kind("kubernetes", {"in_cluster": True}))
    assert result.status is Status.unknown
    assert result.output == "kubernetes: in-cluster config: Service host/port is not set."


# ---------------------------------------------------------------- params


@pytest.mark.parametrize(
    "bad",
    [
        {"kubeconfig": "/k", "in_cluster": True},
        {"server": "http://127.0.0.1:1", "kubeconfig": "/k"},
        {"server": "ftp://cluster"},
        {"namespaces": ["Production"]},
        {"resources": ["services"]},
        {"resources": []},
        {"cordoned": "unknown"},
        {"max_restarts": -1},
        {"grace": "soon"},
        {"namespace": "production"},
    ],
)
def test_bad_params_are_rejected_by_the_kinds_model(bad):
    with pytest.raises(ValidationError):
        REGISTRY.get("kubernetes").config.model_validate(bad)


def test_a_connection_namespace_that_is_not_a_name_is_unknown():
    target = make_target(kind="cluster", connection={"namespace": ["ok", 7]})
    result = run(run_kind("kubernetes", {}, target))
    assert result.status is Status.unknown
    assert "connection.namespace(s)" in result.output


def test_a_message_with_newlines_stays_on_its_problem_line():
    pod = json.loads((OBJECTS / "crashloop" / "pods.json").read_text())["items"][0]
    pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"] = "first\nsecond\n\tthird"
    limits = Thresholds(timedelta(minutes=5), 100, timedelta(0), Status.warning)
    problems, _counts = assess_pods([pod], T0, limits)
    assert [p.line() for p in problems] == [
        "critical pod production/api-7d9c8b6f5-m2v8p: container api CrashLoopBackOff: first second third; "
        "container api was OOMKilled 4m ago"
    ]


# ---------------------------------------------------------------- the recorded objects


# Each recorded list's client model (None: not in the client) and apiVersion.
RECORDED_KINDS: dict[str, tuple[str | None, str]] = {
    "PodList": ("V1PodList", "v1"),
    "NodeList": ("V1NodeList", "v1"),
    "NamespaceList": ("V1NamespaceList", "v1"),
    "PersistentVolumeClaimList": ("V1PersistentVolumeClaimList", "v1"),
    "PersistentVolumeList": ("V1PersistentVolumeList", "v1"),
    "ResourceQuotaList": ("V1ResourceQuotaList", "v1"),
    "DeploymentList": ("V1DeploymentList", "apps/v1"),
    "StatefulSetList": ("V1StatefulSetList", "apps/v1"),
    "DaemonSetList": ("V1DaemonSetList", "apps/v1"),
    "NetworkPolicyList": ("V1NetworkPolicyList", "networking.k8s.io/v1"),
    "PodMetricsList": (None, "metrics.k8s.io/v1beta1"),
}


@pytest.mark.parametrize("path", sorted(OBJECTS.glob("*/*.json")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_recorded_objects_are_valid_for_the_official_client(path):
    """Each recorded list deserialises into the client's models (required fields present, right types)."""
    from kubernetes_asyncio.client import ApiClient, Configuration

    document = json.loads(path.read_text())
    model, api_version = RECORDED_KINDS[document["kind"]]
    assert document["apiVersion"] == api_version
    assert document["metadata"]["resourceVersion"]
    if model is None:  # metrics.k8s.io has no model in the client: its shape, by hand
        for item in document["items"]:
            assert item["metadata"]["name"] and item["timestamp"] and item["window"]
            assert all({"cpu", "memory"} <= set(c["usage"]) for c in item["containers"])
        return

    class Response:
        data = path.read_text()

    async def go() -> Any:
        async with ApiClient(Configuration()) as api:
            return api.deserialize(Response(), model)

    parsed = run(go())
    assert len(parsed.items) == len(document["items"]) > 0
    for item in parsed.items:
        assert item.metadata.name and item.metadata.uid and item.metadata.resource_version
        assert item.metadata.creation_timestamp.tzinfo is not None


# ---------------------------------------------------------------- a real cluster


@pytest.mark.skipif(not os.environ.get("KUBECONFIG"), reason="needs a real cluster: set KUBECONFIG")
def test_a_real_cluster_from_kubeconfig_gives_a_verdict():
    async def go() -> CheckResult:
        config = REGISTRY.get("kubernetes").config.model_validate({})
        task = Task.model_validate(
            {"name": "probe", "kind": "kubernetes", "targets": ["t1"], "schedule": {"every": "1m"}}
        )
        clock = SystemClock()
        async with Resources.open() as resources:
            ctx = RunContext(
                task,
                make_target(kind="cluster"),
                config,
                clock,
                clock.now() + timedelta(seconds=60),
                resources,
            )
            return await REGISTRY.get("kubernetes").build(config).run(ctx)

    result = run(go())
    assert result.output.startswith("kubernetes ")
    assert result.metrics["api_requests"] >= 1
    if result.status is Status.unknown:
        assert "forbidden" in result.output  # a token that may not list everything: still an answer
    else:
        assert "pods_total" in result.metrics
