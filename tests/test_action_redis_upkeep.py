"""The redis-upkeep kind against real Redis: the machine's 127.0.0.1:6379 (keys under a uuid prefix,
read-only) and redis-server processes of the tests' own on free ports for everything that needs a
configuration of its own (maxmemory, policies) or changes something."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis

from maintd.checks.base import CheckResult, RunSample, Status
from maintd.clock import FakeClock
from tests.conftest import T0, run
from tests.kinds import make_target, run_kind
from tests.manual_runs import action_events, run_by_hand
from tests.redis_support import RedisServer

SHARED_DB = 13  # on the machine's Redis: a database of its own, and keys under a uuid prefix


def upkeep(server: RedisServer | None, params: dict[str, Any] | None = None, **kwargs: Any) -> CheckResult:
    target = kwargs.pop("target", None) or (server.target() if server else make_target())
    result: CheckResult = run(run_kind("redis-upkeep", params or {}, target, **kwargs))
    return result


def sample(result: CheckResult, ago: float) -> RunSample:
    return RunSample(T0 - timedelta(seconds=ago), result.status, dict(result.metrics))


def recommended(result: CheckResult) -> set[str]:
    return {name.removeprefix("recommend_") for name in result.metrics if name.startswith("recommend_")}


def purges(server: RedisServer) -> int:
    stats = server.client().info("commandstats")
    return int(stats.get("cmdstat_memory|purge", {}).get("calls", 0))


@pytest.fixture
def shared_keys() -> Iterator[tuple[redis.Redis, str]]:
    client = redis.Redis(host="127.0.0.1", port=6379, db=SHARED_DB, socket_timeout=5)
    prefix = f"maintd-test:{uuid.uuid4().hex}:"
    yield client, prefix
    names = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if names:
        client.delete(*names)
    client.close()


def test_the_shared_redis_is_sampled_under_a_prefix_and_left_as_it_was(shared_keys):
    client, prefix = shared_keys
    config_before = client.config_get("*")
    for i in range(30):
        client.set(f"{prefix}plain:{i}", "v")
    for i in range(10):
        client.set(f"{prefix}ttl:{i}", "v", ex=3600)
    client.set(f"{prefix}big", "x" * 200_000)
    target = make_target(connection={"url": f"redis://127.0.0.1:6379/{SHARED_DB}"})
    params = {"sample_match": f"{prefix}*", "big_key_bytes": 100_000, "sample_keys": 10_000}
    result = upkeep(None, params, target=target)

    assert result.metrics["sampled_keys"] == 41
    assert result.metrics["sample_no_ttl_share"] == pytest.approx(31 / 41, abs=1e-6)
    assert result.metrics["sample_big_keys"] == 1
    assert "big_keys" in recommended(result)
    assert result.status is Status.warning
    summary = result.output.splitlines()[0]
    assert summary.startswith(f"redis-upkeep redis://127.0.0.1:6379 db {SHARED_DB}: recommend [big_keys]: ")
    assert f"1 sampled key uses 97.7 KiB or more: {prefix}big (2" in summary  # jemalloc's size class
    assert f"sampled 41 keys matching '{prefix}*' in " in result.output
    assert result.changes == []
    assert client.config_get("*") == config_before
    assert client.dbsize() >= 41


def test_the_hit_ratio_and_evictions_come_from_deltas_and_name_the_policy_mismatch(redis_server):
    server = redis_server()
    client = server.client()
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", str(used + 2 * 2**20))
    client.config_set("maxmemory-policy", "allkeys-lru")
    client.set("present", "1")
    first = upkeep(server, clock=FakeClock(T0 - timedelta(minutes=10)))
    assert "hit_ratio" not in first.metrics
    assert "first run with counters" in first.output

    for _ in range(10):
        client.get("present")
    for _ in range(30):
        client.get("absent")
    for i in range(600):  # about 6 MB into 2 MB, none with a TTL: the oldest are evicted
        client.set(f"key:{i}", "x" * 10_000)
    second = upkeep(server, {"min_lookups": 20}, history=[sample(first, 600)])

    assert second.metrics["hit_ratio"] == pytest.approx(0.25)
    assert second.metrics["evicted_keys_delta"] > 0
    assert recommended(second) >= {"low_hit_ratio", "evictions_policy"}
    assert "no_maxmemory" not in recommended(second)
    assert second.status is Status.warning
    assert "recommend [low_hit_ratio]: hit ratio 25.0% of 40 lookups since the previous run (below 80%)" in (
        second.output
    )
    lines = second.output.splitlines()
    line = next(x for x in lines if x.startswith("WARNING: recommend [evictions_policy]"))
    assert "evicted since the previous run under policy allkeys-lru, and 100% of the keys have no TTL" in line
    assert "10m ago" in second.output
    assert second.metrics["recommendations"] == len(recommended(second))

    # Too few lookups to judge: no hit-ratio recommendation.
    lenient = upkeep(server, {"min_lookups": 1000}, history=[sample(first, 600)])
    assert "low_hit_ratio" not in recommended(lenient)


def test_no_maxmemory_is_recommended_against_without_alerting(redis_server):
    server = redis_server()
    result = upkeep(server)
    assert recommended(result) == {"no_maxmemory"}
    assert result.status is Status.ok, result.output
    assert "recommend [no_maxmemory]: maxmemory is 0: Redis may grow until the kernel's OOM killer" in (
        result.output
    )
    assert result.output.splitlines()[0].endswith(", policy noeviction, 1 recommendation")


def test_noeviction_near_maxmemory_and_volatile_policy_without_ttls_are_warnings(redis_server):
    server = redis_server()
    client = server.client()
    for i in range(200):
        client.set(f"k:{i}", "x" * 5_000)
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", str(int(used / 0.95)))
    full = upkeep(server)
    assert "noeviction_full" in recommended(full)
    assert full.status is Status.warning
    assert "used under policy noeviction: writes fail with OOM errors at 100%" in full.output

    client.config_set("maxmemory", str(used * 4))
    client.config_set("maxmemory-policy", "volatile-lru")
    volatile = upkeep(server)
    assert recommended(volatile) == {"no_ttl"}
    assert volatile.metrics["sample_no_ttl_share"] == 1
    assert "100% of 200 sampled keys in db 0 have no TTL under policy volatile-lru" in volatile.output
    for i in range(200):
        client.expire(f"k:{i}", 3600)
    assert recommended(upkeep(server)) == set()


def test_the_sample_stops_at_its_budget_and_reads_the_targets_database(redis_server):
    server = redis_server()
    in_db3 = server.client(db=3)
    for i in range(500):
        in_db3.set(f"k:{i}", "v")
    server.client().set("in-db-0", "v")
    target = make_target(connection={"host": "127.0.0.1", "port": server.port, "db": 3})
    result = upkeep(server, {"sample_keys": 120}, target=target)
    assert result.metrics["sampled_keys"] == 120
    assert result.metrics["keyspace_keys"] == 500
    assert "sampled 120 keys in " in result.output
    assert "(stopped at 120 keys or the time budget)" in result.output
    whole = upkeep(server, {"sample_keys": 5000}, target=target)
    assert whole.metrics["sampled_keys"] == 500
    assert "(the whole keyspace)" in whole.output
    none = upkeep(server, {"sample_keys": 0}, target=target)
    assert "sampled_keys" not in none.metrics


def test_fragmentation_is_purged_only_when_enabled_and_not_in_a_dry_run(redis_server):
    server = redis_server()
    # A fresh server's baseline RSS against ~1 MB of data reads as fragmentation; frag_min_bytes 0 lets
    # it count, which the default (100 MiB) would not.
    observe = upkeep(server, {"frag_min_bytes": 0})
    assert "fragmentation" in recommended(observe)
    assert "MEMORY PURGE returns jemalloc's dirty pages to the system" in observe.output
    assert observe.changes == [] and purges(server) == 0
    assert "fragmentation" not in recommended(upkeep(server, {"memory_purge": True}))
    assert purges(server) == 0  # below the default frag_min_bytes: nothing to do

    planned = upkeep(server, {"frag_min_bytes": 0, "memory_purge": True}, dry_run=True)
    assert [(c.action, c.target) for c in planned.changes] == [
        ("memory-purge", f"redis://127.0.0.1:{server.port}")
    ]
    assert "dry run: would run MEMORY PURGE" in planned.output
    assert purges(server) == 0

    done = upkeep(server, {"frag_min_bytes": 0, "memory_purge": True})
    assert [c.action for c in done.changes] == ["memory-purge"]
    assert set(done.changes[0].detail) == {"before", "after"}
    assert "MEMORY PURGE: fragmentation ratio " in done.output
    assert purges(server) == 1


def test_activedefrag_is_set_only_if_the_server_accepts_it_and_never_in_a_dry_run(redis_server):
    server = redis_server()
    params = {"frag_min_bytes": 0, "active_defrag": True}
    planned = upkeep(server, params, dry_run=True)
    assert [(c.action, c.detail) for c in planned.changes] == [
        ("config-set", {"parameter": "activedefrag", "from": "no", "to": "yes", "persisted": False})
    ]
    assert server.client().config_get("activedefrag") == {"activedefrag": "no"}

    result = upkeep(server, params)
    accepted = server.client().config_get("activedefrag") == {"activedefrag": "yes"}
    if accepted:  # a Redis built with its own jemalloc
        assert [c.action for c in result.changes] == ["config-set"]
        again = upkeep(server, params)
        assert again.changes == [] and "activedefrag is already yes: nothing to set" in again.output
    else:  # Debian's Redis, built with the system jemalloc, refuses
        assert result.changes == []
        assert result.status is Status.warning
        assert "CONFIG SET activedefrag yes refused: CONFIG SET failed" in result.output.splitlines()[0]


def test_an_unreachable_server_and_a_missing_password_are_critical_with_the_address(redis_server):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        refused = upkeep(None, target=make_target(connection={"host": "127.0.0.1", "port": port}))
    assert refused.status is Status.critical
    assert refused.output.startswith(f"redis-upkeep redis://127.0.0.1:{port}: cannot connect")

    server = redis_server("--requirepass", "sesame-upkeep")
    locked = upkeep(server, {"memory_purge": True, "frag_min_bytes": 0})
    assert locked.status is Status.critical and locked.changes == []
    assert locked.output == (
        f"redis-upkeep redis://127.0.0.1:{server.port}: authentication required and no password: "
        "target t1 has no secret named 'password' (param password_secret)"
    )
    assert purges(server) == 0

    unknown = upkeep(None, target=make_target())
    assert unknown.status is Status.unknown
    assert unknown.output == "redis-upkeep on target t1: no connection.url or connection.host"


AUDIT_PLAN = """
targets:
  - {name: cache, kind: cache, connection: {host: 127.0.0.1, port: %d}}
