"""The web dashboard through FastAPI's TestClient: login and its cookie, CSRF, roles, escaping.

The browser test (tests/test_dashboard_browser.py) drives the same pages in Chromium.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from maintd.alerts.model import AlertIn, Severity
from maintd.api.app import create_app
from maintd.api.deps import AppContext
from maintd.auth import Principal, Role, create_token, revoke_token
from maintd.changes import service as changes
from maintd.changes.model import ChangeRequest
from maintd.engine import Engine
from maintd.incidents import service
from maintd.incidents.pipeline import ingest
from maintd.store.db import Store
from maintd.store.events import query
from maintd.store.models import RunRow
from maintd.web import auth, charts

PLAN = """
incidents:
  deadlines: {P0: 5m, P1: 10m, P2: 1h, P3: 1d}
  maintenance_windows:
    - {name: db-upgrade, match: ["target=db"], window: "Sun 03:00-05:00 UTC", comment: monthly}
schedules:
  - name: ops
    layers:
      - name: primary
        rotation: {members: [ann], start: 2026-11-01}
people:
  - {name: ann, email: ann@example.com}
  - {name: bob, email: bob@example.com}
components:
  - name: api
    owner: ann
    category: framework
    stage: production
    versions: [{version: "3.2.0", released: 2026-06-01}]
targets:
  - {name: web1, kind: host, connection: {path: /srv}}
tasks:
  - name: web-health
    kind: command
    targets: [web1]
    schedule: {every: 1h}
    params: {argv: [/bin/true], read_only: true}
changes:
  procedures:
    - {name: noop, apply: [/bin/true], rollback: [/bin/true]}
  types:
    tweak: {description: a small change, approvals: [{role: team-lead, count: 1}]}
documents:
  - {name: api-runbook, title: API <i>incident</i> runbook, kind: runbook, owner: ann, location: docs/rb.md}
