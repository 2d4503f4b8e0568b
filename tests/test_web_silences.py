"""The dashboard's silences page through FastAPI's TestClient: list pending, active and expired
silences, create one (its author the logged-in token) and expire it early; CSRF, roles and bad
input (shown again with its message and what was typed, nothing written)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import func, select

from maintd.api.app import create_app
from maintd.api.deps import AppContext
from maintd.engine import Engine
from maintd.store.db import Store
from maintd.store.events import query
from maintd.store.models import EventRow, SilenceRow
from tests.test_dashboard import PLAN, log_in


@pytest.fixture
def store(sqlite_store: Store) -> Store:
    return sqlite_store


@pytest.fixture
def engine(store, write_plan, make_engine) -> Engine:  # type: ignore[no-untyped-def]
    engine = make_engine(store, write_plan(PLAN))
    assert engine.reload().ok
    return engine


@pytest.fixture
def app(engine: Engine) -> FastAPI:
    return create_app(AppContext(engine.store, engine.clock, engine.metrics, engine))


@pytest.fixture
def browser(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as c:
        yield c


def silences(engine: Engine) -> list[SilenceRow]:
    with engine.store.read() as s:
        return list(s.scalars(select(SilenceRow).order_by(SilenceRow.id)))


def event_count(engine: Engine) -> int:
    with engine.store.read() as s:
        return int(s.scalar(select(func.count()).select_from(EventRow)) or 0)


def section(page: str, table_id: str) -> str:
    start = page.index(f'<table id="{table_id}">')
    return page[start : page.index("</table>", start)]


def test_a_responder_creates_a_silence_and_expires_it_early(browser, tokens, engine):
    csrf = log_in(browser, tokens["rob"])
    form = {
        "csrf": csrf,
        "matchers": "target=db\r\nalertname=~Disk.*\r\n",
        "duration": "2h",
        "comment": "disk swap tonight",
    }
    made = browser.post("/silences", data=form)
    assert (made.status_code, made.headers["location"]) == (303, "/silences")
    (row,) = silences(engine)
    now = engine.clock.now()
    assert (row.created_by, row.comment, row.ends_at - row.starts_at) == (
        "token:rob",
        "disk swap tonight",
        timedelta(hours=2),
    )
    assert [m["op"] for m in row.matchers] == ["=", "=~"]
    page = browser.get("/silences").text
    current = section(page, "current")
    assert "<code>alertname=~Disk.*</code>" in current and 'data-state="active"' in current
    assert f'aria-label="Expire silence {row.id}"' in current
    engine.clock.advance(timedelta(minutes=5))
    expired = browser.post(f"/silences/{row.id}/expire", data={"csrf": csrf})
    assert (expired.status_code, expired.headers["location"]) == (303, "/silences")
    (row,) = silences(engine)
    assert row.ends_at.replace(tzinfo=None) == (now + timedelta(minutes=5)).replace(tzinfo=None)
    page = browser.get("/silences").text
    assert "disk swap tonight" not in section(page, "current")
    assert "disk swap tonight" in section(page, "expired") and 'data-state="expired"' in page
    with engine.store.read() as s:
        events = query(s, subject=f"silence:{row.id}")
    assert [(e.kind, e.actor) for e in events] == [
        ("silence.created", "token:rob"),
        ("silence.expired", "token:rob"),
    ]
    assert browser.post("/silences/999/expire", data={"csrf": csrf}).status_code == 404


def test_a_silence_with_a_start_and_an_end_is_pending_until_it_starts(browser, tokens, engine):
    csrf = log_in(browser, tokens["rob"])
    start = engine.clock.now() + timedelta(hours=1)
    form = {
        "csrf": csrf,
        "matchers": "target=web1",
        "starts_at": start.strftime("%Y-%m-%dT%H:%M"),  # a datetime-local field without seconds
        "ends_at": (start + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S"),
        "comment": "planned",
    }
    assert browser.post("/silences", data=form).status_code == 303
    (row,) = silences(engine)
    assert row.ends_at - row.starts_at == timedelta(hours=3)
    assert 'data-state="pending"' in section(browser.get("/silences").text, "current")


BAD = (  # the form's fields (the comment aside), the message
    ({"matchers": "severity critical", "duration": "1h"}, "Matchers: &#39;severity critical&#39; is not"),
    ({"matchers": "job=~(api", "duration": "1h"}, "bad regular expression"),
    ({"matchers": "job=api", "ends_at": "2026-11-27T00:30"}, "a silence must end after it starts"),
    (
        {"matchers": "job=api", "starts_at": "2026-11-28T10:00", "ends_at": "2026-11-28T09:00"},
        "a silence must end after it starts",
    ),
    ({"matchers": "job=api", "duration": "1h", "ends_at": "2026-11-28T09:00"}, "give exactly one of"),
    ({"matchers": "job=api"}, "give exactly one of ends_at and duration"),
    ({"matchers": "job=api", "duration": "soon"}, "Duration: "),
)


def test_bad_input_is_shown_again_with_what_was_typed_and_creates_nothing(browser, tokens, engine):
    csrf = log_in(browser, tokens["rob"])
    written = event_count(engine)
    for fields, message in BAD:
        page = browser.post("/silences", data={"csrf": csrf, "comment": "kept <i>comment</i>", **fields})
        assert page.status_code == 422, page.text
        assert 'id="create-error"' in page.text and message in page.text, message
        assert "kept &lt;i&gt;comment&lt;/i&gt;</textarea>" in page.text
        assert f"{escape(fields['matchers'])}</textarea>" in page.text
        for name in {"starts_at", "ends_at", "duration"} & set(fields):
            assert f'name="{name}"' in page.text.split(f'value="{fields[name]}"')[0].rsplit("<input", 1)[-1]
    assert silences(engine) == [] and event_count(engine) == written


def test_a_silence_needs_a_comment(browser, tokens, engine):
    csrf = log_in(browser, tokens["rob"])
    page = browser.post("/silences", data={"csrf": csrf, "matchers": "job=api", "duration": "1h"})
    assert page.status_code == 422 and "Comment: " in page.text and silences(engine) == []


def test_a_viewer_reads_silences_and_wrong_roles_or_csrf_tokens_are_refused(app, browser, tokens, engine):
    with TestClient(app, follow_redirects=False) as rob:
        rob_csrf = log_in(rob, tokens["rob"])
        made = {"csrf": rob_csrf, "matchers": "job=api", "duration": "1h", "comment": "deploy"}
        assert rob.post("/silences", data=made).status_code == 303
    (row,) = silences(engine)
    csrf = log_in(browser, tokens["vera"])
    page = browser.get("/silences").text
    assert "deploy" in page and 'id="new-silence"' not in page and "Expire silence" not in page
    assert 'href="/silences" class="here"' in page
    with TestClient(app, follow_redirects=False) as other:
        log_in(other, tokens["rob"])
        written = event_count(engine)
        fields = {k: v for k, v in made.items() if k != "csrf"}
        posts = {"/silences": fields, f"/silences/{row.id}/expire": {}}
        for path, data in posts.items():
            refused = browser.post(path, data={"csrf": csrf, **data})
            assert refused.status_code == 403 and "needs the responder role" in refused.text, path
            for token in ({}, {"csrf": "forged"}, {"csrf": csrf}):  # none, made up, someone else's
                refused = other.post(path, data={**token, **data})
                assert refused.status_code == 403 and "CSRF" in refused.text, path
    assert event_count(engine) == written
    (unchanged,) = silences(engine)
    assert unchanged.ends_at == row.ends_at


def test_the_page_refuses_exactly_whom_the_api_refuses(app, tokens, engine):
    api = TestClient(app)
    body = {"matchers": ["job=api"], "duration": "1h", "comment": "deploy"}
    for who in ("vera", "rob", "tess"):
        auth = {"Authorization": f"Bearer {tokens[who]}"}
        with TestClient(app, follow_redirects=False) as web:
            csrf = log_in(web, tokens[who])
            page = web.post(
                "/silences", data={"csrf": csrf, "matchers": "job=api", "duration": "1h", "comment": "d"}
            )
            answer = api.post("/api/v1/silences", json=body, headers=auth)
            assert (page.status_code == 403) == (answer.status_code == 403) == (who == "vera"), who
            silence_id = silences(engine)[0].id if silences(engine) else 1
            page = web.post(f"/silences/{silence_id}/expire", data={"csrf": csrf})
            answer = api.delete(f"/api/v1/silences/{silence_id}", headers=auth)
            assert (page.status_code == 403) == (answer.status_code == 403) == (who == "vera"), who


def test_a_stranger_is_sent_to_log_in_and_cannot_post(browser, engine):
    for path in ("/silences", "/postmortems/1"):
        page = browser.get(path)
        assert page.status_code == 303 and page.headers["location"].startswith("/login?next=")
    for path in ("/silences", "/silences/1/expire", "/postmortems/1/edit", "/postmortems/1/actions"):
        assert browser.post(path, data={"csrf": "x", "matchers": "a=b"}).status_code == 401, path
    assert silences(engine) == []
