"""Post-mortems on both databases: drafted when a P0/P1 resolves, pre-filled from the timeline,
reviewed and completed before the incident may close; action items done on time or late."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from maintd.alerts.model import AlertIn, AlertStatus, Severity
from maintd.incidents import service as incidents
from maintd.incidents.pipeline import ingest
from maintd.incidents.states import IncidentError
from maintd.plan.incidents import IncidentSettings, Priority
from maintd.plan.postmortems import PostmortemSettings
from maintd.postmortems import actions, render, service
from maintd.postmortems.model import ActionStatus, PostmortemEdit, PostmortemError, PostmortemNotFound
from maintd.store.db import Store
from maintd.store.models import EventRow, PostmortemRow, TimerRow
from tests.conftest import T0

SETTINGS = IncidentSettings()  # P1 for critical alerts, P2 error, P3 warning
PEOPLE = {"ann", "bob"}
ACTOR = "user:olga"


def fire(
    store: Store,
    severity: Severity = Severity.critical,
    now: datetime = T0,
    status: AlertStatus = AlertStatus.firing,
) -> int:
    labels = {"alertname": "ApiDown", "target": "api-1"}
    alert = AlertIn(
        source="native", labels=labels, severity=severity, summary="API answers 503", status=status
    )
    with store.write() as s:
        (delivery,) = ingest(s, [alert], now=now, settings=SETTINGS, actor="test")
        assert delivery.incident is not None
        return delivery.incident.id


def move(store: Store, verb: str, incident_id: int, minutes: int, **extra: Any) -> None:
    with store.write() as s:
        getattr(incidents, verb)(
            s,
            incident_id=incident_id,
            actor=ACTOR,
            now=T0 + timedelta(minutes=minutes),
            settings=SETTINGS,
            **extra,
        )


def postmortem(store: Store, incident_id: int) -> PostmortemRow | None:
    with store.read() as s:
        return s.scalar(select(PostmortemRow).where(PostmortemRow.incident_id == incident_id))


def kinds(store: Store, incident_id: int) -> list[str]:
    with store.read() as s:
        rows = s.scalars(
            select(EventRow).where(EventRow.subject == f"incident:{incident_id}").order_by(EventRow.id)
        )
        return [e.kind for e in rows]


def resolved_p1(store: Store) -> int:
    incident_id = fire(store)
    move(store, "acknowledge", incident_id, 4)
    move(store, "mitigate", incident_id, 20)
    move(store, "resolve", incident_id, 85)
    return incident_id


def write_root_cause(store: Store, incident_id: int) -> None:
    edit = PostmortemEdit(what_happened="The pool ran dry.", why_it_happened="A leak in the retry path.")
    with store.write() as s:
        service.edit(s, incident_id=incident_id, changes=edit, actor=ACTOR, now=T0 + timedelta(hours=3))


def test_a_resolved_p1_gets_a_draft_with_the_timeline_times(store: Store) -> None:
    incident_id = resolved_p1(store)
    row = postmortem(store, incident_id)
    assert row is not None
    assert (row.state, row.title, row.severity) == ("draft", "API answers 503", "P1 (critical)")
    assert (row.alert_triggered_at, row.response_begun_at, row.fix_implemented_at, row.resolved_at) == (
        T0,
        T0 + timedelta(minutes=4),
        T0 + timedelta(minutes=20),
        T0 + timedelta(minutes=85),
    )
    assert row.root_cause_identified_at is None
    assert row.impact == "1 alert on api-1:\n- API answers 503"
    with store.read() as s:
        assert service.get_postmortem(s, incident_id=incident_id).duration_seconds == 85 * 60
    # In the same transaction as the resolution, right after it in the timeline.
    assert kinds(store, incident_id)[-2:] == ["incident.resolved", "postmortem.drafted"]


def test_an_incident_resolved_by_its_alerts_gets_its_draft_in_that_batch(store: Store) -> None:
    incident_id = fire(store)
    fire(store, status=AlertStatus.resolved, now=T0 + timedelta(minutes=9))
    row = postmortem(store, incident_id)
    assert row is not None and row.resolved_at == T0 + timedelta(minutes=9)
    assert row.response_begun_at is None  # nobody acknowledged: the authors fill it in


@pytest.mark.parametrize("severity", [Severity.error, Severity.warning])
def test_p2_and_p3_resolve_without_a_draft(store: Store, severity: Severity) -> None:
    incident_id = fire(store, severity=severity)
    move(store, "resolve", incident_id, 10)
    assert postmortem(store, incident_id) is None
    move(store, "close", incident_id, 11)  # and close without one


def test_reopening_and_resolving_again_keeps_one_draft_with_the_last_resolution(store: Store) -> None:
    incident_id = resolved_p1(store)
    move(store, "reopen", incident_id, 90)
    move(store, "resolve", incident_id, 120)
    row = postmortem(store, incident_id)
    assert row is not None and row.resolved_at == T0 + timedelta(minutes=120)
    assert kinds(store, incident_id).count("postmortem.drafted") == 1


def test_closing_is_refused_until_the_post_mortem_is_complete(store: Store) -> None:
    incident_id = resolved_p1(store)
    with pytest.raises(IncidentError, match=r"post-mortem is required .*its post-mortem is draft"):
        move(store, "close", incident_id, 100)
    now = T0 + timedelta(hours=4)
    with (
        store.write() as s,
        pytest.raises(PostmortemError, match="is draft; it can go to in_review, not complete"),
    ):
        service.complete(s, incident_id=incident_id, actor=ACTOR, now=now)
    with store.write() as s:
        service.review(s, incident_id=incident_id, actor=ACTOR, now=now)
    with (
        store.write() as s,
        pytest.raises(PostmortemError, match="without what_happened and why_it_happened"),
    ):
        service.complete(s, incident_id=incident_id, actor=ACTOR, now=now)
    with store.write() as s:
        service.send_back(s, incident_id=incident_id, actor="user:tess", now=now, note="root cause, please")
    write_root_cause(store, incident_id)
    with store.write() as s:
        service.review(s, incident_id=incident_id, actor=ACTOR, now=now)
        service.complete(s, incident_id=incident_id, actor="user:tess", now=now)
    move(store, "close", incident_id, 300)  # complete: the incident closes
    row = postmortem(store, incident_id)
    assert row is not None and (row.state, row.completed_by, row.completed_at) == (
        "complete",
        "user:tess",
        now,
    )
    with store.write() as s, pytest.raises(PostmortemError, match="is complete; it cannot be edited"):
        service.edit(s, incident_id=incident_id, changes=PostmortemEdit(summary="late"), actor=ACTOR, now=now)
    assert kinds(store, incident_id)[-5:] == [
        "postmortem.sent_back",
        "postmortem.edited",
        "postmortem.in_review",
        "postmortem.completed",
        "incident.closed",
    ]


def test_a_priority_raised_after_resolving_is_drafted_on_demand(store: Store) -> None:
    incident_id = fire(store, severity=Severity.error)  # P2
    with store.write() as s, pytest.raises(PostmortemError, match="once it is resolved"):
        service.create(s, incident_id=incident_id, actor=ACTOR, now=T0)
    move(store, "resolve", incident_id, 10)
    move(store, "change_priority", incident_id, 11, priority=Priority.P1)
    with pytest.raises(IncidentError, match="it has no post-mortem yet"):
        move(store, "close", incident_id, 12)
    with store.write() as s:
        service.create(s, incident_id=incident_id, actor=ACTOR, now=T0 + timedelta(minutes=13))
    with store.write() as s, pytest.raises(PostmortemError, match="has a post-mortem already"):
        service.create(s, incident_id=incident_id, actor=ACTOR, now=T0)
    with store.read() as s, pytest.raises(PostmortemNotFound):
        service.get_postmortem(s, incident_id=incident_id + 1)


def test_edits_change_only_the_fields_given_and_are_recorded(store: Store) -> None:
    incident_id = resolved_p1(store)
    later = T0 + timedelta(hours=5)
    edit = PostmortemEdit(
        root_cause_identified_at=T0 + timedelta(minutes=40), contributing_factors="No alert on pool use."
    )
    with store.write() as s:
        service.edit(s, incident_id=incident_id, changes=edit, actor=ACTOR, now=later)
        with pytest.raises(PostmortemError, match="nothing to change"):
            service.edit(s, incident_id=incident_id, changes=edit, actor=ACTOR, now=later)
    row = postmortem(store, incident_id)
    assert row is not None
    assert (row.root_cause_identified_at, row.contributing_factors, row.updated_at) == (
        T0 + timedelta(minutes=40),
        "No alert on pool use.",
        later,
    )
    assert row.impact.startswith("1 alert")  # untouched
    with store.read() as s:
        (event,) = s.scalars(select(EventRow).where(EventRow.kind == "postmortem.edited")).all()
    assert (event.actor, event.payload) == (
        ACTOR,
        {"fields": ["contributing_factors", "root_cause_identified_at"]},
    )


def test_the_markdown_has_every_section_of_the_seed_template(store: Store) -> None:
    incident_id = resolved_p1(store)
    write_root_cause(store, incident_id)
    with store.write() as s:
        actions.add_action(
            s,
            incident_id=incident_id,
            title="Alert on pool use above 80%",
            owner="ann",
            due_on=date(2026, 12, 4),
            people=PEOPLE,
            settings=PostmortemSettings(),
            actor=ACTOR,
            now=T0,
        )
    with store.read() as s:
        text = render.markdown(service.get_postmortem(s, incident_id=incident_id))
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings == [
        f"# Incident Post-Mortem: {incident_id} API answers 503",
        "## Summary",
        "## Timeline",
        "## Root Cause Analysis",
        "### What Happened",
        "### Why It Happened",
        "### Contributing Factors",
        "## Action Items",
        "## Lessons Learned",
        "## What Went Well",
        "## What Could Be Improved",
    ]
    for line in (
        "- Date/Time: 2026-11-27 01:00 UTC",
        "- Duration: 1h 25m",
        "- Impact: 1 alert on api-1:\n  - API answers 503",
        "- Severity: P1 (critical)",
        "- Alert triggered: 2026-11-27 01:00 UTC",
        "- Response begun: 2026-11-27 01:04 UTC",
        "- Root cause identified: _(to fill in)_",
        "- Fix implemented: 2026-11-27 01:20 UTC",
        "- Incident resolved: 2026-11-27 02:25 UTC",
        "The pool ran dry.",
        "1. [ann] Alert on pool use above 80% [2026-12-04]",
    ):
        assert line in text, line


def test_an_action_done_by_the_end_of_its_due_day_is_on_time_and_after_it_late(store: Store) -> None:
    incident_id = resolved_p1(store)
    settings = PostmortemSettings()
    made = []
    with store.write() as s:
        for title in ("on time", "late", "dropped"):
            row = actions.add_action(
                s,
                incident_id=incident_id,
                title=title,
                owner="bob",
                due_on=date(2026, 12, 4),
                people=PEOPLE,
                settings=settings,
                actor=ACTOR,
                now=T0,
            )
            made.append(row.id)
    last_minute = T0.replace(day=4, month=12, hour=23, minute=59)
    for action_id, at, status in (
        (made[0], last_minute, ActionStatus.done),
        (made[1], last_minute + timedelta(minutes=1), ActionStatus.done),
        (made[2], last_minute, ActionStatus.cancelled),
    ):
        with store.write() as s:
            actions.update_action(
                s,
                action_id=action_id,
                people=PEOPLE,
                settings=settings,
                actor="user:bob",
                now=at,
                status=status,
            )
    with store.read() as s:
        done = s.scalars(
            select(EventRow).where(EventRow.kind == "postmortem.action.completed").order_by(EventRow.id)
        )
        assert [(e.payload["action"], e.payload["on_time"], e.actor) for e in done] == [
            (made[0], True, "user:bob"),
            (made[1], False, "user:bob"),
        ]
        # Every reminder timer of a finished item is cancelled.
        pending = s.scalars(
            select(TimerRow).where(TimerRow.kind == "pm-action", TimerRow.cancelled_at.is_(None))
        )
        assert list(pending) == []
    with store.write() as s, pytest.raises(PostmortemError, match="is done; it cannot change"):
        actions.update_action(
            s, action_id=made[0], people=PEOPLE, settings=settings, actor=ACTOR, now=T0, title="x"
        )


def test_an_action_needs_a_person_of_the_plan_and_a_due_date_to_come(store: Store) -> None:
    incident_id = resolved_p1(store)
    common: dict[str, Any] = {
        "incident_id": incident_id,
        "title": "x",
        "people": PEOPLE,
        "settings": PostmortemSettings(),
        "actor": ACTOR,
        "now": T0,
    }
    with store.write() as s:
        with pytest.raises(
            PostmortemError, match="'zed' is not a person of the active plan \\(people: ann, bob\\)"
        ):
            actions.add_action(s, owner="zed", due_on=date(2026, 12, 4), **common)
        with pytest.raises(PostmortemError, match="the due date 2026-11-26 has passed"):
            actions.add_action(s, owner="ann", due_on=date(2026, 11, 26), **common)
        with pytest.raises(PostmortemNotFound, match="has no post-mortem"):
            actions.add_action(s, owner="ann", due_on=date(2026, 12, 4), **{**common, "incident_id": 999})


def test_every_postmortem_setting_is_documented() -> None:
    page = (Path(__file__).resolve().parent.parent / "docs" / "plan.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", page, flags=re.MULTILINE))
    missing = set(PostmortemSettings.model_fields) - documented
    assert not missing, f"docs/plan.md does not document postmortems fields {sorted(missing)}"
