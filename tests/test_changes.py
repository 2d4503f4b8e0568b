"""Change requests: the approval matrix, evidence, the change freeze and the state machine."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import select

from maintd.alerts.model import AlertIn, Severity
from maintd.auth import Role
from maintd.changes import matrix, orders, service
from maintd.changes.model import (
    TRANSITIONS,
    ChangeError,
    ChangeForbidden,
    ChangeFrozen,
    ChangeRequest,
    ChangeState,
)
from maintd.engine import Engine
from maintd.incidents import service as incidents
from maintd.incidents.pipeline import ingest
from maintd.kpi.report import compute
from maintd.plan.changes import (
    SEED_TYPES,
    Approval,
    ChangeSettings,
    ChangeType,
    Evidence,
    Procedure,
    SecurityUpdates,
    Watch,
)
from maintd.store import events
from maintd.store.models import RunRow, TimerRow
from tests.changes_support import (  # noqa: F401
    DIRK,
    MAX,
    MIA,
    ROB,
    TESS,
    VERA,
    Service,
    make_worker,
    plan_text,
    web_fixture,
    who,
)
from tests.conftest import T0

R = Role


def votes(*pairs: tuple[str, Role]) -> list[matrix.Vote]:
    return [matrix.Vote(name, role) for name, role in pairs]


@pytest.mark.parametrize(
    ("change_type", "cast", "missing"),
    [
        # on-call (responder) + manager: two people, whatever their roles
        ("critical-security-patch", [("rob", R.responder)], ["manager x1"]),
        ("critical-security-patch", [("rob", R.responder), ("mia", R.manager)], []),
        ("critical-security-patch", [("mia", R.manager)], ["responder x1"]),
        ("critical-security-patch", [("mia", R.manager), ("max", R.manager)], []),
        ("critical-security-patch", [("tess", R.team_lead), ("rob", R.responder)], ["manager x1"]),
        ("critical-security-patch", [("mia", R.manager), ("mia", R.manager)], ["responder x1"]),
        # a team lead, or anyone above
        ("configuration-update", [("tess", R.team_lead)], []),
        ("configuration-update", [("dirk", R.director)], []),
        ("configuration-update", [("rob", R.responder)], ["team-lead x1"]),
        # the change board: two managers
        ("major-version-update", [("mia", R.manager)], ["manager x1"]),
        ("major-version-update", [("mia", R.manager), ("tess", R.team_lead)], ["manager x1"]),
        ("major-version-update", [("mia", R.manager), ("dirk", R.director)], []),
        # a technical director
        ("architecture-change", [("mia", R.manager)], ["director x1"]),
        ("architecture-change", [("ada", R.admin)], []),
        ("standard", [], []),
    ],
)
def test_the_seed_matrix_counts_each_person_once_for_one_requirement(
    change_type: str, cast: list[tuple[str, Role]], missing: list[str]
) -> None:
    tally = matrix.tally(SEED_TYPES[change_type].approvals, votes(*cast))
    assert tally.describe_missing() == missing
    assert tally.satisfied is (not missing)


@pytest.mark.parametrize(
    ("change_type", "role", "may"),
    [
        ("critical-security-patch", R.viewer, False),
        ("critical-security-patch", R.responder, True),
        ("configuration-update", R.responder, False),
        ("configuration-update", R.team_lead, True),
        ("major-version-update", R.team_lead, False),
        ("major-version-update", R.manager, True),
        ("architecture-change", R.manager, False),
        ("architecture-change", R.director, True),
    ],
)
def test_who_may_approve_what(change_type: str, role: Role, may: bool) -> None:
    assert matrix.may_approve(SEED_TYPES[change_type].approvals, role) is may


def test_the_best_assignment_is_found_whatever_the_order_of_votes() -> None:
    # A manager voting first must not take the responder slot a responder cannot fill later... and
    # a manager voting first must be kept for the manager slot when a team lead fills the rest.
    required = [Approval(role="team-lead"), Approval(role="manager")]
    assert matrix.tally(required, votes(("mia", R.manager), ("tess", R.team_lead))).satisfied
    assert matrix.tally(required, votes(("tess", R.team_lead), ("mia", R.manager))).satisfied


def test_every_state_is_in_the_transition_table_and_final_states_lead_nowhere() -> None:
    assert set(TRANSITIONS) == set(ChangeState)
    for final in ("completed", "rolled_back", "rejected", "cancelled"):
        assert TRANSITIONS[ChangeState(final)] == frozenset()


def test_a_configured_type_replaces_the_seeds_and_the_others_stay() -> None:
    settings = ChangeSettings.model_validate({"types": {"configuration-update": {"approvals": []}}})
    assert settings.type("configuration-update").approvals == []
    assert [a.role for a in settings.type("critical-security-patch").approvals] == ["responder", "manager"]
    with pytest.raises(ValueError, match="unknown procedures: nope"):
        ChangeSettings.model_validate({"types": {"standard": {"procedures": ["nope"]}}})


# --- on the stores


@pytest.fixture
def engine(store, write_plan, make_engine, web: Service) -> Engine:  # type: ignore[no-untyped-def]
    engine = make_engine(store, write_plan(plan_text(web)))
    assert engine.reload().ok, engine.last_reload
    return engine


def passing_run(engine: Engine, status: str = "ok") -> str:
    run_id = f"run{status}{engine.clock.now().timestamp():.0f}"
    with engine.store.write() as s:
        s.add(
            RunRow(
                id=run_id,
                task="web-health",
                target="web",
                kind="http",
                trigger="manual",
                attempt=1,
                scheduled_for=T0,
                started_at=T0,
                finished_at=T0,
                state="finished",
                status=status,
                in_window=True,
                dry_run=False,
                preventive=False,
                output="",
                metrics={},
                owner="test",
            )
        )
    return run_id


def request(web: Service, **fields: Any) -> ChangeRequest:
    values: dict[str, Any] = {
        "type": "configuration-update",
        "title": "serve the new config",
        "procedure": "swap-config",
        "params": {"new": str(web.good)},
        "targets": ["web"],
    }
    return ChangeRequest.model_validate({**values, **fields})


def create(engine: Engine, req: ChangeRequest, by: Any = ROB) -> int:
    assert engine.loaded is not None
    with engine.store.write() as s:
        return service.create(s, request=req, who=by, plan=engine.loaded.plan, now=engine.clock.now()).id


def act(engine: Engine, fn: Any, **kwargs: Any) -> Any:
    assert engine.loaded is not None
    with engine.store.write() as s:
        row = fn(s, settings=engine.loaded.plan.changes, now=engine.clock.now(), **kwargs)
        return row.state


def kinds(engine: Engine, change_id: int) -> list[str]:
    with engine.store.read() as s:
        return [e.kind for e in events.query(s, subject=f"change:{change_id}", limit=1000)]


def test_a_config_update_needs_its_evidence_then_a_team_lead_who_is_not_the_requester(
    engine: Engine, web: Service
) -> None:
    with pytest.raises(ChangeError, match="lacks evidence 'test-suite'"):
        create(engine, request(web))
    with pytest.raises(ChangeError, match="is critical, not ok"):
        create(engine, request(web, evidence={"test-suite": passing_run(engine, "critical")}))
    engine.clock.advance(1)
    change_id = create(engine, request(web, evidence={"test-suite": passing_run(engine)}), by=TESS)
    with pytest.raises(ChangeForbidden, match="the requester cannot approve it"):
        act(engine, service.approve, change_id=change_id, who=TESS)
    with pytest.raises(ChangeForbidden, match="approved by team-lead; rob is responder"):
        act(engine, service.approve, change_id=change_id, who=ROB)
    with pytest.raises(ChangeError, match="only an approved change can be executed"):
        act(engine, orders.request_execution, change_id=change_id, who=ROB)
    assert act(engine, service.approve, change_id=change_id, who=MIA) == "approved"
    with pytest.raises(ChangeError, match="only a change pending approval"):
        act(engine, service.approve, change_id=change_id, who=DIRK)
    assert kinds(engine, change_id) == [
        "change.created",
        "change.pending_approval",
        "change.approval",
        "change.approved",
    ]


def test_a_critical_patch_needs_two_people_and_a_person_decides_once(engine: Engine, web: Service) -> None:
    req = request(web, type="critical-security-patch", evidence={"staging-validation": passing_run(engine)})
    change_id = create(engine, req, by=VERA)
    assert act(engine, service.approve, change_id=change_id, who=MIA) == "pending_approval"
    with pytest.raises(ChangeError, match=r"mia has decided on change .* already"):
        act(engine, service.approve, change_id=change_id, who=MIA)
    with engine.store.read() as s:
        assert service.get(s, change_id=change_id, settings=engine.loaded.plan.changes).missing_approvals == [  # type: ignore[union-attr]
            "responder x1"
        ]
    assert act(engine, service.approve, change_id=change_id, who=ROB) == "approved"
    with engine.store.read() as s:
        view = service.get(s, change_id=change_id)
    assert [(a.person, a.role, a.decision) for a in view.approvals] == [
        ("mia", "manager", "approve"),
        ("rob", "responder", "approve"),
    ]
    assert view.timeline[-1].payload["approvers"] == ["mia", "rob"]


def test_a_rejection_is_final(engine: Engine, web: Service) -> None:
    change_id = create(engine, request(web, evidence={"test-suite": passing_run(engine)}))
    with pytest.raises(ChangeForbidden):
        act(engine, service.reject, change_id=change_id, who=VERA)
    assert act(engine, service.reject, change_id=change_id, who=TESS, note="not this week") == "rejected"
    with pytest.raises(ChangeError, match="is rejected"):
        act(engine, service.approve, change_id=change_id, who=MIA)


def test_a_standard_change_is_pre_approved_but_only_for_its_listed_procedures(
    engine: Engine, web: Service
) -> None:
    change_id = create(engine, request(web, type="standard"))
    with engine.store.read() as s:
        assert service.load(s, change_id).state == "approved"
    with pytest.raises(ChangeError, match="may run only these procedures: swap-config"):
        create(engine, request(web, type="standard", procedure="fail-apply", params={}))


def test_requests_are_checked_against_the_plan(engine: Engine, web: Service) -> None:
    for fields, message in [
        ({"type": "nope"}, "no change type 'nope'"),
        ({"procedure": "nope"}, "no procedure 'nope'"),
        ({"params": {}}, "needs params: new"),
        ({"params": {"new": "x", "old": "y"}}, "has no params old"),
        ({"params": {"new": "--force"}}, "may not start with '-'"),
        ({"canary": ["db"]}, "canary targets must be targets"),
        ({"checks": ["nope"]}, "no task 'nope' in the plan"),
        ({"evidence": {"other": "x"}}, "takes no evidence other"),
    ]:
        with pytest.raises(ChangeError, match=message):
            create(engine, request(web, **{"type": "standard", **fields}))


def open_p1(engine: Engine) -> int:
    assert engine.loaded is not None
    alert = AlertIn(
        source="native", labels={"alertname": "ApiDown"}, severity=Severity.critical, summary="down"
    )
    with engine.store.write() as s:
        (delivery,) = ingest(
            s, [alert], now=engine.clock.now(), settings=engine.loaded.plan.incidents, actor="t"
        )
    assert delivery.incident is not None and delivery.incident.priority == "P1"
    return delivery.incident.id


def test_an_open_p1_freezes_changes_and_only_a_director_overrides_it_with_a_reason(
    engine: Engine, web: Service
) -> None:
    change_id = create(engine, request(web, type="standard"))
    incident = open_p1(engine)
    with pytest.raises(ChangeFrozen, match=f"#{incident} \\(P1\\)"):
        act(engine, orders.request_execution, change_id=change_id, who=ROB)
    with pytest.raises(ChangeForbidden, match="needs the director role; mia is manager"):
        act(engine, orders.request_execution, change_id=change_id, who=MIA, override_reason="urgent")
    with pytest.raises(ChangeFrozen):
        act(engine, orders.request_execution, change_id=change_id, who=DIRK, override_reason="  ")
    assert (
        act(engine, orders.request_execution, change_id=change_id, who=DIRK, override_reason="the fix for it")
        == "executing"
    )
    with engine.store.read() as s:
        row = service.load(s, change_id)
        overridden = events.query(s, subject=f"change:{change_id}", kind="change.freeze_overridden")
        timer = s.scalar(select(TimerRow).where(TimerRow.subject == f"change:{change_id}"))
    assert row.freeze_override is not None
    assert (row.freeze_override["by"], row.freeze_override["incidents"]) == ("dirk", [incident])
    assert [(e.actor, e.payload["reason"]) for e in overridden] == [("token:dirk", "the fix for it")]
    assert timer is not None and (timer.kind, timer.step, timer.due_at) == ("change", "execute.1", T0)


def test_a_freeze_exempt_type_runs_during_a_p1_and_a_resolved_incident_lifts_the_freeze(
    store,
    write_plan,
    make_engine,
    web: Service,  # type: ignore[no-untyped-def]
) -> None:
    extra = "    critical-security-patch: {approvals: [], freeze_exempt: true}\n"
    engine = make_engine(store, write_plan(plan_text(web, extra)))
    assert engine.reload().ok, engine.last_reload
    incident = open_p1(engine)
    exempt = create(engine, request(web, type="critical-security-patch"))
    assert act(engine, orders.request_execution, change_id=exempt, who=ROB) == "executing"
    frozen = create(engine, request(web, type="standard"))
    with pytest.raises(ChangeFrozen):
        act(engine, orders.request_execution, change_id=frozen, who=ROB)
    with engine.store.write() as s:
        settings = incidents.stored_settings(s)
        incidents.resolve(s, incident_id=incident, actor="t", now=engine.clock.now(), settings=settings)
    assert act(engine, orders.request_execution, change_id=frozen, who=ROB) == "executing"
    with engine.store.read() as s:
        assert service.load(s, frozen).freeze_override is None


def test_the_requester_or_a_team_lead_cancels_a_change_that_has_not_started(
    engine: Engine, web: Service
) -> None:
    change_id = create(engine, request(web, type="standard"))
    with engine.store.write() as s:
        with pytest.raises(ChangeForbidden):
            service.cancel(s, change_id=change_id, who=who("ray", Role.responder), now=T0)
        assert service.cancel(s, change_id=change_id, who=TESS, now=T0).state == "cancelled"


def test_patch_deployment_success_counts_the_changes_that_ended_in_the_period(engine: Engine) -> None:
    ended = [
        "change.completed",
        "change.completed",
        "change.completed",
        "change.rolled_back",
        "change.failed",
    ]
    with engine.store.write() as s:
        events.append(s, [events.Event(kind, f"change:{i}", T0, "changes") for i, kind in enumerate(ended)])
        events.append(s, events.Event("change.completed", "change:9", T0 + timedelta(days=2), "changes"))
        events.append(s, events.Event("change.watching", "change:8", T0, "changes"))
    with engine.store.read() as s:
        figure = compute(s, end=T0 + timedelta(days=1), period=timedelta(days=7), now=T0).get(
            "seed.patch_deployment_success"
        )
        empty = compute(s, end=T0, period=timedelta(days=1), now=T0).get("seed.patch_deployment_success")
    assert (figure.value, figure.samples) == (60.0, 5)
    assert (
        figure.how
        == "3 of 5 changes that ended in the period completed their health watch (rolled back: 1, failed: 1)"
    )
    assert (empty.value, empty.samples) == (None, 0)


def test_a_draft_is_submitted_with_its_evidence_and_a_link_must_be_http(engine: Engine, web: Service) -> None:
    assert engine.loaded is not None
    req = request(web, type="architecture-change", draft=True)
    change_id = create(engine, req)
    with engine.store.read() as s:
        assert service.load(s, change_id).state == "draft"
    submit = service.submit
    with pytest.raises(ChangeError, match="must be an http\\(s\\) link, not 'ftp://x'"):
        act(engine, submit, change_id=change_id, who=ROB, evidence={"proof-of-concept": "ftp://x"})
    link = "https://wiki.example.com/poc"
    assert act(engine, submit, change_id=change_id, who=ROB, evidence={"proof-of-concept": link}) == (
        "pending_approval"
    )
    with pytest.raises(ChangeForbidden, match="approved by director; mia is manager"):
        act(engine, service.approve, change_id=change_id, who=MIA)
    assert act(engine, service.approve, change_id=change_id, who=DIRK) == "approved"


def test_two_workers_never_take_the_same_changes_step(engine: Engine, web: Service) -> None:
    assert engine.loaded is not None
    change_id = create(engine, request(web, type="standard"))
    act(engine, orders.request_execution, change_id=change_id, who=ROB)
    first, _ = make_worker(engine)
    second, _ = make_worker(engine)
    second.owner = "another-process"
    (taken,) = first._take(engine.loaded, T0)
    assert taken.name == "execute.1"
    assert second._take(engine.loaded, T0) == []  # leased by the first
    first._release(change_id, None)
    assert [s.name for s in second._take(engine.loaded, T0)] == ["execute.1"]  # the step is still pending


def test_a_security_scans_patch_proposal_becomes_one_draft_change(
    store,
    write_plan,
    make_engine,
    web: Service,  # type: ignore[no-untyped-def]
) -> None:
    plan_dir = write_plan(f"""
        targets: [{{name: app, kind: service}}]
        tasks:
          - name: web-health
            kind: http
            targets: [app]
            schedule: {{every: 1h}}
            params: {{url: "{web.url}"}}
        changes:
          watch: {{checks: [web-health]}}
          security_updates: {{procedure: pip-patch}}
          procedures:
            - name: pip-patch
              apply: [echo, "{{package}}=={{to}}", "{{file}}"]
              rollback: [echo, "{{package}}=={{from}}", "{{file}}"]
    """)
    engine = make_engine(store, plan_dir)
    assert engine.reload().ok, engine.last_reload
    assert engine.loaded is not None
    detail = {
        "package": "jinja2",
        "from": "3.1.2",
        "to": "3.1.6",
        "fixes": ["GHSA-1", "GHSA-2"],
        "file": "req.txt",
    }
    payload = {
        "run_id": "r1",
        "dry_run": False,
        "changes": [
            {"action": "propose-update", "target": "req.txt: jinja2", "detail": detail},
            {"action": "write-report", "target": "/tmp/report.md"},
        ],
    }
    with engine.store.write() as s:
        events.append(s, events.Event("action.applied", "task:deps-scan/app", T0, "runner", payload))
    worker, _ = make_worker(engine)
    (drafted,) = worker.propose(engine.loaded)
    assert worker.propose(engine.loaded) == []
    restarted, _ = make_worker(engine)  # a new process looks back a week: the title was drafted already
    assert restarted.propose(engine.loaded) == []
    with engine.store.read() as s:
        row = service.load(s, drafted)
    assert (row.state, row.type, row.requested_by, row.targets) == (
        "draft",
        "critical-security-patch",
        "security-scan",
        ["app"],
    )
    assert row.title == "update jinja2 3.1.2 -> 3.1.6 in req.txt on app"
    assert row.params == {"package": "jinja2", "from": "3.1.2", "to": "3.1.6", "file": "req.txt"}
    assert "fixes GHSA-1, GHSA-2" in row.description
    evidence = {"staging-validation": passing_run(engine)}
    settings = engine.loaded.plan.changes
    with engine.store.write() as s:
        service.submit(s, change_id=drafted, who=ROB, settings=settings, now=T0, evidence=evidence)
        service.approve(s, change_id=drafted, who=ROB, settings=settings, now=T0)
        assert service.approve(s, change_id=drafted, who=MIA, settings=settings, now=T0).state == "approved"


@pytest.mark.parametrize(
    "model", [ChangeSettings, ChangeType, Approval, Evidence, Watch, Procedure, SecurityUpdates]
)
def test_every_changes_plan_field_is_documented(model: type[BaseModel]) -> None:
    page = Path(__file__).resolve().parent.parent / "docs" / "plan.md"
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", page.read_text(), flags=re.MULTILINE))
    assert not set(model.model_fields) - documented, f"docs/plan.md lacks {model.__name__} fields"
