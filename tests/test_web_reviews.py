"""The dashboard's review pages through FastAPI's TestClient: the list with each review's progress,
where a team lead opens one on demand, the checklist where a team lead records areas reviewed,
adds findings, changes their owner or due date, marks them done or cancels them and completes
the review; CSRF, the API's roles, and bad input (shown again with its message
and what was typed, nothing written)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from maintd.api.app import create_app
from maintd.api.deps import AppContext
from maintd.engine import Engine
from maintd.reviews import findings, planned, service
from maintd.store.db import Store
from maintd.store.events import query
from maintd.store.models import EventRow, ReviewFindingRow, ReviewItemRow, ReviewRow
from tests.test_dashboard import log_in
from tests.test_web_postmortems import form_of

PLAN = """
people:
  - {name: ann, email: ann@example.test}
  - {name: bob, email: bob@example.test}
reviews:
  - {name: architecture, title: Architecture review, owner: ann, participants: [bob]}
  - {name: security, owner: bob, cadence: monthly, areas: [access, {name: secrets, title: Secret rotation}]}
"""


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> Store:
    """Both databases: recording takes the review's row lock on PostgreSQL."""
    fixture = "sqlite_store" if request.param == "sqlite" else "pg_store"
    return request.getfixturevalue(fixture)  # type: ignore[no-any-return]


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


def opened(engine: Engine, name: str = "security") -> int:
    """The review ``name`` opened for the current period (the clock's: 2026-11)."""
    assert engine.loaded is not None
    with engine.store.write() as s:
        row = service.start(
            s, reviews=engine.loaded.plan.reviews, name=name, actor="test", now=engine.clock.now()
        )
        return row.id


def found(engine: Engine, review_id: int, area: str, owner: str, days: int = 0) -> int:
    """A finding recorded directly, due ``days`` from now."""
    assert engine.loaded is not None
    reviews, now = engine.loaded.plan.reviews, engine.clock.now()
    with engine.store.write() as s:
        settings = planned.settings_of(reviews, service.load(s, review_id).name)
        row = findings.add_finding(s, review_id=review_id, area=area, title=f"{area} {days}", owner=owner,
                                   due_on=(now + timedelta(days=days)).date(), people={owner},
                                   settings=settings, actor="test", now=now)  # fmt: skip
        return row.id


def review_events(engine: Engine) -> int:
    """The reviews' events (logging in writes events of its own)."""
    with engine.store.read() as s:
        stmt = select(func.count()).select_from(EventRow).where(EventRow.kind.startswith("review."))
        return int(s.scalar(stmt) or 0)


def day(engine: Engine, days: int) -> str:
    return (engine.clock.now() + timedelta(days=days)).date().isoformat()


def finding_rows(engine: Engine) -> list[ReviewFindingRow]:
    with engine.store.read() as s:
        return list(s.scalars(select(ReviewFindingRow).order_by(ReviewFindingRow.id)))


def test_the_list_shows_each_reviews_period_owner_progress_and_open_and_overdue_findings(
    browser, tokens, engine
):
    architecture, security = opened(engine, "architecture"), opened(engine)
    with engine.store.write() as s:
        now = engine.clock.now()
        service.check(s, review_id=architecture, area="cost", notes="fine", actor="test", now=now)
    found(engine, architecture, "cost", "bob", 0)
    found(engine, architecture, "cost", "bob", 30)
    engine.clock.advance(timedelta(days=2))  # the first finding's due day has ended
    log_in(browser, tokens["vera"])
    page = browser.get("/reviews").text
    assert '<a href="/reviews" class="here" aria-current="page">Reviews</a>' in page
    row = page.split(f'id="review-{architecture}"')[1].split("</tr>")[0]
    assert "Architecture review" in row and ">2026-Q4<" in row and ">ann<" in row
    assert '"progress">1 of 6<' in row and '"open-findings">2<' in row
    assert '"overdue-findings overdue">1<' in row
    row = page.split(f'id="review-{security}"')[1].split("</tr>")[0]
    assert ">2026-11<" in row and ">bob<" in row and '"progress">0 of 2<' in row
    assert '"overdue-findings">0<' in row


