"""The dashboard's post-mortem page through FastAPI's TestClient: edit the sections, review and
complete with the API's roles, add action items and mark them done; CSRF, roles and bad input
(shown again with its message and what was typed, nothing written)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from maintd.api.app import create_app
from maintd.api.deps import AppContext
from maintd.engine import Engine
from maintd.incidents import service as incidents
from maintd.postmortems import service
from maintd.store.db import Store
from maintd.store.events import query
from maintd.store.models import EventRow, PostmortemActionRow, PostmortemRow
from tests.test_dashboard import PLAN, log_in, opened


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> Store:
    """Both databases: an edit takes the post-mortem's row lock on PostgreSQL."""
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


def drafted(engine: Engine) -> int:
    """A P1 incident acknowledged and resolved (at a time with microseconds): its draft exists."""
    incident_id = opened(engine)
    assert engine.loaded is not None
    settings = engine.loaded.plan.incidents
    for step in (incidents.acknowledge, incidents.resolve):
        engine.clock.advance(timedelta(minutes=7, seconds=3, microseconds=250))
        with engine.store.write() as s:
            step(s, incident_id=incident_id, actor="test", now=engine.clock.now(), settings=settings)
    return incident_id


class Fields(HTMLParser):
    """The named fields of one form of a page, as a browser would send them unchanged."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id, self.inside, self.values, self.area = form_id, False, {}, ""
        self.textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        elif self.inside and tag == "input" and a.get("name"):
            self.values[str(a["name"])] = a.get("value") or ""
        elif self.inside and tag == "textarea":
            self.textarea, self.area = str(a["name"]), ""

    def handle_data(self, data: str) -> None:
        if self.textarea is not None:
            self.area += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea" and self.textarea is not None:
            self.values[self.textarea] = self.area.replace("\n", "\r\n")  # as browsers send it
            self.textarea = None
        elif tag == "form":
            self.inside = False


def form_of(html: str, form_id: str) -> dict[str, str]:
    parser = Fields(form_id)
    parser.feed(html)
    assert parser.values, f"no form #{form_id} on the page"
    return parser.values


def row_of(engine: Engine, incident_id: int) -> PostmortemRow:
    with engine.store.read() as s:
        return service.load(s, incident_id=incident_id)


def event_count(engine: Engine) -> int:
    with engine.store.read() as s:
        return int(s.scalar(select(func.count()).select_from(EventRow)) or 0)


def test_a_responder_edits_the_draft_and_only_the_sections_changed_are_recorded(browser, tokens, engine):
    incident_id = drafted(engine)
    before = row_of(engine, incident_id)
    assert before.resolved_at is not None and before.resolved_at.microsecond == 500
    log_in(browser, tokens["rob"])
    sent = form_of(browser.get(f"/postmortems/{incident_id}").text, "edit")
    assert sent["resolved_at"] == before.resolved_at.strftime("%Y-%m-%dT%H:%M:%S")  # to the second
    sent.update(what_happened="The pool ran dry.\r\nEvery request waited.", root_cause_identified_at="")
    sent["fix_implemented_at"] = "2026-11-27T01:20:00"
    done = browser.post(f"/postmortems/{incident_id}/edit", data=sent)
    assert (done.status_code, done.headers["location"]) == (303, f"/postmortems/{incident_id}")
    after = row_of(engine, incident_id)
    assert after.what_happened == "The pool ran dry.\nEvery request waited."
    assert after.fix_implemented_at is not None
    assert after.fix_implemented_at.replace(tzinfo=None).isoformat() == "2026-11-27T01:20:00"
    assert after.resolved_at == before.resolved_at  # sent back as shown: not cut to the second
    with engine.store.read() as s:
        (edited,) = query(s, subject=f"incident:{incident_id}", kind="postmortem.edited")
    assert (edited.actor, edited.payload["fields"]) == ("token:rob", ["fix_implemented_at", "what_happened"])
    page = browser.get(f"/postmortems/{incident_id}").text
    assert "Every request waited." in page and 'value="2026-11-27T01:20:00"' in page


def test_bad_sections_are_shown_again_with_what_was_typed_and_nothing_is_written(browser, tokens, engine):
    incident_id = drafted(engine)
    csrf = log_in(browser, tokens["rob"])
    written = event_count(engine)
    for data, message in (
        ({"what_happened": "kept <b>text</b>", "alert_triggered_at": "yesterday"}, "Alert triggered: Input"),
        ({"what_happened": "kept <b>text</b>", "title": "  "}, "title cannot be empty"),
    ):
        page = browser.post(f"/postmortems/{incident_id}/edit", data={"csrf": csrf, **data})
        assert page.status_code == 422, page.text
        assert message in page.text and 'id="edit-error"' in page.text
        assert "kept &lt;b&gt;text&lt;/b&gt;</textarea>" in page.text  # what was typed, as text
    assert event_count(engine) == written
    assert row_of(engine, incident_id).what_happened == ""


def test_a_post_mortem_goes_to_review_and_only_a_team_lead_completes_it(app, browser, tokens, engine):
    incident_id = drafted(engine)
    rob = TestClient(app, follow_redirects=False)
    rob_csrf = log_in(rob, tokens["rob"])
    assert "Mark complete" not in rob.get(f"/postmortems/{incident_id}").text
    assert rob.post(f"/postmortems/{incident_id}/review", data={"csrf": rob_csrf}).status_code == 303
    refused = rob.post(f"/postmortems/{incident_id}/complete", data={"csrf": rob_csrf})
    assert refused.status_code == 403 and "needs the team-lead role" in refused.text
    csrf = log_in(browser, tokens["tess"])
    assert ">Mark complete</button>" in browser.get(f"/postmortems/{incident_id}").text
    early = browser.post(f"/postmortems/{incident_id}/complete", data={"csrf": csrf})
    assert early.status_code == 409 and "without what_happened and why_it_happened" in early.text
    back = browser.post(f"/postmortems/{incident_id}/send-back", data={"csrf": csrf, "note": "root cause?"})
    assert back.status_code == 303 and row_of(engine, incident_id).state == "draft"
    edit = {"csrf": rob_csrf, "what_happened": "The pool ran dry.", "why_it_happened": "A leak."}
    assert rob.post(f"/postmortems/{incident_id}/edit", data=edit).status_code == 303
    assert rob.post(f"/postmortems/{incident_id}/review", data={"csrf": rob_csrf}).status_code == 303
    done = browser.post(f"/postmortems/{incident_id}/complete", data={"csrf": csrf, "note": "thanks"})
    assert done.status_code == 303
    row = row_of(engine, incident_id)
    assert (row.state, row.completed_by) == ("complete", "token:tess")
    with engine.store.read() as s:
        moves = query(s, subject=f"incident:{incident_id}", kind="postmortem.")
    assert [(e.kind, e.actor, e.payload.get("note")) for e in moves if e.kind != "postmortem.edited"][
        -4:
    ] == [
        ("postmortem.in_review", "token:rob", None),
        ("postmortem.sent_back", "token:tess", "root cause?"),
        ("postmortem.in_review", "token:rob", None),
        ("postmortem.completed", "token:tess", "thanks"),
    ]
    page = browser.get(f"/postmortems/{incident_id}").text
    assert 'data-state="complete"' in page and 'id="edit"' not in page and "cannot be edited" in page
    final = rob.post(f"/postmortems/{incident_id}/edit", data={**edit, "what_happened": "x"})
    assert final.status_code == 422 and "it cannot be edited" in final.text
    incident_page = browser.get(f"/incidents/{incident_id}").text
    assert f'<a href="/postmortems/{incident_id}">complete</a>' in incident_page


def test_a_responder_adds_an_action_item_and_marks_it_done_on_time(browser, tokens, engine):
    incident_id = drafted(engine)
    csrf = log_in(browser, tokens["rob"])
    due = (engine.clock.now() + timedelta(days=3)).date().isoformat()
    item = {"csrf": csrf, "title": "Alert on pool saturation", "owner": "bob", "due_on": due}
    added = browser.post(f"/postmortems/{incident_id}/actions", data=item)
    assert (added.status_code, added.headers["location"]) == (303, f"/postmortems/{incident_id}")
    with engine.store.read() as s:
        (action,) = s.scalars(select(PostmortemActionRow)).all()
        assert (action.owner, action.status, action.created_by) == ("bob", "open", "token:rob")
    page = browser.get(f"/postmortems/{incident_id}").text
    assert "Alert on pool saturation" in page and f'aria-label="Mark action {action.id} done"' in page
    done = browser.post(f"/postmortems/{incident_id}/actions/{action.id}/done", data={"csrf": csrf})
    assert done.status_code == 303
    page = browser.get(f"/postmortems/{incident_id}").text
    assert 'data-status="done"' in page and "(on time)" in page and "Mark action" not in page
    again = browser.post(f"/postmortems/{incident_id}/actions/{action.id}/done", data={"csrf": csrf})
    assert again.status_code == 409 and "is done; it cannot change any more" in again.text
    elsewhere = browser.post(f"/postmortems/{incident_id + 1}/actions/{action.id}/done", data={"csrf": csrf})
    assert elsewhere.status_code == 404


BAD_ITEMS = (  # owner, due in days (None: not a date), the message
    ("zed", 3, "&#39;zed&#39; is not a person of the active plan (people: ann, bob)"),
    ("ann", -1, "has passed (today is 2026-11-27, UTC)"),
    ("ann", None, "Due on: Input should be a valid date"),
)


def test_a_bad_action_item_is_shown_again_and_not_added(browser, tokens, engine):
    incident_id = drafted(engine)
    csrf = log_in(browser, tokens["rob"])
    written = event_count(engine)
    for owner, due, message in BAD_ITEMS:
        due_on = (engine.clock.now() + timedelta(days=due)).date().isoformat() if due is not None else "soon"
        item = {"csrf": csrf, "title": "Kept title", "owner": owner, "due_on": due_on}
        page = browser.post(f"/postmortems/{incident_id}/actions", data=item)
        assert page.status_code == 422 and 'id="action-error"' in page.text, message
        assert message in page.text
        assert 'value="Kept title"' in page.text and f'value="{due_on}"' in page.text
        assert f'value="{owner}" selected' in page.text or f"<option selected>{owner}</option>" in page.text
    assert event_count(engine) == written
    with engine.store.read() as s:
        assert s.scalars(select(PostmortemActionRow)).all() == []


def added(engine: Engine, browser: TestClient, incident_id: int, csrf: str, days: int = 3) -> int:
    """An action item for bob, due ``days`` from now, added through the form."""
    due = (engine.clock.now() + timedelta(days=days)).date().isoformat()
    item = {"csrf": csrf, "title": "Alert on pool saturation", "owner": "bob", "due_on": due}
    assert browser.post(f"/postmortems/{incident_id}/actions", data=item).status_code == 303
    with engine.store.read() as s:
        return max(s.scalars(select(PostmortemActionRow.id)))


def test_a_responder_changes_an_action_items_owner_and_due_date_then_cancels_it(browser, tokens, engine):
    incident_id = drafted(engine)
    url = f"/postmortems/{incident_id}"
    csrf = log_in(browser, tokens["rob"])
    action_id = added(engine, browser, incident_id, csrf)
    sent = form_of(browser.get(url).text, f"change-action-{action_id}")
    assert sent["due_on"] == (engine.clock.now() + timedelta(days=3)).date().isoformat()
    later = (engine.clock.now() + timedelta(days=10)).date()
    sent.update(owner="ann", due_on=later.isoformat())
    changed = browser.post(f"{url}/actions/{action_id}/change", data=sent)
    assert (changed.status_code, changed.headers["location"]) == (303, url)
    with engine.store.read() as s:
        action = s.get(PostmortemActionRow, action_id)
        assert action is not None and (action.owner, action.due_on, action.status) == ("ann", later, "open")
        (event,) = query(s, subject=f"incident:{incident_id}", kind="postmortem.action.changed")
    assert event.actor == "token:rob"
    assert event.payload == {"action": action_id, "owner": "ann", "due_on": later.isoformat()}
    cancelled = browser.post(f"{url}/actions/{action_id}/cancel", data={"csrf": csrf})
    assert cancelled.status_code == 303
    page = browser.get(url).text
    assert 'data-status="cancelled"' in page and f'id="change-action-{action_id}"' not in page
    final = browser.post(f"{url}/actions/{action_id}/change", data={**sent, "owner": "bob"})
    assert final.status_code == 409 and "is cancelled; it cannot change any more" in final.text
    elsewhere = browser.post(f"/postmortems/{incident_id + 1}/actions/{action_id}/change", data=sent)
    assert elsewhere.status_code == 404
    with engine.store.read() as s:
        kinds = [e.kind for e in query(s, subject=f"incident:{incident_id}", kind="postmortem.action.")]
    assert kinds == ["postmortem.action.added", "postmortem.action.changed", "postmortem.action.cancelled"]


BAD_CHANGES = (  # owner, due in days (None: not a date), the message
    ("zed", 3, "&#39;zed&#39; is not a person of the active plan (people: ann, bob)"),
    ("ann", -1, "has passed (today is 2026-11-27, UTC)"),
    ("ann", None, "Due on: Input should be a valid date"),
    ("", 3, "Owner: String should have at least 1 character"),
    ("bob", 3, "nothing to change: post-mortem action"),  # as it is already
)


def test_a_bad_change_of_an_action_item_is_shown_again_and_nothing_is_written(browser, tokens, engine):
    incident_id = drafted(engine)
    csrf = log_in(browser, tokens["rob"])
    action_id = added(engine, browser, incident_id, csrf)
    with engine.store.read() as s:
        before = s.get(PostmortemActionRow, action_id)
        assert before is not None
    written = event_count(engine)
    for owner, due, message in BAD_CHANGES:
        due_on = (engine.clock.now() + timedelta(days=due)).date().isoformat() if due is not None else "soon"
        page = browser.post(f"/postmortems/{incident_id}/actions/{action_id}/change",
                            data={"csrf": csrf, "owner": owner, "due_on": due_on})  # fmt: skip
        assert page.status_code == 422 and f'id="action-{action_id}-error"' in page.text, message
        assert message in page.text and 'id="action-error"' not in page.text
        kept = form_of(page.text, f"change-action-{action_id}")
        assert kept["due_on"] == due_on, message
        assert f'value="{owner}" selected' in page.text or f"<option selected>{owner}</option>" in page.text
    assert event_count(engine) == written
    with engine.store.read() as s:
        after = s.get(PostmortemActionRow, action_id)
        assert after is not None and (after.owner, after.due_on) == (before.owner, before.due_on)


def test_a_viewer_reads_and_every_form_refuses_a_viewer_or_a_wrong_csrf_token(app, browser, tokens, engine):
    incident_id = drafted(engine)
    with TestClient(app, follow_redirects=False) as rob:
        rob_csrf = log_in(rob, tokens["rob"])
        due = engine.clock.now().date().isoformat()
        item = {"csrf": rob_csrf, "title": "t", "owner": "ann", "due_on": due}
        assert rob.post(f"/postmortems/{incident_id}/actions", data=item).status_code == 303
    with engine.store.read() as s:
        action_id = s.scalars(select(PostmortemActionRow.id)).one()
    posts = {
        "edit": {"what_happened": "x"},
        "review": {},
        "actions": {"title": "t", "owner": "ann", "due_on": due},
        f"actions/{action_id}/done": {},
        f"actions/{action_id}/cancel": {},
        f"actions/{action_id}/change": {"owner": "bob", "due_on": due},
    }
    csrf = log_in(browser, tokens["vera"])
    page = browser.get(f"/postmortems/{incident_id}").text
    assert 'id="edit"' not in page and 'id="add-action"' not in page and "Mark action" not in page
    assert "Cancel action" not in page and "change-action-" not in page
    assert "needs the responder role" in page
    with TestClient(app, follow_redirects=False) as other:
        log_in(other, tokens["rob"])
        written = event_count(engine)
        for path, data in posts.items():
            refused = browser.post(f"/postmortems/{incident_id}/{path}", data={"csrf": csrf, **data})
            assert refused.status_code == 403 and "needs the responder role" in refused.text, path
        for path, data in posts.items():
            for token in ({}, {"csrf": "forged"}, {"csrf": csrf}):  # none, made up, someone else's
                refused = other.post(f"/postmortems/{incident_id}/{path}", data={**token, **data})
                assert refused.status_code == 403 and "CSRF" in refused.text, path
    assert event_count(engine) == written
    assert browser.get("/postmortems/999").status_code == 404


def test_the_page_refuses_exactly_whom_the_api_refuses(app, tokens, engine):
    """The roles are the API's: for each form and person, 403 from one iff 403 from the other."""
    incident_id = drafted(engine)
    due = engine.clock.now().date().isoformat()
    item = {"title": "t", "owner": "ann", "due_on": due}
    with TestClient(app, follow_redirects=False) as rob:
        made = added(engine, rob, incident_id, log_in(rob, tokens["rob"]))
    change = {"owner": "ann", "due_on": due}
    cases = (  # web form path and fields; the API's method, path under the post-mortem, body
        ("edit", {"what_happened": "x"}, "PATCH", "", {"why_it_happened": "y"}),
        ("review", {}, "POST", "/review", None),
        ("send-back", {}, "POST", "/send-back", None),
        ("complete", {}, "POST", "/complete", None),
        ("actions", item, "POST", "/actions", item),
        (f"actions/{made}/change", change, "PATCH", f"/actions/{made}", change),
        (f"actions/{made}/cancel", {}, "PATCH", f"/actions/{made}", {"status": "cancelled"}),
    )
    api = TestClient(app)
    seen = {}
    for who in ("vera", "rob", "tess"):
        with TestClient(app, follow_redirects=False) as web:
            csrf = log_in(web, tokens[who])
            for path, fields, method, api_path, body in cases:
                page = web.post(f"/postmortems/{incident_id}/{path}", data={"csrf": csrf, **fields})
                answer = api.request(
                    method,
                    f"/api/v1/postmortems/{incident_id}{api_path}",
                    json=body,
                    headers={"Authorization": f"Bearer {tokens[who]}"},
                )
                assert (page.status_code == 403) == (answer.status_code == 403), (who, path, page.text)
                seen[who, path] = page.status_code == 403
    assert [path for (who, path), refused in seen.items() if who == "rob" and refused] == [
        "send-back",
        "complete",
    ]
    assert all(seen["vera", path] for path, *_ in cases) and not any(seen["tess", p] for p, *_ in cases)
