"""Lifecycle: the version support policy, stage transitions, the documentation registry's stale
episodes and the training matrix, on real stores with the fake clock; the two seed KPIs computed
from them and checked against figures worked out by hand."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import BaseModel
from sqlalchemy import select

from maintd.engine import Engine
from maintd.kpi.report import compute
from maintd.lifecycle import documents, inventory, service, training
from maintd.lifecycle.dates import add_months
from maintd.lifecycle.policy import Support, end_of_support, statuses
from maintd.lifecycle.records import Catalog, LifecycleError, NotFound
from maintd.plan.lifecycle import Component, Covers, Document, Stage, Training, Version
from maintd.plan.loader import PlanError, load_plan
from maintd.registry import Registry
from maintd.store.db import Store
from maintd.store.models import EventRow, NotificationRow


def Z(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


PLAN = """
    people:
      - {name: ann, email: ann@example.test, roles: [sre]}
      - {name: bob, email: bob@example.test, roles: [sre]}
      - {name: tess, email: tess@example.test, roles: [team-lead]}
      - {name: vic, email: vic@example.test}
    targets:
      - {name: web, kind: service}
    tasks:
      - name: ping
        kind: command
        targets: [web]
        schedule: {every: 1m}
        params: {argv: [sh, -c, "echo pong"], read_only: true}
    components:
      - name: api
        owner: ann
        category: framework
        targets: [web]
        versions:
          - {version: "3.1.0", released: 2025-12-01}   # a minor line: ends 2026-12-01, notice from 2026-06-01
          - {version: "3.0.0", released: 2025-03-01}   # a major line: ends 2027-03-01
      - name: pg
        owner: bob
        versions: [{version: "16.0", released: 2026-09-01}]
    documents:
      - {name: api-runbook, kind: runbook, owner: ann, last_reviewed: 2026-11-25,
         covers: {components: [api], tasks: [ping]}}
      - {name: arch, kind: architecture, owner: tess, covers: {components: [pg]}}
    trainings:
      - {name: incident-response, roles: [sre], every: quarterly}
      - {name: risk-management, roles: [team-lead], every: annual}
