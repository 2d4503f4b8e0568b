"""The dashboard's other pages: tasks, runs, changes and approvals (approve or reject: the change
type's matrix decides who may), post-mortems and their action items, KPIs with charts. Each page
renders from one read session through the rooms' own services."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd import views
from maintd.api.deps import AppContext
from maintd.auth import Role
from maintd.changes import service as changes
from maintd.changes.model import ChangeError, ChangeForbidden, ChangeNotFound, ChangeState
from maintd.kpi.report import compute
from maintd.plan.models import Plan
from maintd.postmortems import actions
from maintd.postmortems import service as postmortems
from maintd.postmortems.model import ActionStatus
from maintd.store.models import IncidentRow, RunRow
from maintd.web import charts
from maintd.web.auth import WebSession
from maintd.web.common import Ctx, Form, NotFound, act, show

RUN_STATUSES = ("ok", "warning", "critical", "unknown", "running")
KPI_PERIOD = timedelta(days=30)
LIMIT = 100
# The most specific first: each is a ChangeError too.
CHANGE_REFUSALS = ((ChangeNotFound, 404), (ChangeForbidden, 403), (ChangeError, 409))


def router() -> APIRouter:
    r = APIRouter(include_in_schema=False)

    @r.get("/tasks")
    def tasks(request: Request, ctx: Ctx) -> Response:
        return show(request, ctx, "tasks.html", "/tasks", lambda s, now, _: {"tasks": views.tasks(s)})

    @r.get("/runs")
    def runs(
        request: Request,
        ctx: Ctx,
        task: Annotated[str, Query(max_length=200)] = "",
        status: Annotated[str, Query(pattern="^(|" + "|".join(RUN_STATUSES) + ")$")] = "",
    ) -> Response:
        def values(session: Session, now: datetime, _: WebSession) -> dict[str, Any]:
            found = views.runs(session, task=task or None, status=status or None, limit=LIMIT)
            return {"runs": found, "task": task, "chosen": status, "statuses": RUN_STATUSES, "limit": LIMIT}

        return show(request, ctx, "runs.html", "/runs", values)

    @r.get("/runs/{run_id}")
    def run(run_id: str, request: Request, ctx: Ctx) -> Response:
        def values(session: Session, now: datetime, _: WebSession) -> dict[str, Any]:
            row = session.scalar(select(RunRow).where(RunRow.id == run_id))
            if row is None:
                raise NotFound(f"no run {run_id!r}")
            return {"run": views.run_view(row)}

        return show(request, ctx, "run.html", "/runs", values)

    @r.get("/changes")
    def change_list(request: Request, ctx: Ctx) -> Response:
        def values(session: Session, now: datetime, _: WebSession) -> dict[str, Any]:
            rows = changes.list_changes(session, limit=LIMIT)
            waiting = [row for row in rows if row.state == ChangeState.pending_approval.value]
            return {"changes": rows, "waiting": waiting, "limit": LIMIT}

        return show(request, ctx, "changes.html", "/changes", values)

    @r.get("/changes/{change_id}")
    def change(change_id: int, request: Request, ctx: Ctx) -> Response:
        def values(session: Session, now: datetime, web: WebSession) -> dict[str, Any]:
            plan = _plan(ctx, session)
            try:
                found = changes.get(
                    session, change_id=change_id, settings=plan.changes if plan is not None else None
                )
            except ChangeNotFound as exc:
                raise NotFound(str(exc)) from None
            pending = found.state == ChangeState.pending_approval.value
            return {"change": found, "may_decide": pending and web.may(Role.responder)}

        return show(request, ctx, "change.html", "/changes", values)

    for verb, decide in (("approve", changes.approve), ("reject", changes.reject)):
        _decision_route(r, verb, decide)

    @r.get("/postmortems")
    def postmortem_list(request: Request, ctx: Ctx) -> Response:
        def values(session: Session, now: datetime, _: WebSession) -> dict[str, Any]:
            return {
                "postmortems": postmortems.list_postmortems(session, limit=LIMIT),
                "actions": actions.list_actions(session, status=ActionStatus.open, limit=LIMIT),
                "today": now.date(),
            }

        return show(request, ctx, "postmortems.html", "/postmortems", values)

    @r.get("/kpis")
    def kpis(request: Request, ctx: Ctx) -> Response:
        def values(session: Session, now: datetime, _: WebSession) -> dict[str, Any]:
            report = compute(session, end=now, period=KPI_PERIOD, now=now)
            opened = session.scalars(
                select(IncidentRow.opened_at).where(IncidentRow.opened_at >= now - KPI_PERIOD)
            ).all()
            return {
                "report": report,
                "day_columns": charts.per_day(opened, now, KPI_PERIOD.days),
                "share_bars": charts.percentages(report.figures),
            }

        return show(request, ctx, "kpis.html", "/kpis", values)

    return r


def _decision_route(r: APIRouter, verb: str, decide: Callable[..., Any]) -> None:
    """Approve or reject from the change's page; who may is the change type's matrix (the service's)."""

    @r.post(f"/changes/{{change_id}}/{verb}", name=f"web_{verb}_change")
    def decision(change_id: int, request: Request, ctx: Ctx, fields: Form) -> Response:
        def do(session: Session, web: WebSession, now: datetime) -> None:
            plan = _plan(ctx, session)
            if plan is None:
                raise ChangeError("no plan is loaded: start maintd serve with a plan")
            decide(
                session,
                change_id=change_id,
                who=web.principal,
                settings=plan.changes,
                now=now,
                note=fields.get("note", ""),
            )

        return act(request, ctx, fields, Role.responder, do, f"/changes/{change_id}", CHANGE_REFUSALS)


def _plan(ctx: AppContext, session: Session) -> Plan | None:
    """The running plan, else the stored one (for the change types' approval rules)."""
    loaded = ctx.engine.loaded if ctx.engine is not None else None
    if loaded is not None:
        return loaded.plan
    row = views.active_plan(session)
    if row is None:
        return None
    return Plan.model_validate(row.document)