def test_a_team_lead_works_through_the_checklist_and_completes_once_every_area_is_reviewed(
    browser, tokens, engine
):
    review_id = opened(engine)
    url = f"/reviews/{review_id}"
    csrf = log_in(browser, tokens["tess"])
    assert "Complete the review" not in browser.get(url).text
    recorded = browser.post(
        f"{url}/areas/access", data={"csrf": csrf, "notes": "SSO only.\r\nNo shared keys."}
    )
    assert (recorded.status_code, recorded.headers["location"]) == (303, url)
    early = browser.post(f"{url}/complete", data={"csrf": csrf})
    assert early.status_code == 409 and "1 area not reviewed: secrets" in early.text
    assert browser.post(f"{url}/areas/secrets", data={"csrf": csrf, "notes": "Rotated"}).status_code == 303
    with engine.store.read() as s:
        items = {
            i.area: i for i in s.scalars(select(ReviewItemRow).where(ReviewItemRow.review_id == review_id))
        }
    assert (items["access"].notes, items["access"].reviewed_by) == (
        "SSO only.\nNo shared keys.",
        "token:tess",
    )
    page = browser.get(url).text
    assert (
        'id="review-progress">2 of 2<' in page and "No shared keys." in page and "Complete the review" in page
    )
    for title in ("Rotate the deploy key", "Drop the old vault"):
        finding = {"csrf": csrf, "area": "secrets", "title": title, "owner": "bob", "due_on": day(engine, 7)}
        assert browser.post(f"{url}/findings", data=finding).status_code == 303
    done, dropped = finding_rows(engine)
    assert (done.owner, done.status, done.created_by) == ("bob", "open", "token:tess")
    page = browser.get(url).text
    assert (
        f'aria-label="Mark finding {done.id} done"' in page
        and f'aria-label="Cancel finding {dropped.id}"' in page
    )
    assert browser.post(f"{url}/findings/{done.id}/done", data={"csrf": csrf}).status_code == 303
    assert browser.post(f"{url}/findings/{dropped.id}/cancel", data={"csrf": csrf}).status_code == 303
    again = browser.post(f"{url}/findings/{done.id}/cancel", data={"csrf": csrf})
    assert again.status_code == 409 and "is done; it cannot change any more" in again.text
    assert (
        browser.post(f"/reviews/{review_id + 1}/findings/{done.id}/done", data={"csrf": csrf}).status_code
        == 404
    )
    completed = browser.post(f"{url}/complete", data={"csrf": csrf, "note": "all good"})
    assert completed.status_code == 303
    with engine.store.read() as s:
        kinds = [(e.kind, e.actor) for e in query(s, subject=f"review:{review_id}", kind="review.")]
        (closing,) = query(s, subject=f"review:{review_id}", kind="review.completed")
    assert kinds[1:] == [
        ("review.area_reviewed", "token:tess"),
        ("review.area_reviewed", "token:tess"),
        ("review.finding.added", "token:tess"),
        ("review.finding.added", "token:tess"),
        ("review.finding.completed", "token:tess"),
        ("review.finding.cancelled", "token:tess"),
        ("review.completed", "token:tess"),
    ]
    assert closing.payload["note"] == "all good"
    page = browser.get(url).text
    assert 'data-state="complete"' in page and "(on time)" in page and 'data-status="cancelled"' in page
    assert (
        'id="add-finding"' not in page and "Record reviewed" not in page and "Complete the review" not in page
    )


