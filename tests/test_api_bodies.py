"""Request bodies every route gets the same way, over real HTTP (uvicorn in maintd serve): a
body over the limit is refused with 413 before it is read whole, declared or chunked, and a body
that is not JSON is a 400 that says where."""

from __future__ import annotations

from collections.abc import Iterator

import httpx

from maintd.api.bodylimit import MAX_BODY
from tests.harness import Harness, cli

PROBLEM = "application/problem+json"


def chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """A JSON-looking body sent without Content-Length (Transfer-Encoding: chunked)."""
    yield b'{"comment": "'
    for _ in range(total // size):
        yield b"x" * size
    yield b'"}'


def test_every_route_bounds_its_body_and_says_what_is_wrong_with_it(sqlite_world: Harness) -> None:
    h = sqlite_world
    h.write_plan("targets: []\ntasks: []\n")
    server = h.serve()
    h.wait_ready(server)
    made = cli("token", "create", "--name", "ops", "--role", "responder", env=h.env)
    assert made.returncode == 0, made.stderr
    auth = {"Authorization": f"Bearer {made.stdout.split()[-1]}", "Content-Type": "application/json"}
    silences = f"{server.url}/api/v1/silences"

    with httpx.Client(headers=auth, timeout=20) as http:
        declared = http.post(silences, content=b"x" * (MAX_BODY + 1))
        assert (declared.status_code, declared.headers["content-type"]) == (413, PROBLEM)
        assert declared.json()["detail"] == f"the body is {MAX_BODY + 1} bytes; the limit is {MAX_BODY}"

        streamed = http.post(silences, content=chunks(2 * MAX_BODY))
        assert streamed.status_code == 413
        assert streamed.json()["detail"] == f"the body is over the limit of {MAX_BODY} bytes"

        broken = http.post(silences, content=b'{"matchers": ["a=b"], "comment":')
        assert broken.status_code == 400
        assert broken.json() == {
            "type": "about:blank",
            "title": "Malformed JSON",
            "status": 400,
            "detail": "the body is not valid JSON: Expecting value at character 32",
        }

        # The alert routes keep their own, larger limits: 3 MB reaches Alertmanager's reader.
        key = cli("integration", "create", "--name", "prom", "--kind", "alertmanager", env=h.env)
        assert key.returncode == 0, key.stderr
        webhook = f"{server.url}/integrations/alertmanager/{key.stdout.split()[-1]}"
        large = http.post(webhook, content=b'{"alerts": [' + b" " * 3_000_000 + b"]}")
        assert large.status_code == 422, large.text  # read whole and found wanting, not refused

        fine = http.post(silences, json={"matchers": ["service=db"], "duration": "1h", "comment": "upgrade"})
        assert fine.status_code == 201, fine.text

    assert server.proc.poll() is None
    assert "Traceback" not in server.stderr() and "Exception" not in server.stderr()