"""


@pytest.fixture
def engine(
    sqlite_store: Store, write_plan: Callable[..., Path], make_engine: Callable[..., Engine]
) -> Engine:
    engine = make_engine(sqlite_store, write_plan(PLAN))
    assert engine.reload().ok, engine.last_reload
    return engine


@pytest.fixture
def both(store: Store, write_plan: Callable[..., Path], make_engine: Callable[..., Engine]) -> Engine:
    """The engine on SQLite and on PostgreSQL (the stored plan's sections are read with JSON paths)."""
    engine = make_engine(store, write_plan(PLAN))
    assert engine.reload().ok, engine.last_reload
    return engine


def catalog(engine: Engine) -> Catalog:
    assert engine.loaded is not None
    return Catalog.of(engine.loaded.plan)


def doc(engine: Engine, name: str, at: datetime) -> documents.DocStatus:
    with engine.store.read() as s:
        (found,) = [d for d in documents.statuses(s, catalog(engine), until=at) if d.name == name]
    return found


def move(
    engine: Engine,
    component: str,
    to: Stage | None,
    at: datetime,
    version: str | None = None,
    released: date | None = None,
) -> inventory.ComponentState:
    with engine.store.write() as s:
        return service.transition(
            s,
            catalog(engine),
            component=component,
            to=to,
            version=version,
            released=released,
            actor="user:tess",
            now=at,
        )


def review(engine: Engine, name: str, at: datetime) -> documents.DocStatus:
    with engine.store.write() as s:
        return service.reviewed(s, catalog(engine), document=name, actor="user:ann", now=at)


# -- the version support policy ---------------------------------------------------------------


def V(version: str, released: str, end: str | None = None) -> Version:
    return Version(
        version=version,
        released=date.fromisoformat(released),
        end_of_support=date.fromisoformat(end) if end else None,
    )


def test_a_major_line_is_supported_two_years_a_minor_one_year_a_patch_until_the_next_patch() -> None:
    versions = [
        V("3.0.0", "2025-03-01"),
        V("3.1.0", "2025-12-01"),
        V("3.1.1", "2026-01-10"),
        V("3.1.2", "2026-02-01"),
        V("2.0.0", "2024-01-01", end="2026-12-31"),  # the vendor's date wins
    ]
    ends = {v.version: end_of_support(v, versions) for v in versions}
    assert ends == {
        "3.0.0": date(2027, 3, 1),
        "3.1.0": date(2026, 1, 10),  # superseded by 3.1.1
        "3.1.1": date(2026, 2, 1),
        "3.1.2": date(2026, 12, 1),  # its line: 3.1.0's release + 1 year
        "2.0.0": date(2026, 12, 31),
    }
    levels = [(s.version, s.support) for s in statuses(versions, date(2026, 11, 27))]
    assert levels == [
        ("3.1.2", Support.full),
        ("3.1.1", Support.ended),
        ("3.1.0", Support.ended),
        ("3.0.0", Support.security),
        ("2.0.0", Support.best_effort),
    ]
    (latest,) = [s for s in statuses(versions, date(2026, 11, 27)) if s.version == "3.1.2"]
    assert latest.notice_from == date(2026, 6, 1)


def test_months_are_calendar_months_and_the_31st_becomes_the_last_day() -> None:
    assert add_months(date(2026, 8, 31), 6) == date(2027, 2, 28)
    assert add_months(date(2026, 12, 1), -6) == date(2026, 6, 1)
    assert add_months(date(2024, 2, 29), 12) == date(2025, 2, 28)


# -- the plan -----------------------------------------------------------------------------------


def test_owners_roles_and_covered_names_must_exist_in_the_plan(
    write_plan: Callable[..., Path], registry: Registry
) -> None:
    bad = PLAN.replace("owner: bob", "owner: bobby").replace("tasks: [ping]", "tasks: [pong]")
    bad = bad.replace("roles: [team-lead], every", "roles: [cto], every")
    with pytest.raises(PlanError) as caught:
        load_plan(write_plan(bad), registry)
    text = str(caught.value)
    assert "plan.yaml:23: error: components[1].owner: unknown person 'bobby'" in text
    assert "documents[0].covers.tasks[0]: unknown task 'pong'" in text
    assert "trainings[1].roles[0]: nobody has the role 'cto'" in text


# -- the inventory ---------------------------------------------------------------------------------


def test_a_team_lead_moves_a_component_one_step_and_the_table_refuses_a_jump(engine: Engine) -> None:
    with pytest.raises(LifecycleError, match=r"api: production → development is not a lifecycle step"):
        move(engine, "api", Stage.development, Z("2026-11-27T02:00"))
    moved = move(engine, "api", Stage.maintenance, Z("2026-11-27T02:00"))
    assert (moved.stage, moved.version, moved.on_notice) == (Stage.maintenance, "3.1.0", True)
    with engine.store.read() as s:
        (event,) = s.scalars(select(EventRow).where(EventRow.kind == "lifecycle.transition"))
    assert (event.subject, event.actor, event.payload["from"], event.payload["to"]) == (
        "component:api",
        "user:tess",
        "production",
        "maintenance",
    )
    with pytest.raises(LifecycleError, match="give its release date"):
        move(engine, "api", None, Z("2026-11-27T03:00"), version="3.2.0")
    released = move(
        engine, "api", Stage.production, Z("2026-11-27T03:00"), version="3.2.0", released=date(2026, 11, 20)
    )
    assert (released.stage, released.version, released.support, released.end_of_support) == (
        Stage.production,
        "3.2.0",
        Support.full,
        date(2027, 11, 20),
    )
    assert not released.on_notice
    with pytest.raises(NotFound):
        move(engine, "nope", Stage.maintenance, Z("2026-11-27T04:00"))


def test_a_retired_component_is_final_and_leaves_the_review_list(engine: Engine) -> None:
    for i, stage in enumerate((Stage.deprecation, Stage.retirement)):
        move(engine, "pg", stage, Z("2026-11-27T02:00") + timedelta(hours=i))
    with pytest.raises(LifecycleError, match="pg is retired"):
        move(engine, "pg", Stage.maintenance, Z("2026-11-27T05:00"))
    with engine.store.read() as s:
        assert [c.name for c in inventory.review_list(s, catalog(engine), Z("2026-11-27T06:00"))] == ["api"]


# -- the documentation registry -----------------------------------------------------------------------


def test_a_runbook_is_stale_when_its_weekly_review_lapses_until_reviewed(engine: Engine) -> None:
    before = doc(engine, "api-runbook", Z("2026-12-01T23:59"))
    assert (before.stale_since, before.next_due) == (None, Z("2026-12-02T00:00"))
    due = doc(engine, "api-runbook", Z("2026-12-02T00:00"))
    assert (due.stale_since, due.stale_cause) == (Z("2026-12-02T00:00"), "weekly review due")
    done = review(engine, "api-runbook", Z("2026-12-03T09:00"))
    assert (done.stale_since, done.next_due, done.last_reviewed) == (
        None,
        Z("2026-12-10T09:00"),
        Z("2026-12-03T09:00"),
    )
    assert done.episodes[0].on_time


def test_a_covered_component_transition_makes_its_documents_stale(engine: Engine) -> None:
    move(engine, "pg", Stage.maintenance, Z("2026-11-28T10:00"))
    arch = doc(engine, "arch", Z("2026-11-28T11:00"))
    assert arch.stale_since == Z("2026-11-28T10:00")
    assert arch.stale_cause == "component pg: production → maintenance, version 16.0"
    assert doc(engine, "api-runbook", Z("2026-11-28T11:00")).stale_since is None


def test_a_covered_task_defined_anew_by_a_plan_version_makes_its_documents_stale(
    both: Engine, write_plan: Callable[..., Path]
) -> None:
    engine = both
    engine.clock.set(Z("2026-11-28T12:00"))  # type: ignore[attr-defined]
    write_plan(PLAN.replace("schedule: {every: 1m}", "schedule: {every: 5m}"))
    assert engine.reload().ok
    runbook = doc(engine, "api-runbook", Z("2026-11-28T13:00"))
    assert (runbook.stale_since, runbook.stale_cause) == (
        Z("2026-11-28T12:00"),
        "task ping changed in the plan",
    )
    assert doc(engine, "arch", Z("2026-11-28T13:00")).stale_since is None


def test_documentation_currency_counts_stale_episodes_closed_within_48_hours(both: Engine) -> None:
    """By hand, for [1 Dec, 20 Dec): api-runbook's weekly review lapses 2 Dec 00:00, reviewed 10 h later
    (on time); api transitions 5 Dec 00:00, reviewed 60 h later (late); pg transitions 10 Dec, arch is
    never reviewed (late: 48 h over by the end); api-runbook lapses again 14 Dec 12:00, reviewed exactly
    48 h later (on time); api transitions 19 Dec 12:00, 12 h before the end (not decided: not counted).
    2 of 4 = 50%."""
    engine = both
    review(engine, "api-runbook", Z("2026-12-02T10:00"))
    move(engine, "api", Stage.maintenance, Z("2026-12-05T00:00"))
    review(engine, "api-runbook", Z("2026-12-07T12:00"))
    move(engine, "pg", Stage.maintenance, Z("2026-12-10T00:00"))
    review(engine, "api-runbook", Z("2026-12-16T12:00"))
    move(engine, "api", Stage.production, Z("2026-12-19T12:00"))
    end = Z("2026-12-20T00:00")
    with engine.store.read() as s:
        report = compute(s, end=end, period=timedelta(days=19), now=end)
    figure = report.get("seed.documentation_currency")
    assert (figure.value, figure.samples, figure.met) == (50.0, 4, False)
    assert figure.how.startswith("2 of 4 stale episodes")
    with engine.store.read() as s:
        assert documents.currency(s, catalog(engine), Z("2026-12-01T00:00"), Z("2026-12-19T00:00")) == (2, 4)


# -- the training matrix -----------------------------------------------------------------------------


def complete(engine: Engine, person: str, name: str, on: date, at: datetime) -> training.TrainingStatus:
    with engine.store.write() as s:
        return service.completed(
            s, catalog(engine), person=person, training_name=name, completed_on=on, actor="user:rob", now=at
        )


def test_training_completion_is_people_with_every_required_training_current(engine: Engine) -> None:
    """By hand, at 20 Dec: ann's quarterly training (1 Sep) was due 1 Dec: overdue; bob's (1 Nov) is due
    1 Feb; tess's annual one (15 Jan) is due 15 Jan 2027; vic has no role: not counted. 2 of 3."""
    now = Z("2026-11-27T02:00")
    assert complete(engine, "ann", "incident-response", date(2026, 9, 1), now).due_at == Z("2026-12-01T00:00")
    complete(engine, "bob", "incident-response", date(2026, 11, 1), now)
    complete(engine, "tess", "risk-management", date(2026, 1, 15), now)
    with pytest.raises(LifecycleError, match=r"tess's roles \(team-lead\) do not require incident-response"):
        complete(engine, "tess", "incident-response", date(2026, 11, 1), now)
    with pytest.raises(LifecycleError, match="in the future"):
        complete(engine, "bob", "incident-response", date(2026, 11, 28), now)
    end = Z("2026-12-20T00:00")
    with engine.store.read() as s:
        figure = compute(s, end=end, period=timedelta(days=30), now=end).get("seed.training_completion")
        late = [
            (t.person, t.training) for t in training.statuses(s, catalog(engine), at=end) if not t.current
        ]
    assert (figure.value, figure.samples) == (66.667, 3)
    assert "(1 people with no required training are not counted)" in figure.how
    assert late == [("ann", "incident-response")]
    matrix = [(r.role, r.training, r.every, r.people) for r in training.matrix(catalog(engine))]
    assert matrix == [
        ("sre", "incident-response", "quarterly", ["ann", "bob"]),
        ("team-lead", "risk-management", "annual", ["tess"]),
    ]


# -- reminders and notices, through the engine's timers and the notification outbox -----------------


def notifications(engine: Engine) -> list[tuple[str, str, str, str]]:
    with engine.store.read() as s:
        rows = s.scalars(select(NotificationRow).order_by(NotificationRow.id))
        return [(r.recipient, r.subject, r.state, r.message["title"]) for r in rows]


def test_the_owner_gets_one_end_of_life_notice_six_months_ahead_even_across_reloads(both: Engine) -> None:
    engine = both
    engine.tick(engine.clock.now())
    assert engine.reload().ok and engine.start_plan().ok  # activating again sets nothing twice
    engine.tick(engine.clock.now() + timedelta(minutes=1))
    notices = [n for n in notifications(engine) if n[2] == "eol"]
    assert notices == [("person:ann", "component:api", "eol", "end of life: api 3.1.0")]
    with engine.store.read() as s:
        (event,) = s.scalars(select(EventRow).where(EventRow.kind == "lifecycle.eol_notice"))
    assert event.payload == {
        "component": "api",
        "version": "3.1.0",
        "end_of_support": "2026-12-01",
        "owner": "ann",
    }
    with engine.store.read() as s:
        listed = [
            (c.name, c.on_notice) for c in inventory.review_list(s, catalog(engine), engine.clock.now())
        ]
    assert listed == [("api", True), ("pg", False)]  # by area: framework, then infrastructure


def test_a_document_owner_is_reminded_when_the_review_is_due_then_when_48_hours_late(engine: Engine) -> None:
    for at in (Z("2026-12-01T23:59"), Z("2026-12-02T00:00"), Z("2026-12-04T00:00"), Z("2026-12-09T00:00")):
        engine.clock.set(at)  # type: ignore[attr-defined]
        engine.tick(at)
    runbook = [n for n in notifications(engine) if n[1] == "doc:api-runbook"]
    assert runbook == [
        ("person:ann", "doc:api-runbook", "reminder", "document api-runbook: review due"),
        ("person:ann", "doc:api-runbook", "overdue", "document api-runbook: review overdue"),
    ]


def test_a_review_in_time_stops_the_late_reminder(engine: Engine) -> None:
    engine.clock.set(Z("2026-12-02T00:00"))  # type: ignore[attr-defined]
    engine.tick(Z("2026-12-02T00:00"))
    review(engine, "api-runbook", Z("2026-12-02T08:00"))
    engine.clock.set(Z("2026-12-05T00:00"))  # type: ignore[attr-defined]
    engine.tick(Z("2026-12-05T00:00"))
    states = [n[2] for n in notifications(engine) if n[1] == "doc:api-runbook"]
    assert states == ["reminder"]


def test_people_are_reminded_of_trainings_never_done_and_14_days_before_one_is_due_again(
    engine: Engine,
) -> None:
    engine.tick(engine.clock.now())
    first = {(n[0], n[3]) for n in notifications(engine) if n[1].startswith("training:")}
    assert first == {
        ("person:ann", "training incident-response for ann: overdue"),
        ("person:bob", "training incident-response for bob: overdue"),
        ("person:tess", "training risk-management for tess: overdue"),
    }
    complete(
        engine, "ann", "incident-response", date(2026, 11, 27), Z("2026-11-27T01:00")
    )  # due 27 Feb 01:00
    counts = []
    for at in (Z("2027-02-13T00:59"), Z("2027-02-13T01:00"), Z("2027-02-27T00:59"), Z("2027-02-27T01:00")):
        engine.clock.set(at)  # type: ignore[attr-defined]
        engine.tick(at)
        counts.append(len([n for n in notifications(engine) if n[1] == "training:ann/incident-response"]))
    ann = [n[3] for n in notifications(engine) if n[1] == "training:ann/incident-response"]
    assert counts == [1, 2, 2, 3]
    assert ann == [
        "training incident-response for ann: overdue",
        "training incident-response for ann: due soon",
        "training incident-response for ann: overdue",
    ]


@pytest.mark.parametrize("model", [Component, Version, Document, Covers, Training])
def test_every_lifecycle_plan_field_is_documented(model: type[BaseModel]) -> None:
    text = (Path(__file__).parent.parent / "docs" / "plan.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", text, flags=re.MULTILINE))  # as tests/test_docs.py
    missing = set(model.model_fields) - documented
    assert not missing, f"docs/plan.md does not document {model.__name__} fields {sorted(missing)}"


