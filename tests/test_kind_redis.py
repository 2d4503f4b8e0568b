"""The redis kind against real redis-server processes on loopback (one per test, free ports)."""

from __future__ import annotations

import socket
import time
from datetime import timedelta
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import select

from maintd.checks.base import CheckResult, RunSample, Status
from maintd.clock import FakeClock
from maintd.engine import Engine
from maintd.settings import Settings
from maintd.store.models import RunRow
from tests.conftest import T0, run
from tests.kinds import make_target, run_kind
from tests.redis_support import RedisServer
from tests.servers import make_certificate


def check(server: RedisServer, params: dict[str, Any] | None = None, **kwargs: Any) -> CheckResult:
    kwargs.setdefault("target", server.target())
    target = kwargs.pop("target")
    result: CheckResult = run(run_kind("redis", params or {}, target, **kwargs))
    return result


def sample(result: CheckResult, ago: float) -> RunSample:
    return RunSample(T0 - timedelta(seconds=ago), result.status, dict(result.metrics))


def test_a_healthy_server_is_ok_and_says_memory_is_unbounded(redis_server):
    server = redis_server()
    result = check(server)
    assert result.status is Status.ok, result.output
    first = result.output.splitlines()[0]
    assert first.startswith(f"redis redis://127.0.0.1:{server.port} (master): ping ")
    assert "maxmemory 0: unbounded" in first
    assert "first run with counters" in result.output
    assert 0 < result.metrics["ping_seconds"] < 5
    assert result.metrics["maxmemory"] == 0 and "memory_percent" not in result.metrics
    assert result.metrics["is_replica"] == 0
    assert result.metrics["maxclients"] > 0
    assert "hit_ratio" not in result.metrics


def test_the_hit_ratio_comes_from_the_lookups_between_two_runs(redis_server):
    server = redis_server()
    client = server.client()
    client.set("present", "1")
    for _ in range(50):  # before the first run: not part of the ratio
        client.get("absent")
    first = check(server, clock=FakeClock(T0 - timedelta(minutes=5)))
    for _ in range(30):
        client.get("present")
    for _ in range(10):
        client.get("absent")
    params = {"min_hit_ratio": 0.9, "min_lookups": 20}
    second = check(server, params, history=[sample(first, 300)])
    assert second.metrics["lookups"] == 40
    assert second.metrics["hit_ratio"] == pytest.approx(0.75)
    assert second.metrics["keyspace_hits_delta"] == 30
    assert second.metrics["interval_seconds"] == 300
    assert second.status is Status.warning
    assert "hit ratio 75.0% (30 hits, 10 misses) since the previous run 5m ago" in second.output
    assert "below min_hit_ratio 90.0%" in second.output.splitlines()[0]

    # The same interval with too few lookups to judge is ok.
    lenient = check(server, {"min_hit_ratio": 0.9, "min_lookups": 1000}, history=[sample(first, 300)])
    assert lenient.status is Status.ok
    assert "too few lookups to judge" in lenient.output
    # A good ratio is ok.
    assert check(server, {"min_hit_ratio": 0.5}, history=[sample(first, 300)]).status is Status.ok


def test_a_previous_run_without_counters_is_skipped_for_an_older_one(redis_server):
    server = redis_server()
    first = check(server)
    server.client().get("absent")
    failed = RunSample(T0 - timedelta(seconds=60), Status.critical, {})
    second = check(server, history=[failed, sample(first, 120)])
    assert second.metrics["lookups"] == 1
    assert second.metrics["interval_seconds"] == 120


def test_a_restart_resets_the_counters_and_no_negative_delta_is_computed(redis_server):
    server = redis_server()
    client = server.client()
    for _ in range(20):
        client.get("absent")
    first = check(server)
    assert first.metrics["keyspace_misses"] == 20
    server.restart()
    server.client().get("absent")
    second = check(server, {"min_hit_ratio": 0.99, "min_lookups": 0}, history=[sample(first, 60)])
    assert second.status is Status.warning
    assert second.metrics["restarted"] == 1
    assert second.metrics["keyspace_misses"] == 1
    assert not [name for name in second.metrics if name.endswith("_delta")]
    assert "hit_ratio" not in second.metrics
    summary = second.output.splitlines()[0]
    assert "counters went down" in summary or "restarted" in summary
    assert "no deltas this run" in summary

    third = check(server, history=[sample(second, 60), sample(first, 120)])
    assert third.status is Status.ok and "restarted" not in third.metrics
    assert third.metrics["keyspace_misses_delta"] == 0

    quiet = check(server, {"warn_on_restart": False}, history=[sample(first, 60)])
    assert quiet.status is Status.ok and quiet.metrics["restarted"] == 1


def test_a_restart_is_seen_by_the_uptime_even_when_the_counters_grew_past_the_old_ones(redis_server):
    server = redis_server()
    server.client().get("absent")
    counters = dict.fromkeys(
        ["keyspace_hits", "keyspace_misses", "evicted_keys", "expired_keys", "rejected_connections"], 0.0
    )
    before = RunSample(T0 - timedelta(hours=1), Status.ok, {**counters, "uptime_in_seconds": 86400.0})
    result = check(server, history=[before])
    assert result.status is Status.warning
    assert result.metrics["restarted"] == 1 and "lookups" not in result.metrics
    summary = result.output.splitlines()[0]
    assert "(master): restarted " in summary and "was 86400s 60m ago): counters reset" in summary


