"""Each seed remediation with a real effect: a supervised process killed and restarted, PostgreSQL
sessions terminated, Kubernetes pods deleted, workloads restarted and a node drained (the exact calls
the recorded-objects API server saw), a circuit opened and honoured, a certificate renewed by the
certificates action. A blast radius too small for what the selector finds changes nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiohttp import web

from maintd.checks.base import Resources, Status
from maintd.clock import FakeClock
from maintd.plan.models import Target
from maintd.remediation.base import ActionContext, ActionResult, Refused, TaskOutcome
from maintd.remediation.circuits import StoreCircuits
from maintd.remediation.registry import builtin
from maintd.store.db import Store
from tests.conftest import PG_ADMIN_URL, T0, run
from tests.kubernetes_support import FakeKubeApi, cluster, write_kubeconfig
from tests.processes import alive, dies
from tests.servers import http_server

WAIT = 10.0


class NoCircuits:
    async def open(self, name: str, *, until: datetime, reason: str) -> None:
        raise AssertionError("no circuit expected")

    async def open_until(self, name: str) -> datetime | None:
        return None


async def no_task(task: str, target: str) -> TaskOutcome:
    raise Refused("no task expected")


def context(config: Any, *, clock: FakeClock | None = None, **extra: Any) -> ActionContext:
    clock = clock or FakeClock(T0)
    values: dict[str, Any] = {
        "playbook": "test",
        "target": "t",
        "labels": {},
        "config": config,
        "clock": clock,
        "deadline": clock.now() + timedelta(seconds=WAIT),
        "resources": Resources(),
        "run_task": no_task,
        "circuits": NoCircuits(),
        "plan_target": lambda name: (_ for _ in ()).throw(KeyError(name)),
    }
    values.update(extra)
    return ActionContext(**values)


def act(kind: str, params: dict[str, Any], **extra: Any) -> ActionResult:
    action = builtin().get(kind)
    config = action.config.model_validate(params)

    async def go() -> ActionResult:
        ctx = context(config, **extra)
        try:
            return await action.build(config).execute(ctx)
        finally:
            await ctx.resources.aclose()

    result: ActionResult = run(go())
    return result


# -- high_memory: a supervised process, killed and restarted -----------------------------------

SUPERVISOR = textwrap.dedent(
    """
    import os, subprocess, sys, time
    pidfile, stop = sys.argv[1], sys.argv[2]
    while not os.path.exists(stop):
        child = subprocess.Popen([sys.executable, "-c", "import time\\nwhile True: time.sleep(1)"])
        with open(pidfile + ".new", "w") as f:
            f.write(str(child.pid))
        os.replace(pidfile + ".new", pidfile)
        child.wait()
    """
)


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[Path]:
    """A supervisor that restarts its child whenever it exits; yields the child's pidfile."""
    pidfile, stop = tmp_path / "app.pid", tmp_path / "stop"
    script = tmp_path / "supervisor.py"
    script.write_text(SUPERVISOR)
    proc = subprocess.Popen([sys.executable, str(script), str(pidfile), str(stop)], start_new_session=True)
    deadline = time.monotonic() + WAIT
    while not pidfile.exists():
        assert time.monotonic() < deadline and proc.poll() is None, "the supervisor did not start its child"
        time.sleep(0.01)
    try:
        yield pidfile
    finally:
        stop.touch()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_high_memory_kills_the_process_and_its_supervisor_restarts_it(supervised: Path):
    old = int(supervised.read_text())
    result = act("memory_hook", {"pidfile": str(supervised), "signal": "TERM", "wait_restart": "10s"})
    assert result.ok, result.output
    new = int(supervised.read_text())
    assert new != old and dies(old) and alive(new)
    assert result.output == f"sent SIGTERM to {old}; restarted as {new}"
    (change,) = result.changes
    assert (change.action, change.target, change.detail["new_pid"]) == ("restart", f"pid {old}", new)


def test_high_memory_in_a_dry_run_signals_nothing(supervised: Path):
    old = int(supervised.read_text())
    result = act("memory_hook", {"pidfile": str(supervised), "wait_restart": "1s"}, dry_run=True)
    assert result.ok and result.output == f"dry run: would send SIGTERM to {old} ({supervised})"
    assert alive(old) and int(supervised.read_text()) == old


