"""The http kind against real servers on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time

import pytest
from aiohttp import web

from maintd.checks.base import Status
from maintd.checks.http.jsonbody import json_equal
from maintd.checks.http.jsonpath import JsonPath, JsonPathError
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


# --- JSON assertions, body caps, encodings ------------------------------------------------------

DOC = {
    "status": "ok",
    "db": {"up": True, "latency_ms": 12.5, "replicas": 2},
    "items": [{"name": "a", "n": 1}, {"name": "b", "n": 2}],
    "tags": ["x", "y"],
    "odd key": {"it's": 1, "a.b": [10, 20]},
    "nothing": None,
    "message": "all systems go",
}


def body_app(sent: dict[str, int]) -> web.Application:
    """Endpoints with awkward bodies; ``sent`` counts the bytes the endless one wrote."""

    async def document(_request: web.Request) -> web.Response:
        return web.json_response(DOC)

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        chunk = b" " * 65536
        sent["bytes"] = 0
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while sent["bytes"] < 10 * 2**30:  # 10 GB, unless the client goes away
                await response.write(chunk)
                sent["bytes"] += len(chunk)
        return response

    def raw(body: bytes, content_type: str = "text/plain", charset: str | None = None):  # type: ignore[no-untyped-def]
        async def handler(_request: web.Request) -> web.Response:
            return web.Response(body=body, content_type=content_type, charset=charset)

        return handler

    app = web.Application()
    app.router.add_get("/doc", document)
    app.router.add_get("/endless", endless)
    app.router.add_get("/html", raw(b"<html>not json</html>", "text/html"))
    app.router.add_get("/bad-utf8", raw(b"\xff\xfe start marker caf\xc3\xa9 \xc0 end"))
    app.router.add_get("/latin1", raw("caf\u00e9 cr\u00e8me".encode("latin-1"), charset="iso-8859-1"))
    app.router.add_get("/json-bad-utf8", raw(b'{"a": "\xff"}', "application/json"))
    app.router.add_get("/deep", raw(b"[" * 200_000 + b"]" * 200_000, "application/json"))
    app.router.add_get("/big", raw(b'{"pad": "' + b"x" * (2 << 20) + b'"}', "application/json"))
    app.router.add_get("/empty", raw(b"", "application/json"))
    return app


def check_body(path: str, **params):  # type: ignore[no-untyped-def]
    sent: dict[str, int] = {}

    async def go():  # type: ignore[no-untyped-def]
        async with http_server(body_app(sent)) as base:
            return await run_kind("http", {"url": base + path, **params}, timeout=20)

    return run(go())


def test_json_assertions_that_hold_are_ok_and_min_max_values_become_metrics():
    result = check_body(
        "/doc",
        json=[
            {"path": "$.status", "equals": "ok"},
            {"path": "$.db.up", "equals": True},
            {"path": "$.db", "equals": {"up": True, "latency_ms": 12.5, "replicas": 2.0}},
            {"path": "$.items[0].name", "equals": "a"},
            {"path": "$.items[-1].n", "min": 2, "max": 2},
            {"path": "$.items[*].n", "min": 1},
            {"path": "$.db.latency_ms", "max": 100},
            {"path": "$.message", "contains": "systems"},
            {"path": "$.tags", "contains": "y"},
            {"path": "$['odd key']['its']", "exists": False},
            {"path": "$['odd key'][\"it's\"]", "equals": 1},
            {"path": "$['odd key']['a.b'][1]", "equals": 20},
            {"path": "$.nothing", "equals": None},
            {"path": "$.nothing", "exists": True},
            {"path": "$.missing", "exists": False},
        ],
    )
    assert result.status is Status.ok, result.output
    assert result.metrics["json:$.items[-1].n"] == 2.0
    assert result.metrics["json:$.db.latency_ms"] == 12.5
    assert "json:$.items[*].n" not in result.metrics  # two matches: no single value


def test_a_failing_json_assertion_is_critical_with_the_value_found():
    result = check_body("/doc", json=[{"path": "$.status", "equals": "down"}])
    assert result.status is Status.critical
    assert result.output.endswith('; JSON $.status is "ok", expected "down"')
    assert "\n" not in result.output


def test_every_failing_json_assertion_is_listed_after_the_summary():
    result = check_body(
        "/doc",
        json=[
            {"path": "$.db.latency_ms", "max": 10},
            {"path": "$.db.up", "equals": 1},
            {"path": "$.items[*].name", "equals": "a"},
            {"path": "$.nope", "exists": True},
            {"path": "$.status", "min": 0},
        ],
    )
    assert result.status is Status.critical
    lines = result.output.splitlines()
    assert lines[0].endswith("; JSON $.db.latency_ms is 12.5, above the maximum 10 (and 4 more)")
    assert lines[1:] == [
        "JSON $.db.latency_ms is 12.5, above the maximum 10",
        "JSON $.db.up is true, expected 1",
        'JSON $.items[*].name (one of 2 matches) is "b", expected "a"',
        "JSON $.nope matches nothing",
        'JSON $.status is "ok", not a number',
    ]


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/html", "the body is not JSON (Expecting value at line 1 column 1)"),
        ("/empty", "the body is not JSON (Expecting value at line 1 column 1)"),
        ("/json-bad-utf8", "the body is not JSON (not UTF-8 at byte 7)"),
        ("/deep", "the body is not JSON (nested too deeply)"),
        ("/big", "the body is larger than 1048576 bytes"),
    ],
)
def test_a_body_that_is_not_json_is_critical_with_the_reason(path, reason):
    result = check_body(path, json=[{"path": "$", "exists": True}])
    assert result.status is Status.critical
    assert result.output.endswith(f"; JSON not checked: {reason}"), result.output


def test_json_assertions_do_not_run_on_an_unexpected_status():
    result = check_body("/nowhere", json=[{"path": "$.a", "exists": True}])
    assert result.status is Status.critical
    assert result.output.endswith("expected 2xx or 3xx")


@pytest.mark.parametrize(
    "params", [{}, {"body_contains": "never"}, {"json": [{"path": "$.a", "exists": True}]}]
)
def test_an_endless_body_is_read_only_up_to_the_cap_and_the_check_ends_promptly(params):
    sent: dict[str, int] = {}

    async def go():  # type: ignore[no-untyped-def]
        async with http_server(body_app(sent)) as base:
            started = time.monotonic()
            result = await run_kind("http", {"url": base + "/endless", **params}, timeout=20)
            return result, time.monotonic() - started

    result, elapsed = run(go())
    assert elapsed < 5, elapsed
    assert sent["bytes"] < 256 << 20, sent  # the server stopped long before 10 GB
    if params:
        assert result.status is Status.critical
        assert "1048576 bytes" in result.output
    else:
        assert result.status is Status.ok


def test_body_contains_works_on_a_body_with_invalid_utf8():
    assert check_body("/bad-utf8", body_contains="marker").status is Status.ok
    assert check_body("/bad-utf8", body_contains="caf\u00e9").status is Status.ok
    missing = check_body("/bad-utf8", body_contains="absent")
    assert missing.status is Status.critical
    assert missing.output.endswith("body lacks 'absent'")


def test_body_contains_reads_the_declared_charset():
    assert check_body("/latin1", body_contains="cr\u00e8me").status is Status.ok


@pytest.mark.parametrize(
    "bad",
    [
        {"json": [{"path": "status", "equals": 1}]},
        {"json": [{"path": "$..a", "exists": True}]},
        {"json": [{"path": "$.a"}]},
        {"json": [{"path": "$.a", "equals": 1, "exists": True}]},
        {"json": [{"path": "$.a", "min": 5, "max": 1}]},
        {"json": [{"path": "$.a", "exists": True, "regex": "x"}]},
        {"json": {"path": "$.a", "exists": True}},
    ],
)
def test_bad_json_assertions_are_rejected_by_the_kinds_model(bad):
    from pydantic import ValidationError

    from tests.kinds import REGISTRY

    with pytest.raises(ValidationError):
        REGISTRY.get("http").config.model_validate(bad)


# --- the JSONPath subset --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "found"),
    [
        ("$", [DOC]),
        ("$.status", ["ok"]),
        ("$.db.latency_ms", [12.5]),
        ("$['db']['up']", [True]),
        ('$["db"].replicas', [2]),
        ("$.items[0].name", ["a"]),
        ("$.items[1]", [{"name": "b", "n": 2}]),
        ("$.items[-1].name", ["b"]),
        ("$.items[-2].name", ["a"]),
        ("$.items[2]", []),
        ("$.items[-3]", []),
        ("$.items[*].n", [1, 2]),
        ("$.items.*.name", ["a", "b"]),
        ("$.tags[*]", ["x", "y"]),
        ("$.db.*", [True, 12.5, 2]),
        ("$.db[*]", [True, 12.5, 2]),
        ("$['odd key']['a.b'][0]", [10]),
        ("$['odd key']['it\\'s']", [1]),
        ('$["odd key"]["it\'s"]', [1]),
        ("$.nothing", [None]),
        ("$.nothing.deeper", []),
        ("$.status[0]", []),
        ("$.items.name", []),
        ("$.missing", []),
        ("$.with-dash_and_1", []),
        ("$[*][*]", [True, 12.5, 2, {"name": "a", "n": 1}, {"name": "b", "n": 2}, "x", "y", 1, [10, 20]]),
    ],
)
def test_json_paths_find_values(path, found):
    assert JsonPath.parse(path).find(DOC) == found


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("status", "must start with $"),
        ("", "must start with $"),
        ("$.", "expected a member name after '.'"),
        ("$.1a", "expected a member name after '.'"),
        ("$..a", "recursive descent (..) not supported"),
        ("$[", "expected an index, '*' or a quoted name"),
        ("$[0", "expected ']'"),
        ("$['a'", "expected ']'"),
        ("$['a]", "expected a closing '"),
        ("$[1:2]", "slices and unions not supported"),
        ("$[0,1]", "slices and unions not supported"),
        ("$[?(@.a)]", "slices, filters and unions not supported"),
        ("$['a\\x']", "after a backslash"),
        ("$a", "expected '.' or '['"),
        ("$.a b", "expected '.' or '['"),
    ],
)
def test_bad_json_paths_are_rejected_with_the_reason(path, message):
    with pytest.raises(JsonPathError, match=re.escape(message)):
        JsonPath.parse(path)


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (1, 1.0, True),
        (True, 1, False),
        (0, False, False),
        ("1", 1, False),
        (None, None, True),
        (None, 0, False),
        ([1, [2]], [1.0, [2]], True),
        ([1, 2], [2, 1], False),
        ({"a": 1, "b": [True]}, {"b": [True], "a": 1}, True),
        ({"a": 1}, {"a": 1, "b": 2}, False),
        ({"a": True}, {"a": 1}, False),
    ],
)
def test_json_equality_tells_booleans_from_numbers(a, b, equal):
    assert json_equal(a, b) is equal
