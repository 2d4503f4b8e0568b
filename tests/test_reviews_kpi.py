"""The reviews' KPIs and their place in the reports, from rows inserted here and checked against
hand-computed values, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

from maintd.kpi.report import compute
from maintd.reports import build, period_of
from maintd.store.db import Store
from maintd.store.models import ReviewFindingRow, ReviewItemRow, ReviewRow
from tests.conftest import T0

JUL, OCT, NOV = (datetime(2026, m, 1, tzinfo=UTC) for m in (7, 10, 11))
DAY = timedelta(days=1)
_ids = itertools.count(1)


def a_review(name: str, period: str, start: datetime, end: datetime, done: datetime | None) -> ReviewRow:
    return ReviewRow(id=next(_ids), name=name, period=period, title=f"{name} review", owner="ann",
                     state="complete" if done else "open", period_start=start, period_end=end,
                     opened_at=start, opened_by="system", completed_at=done,
                     completed_by="user:ann" if done else None)  # fmt: skip


def a_finding(
    review: ReviewRow, due: date, status: str, done: datetime | None = None, **kw: Any
) -> ReviewFindingRow:
    on_time = None if done is None else done < datetime.combine(due + DAY, datetime.min.time(), tzinfo=UTC)
    return ReviewFindingRow(review_id=review.id, area="cost", title=kw.get("title", "fix it"), detail="",
                            owner="bob", due_on=due, status=status, created_at=review.opened_at,
                            created_by="user:ann", completed_at=done, on_time=on_time)  # fmt: skip


def test_findings_on_time_and_reviews_within_their_period_are_computed_as_by_hand(store: Store) -> None:
    q3 = a_review("architecture", "2026-Q3", JUL, OCT, done=datetime(2026, 9, 20, tzinfo=UTC))  # in time
    sep = a_review("security", "2026-09", datetime(2026, 9, 1, tzinfo=UTC), OCT, done=OCT + 2 * DAY)  # late
    q2 = a_review(
        "architecture", "2026-Q2", datetime(2026, 4, 1, tzinfo=UTC), JUL, done=None
    )  # ended at start
    rows = [
        a_finding(q3, date(2026, 8, 10), "done", done=datetime(2026, 8, 10, 23, 0, tzinfo=UTC)),  # on time
        a_finding(q3, date(2026, 8, 10), "done", done=datetime(2026, 8, 11, 0, 0, tzinfo=UTC)),  # a day late
        a_finding(sep, date(2026, 9, 10), "open"),  # still open after its due day: late
        a_finding(sep, date(2026, 9, 12), "cancelled"),  # not counted
        a_finding(sep, date(2026, 9, 30), "open"),  # its due day ends at OCT: counted, late
        a_finding(sep, date(2026, 10, 1), "open"),  # due after the period
    ]
    with store.write() as s:
        s.add_all([q3, sep, q2])
        s.flush()
        s.add_all(rows)
    with store.read() as s:
        report = compute(s, end=OCT, period=OCT - JUL, now=T0)
    findings = report.get("reviews.findings_on_time")
    assert (findings.value, findings.samples) == (25.0, 4)  # 1 of the 4 due 07-01..09-30, not cancelled
    assert findings.met is False
    periods = report.get("reviews.completed_within_cadence")
    assert (periods.value, periods.samples) == (50.0, 2)  # Q3 in time, September late; Q2 ended at the start
    assert "architecture 2026-Q3, security 2026-09" in periods.how


def test_the_audit_and_the_kpi_report_list_the_open_reviews_and_the_overdue_findings(store: Store) -> None:
    q4 = a_review("architecture", "2026-Q4", OCT, datetime(2027, 1, 1, tzinfo=UTC), done=None)
    q3 = a_review("architecture", "2026-Q3", JUL, OCT, done=datetime(2026, 11, 5, tzinfo=UTC))  # open at NOV
    with store.write() as s:
        s.add_all([q4, q3])
        s.flush()
        s.add_all([
            ReviewItemRow(review_id=q4.id, position=0, area="cost", title="Cost", status="reviewed",
                          notes="ok", reviewed_at=OCT + DAY, reviewed_by="user:ann"),
            ReviewItemRow(review_id=q4.id, position=1, area="performance", title="Performance",
                          status="pending", notes=""),
            a_finding(q3, date(2026, 10, 20), "open", title="Shard sessions"),
            a_finding(q3, date(2026, 10, 25), "done", done=NOV + DAY, title="Drop the old API"),  # done after
            a_finding(q3, date(2026, 10, 31), "open", title="Due on the last day"),  # its day ended at NOV
            a_finding(q3, date(2026, 11, 1), "open", title="Due the day after"),  # not overdue yet at NOV
            a_finding(q3, date(2026, 10, 21), "cancelled"),
        ])  # fmt: skip
    with store.read() as s:
        audit = build("monthly-audit", s, period_of("monthly-audit", "2026-10", T0), T0)
        kpi = build("kpi", s, period_of("kpi", "2026-Q4", T0), T0)
    section = audit.section("Architecture and other reviews")
    open_rows, overdue_rows = (b.rows for b in section.blocks if hasattr(b, "rows"))
    assert [r[2:5] for r in open_rows] == [["2026-Q3", "ann", "0/0"], ["2026-Q4", "ann", "1/2"]]
    assert open_rows[0][5] == "2026-10-01 (passed)"
    assert [r[5] for r in overdue_rows] == ["Shard sessions", "Drop the old API", "Due on the last day"]
    summary = audit.section("Summary").blocks[0].items  # type: ignore[union-attr]
    assert "Architecture and other reviews: 2 reviews open (1 past its period), 3 findings overdue" in summary
    # The quarter ends 2027-01-01: Q3 was completed by then, Q4 still open; the API one was done.
    targets = kpi.section("Targets").blocks[-1].items  # type: ignore[union-attr]
    assert targets == ["Reviews at the period's end: 1 review open (1 past its period), 3 findings overdue."]