def test_high_memory_with_a_stale_pidfile_fails_and_says_so(tmp_path: Path):
    pidfile = tmp_path / "gone.pid"
    pidfile.write_text("999999999")
    result = act("memory_hook", {"pidfile": str(pidfile)})
    assert not result.ok and result.output == f"pidfile {pidfile}: process 999999999 is not running"


# -- connection_pool_exhausted: real PostgreSQL sessions terminated ----------------------------


@pytest.fixture
def sessions() -> Iterator[tuple[str, list[psycopg.Connection[Any]]]]:
    """Two sessions of one application idle in a transaction, one of it idle, one of another app."""
    app = f"pool-{uuid.uuid4().hex[:8]}"
    made: list[psycopg.Connection[Any]] = []
    try:
        for name, in_tx in ((app, True), (app, True), (app, False), (f"{app}-other", True)):
            conn = psycopg.connect(PG_ADMIN_URL, application_name=name, autocommit=not in_tx)
            conn.execute("SELECT 1")  # in_tx: the transaction stays open, idle
            made.append(conn)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required at {PG_ADMIN_URL}: {exc}")
    yield app, made
    for conn in made:
        conn.close()


def backend_alive(conn: psycopg.Connection[Any]) -> bool:
    try:
        conn.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


def test_connection_pool_exhausted_terminates_that_application_s_idle_in_transaction_sessions(sessions):  # type: ignore[no-untyped-def]
    app, (tx1, tx2, idle, other) = sessions
    pids = sorted(c.info.backend_pid for c in (tx1, tx2))
    result = act(
        "reset_connections", {"application": app, "host": "127.0.0.1", "user": "postgres"}, max_targets=2
    )
    assert result.ok, result.output
    assert sorted(int(c.target.removeprefix("pid ")) for c in result.changes) == pids
    assert all(c.action == "terminate" and c.detail["state"] == "idle in transaction" for c in result.changes)
    assert result.output == f"terminated 2 sessions of {app} at 127.0.0.1:5432/postgres"
    assert not backend_alive(tx1) and not backend_alive(tx2)
    assert backend_alive(idle)  # only the states asked for
    other.rollback()
    assert backend_alive(other)  # only that application


def test_a_blast_radius_smaller_than_the_sessions_found_terminates_none(sessions):  # type: ignore[no-untyped-def]
    app, (tx1, tx2, _idle, _other) = sessions
    with pytest.raises(
        Refused, match=rf"application_name={app} selects 2 sessions .* at most 1 per execution"
    ):
        act("reset_connections", {"application": app, "host": "127.0.0.1", "user": "postgres"}, max_targets=1)
    tx1.rollback()
    tx2.rollback()
    assert backend_alive(tx1) and backend_alive(tx2)


# -- pod_crash and node_pressure: the recorded-objects Kubernetes API server --------------------


def kube(tmp_path: Path, fake: FakeKubeApi, kind: str, params: dict[str, Any], **extra: Any) -> ActionResult:
    async def go() -> ActionResult:
        async with fake.serve() as base:
            config_file = write_kubeconfig(tmp_path, base)
            action = builtin().get(kind)
            config = action.config.model_validate({**params, "kubeconfig": str(config_file)})
            return await action.build(config).execute(context(config, **extra))

    result: ActionResult = run(go())
    return result


CRASHING = "api-7d9c8b6f5-m2v8p"


def test_pod_crash_deletes_the_pod_and_nothing_else(tmp_path: Path):
    fake = FakeKubeApi(objects=cluster("crashloop"))
    result = kube(tmp_path, fake, "restart_pod", {"namespace": "production", "pod": CRASHING})
    assert result.ok, result.output
    assert fake.seen() == [
        "GET /api/v1/namespaces/production/pods?limit=500",
        f"DELETE /api/v1/namespaces/production/pods/{CRASHING}",
    ]
    assert CRASHING not in [p["metadata"]["name"] for p in fake.objects["pods"]]
    assert [(c.action, c.target) for c in result.changes] == [("delete_pod", f"production/{CRASHING}")]