def test_an_upgrade_before_the_notice_date_means_no_notice_for_the_old_version(engine: Engine) -> None:
    move(engine, "pg", None, Z("2027-01-10T00:00"), version="17.0", released=date(2026, 12, 1))
    for at in (Z("2027-01-10T00:00"), Z("2028-03-01T00:00")):  # 16.0's notice would have been due 1 Mar 2028
        engine.clock.set(at)  # type: ignore[attr-defined]
        engine.tick(at)
    assert [n for n in notifications(engine) if n[1] == "component:pg"] == []
    with engine.store.read() as s:
        (pg,) = [c for c in inventory.states(s, catalog(engine), Z("2028-03-01T00:00")) if c.name == "pg"]
    assert (pg.version, pg.end_of_support, pg.notice_from, pg.on_notice) == (
        "17.0",
        date(2028, 12, 1),
        date(2028, 6, 1),
        False,
    )


def test_a_transition_queues_a_review_reminder_to_the_owner_of_each_covering_document(engine: Engine) -> None:
    engine.tick(engine.clock.now())  # the notices and training reminders due at once
    move(engine, "pg", Stage.maintenance, Z("2026-11-28T10:00"))
    engine.clock.set(Z("2026-11-28T10:00"))  # type: ignore[attr-defined]
    engine.tick(Z("2026-11-28T10:00"))
    docs = [n for n in notifications(engine) if n[1].startswith("doc:")]
    assert docs == [("person:tess", "doc:arch", "reminder", "document arch: review due")]