def review_rows(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.store.read() as s:
        return [(r.name, r.period, r.opened_by) for r in s.scalars(select(ReviewRow).order_by(ReviewRow.id))]


def test_a_team_lead_opens_a_review_on_demand_for_the_current_or_a_named_period(browser, tokens, engine):
    csrf = log_in(browser, tokens["tess"])
    page = browser.get("/reviews").text
    assert 'id="start-review"' in page
    assert '<option value="security">security review (monthly)</option>' in page
    now = browser.post("/reviews", data={"csrf": csrf, "name": "security", "period": ""})
    assert review_rows(engine) == [("security", "2026-11", "token:tess")]
    with engine.store.read() as s:
        review_id = s.scalars(select(ReviewRow.id)).one()
    assert (now.status_code, now.headers["location"]) == (303, f"/reviews/{review_id}")
    later = browser.post("/reviews", data={"csrf": csrf, "name": "architecture", "period": " 2027-Q1 "})
    assert later.status_code == 303
    assert review_rows(engine)[1:] == [("architecture", "2027-Q1", "token:tess")]
    with engine.store.read() as s:
        assert [e.actor for e in query(s, kind="review.opened")] == ["token:tess", "token:tess"]
    page = browser.get("/reviews").text
    assert ">2027-Q1<" in page and ">2026-11<" in page


BAD_STARTS = (  # review name, period, the message
    ("security", "", "security 2026-11 exists already: review"),
    ("nope", "", "the active plan has no review &#39;nope&#39; (reviews: architecture, security)"),
    ("security", "2026-Q4", "&#39;2026-Q4&#39; is not a monthly period"),
    ("", "", "Review: String should have at least 1 character"),
    ("security", "2026-11-01-and-more", "Period: String should have at most 16 characters"),
)


def test_a_bad_review_to_open_is_shown_again_with_what_was_typed_and_nothing_is_opened(
    browser, tokens, engine
):
    opened(engine)
    csrf = log_in(browser, tokens["tess"])
    written, rows = review_events(engine), review_rows(engine)
    for name, period, message in BAD_STARTS:
        page = browser.post("/reviews", data={"csrf": csrf, "name": name, "period": period})
        assert page.status_code == 422 and 'id="start-error"' in page.text, (name, page.text)
        assert message in page.text, name
        assert form_of(page.text, "start-review")["period"] == period
        if name:
            assert f'<option value="{name}" selected>' in page.text
    assert review_events(engine) == written and review_rows(engine) == rows


def test_a_team_lead_changes_a_findings_owner_and_due_date_even_once_the_review_is_complete(
    browser, tokens, engine
):
    review_id = opened(engine)
    url = f"/reviews/{review_id}"
    made = found(engine, review_id, "access", "ann", 3)
    with engine.store.write() as s:
        for area in ("access", "secrets"):
            service.check(s, review_id=review_id, area=area, notes="ok", actor="test", now=engine.clock.now())
        service.complete(s, review_id=review_id, actor="test", now=engine.clock.now())
    log_in(browser, tokens["tess"])
    sent = form_of(browser.get(url).text, f"change-finding-{made}")
    assert sent["due_on"] == day(engine, 3)
    sent.update(owner="bob", due_on=day(engine, 20))
    changed = browser.post(f"{url}/findings/{made}/change", data=sent)
    assert (changed.status_code, changed.headers["location"]) == (303, url)
    (row,) = finding_rows(engine)
    assert (row.owner, row.due_on.isoformat(), row.status) == ("bob", day(engine, 20), "open")
    with engine.store.read() as s:
        (event,) = query(s, subject=f"review:{review_id}", kind="review.finding.changed")
    assert event.actor == "token:tess"
    assert event.payload == {"finding": made, "owner": "bob", "due_on": day(engine, 20)}
    assert browser.post(f"{url}/findings/{made}/cancel", data={"csrf": sent["csrf"]}).status_code == 303
    page = browser.get(url).text
    assert f'id="change-finding-{made}"' not in page
    final = browser.post(f"{url}/findings/{made}/change", data=sent)
    assert final.status_code == 409 and "is cancelled; it cannot change any more" in final.text
    assert browser.post(f"/reviews/{review_id + 1}/findings/{made}/change", data=sent).status_code == 404


BAD_CHANGES = (  # owner, due in days (None: not a date), the message
    ("zed", 3, "&#39;zed&#39; is not a person of the active plan (people: ann, bob)"),
    ("ann", -1, "has passed (today is 2026-11-27, UTC)"),
    ("ann", None, "Due on: Input should be a valid date"),
    ("", 3, "Owner: String should have at least 1 character"),
    ("ann", 3, "nothing to change: finding"),  # as it is already
)


def test_a_bad_change_of_a_finding_is_shown_again_and_nothing_is_written(browser, tokens, engine):
    review_id = opened(engine)
    made = found(engine, review_id, "access", "ann", 3)
    csrf = log_in(browser, tokens["tess"])
    written, before = review_events(engine), finding_rows(engine)
    for owner, due, message in BAD_CHANGES:
        due_on = day(engine, due) if due is not None else "soon"
        page = browser.post(f"/reviews/{review_id}/findings/{made}/change",
                            data={"csrf": csrf, "owner": owner, "due_on": due_on})  # fmt: skip
        assert page.status_code == 422 and f'id="finding-{made}-error"' in page.text, message
        assert message in page.text and 'id="finding-error"' not in page.text
        assert form_of(page.text, f"change-finding-{made}")["due_on"] == due_on
        assert f'value="{owner}" selected' in page.text or f"<option selected>{owner}</option>" in page.text
    after = finding_rows(engine)
    assert review_events(engine) == written
    assert [(f.owner, f.due_on) for f in after] == [(f.owner, f.due_on) for f in before]


BAD_FINDINGS = (  # area, owner, due in days (None: not a date), the message
    ("secrets", "zed", 3, "&#39;zed&#39; is not a person of the active plan (people: ann, bob)"),
    ("secrets", "ann", -1, "has passed (today is 2026-11-27, UTC)"),
    ("secrets", "ann", None, "Due on: Input should be a valid date"),
    ("network", "ann", 3, "has no area &#39;network&#39;; its areas: access, secrets"),
)


def test_bad_input_is_shown_again_with_what_was_typed_and_nothing_is_written(browser, tokens, engine):
    review_id = opened(engine)
    url = f"/reviews/{review_id}"
    csrf = log_in(browser, tokens["tess"])
    written = review_events(engine)
    for notes, message in (("", "Notes: String should have at least 1 character"),
                           ("   ", "say what was reviewed in &#39;access&#39;")):  # fmt: skip
        page = browser.post(f"{url}/areas/access", data={"csrf": csrf, "notes": notes})
        assert page.status_code == 422 and 'id="check-access-error"' in page.text and message in page.text
    for area, owner, due, message in BAD_FINDINGS:
        due_on = day(engine, due) if due is not None else "soon"
        sent = {"csrf": csrf, "area": area, "title": "Kept <b>title</b>", "owner": owner, "due_on": due_on,
                "detail": "kept detail"}  # fmt: skip
        page = browser.post(f"{url}/findings", data=sent)
        assert page.status_code == 422 and 'id="finding-error"' in page.text, (message, page.text)
        assert message in page.text
        assert 'value="Kept &lt;b&gt;title&lt;/b&gt;"' in page.text and f'value="{due_on}"' in page.text
        assert ">kept detail</textarea>" in page.text
        assert f'value="{owner}" selected' in page.text or f"<option selected>{owner}</option>" in page.text
    assert browser.post(f"{url}/areas/network", data={"csrf": csrf, "notes": "x"}).status_code == 404
    assert browser.get("/reviews/999").status_code == 404
    assert review_events(engine) == written and finding_rows(engine) == []
    with engine.store.read() as s:
        assert {i.status for i in s.scalars(select(ReviewItemRow))} == {"pending"}


def test_a_viewer_and_a_responder_read_and_every_form_refuses_them_or_a_wrong_csrf_token(app, tokens, engine):
    review_id = opened(engine)
    url = f"/reviews/{review_id}"
    finding = found(engine, review_id, "access", "ann")
    posts = {
        f"{url}/areas/access": {"notes": "x"},
        f"{url}/findings": {"area": "access", "title": "t", "owner": "ann", "due_on": day(engine, 1)},
        f"{url}/findings/{finding}/done": {},
        f"{url}/findings/{finding}/cancel": {},
        f"{url}/findings/{finding}/change": {"owner": "bob", "due_on": day(engine, 2)},
        f"{url}/complete": {},
        "/reviews": {"name": "architecture"},
    }
    written, rows = review_events(engine), review_rows(engine)
    for who in ("vera", "rob"):
        with TestClient(app, follow_redirects=False) as web:
            csrf = log_in(web, tokens[who])
            page = web.get(url).text
            assert (
                'id="add-finding"' not in page
                and "Record reviewed" not in page
                and "Mark finding" not in page
                and "change-finding-" not in page
            )
            assert "need the team-lead role" in page
            listed = web.get("/reviews").text
            assert 'id="start-review"' not in listed and "on demand needs the team-lead role" in listed
            for path, data in posts.items():
                refused = web.post(path, data={"csrf": csrf, **data})
                assert refused.status_code == 403 and "needs the team-lead role" in refused.text, (who, path)
    with TestClient(app, follow_redirects=False) as tess, TestClient(app, follow_redirects=False) as vera:
        log_in(tess, tokens["tess"])
        someone_elses = log_in(vera, tokens["vera"])
        for path, data in posts.items():
            for token in ({}, {"csrf": "forged"}, {"csrf": someone_elses}):
                refused = tess.post(path, data={**token, **data})
                assert refused.status_code == 403 and "CSRF" in refused.text, path
    assert review_events(engine) == written and review_rows(engine) == rows


def test_the_pages_refuse_exactly_whom_the_api_refuses(app, tokens, engine):
    """The roles are the API's (maintd.reviews.roles): 403 from a form iff 403 from its route."""
    review_id = opened(engine)
    made = found(engine, review_id, "access", "ann")
    finding = {"area": "access", "title": "t", "owner": "ann", "due_on": day(engine, 1)}
    change = {"owner": "bob", "due_on": day(engine, 2)}
    url = f"/reviews/{review_id}"
    cases = (  # web form path and fields; the API's method, path and body
        (f"{url}/areas/access", {"notes": "x"}, "POST", f"{url}/areas/access", {"notes": "x"}),
        (f"{url}/findings", finding, "POST", f"{url}/findings", finding),
        (f"{url}/findings/{made}/change", change, "PATCH", f"/reviews/findings/{made}", change),
        (f"{url}/findings/{made}/cancel", {}, "PATCH", f"/reviews/findings/{made}", {"status": "cancelled"}),
        (f"{url}/complete", {}, "POST", f"{url}/complete", None),
        ("/reviews", {"name": "architecture"}, "POST", "/reviews", {"name": "architecture"}),
    )
    api = TestClient(app)
    seen = {}
    for who in ("vera", "rob", "tess", "mia"):
        with TestClient(app, follow_redirects=False) as web:
            csrf = log_in(web, tokens[who])
            assert web.get(url).status_code == 200 and web.get("/reviews").status_code == 200
            for path, fields, method, api_path, body in cases:
                page = web.post(path, data={"csrf": csrf, **fields})
                answer = api.request(method, f"/api/v1{api_path}", json=body,
                                     headers={"Authorization": f"Bearer {tokens[who]}"})  # fmt: skip
                assert (page.status_code == 403) == (answer.status_code == 403), (who, path, page.text)
                seen[who, path] = page.status_code == 403
    assert all(seen["vera", p] and seen["rob", p] for p, *_ in cases)
    assert not any(seen["tess", p] or seen["mia", p] for p, *_ in cases)