def test_memory_pressure_evicts_keys_and_is_reported_against_maxmemory(redis_server):
    server = redis_server()
    client = server.client()
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", str(used + 2 * 2**20))
    client.config_set("maxmemory-policy", "allkeys-lru")
    first = check(server)
    assert first.status is Status.ok, first.output
    assert 0 < first.metrics["memory_percent"] < 80
    value = "x" * 10_000
    for i in range(600):  # about 6 MB into 2 MB: the oldest keys go
        client.set(f"key:{i}", value)
    second = check(server, {"warn_evictions": 1}, history=[sample(first, 60)])
    assert second.metrics["evicted_keys_delta"] > 0
    assert second.metrics["memory_percent"] >= 90
    assert second.status is Status.critical
    summary = second.output.splitlines()[0]
    assert "memory" in summary and "(warning at 80%, critical at 90%)" in summary
    assert "keys evicted since the previous run 60s ago, policy allkeys-lru (warning at 1)" in summary
    # Without an eviction threshold evictions are reported, not judged. The memory is given room
    # first: a full Redis sits at or just above 100% of maxmemory, so no percent threshold is safe.
    client.config_set("maxmemory", str(2**30))
    lenient = check(server, history=[sample(first, 60)])
    assert lenient.status is Status.ok
    assert "keys evicted" in lenient.output


def test_a_replica_with_its_link_up_is_ok_and_critical_once_the_master_is_gone(redis_server):
    master = redis_server("--repl-diskless-sync-delay", "0")  # else a full sync waits 5 s
    replica = redis_server()
    replica.client().replicaof("127.0.0.1", master.port)
    replica.wait_for(lambda info: info.get("master_link_status") == "up", "link up")
    master.client().set("k", "v")
    master.wait_for(
        lambda info: info.get("slave0", {}).get("state") == "online", "replica online on the master"
    )

    on_replica = check(replica, {"expect_role": "replica"})
    assert on_replica.status is Status.ok, on_replica.output
    assert "(replica): ping" in on_replica.output.splitlines()[0]
    assert f"link to master 127.0.0.1:{master.port} up" in on_replica.output
    assert on_replica.metrics["master_link_up"] == 1 and on_replica.metrics["is_replica"] == 1
    assert on_replica.metrics["lag_bytes"] >= 0  # read from the master

    on_master = check(master, {"expect_role": "master", "min_replicas": 1})
    assert on_master.status is Status.ok, on_master.output
    assert on_master.metrics["connected_replicas"] == 1
    assert "1 of 1 replicas online" in on_master.output
    too_few = check(master, {"min_replicas": 2})
    assert too_few.status is Status.critical
    assert "fewer than min_replicas 2" in too_few.output.splitlines()[0]

    wrong_role = check(replica, {"expect_role": "master"})
    assert wrong_role.status is Status.critical
    assert "role is replica, expected master" in wrong_role.output.splitlines()[0]

    master.stop()
    replica.wait_for(lambda info: info.get("master_link_status") == "down", "link down")
    down = check(replica, {"expect_role": "replica"})
    assert down.status is Status.critical
    assert f"link to master 127.0.0.1:{master.port} is down" in down.output.splitlines()[0]
    assert down.metrics["master_link_up"] == 0


def test_a_wrong_or_missing_password_is_critical_and_never_shown(redis_server, monkeypatch):
    server = redis_server("--requirepass", "right-horse-battery")
    secrets = {"secrets": {"redis_pw": "env:MAINTD_TEST_REDIS_PASSWORD"}}

    monkeypatch.setenv("MAINTD_TEST_REDIS_PASSWORD", "wrong-staple")
    wrong = check(server, {"password_secret": "redis_pw"}, target=server.target(**secrets))
    assert wrong.status is Status.critical
    assert "authentication failed" in wrong.output
    assert "wrong-staple" not in wrong.output

    missing = check(server)
    assert missing.status is Status.critical
    assert "authentication required" in missing.output

    monkeypatch.setenv("MAINTD_TEST_REDIS_PASSWORD", "right-horse-battery")
    right = check(server, {"password_secret": "redis_pw"}, target=server.target(**secrets))
    assert right.status is Status.ok, right.output
    assert "right-horse-battery" not in right.output

    monkeypatch.delenv("MAINTD_TEST_REDIS_PASSWORD")
    unset = check(server, {"password_secret": "redis_pw"}, target=server.target(**secrets))
    assert unset.status is Status.unknown
    assert "MAINTD_TEST_REDIS_PASSWORD" in unset.output


