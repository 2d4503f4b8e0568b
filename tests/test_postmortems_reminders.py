"""Action items remind their owners through the real notification path: the engine fires the item's
timers on the fake clock, the dispatcher sends the reminders to a real SMTP server on loopback."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from maintd.alerts.model import AlertIn, Severity
from maintd.clock import FakeClock
from maintd.engine import Engine
from maintd.incidents import service as incidents
from maintd.incidents.pipeline import ingest
from maintd.notify.dispatcher import Dispatcher
from maintd.notify.transport import AppriseNotifier
from maintd.postmortems import actions
from maintd.postmortems.model import ActionStatus
from maintd.store.db import Store
from maintd.store.models import EventRow, NotificationRow, PostmortemActionRow
from tests.notify_support import Mail, Mailbox

DUE = date(2026, 12, 4)  # the clock starts at 2026-11-27 01:00 UTC


def Z(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def plan(box: Mailbox) -> str:
    return f"""
        people:
          - {{name: ann, email: ann@example.test, notify: ["{box.url("ann@example.test")}"]}}
          - {{name: bob, email: bob@example.test}}
        postmortems: {{remind_before: 2d, overdue_every: 1d, overdue_reminders: 2}}
        """


@pytest.fixture
def engine(
    store: Store, write_plan: Callable[..., Path], make_engine: Callable[..., Engine], mailbox: Mailbox
) -> Engine:
    engine = make_engine(store, write_plan(plan(mailbox)))
    assert engine.reload().ok, engine.last_reload
    return engine


def resolved_p1(engine: Engine) -> int:
    assert engine.loaded is not None
    settings = engine.loaded.plan.incidents
    alert = AlertIn(
        source="native", labels={"alertname": "ApiDown"}, severity=Severity.critical, summary="API down"
    )
    now = engine.clock.now()
    with engine.store.write() as s:
        (delivery,) = ingest(s, [alert], now=now, settings=settings, actor="test")
        assert delivery.incident is not None
        incidents.resolve(s, incident_id=delivery.incident.id, actor="test", now=now, settings=settings)
        return delivery.incident.id


def add(engine: Engine, incident_id: int, owner: str = "ann", due_on: date = DUE) -> int:
    assert engine.loaded is not None
    with engine.store.write() as s:
        row = actions.add_action(
            s,
            incident_id=incident_id,
            title="Alert on pool use above 80%",
            owner=owner,
            due_on=due_on,
            people={p.name for p in engine.loaded.plan.people},
            settings=engine.loaded.plan.postmortems,
            actor="user:olga",
            now=engine.clock.now(),
        )
        return row.id


def finish(engine: Engine, action_id: int, at: datetime, status: ActionStatus = ActionStatus.done) -> None:
    assert engine.loaded is not None
    with engine.store.write() as s:
        actions.update_action(
            s,
            action_id=action_id,
            people=(),
            settings=engine.loaded.plan.postmortems,
            actor="user:ann",
            now=at,
            status=status,
        )


def deliver(engine: Engine, mailbox: Mailbox, at: datetime) -> list[Mail]:
    """Fire what is due at ``at`` and send what that queued; the mails received so far."""
    clock = engine.clock
    assert isinstance(clock, FakeClock)
    clock.set(at)
    engine.tick(at)
    notifier = AppriseNotifier(connect_timeout=1.0, read_timeout=1.0, total_timeout=3.0)
    Dispatcher(engine.store, clock, notifier, owner="test").deliver_due(at)
    return list(mailbox.messages)


def test_the_owner_is_reminded_before_the_due_day_ends_then_daily_while_overdue_at_most_twice(
    engine: Engine, mailbox: Mailbox
) -> None:
    incident_id = resolved_p1(engine)
    action_id = add(engine, incident_id)
    assert deliver(engine, mailbox, Z("2026-12-02T23:59:59")) == []
    (early,) = deliver(engine, mailbox, Z("2026-12-03T00:00"))  # 2 days before the end of 4 December
    assert early.recipients == ["ann@example.test"]
    assert (
        early.subject
        == f"REMINDER #{incident_id} post-mortem action {action_id}: Alert on pool use above 80%"
    )
    assert "due by the end of 2026-12-04 (UTC). Owner: ann." in early.text
    assert f"/api/v1/postmortems/{incident_id}" in early.text
    assert f"maintd postmortem action done {action_id}" in early.text

    assert len(deliver(engine, mailbox, Z("2026-12-04T23:59"))) == 1  # not overdue yet
    overdue = deliver(engine, mailbox, Z("2026-12-05T00:00"))[1:]
    assert [m.subject.split(" ")[0] for m in overdue] == ["OVERDUE"]
    assert "overdue: it was due 2026-12-04" in overdue[0].text
    second = deliver(engine, mailbox, Z("2026-12-06T00:00"))[2:]
    assert len(second) == 1 and "(1 day ago)" in second[0].text
    assert len(deliver(engine, mailbox, Z("2026-12-20T00:00"))) == 3  # overdue_reminders: 2, then it stops

    finish(engine, action_id, Z("2026-12-21T10:00"))
    with engine.store.read() as s:
        (done,) = s.scalars(select(EventRow).where(EventRow.kind == "postmortem.action.completed"))
        reminded = s.scalars(select(EventRow.payload).where(EventRow.kind == "postmortem.action.reminded"))
        assert [p["reminder"] for p in reminded] == ["reminder", "overdue", "overdue"]
    assert (done.payload["on_time"], done.payload["due_on"], done.subject) == (
        False,
        "2026-12-04",
        f"incident:{incident_id}",
    )


def test_an_item_done_in_time_is_never_reminded_again_and_counts_as_on_time(
    engine: Engine, mailbox: Mailbox
) -> None:
    incident_id = resolved_p1(engine)
    action_id = add(engine, incident_id)
    finish(engine, action_id, Z("2026-12-01T12:00"))
    assert deliver(engine, mailbox, Z("2026-12-10T00:00")) == []
    with engine.store.read() as s:
        row = s.get(PostmortemActionRow, action_id)
        assert row is not None and (row.status, row.on_time, row.completed_at) == (
            "done",
            True,
            Z("2026-12-01T12:00"),
        )


def test_a_new_due_date_moves_the_reminders_even_back_to_the_first_date(
    engine: Engine, mailbox: Mailbox
) -> None:
    incident_id = resolved_p1(engine)
    action_id = add(engine, incident_id)
    assert engine.loaded is not None
    for due_on in (date(2026, 12, 14), DUE):
        with engine.store.write() as s:
            actions.update_action(
                s,
                action_id=action_id,
                people=(),
                settings=engine.loaded.plan.postmortems,
                actor="user:ann",
                now=engine.clock.now(),
                due_on=due_on,
            )
    (early,) = deliver(engine, mailbox, Z("2026-12-03T00:00"))
    assert "due by the end of 2026-12-04" in early.text
    later = deliver(engine, mailbox, Z("2026-12-13T00:00"))  # 14 Dec's early reminder was cancelled
    assert [m.subject.split(" ")[0] for m in later] == ["REMINDER", "OVERDUE"]


def test_an_owner_without_notification_rules_gets_a_failed_reminder_that_says_so(
    engine: Engine, mailbox: Mailbox
) -> None:
    incident_id = resolved_p1(engine)
    add(engine, incident_id, owner="bob", due_on=date(2026, 11, 28))  # inside remind_before: due at once
    assert deliver(engine, mailbox, engine.clock.now()) == []
    with engine.store.read() as s:
        (row,) = s.scalars(select(NotificationRow).where(NotificationRow.recipient == "person:bob"))
    assert (row.state, row.status, row.last_error) == (
        "reminder",
        "failed",
        "person:bob has no notification channels",
    )
