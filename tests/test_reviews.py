"""Recurring reviews on real SQLite and PostgreSQL: opened by their timer when the period starts,
worked through as a checklist, completed only when every area is reviewed; findings become action
items reminded through the real notification path (SMTP on loopback), on the fake clock."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from maintd.clock import FakeClock
from maintd.engine import Engine
from maintd.notify.dispatcher import Dispatcher
from maintd.notify.transport import AppriseNotifier
from maintd.plan.loader import PlanError, load_plan
from maintd.plan.reviews import ReviewCadence
from maintd.registry import Registry
from maintd.reviews import FindingStatus, ReviewError, ReviewState, findings, service
from maintd.reviews.periods import parse, period_of
from maintd.store.models import EventRow, ReviewRow
from tests.conftest import T0
from tests.notify_support import Mail, Mailbox

SEED_AREAS = ["scalability", "security-architecture", "cost", "technical-debt", "performance", "compliance"]


def Z(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def plan(box: Mailbox) -> str:
    return f"""
        people:
          - {{name: ann, email: ann@example.test, notify: ["{box.url("ann@example.test")}"]}}
          - {{name: bob, email: bob@example.test, notify: ["{box.url("bob@example.test")}"]}}
          - {{name: cy, email: cy@example.test}}
        reviews:
          - name: architecture
            title: Architecture review
            owner: ann
            participants: [bob]
            findings: {{remind_before: 2d, overdue_every: 1d, overdue_reminders: 2}}
        """


@pytest.fixture
def engine(
    store: object, write_plan: Callable[..., Path], make_engine: Callable[..., Engine], mailbox: Mailbox
) -> Engine:
    engine = make_engine(store, write_plan(plan(mailbox)))
    assert engine.reload().ok, engine.last_reload
    return engine


def deliver(engine: Engine, mailbox: Mailbox, at: datetime) -> list[Mail]:
    """Fire what is due at ``at`` and send what that queued; the mails received so far."""
    clock = engine.clock
    assert isinstance(clock, FakeClock)
    clock.set(at)
    engine.tick(at)
    notifier = AppriseNotifier(connect_timeout=1.0, read_timeout=1.0, total_timeout=3.0)
    Dispatcher(engine.store, clock, notifier, owner="test").deliver_due(at)
    return list(mailbox.messages)


def reviews_of(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.store.read() as s:
        return [(r.name, r.period, r.state) for r in s.scalars(select(ReviewRow).order_by(ReviewRow.id))]


def started(engine: Engine) -> int:
    assert engine.loaded is not None
    with engine.store.write() as s:
        row = service.start(s, reviews=engine.loaded.plan.reviews, name="architecture", actor="user:ann",
                            now=engine.clock.now())  # fmt: skip
        return row.id


def check(engine: Engine, review_id: int, area: str, notes: str = "looked at it") -> None:
    with engine.store.write() as s:
        service.check(
            s, review_id=review_id, area=area, notes=notes, actor="user:bob", now=engine.clock.now()
        )


def test_loading_the_plan_opens_this_quarters_review_and_the_next_one_opens_when_its_quarter_starts(
    engine: Engine, mailbox: Mailbox
) -> None:
    opened = deliver(engine, mailbox, engine.clock.now())
    assert reviews_of(engine) == [("architecture", "2026-Q4", "open")]
    assert sorted(m.recipients[0] for m in opened) == ["ann@example.test", "bob@example.test"]
    assert opened[0].subject == "OPENED Architecture review 2026-Q4 is open"
    assert "6 areas to review before 2027-01-01 00:00 UTC. Owner: ann." in opened[0].text
    with engine.store.read() as s:
        (review_id,) = s.scalars(select(ReviewRow.id))
        view = service.get_review(s, review_id=review_id)
    assert [(i.area, i.status) for i in view.items] == [(a, "pending") for a in SEED_AREAS]
    assert view.items[0].title == "Scalability assessment"

    assert len(deliver(engine, mailbox, Z("2026-12-17T23:59:59"))) == 2
    due = deliver(engine, mailbox, Z("2026-12-18T00:00"))[2:]  # two weeks before the quarter ends
    assert [(m.recipients, m.subject) for m in due] == [
        (["ann@example.test"], f"REMINDER Architecture review 2026-Q4 (review {review_id}): due soon")
    ]
    assert "still open, due before 2027-01-01 00:00 UTC: 0 of 6 areas reviewed." in due[0].text
    assert "Not reviewed yet: scalability, security-architecture, cost" in due[0].text
    assert len(deliver(engine, mailbox, Z("2026-12-31T23:59:59"))) == 3  # nothing new before the quarter
    new = deliver(engine, mailbox, Z("2027-01-01T00:00"))[3:]  # Q1 opens to two people; Q4 is overdue
    assert sorted(m.subject.split(" ")[0] for m in new) == ["OPENED", "OPENED", "OVERDUE"]
    assert reviews_of(engine) == [("architecture", "2026-Q4", "open"), ("architecture", "2027-Q1", "open")]
    assert engine.reload().ok  # loading the plan again opens nothing twice
    assert len(deliver(engine, mailbox, Z("2027-01-01T00:01"))) == 6
    with engine.store.read() as s:
        kinds = list(s.scalars(select(EventRow.actor).where(EventRow.kind == "review.opened")))
    assert kinds == ["system", "system"]


def test_a_review_cannot_complete_while_an_area_is_unreviewed(engine: Engine, mailbox: Mailbox) -> None:
    review_id = started(engine)
    for area in SEED_AREAS[:-1]:
        check(engine, review_id, area)
    with pytest.raises(ReviewError, match="1 area not reviewed: compliance"), engine.store.write() as s:
        service.complete(s, review_id=review_id, actor="user:ann", now=engine.clock.now())
    with pytest.raises(ReviewError, match="the notes are the review's record"):
        check(engine, review_id, "compliance", notes="  ")
    check(engine, review_id, "compliance", notes="SOC 2 controls mapped; two gaps, see findings")
    with engine.store.write() as s:
        row = service.complete(s, review_id=review_id, actor="user:ann", now=Z("2026-12-02T10:00"))
        assert (row.state, row.completed_by) == ("complete", "user:ann")
    with pytest.raises(ReviewError, match="is complete; it cannot change"):
        check(engine, review_id, "cost")
    with engine.store.read() as s:
        events = list(s.scalars(select(EventRow).where(EventRow.subject == f"review:{review_id}")
                                .order_by(EventRow.id)))  # fmt: skip
        view = service.get_review(s, review_id=review_id)
    assert [e.kind for e in events] == ["review.opened"] + ["review.area_reviewed"] * 6 + ["review.completed"]
    assert events[-1].payload["on_time"] is True
    assert view.items[-1].notes == "SOC 2 controls mapped; two gaps, see findings"
    assert view.items[-1].reviewed_by == "user:bob"
    assert deliver(engine, mailbox, Z("2027-01-02T00:00"))[2:] == []  # complete: no due or overdue notice


def test_a_period_has_one_review_and_the_timer_does_not_open_a_second(
    engine: Engine, mailbox: Mailbox
) -> None:
    review_id = started(engine)
    with pytest.raises(ReviewError, match=f"architecture 2026-Q4 exists already: review {review_id}"):
        started(engine)
    deliver(engine, mailbox, engine.clock.now())
    assert reviews_of(engine) == [("architecture", "2026-Q4", "open")]
    assert mailbox.messages == []  # opened on demand: nobody is told again
    assert engine.loaded is not None
    refused = pytest.raises(ReviewError, match=re.escape("no review 'security' (reviews: architecture)"))
    with refused, engine.store.write() as s:
        service.start(s, reviews=engine.loaded.plan.reviews, name="security", actor="t", now=Z("2026-12-01"))


def add_finding(engine: Engine, review_id: int, owner: str = "ann", due_on: date = date(2026, 12, 4)) -> int:
    assert engine.loaded is not None
    with engine.store.write() as s:
        row = findings.add_finding(
            s,
            review_id=review_id,
            area="scalability",
            title="Shard the sessions table",
            owner=owner,
            due_on=due_on,
            people={p.name for p in engine.loaded.plan.people},
            settings=engine.loaded.plan.reviews[0].findings,
            actor="user:ann",
            now=engine.clock.now(),
        )
        return row.id


def finish(engine: Engine, finding_id: int, at: datetime, status: FindingStatus = FindingStatus.done) -> None:
    assert engine.loaded is not None
    with engine.store.write() as s:
        settings = engine.loaded.plan.reviews[0].findings
        findings.update_finding(s, finding_id=finding_id, people=(), settings=settings, actor="user:ann",
                                now=at, status=status)  # fmt: skip


def test_a_findings_owner_is_reminded_before_it_is_due_then_while_overdue_and_it_closes_late(
    engine: Engine, mailbox: Mailbox
) -> None:
    review_id = started(engine)
    finding_id = add_finding(engine, review_id)
    assert deliver(engine, mailbox, Z("2026-12-02T23:59:59")) == []
    (early,) = deliver(engine, mailbox, Z("2026-12-03T00:00"))
    assert early.recipients == ["ann@example.test"]
    assert early.subject == f"REMINDER review finding {finding_id}: Shard the sessions table"
    assert "(Architecture review 2026-Q4, scalability): due by the end of 2026-12-04 (UTC)." in early.text
    assert f"maintd review finding done {finding_id}" in early.text
    overdue = deliver(engine, mailbox, Z("2026-12-05T00:00"))[1:]
    assert [m.subject.split(" ")[0] for m in overdue] == ["OVERDUE"]
    later = deliver(engine, mailbox, Z("2026-12-20T00:00"))
    assert len([m for m in later if "review finding" in m.subject]) == 3  # overdue_reminders: 2, then none
    finish(engine, finding_id, Z("2026-12-21T10:00"))
    with engine.store.read() as s:
        (done,) = s.scalars(select(EventRow).where(EventRow.kind == "review.finding.completed"))
        reminded = s.scalars(select(EventRow.payload).where(EventRow.kind == "review.finding.reminded"))
        assert [p["reminder"] for p in reminded] == ["reminder", "overdue", "overdue"]
    assert (done.payload["on_time"], done.subject) == (False, f"review:{review_id}")


def test_a_finding_done_in_time_is_not_reminded_and_counts_on_time(engine: Engine, mailbox: Mailbox) -> None:
    review_id = started(engine)
    finding_id = add_finding(engine, review_id)
    finish(engine, finding_id, Z("2026-12-01T12:00"))
    assert deliver(engine, mailbox, Z("2026-12-10T00:00")) == []
    with engine.store.read() as s:
        row = findings.get_finding(s, finding_id=finding_id)
        assert (row.status, row.on_time) == ("done", True)
    with pytest.raises(ReviewError, match="is done; it cannot change"):
        finish(engine, finding_id, Z("2026-12-02T12:00"), FindingStatus.cancelled)


@pytest.mark.parametrize(
    ("owner", "due_on", "area", "error"),
    [
        (
            "zoe",
            date(2026, 12, 4),
            "cost",
            "'zoe' is not a person of the active plan \\(people: ann, bob, cy\\)",
        ),
        (
            "ann",
            date(2026, 11, 26),
            "cost",
            "the due date 2026-11-26 has passed \\(today is 2026-11-27, UTC\\)",
        ),
        ("ann", date(2026, 12, 4), "ux", "has no area 'ux'; its areas: scalability, security-architecture"),
    ],
)
def test_a_finding_needs_a_person_a_date_ahead_and_an_area_of_the_review(
    engine: Engine, owner: str, due_on: date, area: str, error: str
) -> None:
    review_id = started(engine)
    assert engine.loaded is not None
    with pytest.raises(ReviewError, match=error), engine.store.write() as s:
        findings.add_finding(s, review_id=review_id, area=area, title="x", owner=owner, due_on=due_on,
                             people={"ann", "bob", "cy"}, settings=engine.loaded.plan.reviews[0].findings,
                             actor="t", now=engine.clock.now())  # fmt: skip


@pytest.mark.parametrize(
    ("section", "error"),
    [
        ("[{name: arch, owner: zoe}]", "reviews[0].owner: unknown person 'zoe'"),
        (
            "[{name: arch, owner: ann, participants: [ann, zoe]}]",
            "reviews[0].participants[1]: unknown person 'zoe'",
        ),
        (
            "[{name: arch, owner: ann}, {name: arch, owner: ann}]",
            "reviews[1].name: review 'arch' is defined twice",
        ),
        ("[{name: arch, owner: ann, areas: []}]", "a review needs at least one area to check"),
        ("[{name: arch, owner: ann, areas: [cost, cost]}]", "area names must be unique; twice: ['cost']"),
        ("[{name: arch, owner: ann, cadence: weekly}]", "reviews[0].cadence: Input should be 'monthly'"),
    ],
)
def test_bad_review_sections_are_refused_with_their_place(
    write_plan: Callable[..., Path], registry: Registry, section: str, error: str
) -> None:
    path = write_plan(f"people: [{{name: ann, email: ann@example.test}}]\nreviews: {section}\n")
    with pytest.raises(PlanError) as caught:
        load_plan(path, registry)
    assert any(error in str(p) for p in caught.value.problems), caught.value.problems


@pytest.mark.parametrize(
    ("cadence", "at", "key", "start", "end"),
    [
        (ReviewCadence.quarterly, "2026-11-27T01:00", "2026-Q4", "2026-10-01", "2027-01-01"),
        (ReviewCadence.quarterly, "2027-01-01T00:00", "2027-Q1", "2027-01-01", "2027-04-01"),
        (ReviewCadence.monthly, "2026-02-28T23:59", "2026-02", "2026-02-01", "2026-03-01"),
        (ReviewCadence.biannual, "2026-07-01T00:00", "2026-H2", "2026-07-01", "2027-01-01"),
        (ReviewCadence.annual, "2026-06-15T12:00", "2026", "2026-01-01", "2027-01-01"),
    ],
)
def test_periods_are_calendar_periods_in_utc(
    cadence: ReviewCadence, at: str, key: str, start: str, end: str
) -> None:
    period = period_of(cadence, Z(at))
    assert (period.key, period.start, period.end) == (key, Z(start), Z(end))
    assert parse(cadence, key) == period


def test_a_period_in_the_wrong_form_says_the_right_one() -> None:
    wrong = re.escape("'2026-11' is not a quarterly period: write YYYY-QN, e.g. 2026-Q4")
    with pytest.raises(ValueError, match=wrong):
        parse(ReviewCadence.quarterly, "2026-11")
    with pytest.raises(ValueError, match="write YYYY-MM"):
        parse(ReviewCadence.monthly, "2026-13")


def test_listing_shows_progress_and_open_findings(engine: Engine) -> None:
    review_id = started(engine)
    check(engine, review_id, "cost")
    add_finding(engine, review_id)
    with engine.store.read() as s:
        (brief,) = service.list_reviews(s, state=ReviewState.open)
        assert service.list_reviews(s, state=ReviewState.complete) == []
    assert (brief.id, brief.reviewed, brief.areas, brief.open_findings) == (review_id, 1, 6, 1)


def test_losing_a_race_to_open_the_same_period_reads_the_winners_review(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process opened it between this one's look-up and its insert: the unique (name, period)
    refuses the insert, the savepoint is undone, and the transaction goes on."""
    winner = started(engine)
    real_find = service.find
    stale = iter([None])  # the first look-up misses the row, as it would before the winner committed
    monkeypatch.setattr(service, "find", lambda s, **kw: next(stale, real_find(s, **kw)))
    assert engine.loaded is not None
    with engine.store.write() as s:
        review = engine.loaded.plan.reviews[0]
        assert service.open_period(s, review, period_of(review.cadence, T0), actor="t", now=T0) is None
        item = service.check(  # the transaction goes on
            s, review_id=winner, area="cost", notes="ok", actor="t", now=T0
        )
    assert item.status == "reviewed"
    assert reviews_of(engine) == [("architecture", "2026-Q4", "open")]