def test_the_default_password_secret_and_acl_user_from_a_url(redis_server, monkeypatch):
    server = redis_server()
    server.client().acl_setuser("probe", enabled=True, passwords=["+probe-pw"], commands=["+ping", "+info"])
    monkeypatch.setenv("MAINTD_TEST_REDIS_PASSWORD", "probe-pw")
    target = make_target(
        connection={"url": f"redis://probe@127.0.0.1:{server.port}/3"},
        secrets={"password": "env:MAINTD_TEST_REDIS_PASSWORD"},
    )
    result = check(server, target=target)
    assert result.status is Status.ok, result.output
    assert result.output.startswith(f"redis redis://127.0.0.1:{server.port} (master)")


def test_tls_with_the_servers_ca_is_ok_and_an_unknown_certificate_is_critical(redis_server, tmp_path):
    cert, key = make_certificate(tmp_path)
    server = redis_server(tls=(cert, key))
    url = f"rediss://127.0.0.1:{server.port}"
    trusted = check(server, target=make_target(connection={"url": url, "ca_file": str(cert)}))
    assert trusted.status is Status.ok, trusted.output
    assert trusted.output.startswith(f"redis {url} (master): ping")

    unknown = check(server, target=make_target(connection={"url": url}))
    assert unknown.status is Status.critical
    assert "certificate verify failed" in unknown.output

    unverified = check(server, {"verify_tls": False}, target=make_target(connection={"url": url}))
    assert unverified.status is Status.ok, unverified.output
    by_host = make_target(
        connection={"host": "127.0.0.1", "port": server.port, "tls": True, "ca_file": str(cert)}
    )
    assert check(server, target=by_host).status is Status.ok


def test_an_unreachable_port_is_critical_with_the_address():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        target = make_target(connection={"host": "127.0.0.1", "port": port})
        result = run(run_kind("redis", {}, target))
    assert result.status is Status.critical
    assert result.output.startswith(f"redis redis://127.0.0.1:{port}: cannot connect")


def test_a_hung_server_is_cut_off_before_the_deadline():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()  # accepts, never answers
        target = make_target(connection={"host": "127.0.0.1", "port": sock.getsockname()[1]})
        started = time.monotonic()
        result = run(run_kind("redis", {}, target, timeout=0.5))
    assert result.status is Status.critical
    assert "timed out" in result.output
    assert time.monotonic() - started < 2


def test_a_target_without_an_address_is_unknown():
    result = run(run_kind("redis", {}, make_target()))
    assert result.status is Status.unknown
    assert "no connection.url or connection.host" in result.output


def test_rejected_connections_since_the_previous_run_are_a_warning(redis_server):
    server = redis_server()
    first = check(server)
    holder = server.client(single_connection_client=True)
    holder.ping()
    holder.config_set("maxclients", "1")
    rejected = server.client(retry=Retry(NoBackoff(), 0))
    with pytest.raises(redis.ConnectionError):
        rejected.ping()
    holder.config_set("maxclients", "100")
    holder.close()
    second = check(server, history=[sample(first, 60)])
    assert second.metrics["rejected_connections_delta"] >= 1
    assert second.status is Status.warning
    assert "connections rejected since the previous run" in second.output.splitlines()[0]


def test_clients_near_maxclients_are_a_warning(redis_server):
    server = redis_server()
    holders = [server.client(single_connection_client=True) for _ in range(3)]
    for holder in holders:
        holder.ping()
    holders[0].config_set("maxclients", "5")
    result = check(server)  # 3 + the check's own connection = 80%
    assert result.status is Status.warning
    assert "4 clients connected, 80.0% of maxclients 5" in result.output.splitlines()[0]
    for holder in holders:
        holder.close()


PLAN = """
    targets:
      - {name: cache, kind: cache, connection: {host: 127.0.0.1, port: %d}}
    tasks:
      - {name: cache-health, kind: redis, targets: [cache], schedule: {every: 1m},
         params: {min_hit_ratio: 0.5, min_lookups: 4}}
"""


def test_deltas_work_across_runs_recorded_by_the_engine(store, write_plan, clock, registry, redis_server):
    server = redis_server()
    client = server.client()
    client.set("present", "1")
    engine = Engine(
        Settings(database_url=store.url, plan_path=write_plan(PLAN % server.port)),
        store=store,
        registry=registry,
        clock=clock,
    )
    engine.reload()

    async def tick() -> None:
        orders, _ = engine.tick(clock.now())
        await engine.runner.run_all(orders)

    async def go() -> None:
        await tick()
        for _ in range(3):
            client.get("present")
        client.get("absent")
        clock.advance(60)
        await tick()
        for _ in range(5):
            client.get("absent")
        clock.advance(60)
        await tick()
        await engine.runner.stop(0)

    run(go())
    with store.read() as s:
        runs = list(s.scalars(select(RunRow).order_by(RunRow.started_at)))
    assert [r.status for r in runs] == ["ok", "ok", "warning"]
    assert "hit_ratio" not in runs[0].metrics
    assert runs[1].metrics["hit_ratio"] == pytest.approx(0.75)
    assert runs[1].metrics["interval_seconds"] == 60
    assert runs[2].metrics["hit_ratio"] == 0
    assert "below min_hit_ratio" in runs[2].output.splitlines()[0]