def test_pod_crash_in_rollout_mode_restarts_the_owning_deployment_as_kubectl_does(tmp_path: Path):
    fake = FakeKubeApi(objects=cluster("crashloop"))
    result = kube(
        tmp_path, fake, "restart_pod", {"namespace": "production", "selector": "app=api", "mode": "rollout"}
    )
    assert result.ok, result.output
    stamp = T0.isoformat(timespec="seconds")
    assert fake.writes() == [
        (
            "PATCH /apis/apps/v1/namespaces/production/deployments/api",
            {
                "spec": {
                    "template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}
                }
            },
        )
    ]
    assert fake.requests[-1].headers["Content-Type"] == "application/strategic-merge-patch+json"
    assert result.output == "restarted deployments/api in production"


def test_a_selector_matching_more_pods_than_the_blast_radius_deletes_none(tmp_path: Path):
    fake = FakeKubeApi(objects=cluster("crashloop"))
    with pytest.raises(Refused, match=r"production/tier=backend selects \d+ pods .* at most 2 per execution"):
        kube(
            tmp_path,
            fake,
            "restart_pod",
            {"namespace": "production", "selector": "tier=backend"},
            max_targets=2,
        )
    assert fake.writes() == []


def test_node_pressure_cordons_the_node_and_evicts_its_running_pods_but_not_daemonset_pods(tmp_path: Path):
    fake = FakeKubeApi(objects=cluster("node_pressure"))
    on_node = sorted(
        (p["metadata"]["namespace"], p["metadata"]["name"])
        for p in fake.objects["pods"]
        if p["spec"].get("nodeName") == "node-b"
        and p["status"].get("phase") not in ("Succeeded", "Failed")
        and not any(r["kind"] == "DaemonSet" for r in p["metadata"].get("ownerReferences", []))
    )
    assert on_node, "the recorded cluster has pods on node-b"
    result = kube(tmp_path, fake, "cordon_and_drain", {"node": "node-b"})
    assert result.ok, result.output
    evictions = [
        (
            f"POST /api/v1/namespaces/{ns}/pods/{name}/eviction",
            {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": ns}},
        )
        for ns, name in on_node
    ]
    assert fake.writes() == [("PATCH /api/v1/nodes/node-b", {"spec": {"unschedulable": True}}), *evictions]
    node = next(n for n in fake.objects["nodes"] if n["metadata"]["name"] == "node-b")
    assert node["spec"]["unschedulable"] is True
    assert result.output == f"cordoned node-b; evicted {len(on_node)} pods"


def test_an_eviction_a_disruption_budget_refuses_fails_the_drain_and_names_the_pod(tmp_path: Path):
    fake = FakeKubeApi(objects=cluster("node_pressure"))
    pods = [p for p in fake.objects["pods"] if p["spec"].get("nodeName") == "node-b"]
    protected = next(
        p for p in pods if not any(r["kind"] == "DaemonSet" for r in p["metadata"].get("ownerReferences", []))
    )
    key = f"{protected['metadata']['namespace']}/{protected['metadata']['name']}"
    fake.refuse_evictions.add(key)
    result = kube(tmp_path, fake, "cordon_and_drain", {"node": "node-b"})
    assert not result.ok
    assert f"evicting pod {key}: HTTP 429" in result.output and "disruption budget" in result.output


def test_a_dry_run_drain_makes_no_write_call(tmp_path: Path):
    fake = FakeKubeApi(objects=cluster("node_pressure"))
    result = kube(tmp_path, fake, "cordon_and_drain", {"node": "node-b"}, dry_run=True)
    assert result.ok and result.output.startswith("dry run: would cordon node-b and evict")
    assert fake.writes() == []


# -- api_rate_limit: a circuit the engine honours, and a webhook for others ---------------------


def test_api_rate_limit_opens_a_circuit_that_the_engine_s_own_calls_honour(sqlite_store: Store):
    clock = FakeClock(T0)
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook", hook)
    circuits = StoreCircuits(sqlite_store, clock)

    async def go() -> tuple[ActionResult, ActionResult, ActionResult]:
        async with http_server(app) as base:
            breaker = builtin().get("circuit_breaker")
            opened = await _execute(
                breaker, {"name": "payments", "duration": "5m", "url": f"{base}/hook"}, clock, circuits
            )
            webhook = builtin().get("webhook")
            params = {"url": f"{base}/hook", "circuit": "payments"}
            held = await _execute(webhook, params, clock, circuits)
            clock.advance(timedelta(minutes=5, seconds=1))
            called = await _execute(webhook, params, clock, circuits)
            return opened, held, called

    opened, held, called = run(go())
    until = (T0 + timedelta(minutes=5)).isoformat()
    assert opened.ok and opened.output.startswith(f"circuit payments open until {until}")
    assert not held.ok and held.output.startswith(f"circuit 'payments' is open until {until}: not calling")
    assert called.ok
    assert [r.get("circuit") for r in received] == ["payments", None]  # the breaker's notice, then the call
    assert received[0]["open_until"] == until


async def _execute(
    kind: Any, params: dict[str, Any], clock: FakeClock, circuits: StoreCircuits
) -> ActionResult:
    config = kind.config.model_validate(params)
    ctx = context(config, clock=clock, circuits=circuits)
    try:
        result: ActionResult = await kind.build(config).execute(ctx)
        return result
    finally:
        await ctx.resources.aclose()


# -- certificate_expired: the certificates action, run as the plan's task ----------------------


def test_certificate_expired_runs_the_certificates_task_and_reports_its_run():
    calls: list[tuple[str, str]] = []

    async def renew(task: str, target: str) -> TaskOutcome:
        calls.append((task, target))
        return TaskOutcome("run1", Status.ok, "shop.pem: renewed, expires in 90.0 days")

    result = act("renew_certificate", {"task": "certificates", "target": "shop-cert"}, run_task=renew)
    assert calls == [("certificates", "shop-cert")]
    assert (
        result.ok
        and result.output == "task certificates on shop-cert: ok shop.pem: renewed, expires in 90.0 days"
    )
    assert result.changes[0].detail == {"task": "certificates", "run_id": "run1", "status": "ok"}


# -- the docs keep up ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(builtin()), ids=lambda k: k.name)
def test_every_action_is_documented_with_every_param(kind: Any):
    text = (Path(__file__).resolve().parent.parent / "docs" / "remediation.md").read_text()
    heading = f"### `{kind.name}`"
    assert heading in text, f"docs/remediation.md has no section {heading}"
    section = text.split(heading, 1)[1].split("\n#", 1)[0]
    rows = "\n".join(line for line in section.splitlines() if line.startswith("| `"))
    missing = [f for f in kind.config.model_fields if f"`{f}`" not in rows]
    assert not missing, f"docs/remediation.md's {kind.name} section does not document {missing}"


def test_a_cluster_named_by_a_plan_target_is_reached_with_its_server_and_token_secret(monkeypatch):  # type: ignore[no-untyped-def]
    fake = FakeKubeApi(objects=cluster("crashloop"))
    monkeypatch.setenv("MAINTD_TEST_KUBE_TOKEN", "maintd-test-token")

    async def go() -> ActionResult:
        async with fake.serve() as base:
            target = Target.model_validate(
                {
                    "name": "prod-cluster",
                    "kind": "cluster",
                    "connection": {"server": base},
                    "secrets": {"token": "env:MAINTD_TEST_KUBE_TOKEN"},
                }
            )
            kind = builtin().get("restart_pod")
            params = {"namespace": "production", "pod": CRASHING, "cluster_target": "prod-cluster"}
            config = kind.config.model_validate(params)
            found = {"prod-cluster": target}
            return await kind.build(config).execute(context(config, plan_target=found.__getitem__))

    result: ActionResult = run(go())
    assert result.ok, result.output
    assert fake.requests[-1].headers["Authorization"] == "Bearer maintd-test-token"
    assert fake.writes() == [(f"DELETE /api/v1/namespaces/production/pods/{CRASHING}", None)]