tasks:
  - name: cache-upkeep
    kind: redis-upkeep
    targets: [cache]
    schedule: {cadence: weekly, window: "Sunday 03:00-05:00 UTC"}
    params: {memory_purge: true, frag_min_bytes: 0}
"""


def test_a_purge_through_the_engine_is_audited_planned_then_applied(
    store, write_plan, make_engine, clock, redis_server
):
    server = redis_server()
    engine = make_engine(store, write_plan(AUDIT_PLAN % server.port))
    assert engine.reload().ok
    for dry_run in (True, False):
        run_by_hand(engine, "cache-upkeep", "cache", dry_run=dry_run)
        assert purges(server) == (0 if dry_run else 1)
    audit = action_events(store)
    assert [e.kind for e in audit] == ["action.planned", "action.applied"]
    for event in audit:
        (change,) = event.payload["changes"]
        assert (change["action"], change["target"]) == ("memory-purge", f"redis://127.0.0.1:{server.port}")
    assert set(audit[1].payload["changes"][0]["detail"]) == {"before", "after"}


def test_an_acl_without_memory_purge_is_a_warning_and_no_change(redis_server, monkeypatch):
    server = redis_server()
    server.client().acl_setuser(
        "upkeep",
        enabled=True,
        passwords=["+upkeep-pw"],
        keys=["*"],
        commands=["+info", "+scan", "+ttl", "+memory|usage", "+config|get"],
    )
    monkeypatch.setenv("MAINTD_TEST_UPKEEP_PASSWORD", "upkeep-pw")
    target = make_target(
        connection={"url": f"redis://upkeep@127.0.0.1:{server.port}/0"},
        secrets={"password": "env:MAINTD_TEST_UPKEEP_PASSWORD"},
    )
    result = upkeep(server, {"memory_purge": True, "frag_min_bytes": 0}, target=target)
    assert result.status is Status.warning
    assert result.changes == []
    assert "WARNING: MEMORY PURGE refused: " in result.output
    assert "upkeep-pw" not in result.output
    assert purges(server) == 0
