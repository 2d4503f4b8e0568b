"""The http kind against real servers on loopback."""

from __future__ import annotations

import asyncio
import socket

import pytest

from maintd.checks.base import Status
from tests.conftest import run
from tests.kinds import make_target, run_kind
from tests.servers import http_server, make_certificate, sample_app


def check(path: str, tls=None, **params):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        async with http_server(sample_app(), tls) as base:
            return await run_kind("http", {"url": base + path, **params})

    return run(go())


def test_a_healthy_endpoint_is_ok_with_latency_and_code_as_metrics():
    result = check("/ok", expect_status=[200], body_contains='"ok"')
    assert result.status is Status.ok
    assert "→ 200" in result.output
    assert result.metrics["status_code"] == 200.0
    assert 0 <= result.metrics["time"] < 5


def test_an_unexpected_status_is_critical():
    result = check("/missing")
    assert result.status is Status.critical
    assert "expected 2xx or 3xx" in result.output


def test_an_accepted_status_list_can_include_404():
    assert check("/missing", expect_status=[404]).status is Status.ok


def test_missing_body_text_is_critical():
    result = check("/ok", body_contains="database: up")
    assert result.status is Status.critical
    assert "body lacks 'database: up'" in result.output


def test_redirects_are_followed_unless_told_not_to():
    assert check("/moved", expect_status=[200]).status is Status.ok
    assert check("/moved", expect_status=[200], follow_redirects=False).status is Status.critical


def test_latency_over_the_warning_threshold_is_a_warning():
    result = check("/ok", warn_latency=0)
    assert result.status is Status.warning


def test_headers_are_sent():
    result = check("/headers", headers={"X-Probe": "maintd"}, body_contains='"X-Probe": "maintd"')
    assert result.status is Status.ok


def test_a_refused_connection_is_critical_not_an_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        result = run(run_kind("http", {"url": f"http://127.0.0.1:{port}/"}))
    assert result.status is Status.critical
    assert f"127.0.0.1:{port}" in result.output


def test_a_hung_server_is_cut_off_at_the_deadline():
    async def go():  # type: ignore[no-untyped-def]
        release = asyncio.Event()
        async with http_server(sample_app(release)) as base:
            try:
                return await run_kind("http", {"url": base + "/slow"}, timeout=0.3)
            finally:
                release.set()

    result = run(go())
    assert result.status is Status.critical
    assert "timed out" in result.output


def test_a_self_signed_certificate_fails_verification_unless_verification_is_off(tmp_path):
    tls = make_certificate(tmp_path)
    verified = check("/ok", tls)
    assert verified.status is Status.critical
    assert "certificate" in verified.output.lower()
    assert check("/ok", tls, verify_tls=False).status is Status.ok


def test_the_url_defaults_to_the_targets_connection_url():
    async def go():  # type: ignore[no-untyped-def]
        async with http_server(sample_app()) as base:
            return await run_kind("http", {}, make_target(kind="api", connection={"url": base + "/ok"}))

    assert run(go()).status is Status.ok


def test_no_url_anywhere_is_unknown():
    result = run(run_kind("http", {}))
    assert result.status is Status.unknown
    assert "no url" in result.output


@pytest.mark.parametrize("bad", [{"method": "BREW"}, {"url": "not a url"}, {"expect_status": "200"}])
def test_bad_params_are_rejected_by_the_kinds_model(bad):
    from pydantic import ValidationError

    from tests.kinds import REGISTRY

    with pytest.raises(ValidationError):
        REGISTRY.get("http").config.model_validate(bad)