"""
PAGES = ("/", "/incidents", "/tasks", "/runs", "/changes", "/postmortems", "/kpis", "/capacity", "/inventory")


@pytest.fixture
def store(sqlite_store: Store) -> Store:
    """SQLite here: one test below runs the acknowledge flow on PostgreSQL as well."""
    return sqlite_store


@pytest.fixture
def engine(store, write_plan, make_engine) -> Engine:  # type: ignore[no-untyped-def]
    engine = make_engine(store, write_plan(PLAN))
    result = engine.reload()
    assert result.ok, result.problems
    return engine


@pytest.fixture
def app(engine: Engine) -> FastAPI:
    return create_app(AppContext(engine.store, engine.clock, engine.metrics, engine))


@pytest.fixture
def browser(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as c:
        yield c


def opened(engine: Engine, summary: str = "API answers 503", name: str = "ApiDown") -> int:
    with engine.store.write() as s:
        assert engine.loaded is not None
        (delivery,) = ingest(
            s,
            [
                AlertIn(
                    source="native",
                    labels={"alertname": name},
                    severity=Severity.critical,
                    summary=summary,
                )
            ],
            now=engine.clock.now(),
            settings=engine.loaded.plan.incidents,
            actor="test",
        )
    assert delivery.incident is not None
    return delivery.incident.id


def log_in(client: TestClient, token: str, next_: str = "/") -> str:
    """Log in through the form; the CSRF token the pages then carry."""
    client.get("/login")
    nonce = client.cookies.get(auth.LOGIN_COOKIE)
    response = client.post("/login", data={"token": token, "login_csrf": nonce, "next": next_})
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/").text)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def state_of(engine: Engine, incident_id: int) -> str:
    with engine.store.read() as s:
        return service.get_incident(s, incident_id=incident_id).incident.state


def test_every_page_sends_a_stranger_to_the_login_page_and_back(browser, tokens):
    for path in (*PAGES, "/incidents/1", "/runs/x", "/changes/1"):
        response = browser.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")
    response = browser.get("/incidents?state=all")
    assert response.headers["location"] == "/login?next=%2Fincidents%3Fstate%3Dall"
    browser.get("/login")
    nonce = browser.cookies.get(auth.LOGIN_COOKIE)
    back = browser.post(
        "/login", data={"token": tokens["vera"], "login_csrf": nonce, "next": "/incidents?state=all"}
    )
    assert back.headers["location"] == "/incidents?state=all"


def test_logging_in_sets_an_httponly_samesite_strict_cookie_that_never_holds_the_token(browser, tokens):
    browser.get("/login")
    nonce = browser.cookies.get(auth.LOGIN_COOKIE)
    response = browser.post("/login", data={"token": tokens["rob"], "login_csrf": nonce})
    session_cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(auth.COOKIE))
    flags = {part.strip().lower() for part in session_cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/", "max-age=43200"} <= flags
    assert "secure" not in flags  # plain http: a Secure cookie would never come back
    assert tokens["rob"] not in session_cookie
    page = browser.get("/")
    assert page.status_code == 200
    assert "rob" in page.text and "(responder)" in page.text


def test_the_session_cookie_is_secure_over_https(app, tokens):
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        client.get("/login")
        nonce = client.cookies.get(auth.LOGIN_COOKIE)
        response = client.post("/login", data={"token": tokens["vera"], "login_csrf": nonce})
    session_cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(auth.COOKIE))
    assert "secure" in session_cookie.lower()


def test_an_unknown_token_or_a_login_without_the_form_nonce_is_refused(browser, tokens):
    browser.get("/login")
    nonce = browser.cookies.get(auth.LOGIN_COOKIE)
    wrong = browser.post("/login", data={"token": "mtd_nope", "login_csrf": nonce})
    assert wrong.status_code == 401 and "Unknown or revoked token." in wrong.text
    browser.cookies.clear()
    forged = browser.post("/login", data={"token": tokens["rob"], "login_csrf": "guessed"})
    assert forged.status_code == 403
    assert auth.COOKIE not in forged.headers.get("set-cookie", "")


def test_login_only_redirects_to_this_site(browser, tokens):
    for target in ("//evil.example", "https://evil.example/", "/\\evil.example"):
        browser.cookies.clear()
        browser.get("/login")
        nonce = browser.cookies.get(auth.LOGIN_COOKIE)
        response = browser.post("/login", data={"token": tokens["vera"], "login_csrf": nonce, "next": target})
        assert response.headers["location"] == "/"


def test_a_responder_acknowledges_resolves_and_notes_from_the_incident_page(browser, tokens, engine):
    incident_id = opened(engine)
    csrf = log_in(browser, tokens["rob"])
    page = browser.get(f"/incidents/{incident_id}").text
    assert ">Acknowledge</button>" in page and "10m left" in page
    done = browser.post(f"/incidents/{incident_id}/acknowledge", data={"csrf": csrf})
    assert (done.status_code, done.headers["location"]) == (303, f"/incidents/{incident_id}")
    assert state_of(engine, incident_id) == "acknowledged"
    page = browser.get(f"/incidents/{incident_id}").text
    assert 'data-state="acknowledged"' in page and ">Acknowledge</button>" not in page
    again = browser.post(f"/incidents/{incident_id}/acknowledge", data={"csrf": csrf})
    assert again.status_code == 409  # the state machine's refusal, shown as a page
    browser.post(f"/incidents/{incident_id}/notes", data={"csrf": csrf, "note": "restarted the pods"})
    browser.post(f"/incidents/{incident_id}/resolve", data={"csrf": csrf})
    assert state_of(engine, incident_id) == "resolved"
    with engine.store.read() as s:
        events = query(s, subject=f"incident:{incident_id}", kind="incident.")
        assert [(e.kind, e.actor) for e in events][-3:] == [
            ("incident.acknowledged", "token:rob"),
            ("incident.note", "token:rob"),
            ("incident.resolved", "token:rob"),
        ]
    assert "restarted the pods" in browser.get(f"/incidents/{incident_id}").text


def test_a_post_without_the_sessions_csrf_token_is_refused_and_changes_nothing(app, browser, tokens, engine):
    incident_id = opened(engine)
    log_in(browser, tokens["rob"])
    with TestClient(app, follow_redirects=False) as other:
        someone_elses = log_in(other, tokens["tess"])
    for data in ({}, {"csrf": ""}, {"csrf": someone_elses}):
        response = browser.post(f"/incidents/{incident_id}/acknowledge", data=data)
        assert response.status_code == 403 and "CSRF" in response.text
    assert state_of(engine, incident_id) == "triggered"
    stranger = TestClient(app, follow_redirects=False)
    assert stranger.post(f"/incidents/{incident_id}/acknowledge", data={"csrf": "x"}).status_code == 401
    assert state_of(engine, incident_id) == "triggered"


def test_a_viewer_reads_but_cannot_acknowledge(browser, tokens, engine):
    incident_id = opened(engine)
    csrf = log_in(browser, tokens["vera"])
    page = browser.get(f"/incidents/{incident_id}").text
    assert "<button" in page  # the logout button
    assert ">Acknowledge</button>" not in page and "Add note" not in page
    refused = browser.post(f"/incidents/{incident_id}/acknowledge", data={"csrf": csrf})
    assert refused.status_code == 403 and "needs the responder role" in refused.text
    assert (
        browser.post(f"/incidents/{incident_id}/notes", data={"csrf": csrf, "note": "hi"}).status_code == 403
    )
    assert state_of(engine, incident_id) == "triggered"


def test_an_incident_title_with_a_script_tag_is_shown_as_text(browser, tokens, engine):
    incident_id = opened(engine, summary='<script>alert("x")</script><img src=x onerror=alert(1)>')
    log_in(browser, tokens["vera"])
    for path in ("/", "/incidents", f"/incidents/{incident_id}"):
        page = browser.get(path)
        assert "<script" not in page.text and "<img" not in page.text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
        assert "script-src" not in page.headers["content-security-policy"]  # default-src 'none': no scripts
        assert "default-src 'none'" in page.headers["content-security-policy"]


def test_logging_out_ends_the_session_even_for_a_copy_of_its_cookie(browser, tokens):
    csrf = log_in(browser, tokens["rob"])
    cookie = browser.cookies.get(auth.COOKIE)
    assert browser.post("/logout", data={"csrf": csrf}).headers["location"] == "/login"
    browser.cookies.set(auth.COOKIE, cookie)
    assert browser.get("/").status_code == 303


def test_a_revoked_token_or_an_expired_session_ends_at_once(app, browser, tokens, engine):
    log_in(browser, tokens["rob"])
    with engine.store.write() as s:
        revoke_token(s, name="rob", now=engine.clock.now(), actor="test")
    assert browser.get("/").status_code == 303
    with TestClient(app, follow_redirects=False) as other:
        log_in(other, tokens["vera"])
        engine.clock.advance(auth.TTL)
        assert other.get("/").status_code == 303


def test_every_page_renders_for_a_viewer(browser, tokens, engine):
    answered = opened(engine)
    with engine.store.write() as s:
        assert engine.loaded is not None
        service.acknowledge(
            s,
            incident_id=answered,
            actor="test",
            now=engine.clock.now(),
            settings=engine.loaded.plan.incidents,
        )
    opened(engine, summary="a second one", name="WebDown")
    engine.clock.advance(timedelta(minutes=1))  # the KPI period ends before now
    log_in(browser, tokens["vera"])
    for path in PAGES:
        response = browser.get(path)
        assert response.status_code == 200, (path, response.text[-2000:])
        assert f'href="{path}" class="here"' in response.text
    overview = browser.get("/").text

    assert "primary: <strong>ann</strong>" in overview  # on call now
    assert "db-upgrade" in overview and "2026-11-29 03:00 UTC" in overview  # the next window
    assert "P1: 2" in overview
    kpis = browser.get("/kpis").text
    assert kpis.count("<svg") == 2  # the percentages (acknowledged in time: 100 %) and incidents per day
    assert "Acknowledged within the response deadline" in kpis and "100 %" in kpis
    inventory = browser.get("/inventory").text
    assert "3.2.0" in inventory and "API &lt;i&gt;incident&lt;/i&gt; runbook" in inventory
    assert browser.get("/incidents/999").status_code == 404
    assert browser.get("/static/style.css").status_code == 200


def test_incidents_per_day_become_columns_scaled_to_the_busiest_day():
    end = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    moments = [end, end - timedelta(hours=1), end - timedelta(days=2), end - timedelta(days=40)]
    chart = charts.per_day(moments, end, 30)
    assert len(chart.columns) == 30 and chart.peak == 2
    last, two_days_ago = chart.columns[-1], chart.columns[-3]
    assert (last.label, last.value, last.height) == ("11-27", 2, charts.BAR_AREA)
    assert (two_days_ago.value, two_days_ago.height) == (1, charts.BAR_AREA / 2)
    assert sum(c.value for c in chart.columns) == 3  # 40 days ago is outside the chart
    assert [c.label for c in chart.columns if c.show_label][-1] == "11-27"
    assert all(c.x + c.width <= charts.WIDTH for c in chart.columns)


def test_acknowledging_from_the_page_works_on_postgresql_too(pg_store, write_plan, make_engine):
    engine = make_engine(pg_store, write_plan(PLAN))
    assert engine.reload().ok
    with pg_store.write() as s:
        token = create_token(s, name="rob", role=Role.responder, now=engine.clock.now(), actor="test")
    incident_id = opened(engine)
    app = create_app(AppContext(engine.store, engine.clock, engine.metrics, engine))
    with TestClient(app, follow_redirects=False) as client:
        csrf = log_in(client, token)
        assert client.post(f"/incidents/{incident_id}/acknowledge", data={}).status_code == 403
        assert client.post(f"/incidents/{incident_id}/acknowledge", data={"csrf": csrf}).status_code == 303
        assert 'data-state="acknowledged"' in client.get(f"/incidents/{incident_id}").text
    assert state_of(engine, incident_id) == "acknowledged"


def test_the_capacity_page_draws_each_series_and_says_when_it_is_full(browser, tokens, engine):
    gib = 2.0**30
    start = engine.clock.now() - timedelta(days=60)
    with engine.store.write() as s:
        for i in range(60):
            at = start + timedelta(days=i)
            used = (100 + i) * gib
            s.add(
                RunRow(
                    id=f"cap{i}", task="disk", target="db1", kind="disk", dry_run=False, trigger="schedule",
                    attempt=1, scheduled_for=at, started_at=at, finished_at=at, state="finished", status="ok",
                    in_window=True, preventive=True, output="", owner="test", duration_ms=1.0,
                    metrics={"used_bytes:/": used, "free_bytes:/": 300 * gib - used},
                )
            )  # fmt: skip
    log_in(browser, tokens["vera"])
    page = browser.get("/capacity").text
    assert "<h3>disk/db1/used_bytes:/</h3>" in page
    assert page.count("<svg") == 1 and '<polyline class="history"' in page
    assert "Limit" in page


def requested(engine: Engine, title: str) -> int:
    assert engine.loaded is not None
    request = ChangeRequest(
        type="tweak", title=title, procedure="noop", targets=["web1"], checks=["web-health"]
    )
    with engine.store.write() as s:
        row = changes.create(
            s,
            request=request,
            who=Principal("rob", Role.responder),
            plan=engine.loaded.plan,
            now=engine.clock.now(),
        )
        return row.id


def test_a_team_lead_approves_or_rejects_a_change_from_its_page_and_others_are_refused(
    app, browser, tokens, engine
):
    first, second = requested(engine, "raise the pool size"), requested(engine, "<script>x</script>")
    with TestClient(app, follow_redirects=False) as rob:
        csrf = log_in(rob, tokens["rob"])
        assert (
            ">Approve</button>" in rob.get(f"/changes/{first}").text
        )  # a responder may try; the matrix decides
        refused = rob.post(f"/changes/{first}/approve", data={"csrf": csrf})
        assert refused.status_code == 403 and "the requester cannot approve it" in refused.text
    with TestClient(app, follow_redirects=False) as vera:
        csrf = log_in(vera, tokens["vera"])
        assert ">Approve</button>" not in vera.get(f"/changes/{first}").text
        assert vera.post(f"/changes/{first}/approve", data={"csrf": csrf}).status_code == 403
    csrf = log_in(browser, tokens["tess"])
    assert browser.post(f"/changes/{first}/approve", data={}).status_code == 403  # no CSRF token
    done = browser.post(f"/changes/{first}/approve", data={"csrf": csrf, "note": "looks fine"})
    assert (done.status_code, done.headers["location"]) == (303, f"/changes/{first}")
    assert browser.post(f"/changes/{second}/reject", data={"csrf": csrf}).status_code == 303
    page = browser.get(f"/changes/{first}").text
    assert "approved" in page and "looks fine" in page and ">Approve</button>" not in page
    assert "&lt;script&gt;x&lt;/script&gt;" in browser.get("/changes").text
    with engine.store.read() as s:
        assert [changes.get(s, change_id=i).state for i in (first, second)] == ["approved", "rejected"]
    again = browser.post(f"/changes/{second}/approve", data={"csrf": csrf})
    assert again.status_code == 409
