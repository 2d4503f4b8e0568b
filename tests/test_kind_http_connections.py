"""The http kind: a new connection per check by default, a pooled one with keep_alive."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from maintd.checks.base import Resources, RunContext, Status
from maintd.clock import FakeClock
from maintd.plan.models import Task
from tests.conftest import T0, run
from tests.kinds import REGISTRY, make_target
from tests.servers import http_server


def peers_app(peers: list[tuple[str, int]], headers: list[str]) -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername")[:2])
        headers.append(request.headers.get("Connection", ""))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", handler)
    return app


def checks_share(params: dict[str, object], n: int = 3) -> tuple[list[tuple[str, int]], list[str]]:
    """Run the http kind n times, one after another, with one Resources (as the runner does)."""
    peers: list[tuple[str, int]] = []
    headers: list[str] = []
    spec = REGISTRY.get("http")

    async def go() -> None:
        async with http_server(peers_app(peers, headers)) as base, Resources.open() as resources:
            config = spec.config.model_validate({"url": base + "/", **params})
            task = Task.model_validate(
                {"name": "probe", "kind": "http", "targets": ["t1"], "schedule": {"every": "1m"}}
            )
            clock = FakeClock(T0)
            for _ in range(n):
                ctx = RunContext(
                    task, make_target(), config, clock, clock.now() + timedelta(seconds=10), resources
                )
                result = await spec.build(config).run(ctx)
                assert result.status is Status.ok, result.output

    run(go())
    return peers, headers


def test_each_check_opens_a_new_connection_by_default():
    peers, headers = checks_share({})
    assert len(set(peers)) == 3
    assert headers == ["close"] * 3


def test_keep_alive_reuses_the_pooled_connection():
    peers, headers = checks_share({"keep_alive": True})
    assert len(set(peers)) == 1
    assert "close" not in headers
