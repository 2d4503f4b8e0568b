"""The FastAPI app factory: everything it needs is handed in, nothing is global."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import select

from maintd import __version__, views
from maintd.api import capacity as capacity_api  # capacity (maintd.capacity)
from maintd.api import changes as changes_api
from maintd.api import incidents, ingest, kpis, links, notifications, oncall, postmortems, problems, windows
from maintd.api import lifecycle as lifecycle_api  # lifecycle (maintd.lifecycle)
from maintd.api import remediation as remediation_api
from maintd.api import reviews as reviews_api  # recurring reviews (maintd.reviews)
from maintd.api import slos as slos_api  # SLO error budgets and burn rates (maintd.slo)
from maintd.api.bodylimit import BodyLimit
from maintd.api.deps import MAX_ID, AllLimit, AppContext, Offset, context, page, require
from maintd.auth import Principal, Role
from maintd.store import events as event_log
from maintd.store.db import StoreError
from maintd.store.models import HeartbeatRow, RunRow
from maintd.web import install as install_dashboard

SCHEDULER_STALE = timedelta(seconds=30)  # a heartbeat older than this means the scheduler is not alive

Ctx = Annotated[AppContext, Depends(context)]
Viewer = Annotated[Principal, Depends(require(Role.viewer))]
TeamLead = Annotated[Principal, Depends(require(Role.team_lead))]


def create_app(ctx: AppContext) -> FastAPI:
    app = FastAPI(
        title="maintd",
        version=__version__,
        description="The maintenance and incident engine. Every /api/v1 route needs a bearer token.",
    )
    app.state.ctx = ctx
    problems.install(app)
    app.add_middleware(BodyLimit, own_limits=ingest.OWN_LIMITS)
    app.include_router(_health_routes())
    app.include_router(_api_routes(), prefix="/api/v1")
    app.include_router(incidents.router(), prefix="/api/v1")
    app.include_router(oncall.router(), prefix="/api/v1")
    app.include_router(notifications.router(), prefix="/api/v1")
    app.include_router(windows.router(), prefix="/api/v1")
    app.include_router(postmortems.router(), prefix="/api/v1")
    app.include_router(reviews_api.router(), prefix="/api/v1")
    app.include_router(kpis.router(), prefix="/api/v1")
    app.include_router(capacity_api.router(), prefix="/api/v1")  # capacity (maintd.capacity)
    app.include_router(changes_api.router(), prefix="/api/v1")  # change requests (maintd.changes)
    app.include_router(remediation_api.router(), prefix="/api/v1")  # remediation: playbooks' decisions
    app.include_router(lifecycle_api.router(), prefix="/api/v1")  # lifecycle, docs, training
    app.include_router(slos_api.router(), prefix="/api/v1")  # SLOs (maintd.slo)
    ingest.install(app, ctx)  # first: the alert routes are matched before any other
    app.include_router(links.router())
    install_dashboard(app)  # the web dashboard at / (maintd.web): HTML pages, not in the OpenAPI document
    return app


def _health_routes() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="The process is up")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Database reachable, plan loaded, scheduler alive")
    def readyz(ctx: Ctx) -> JSONResponse:
        checks: dict[str, str] = {}
        try:
            ctx.store.ping()
            checks["database"] = "ok"
        except StoreError as exc:
            checks["database"] = str(exc)
        engine = ctx.engine
        checks["plan"] = "ok" if engine is not None and engine.loaded is not None else "no plan loaded"
        checks["scheduler"] = _scheduler_state(ctx) if checks["database"] == "ok" else "unknown"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    def metrics(ctx: Ctx) -> Response:
        return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router


def _scheduler_state(ctx: AppContext) -> str:
    with ctx.store.read() as session:
        beat = session.get(HeartbeatRow, "scheduler")
    if beat is None:
        return "no scheduler heartbeat yet"
    age = ctx.clock.now() - beat.beat_at
    if age > SCHEDULER_STALE:
        return f"last heartbeat {int(age.total_seconds())}s ago"
    return "ok"


def _api_routes() -> APIRouter:
    router = APIRouter()

    @router.get("/tasks", tags=["tasks"], summary="Tasks with next due time and last status per target")
    def list_tasks(
        ctx: Ctx,
        _: Viewer,
        kind: Annotated[
            str | None,
            Query(max_length=128, description="only the tasks of this kind (http, backup-postgres, ...)"),
        ] = None,
        limit: AllLimit = None,
        offset: Offset = 0,
    ) -> list[views.TaskView]:
        with ctx.store.read() as session:
            found = views.tasks(session)
        return page([t for t in found if kind in (None, t.kind)], limit, offset)

    @router.get("/tasks/{name}", tags=["tasks"], summary="One task")
    def get_task(name: str, ctx: Ctx, _: Viewer) -> views.TaskView:
        with ctx.store.read() as session:
            found = views.tasks(session, name)
        if not found:
            raise HTTPException(404, f"no task named {name!r} in the active plan")
        return found[0]

    @router.get("/runs", tags=["runs"], summary="Runs, newest first")
    def list_runs(
        ctx: Ctx,
        _: Viewer,
        task: str | None = None,
        target: str | None = None,
        status: Annotated[str | None, Query(pattern=f"^({'|'.join(views.RUN_STATUSES)})$")] = None,
        since: datetime | None = None,
        before: Annotated[datetime | None, Query(description="page: started before this")] = None,
        limit: Annotated[int, Query(ge=1, le=views.MAX_LIMIT)] = 50,
    ) -> list[views.RunView]:
        with ctx.store.read() as session:
            return views.runs(
                session, task=task, target=target, status=status, since=since, before=before, limit=limit
            )

    @router.get("/runs/{run_id}", tags=["runs"], summary="One run with its full output")
    def get_run(run_id: str, ctx: Ctx, _: Viewer) -> views.RunView:
        with ctx.store.read() as session:
            row = session.scalar(select(RunRow).where(RunRow.id == run_id))
            if row is None:
                raise HTTPException(404, f"no run {run_id!r}")
            return views.run_view(row)

    @router.get("/events", tags=["events"], summary="The event log, oldest first after an id")
    def list_events(
        ctx: Ctx,
        _: Viewer,
        after: Annotated[int, Query(ge=0, le=MAX_ID, description="only events with a larger id")] = 0,
        kind: Annotated[str | None, Query(description="exact kind, or a prefix ending in '.' or '*'")] = None,
        subject: str | None = None,
        since: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=views.MAX_LIMIT)] = 100,
    ) -> list[views.EventView]:
        with ctx.store.read() as session:
            rows = event_log.query(
                session, after_id=after, kind=kind, subject=subject, since=since, limit=limit
            )
            return [views.event_view(r) for r in rows]

    @router.get("/plan", tags=["plan"], summary="The active plan")
    def get_plan(ctx: Ctx, _: Viewer) -> views.PlanView:
        with ctx.store.read() as session:
            row = views.active_plan(session)
            if row is None:
                raise HTTPException(404, "no plan has been loaded yet")
            return views.PlanView.model_validate(row, from_attributes=True)

    @router.post(
        "/plan/reload",
        tags=["plan"],
        summary="Re-read the plan from disk; an invalid plan is rejected and the running one kept",
        responses={422: {"description": "the plan on disk is invalid; the running plan was kept"}},
    )
    def reload_plan(ctx: Ctx, who: TeamLead) -> Any:
        if ctx.engine is None:
            raise HTTPException(409, "this process runs no scheduler; reload the process that does")
        result = ctx.engine.reload(actor=who.actor)
        body = {
            "ok": result.ok,
            "digest": result.digest,
            "changed": result.changed,
            "problems": result.problems,
            "warnings": result.warnings,
        }
        if not result.ok:
            return problems.problem(422, "Plan rejected", "the running plan was kept", **body)
        return body

    return router
