"""The right-sizing kind against the fake API server (recorded PodMetrics, quotas) and real runs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from maintd.checks.base import CheckResult, Status
from maintd.tasks.right_sizing import RightSizingConfig
from maintd.tasks.right_sizing.kube import quantity
from tests.conftest import run
from tests.kinds import run_kind
from tests.kubernetes_support import FakeKubeApi, write_kubeconfig
from tests.kubernetes_support.more import recorded
from tests.test_capacity import daily, disk, insert

MI = 2**20
# Five earlier runs' samples of the production api (cpu in cores, memory in bytes).
EARLIER = {
    "production/Deployment/api/api": {
        "cpu": [0.020, 0.022, 0.025, 0.024, 0.026],
        "memory": [140 * MI, 138 * MI, 145 * MI, 142 * MI, 139 * MI],
    }
}


def sized(tmp_path: Path, api: FakeKubeApi, params: dict[str, Any], memo: dict[str, Any]) -> CheckResult:
    async def go() -> CheckResult:
        async with api.serve() as base:
            kubeconfig = write_kubeconfig(tmp_path, base)
            full = {"kubernetes": {"kubeconfig": str(kubeconfig)}, **params}
            result: CheckResult = await run_kind("right-sizing", full, memo=memo)
            return result

    return run(go())


def test_quantities_read_as_the_api_writes_them():
    assert quantity("250m") == 0.25 and quantity("23118455n") == pytest.approx(0.023118455)
    assert quantity("512Mi") == 512 * MI and quantity("141312Ki") == 138 * MI and quantity("2") == 2
    assert quantity("1.5G") == 1.5e9
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        quantity("lots")


def test_over_and_under_provisioned_containers_and_a_quota_near_its_limit(tmp_path):
    api = FakeKubeApi(more=recorded())
    result = sized(tmp_path, api, {"namespaces": ["production"]}, {"samples": EARLIER})
    lines = result.output.splitlines()
    assert result.status is Status.warning, result.output
    # The api has 8 samples (5 saved, 3 pods now): p95 (nearest rank) is the highest, 31m.
    assert (
        "production/Deployment/api/api: cpu over-provisioned: requests 250m -> 41m "
        "(request 250m > p95 31m x headroom 1.3 over 8 samples; suggested: p95 x 1.3)"
    ) in lines
    assert "production/Deployment/api/api: memory over-provisioned: requests 256Mi -> 192Mi" in result.output
    # Two samples only elsewhere (default min_samples 6): not judged; the quota is.
    assert "worker" not in result.output and "postgres" not in result.output
    assert "warning: quota production/compute limits.memory: 5632Mi of 6Gi (92%)" in lines
    assert "quota production/compute requests.cpu: 1500m of 2 (75%)" in lines
    assert lines[0] == "2 recommendations (0 under-provisioned, 2 over-provisioned)"
    assert result.metrics["quota_share.production.compute.limits.memory"] == pytest.approx(0.9167, abs=1e-4)
    assert result.metrics["containers_judged"] == 1
    saved = result.memo["samples"]["production/Deployment/api/api"]  # type: ignore[index]
    assert saved["cpu"][:5] == EARLIER["production/Deployment/api/api"]["cpu"] and len(saved["cpu"]) == 8
    assert "GET /apis/metrics.k8s.io/v1beta1/namespaces/production/pods" in api.seen()
    assert not api.writes()  # read-only


def test_memory_near_its_limit_or_oom_killed_is_under_provisioned(tmp_path):
    api = FakeKubeApi(more=recorded())
    near = sized(tmp_path, api, {"namespaces": ["production"], "min_samples": 1}, {})
    assert (
        "production/Deployment/worker/worker: memory under-provisioned: limits 512Mi -> 718Mi "
        "(peak 497Mi >= 0.9 x limit 512Mi; suggested: peak x 1.3 / 0.9)"
    ) in near.output.splitlines()
    worker = next(p for p in api.objects["pods"] if p["metadata"]["name"].startswith("worker-"))
    status = worker["status"]["containerStatuses"][0]
    status["lastState"] = {"terminated": {"reason": "OOMKilled", "exitCode": 137}}
    result = sized(tmp_path, api, {"namespaces": ["production"], "min_samples": 1}, {})
    lines = result.output.splitlines()
    assert result.status is Status.warning
    # postgres: peak 1210Mi of a 2Gi limit is fine, but it uses far more than its 256Mi request.
    assert any(
        line.startswith("production/StatefulSet/postgres/postgres: memory under-provisioned: requests 256Mi")
        for line in lines
    ), result.output
    oom = next(line for line in lines if line.startswith("production/Deployment/worker/worker: memory"))
    assert "under-provisioned: limits 512Mi -> 666Mi" in oom and "1 container(s) last ended OOMKilled" in oom


def test_without_a_metrics_api_it_says_so_and_judges_nothing(tmp_path):
    more = recorded()
    del more[("/apis/metrics.k8s.io/v1beta1", "pods")]
    result = sized(tmp_path, FakeKubeApi(more=more), {"min_samples": 1}, {})
    assert "no PodMetrics: is metrics-server installed?" in result.output
    assert result.metrics["recommendations"] == 0


def test_an_unreachable_or_refusing_cluster_is_reported_not_raised(tmp_path):
    api = FakeKubeApi(more=recorded(), token="another-token")
    result = sized(tmp_path, api, {}, {})
    assert result.status is Status.unknown and "authentication failed (401" in result.output


def test_disk_growth_from_the_run_history_gives_the_time_to_full(sqlite_store):
    insert(sqlite_store, daily(60, disk))  # 1 GiB a day on a 300 GiB volume: full in ~141 days
    params = {"growth": {"database": sqlite_store.url, "metric": "used_bytes:/", "warn_within": "180d"}}
    result = run(run_kind("right-sizing", params))
    assert result.status is Status.warning, result.output
    [line] = [line for line in result.output.splitlines() if "growth" in line]
    assert line.startswith("warning: growth disk/db1/used_bytes:/: last ") and "full in 141 days" in line
    assert result.metrics["days_to_full.disk/db1/used_bytes:/"] == pytest.approx(141, abs=1)


def test_the_config_needs_something_to_size():
    with pytest.raises(ValidationError, match="nothing to right-size"):
        RightSizingConfig.model_validate({})
    with pytest.raises(ValidationError, match="quota_warn must not be above quota_crit"):
        RightSizingConfig.model_validate({"growth": {}, "quota_warn": 0.99, "quota_crit": 0.9})
    assert copy.deepcopy(EARLIER)  # the samples above are plain JSON, as the memo keeps them
