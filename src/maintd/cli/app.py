from __future__ import annotations

import asyncio
import logging
import os
import sys

import typer

from maintd import __version__
from maintd.cli import (
    admin,
    backup,
    incidents,
    integrations,
    journal,
    kpi,
    mcp,
    notifications,
    oncall,
    plan,
    postmortems,
    query,
    run,
    silences,
    windows,
)
from maintd.cli import capacity as capacity_cli  # capacity (maintd.capacity)
from maintd.cli import changes as changes_cli
from maintd.cli import lifecycle as lifecycle_cli  # lifecycle (maintd.lifecycle)
from maintd.cli import remediation as remediation_cli
from maintd.cli import report as report_cli  # reports written as files: `maintd report capacity`
from maintd.cli import reviews as reviews_cli  # recurring reviews (maintd.reviews)
from maintd.cli import slo as slo_cli  # SLOs (maintd.slo)
from maintd.cli import worker as worker_cli  # [executor] Celery workers (maintd.executor)
from maintd.cli.common import DbOption, error, fail
from maintd.clock import clock_from_spec
from maintd.settings import Settings
from maintd.store.outage import reason, unavailable

app = typer.Typer(
    name="maintd",
    help="The maintenance and incident engine: a YAML maintenance plan that runs itself.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(plan.app, name="plan")
app.add_typer(admin.db_app, name="db")
app.add_typer(admin.token_app, name="token")
app.add_typer(mcp.app, name="mcp")
app.add_typer(integrations.app, name="integration")
app.add_typer(incidents.app, name="incident")
app.add_typer(silences.app, name="silence")
app.add_typer(journal.app, name="journal")  # maintd intake's journal: failed rows
app.add_typer(oncall.app, name="oncall")
app.add_typer(notifications.app, name="notifications")
app.add_typer(backup.app, name="backup")
app.add_typer(postmortems.app, name="postmortem")
app.add_typer(reviews_cli.app, name="review")  # the quarterly architecture review
app.add_typer(remediation_cli.app, name="remediation")
app.add_typer(changes_cli.app, name="change")
app.add_typer(lifecycle_cli.app, name="lifecycle")  # lifecycle: components, docs, training
app.add_typer(lifecycle_cli.docs_app, name="docs")
app.add_typer(lifecycle_cli.training_app, name="training")
app.command("run")(run.run)
app.command("tasks")(query.tasks)
app.command("runs")(query.runs)
app.command("events")(query.events)
app.command("alerts")(incidents.alerts)
app.command("windows")(windows.windows)
app.command("kpi")(kpi.kpi)
app.command("slo")(slo_cli.slo)  # SLO error budgets and burn rates (maintd.slo)
app.command("capacity")(capacity_cli.capacity)  # capacity (maintd.capacity)
app.add_typer(report_cli.app, name="report")  # reports written as files (maintd report NAME)
app.command("worker")(worker_cli.worker)  # [executor]


@app.command()
def serve(
    plan_path: str = typer.Option(None, "--plan", envvar="MAINTD_PLAN", help="Plan file or directory."),
    db: str | None = DbOption,
    host: str = typer.Option("127.0.0.1", envvar="MAINTD_HOST", help="Address to listen on."),
    port: int = typer.Option(8470, min=0, max=65535, envvar="MAINTD_PORT", help="Port to listen on."),
    log_level: str = typer.Option("info", envvar="MAINTD_LOG_LEVEL", help="debug, info, warning, error."),
    # [lease] scale-out roles (docs/deployment.md)
    role: str = typer.Option(
        "all",
        "--role",
        envvar="MAINTD_ROLE",
        help="all: API + scheduler; api: the HTTP API only (several replicas); scheduler: scheduler, "
        "timers, runner and notifications with a health-only port. Roles other than all need PostgreSQL.",
    ),
    lease_ttl: float = typer.Option(
        15.0,
        "--lease-ttl",
        envvar="MAINTD_LEASE_TTL",
        help="Seconds a scheduler that stopped renewing keeps the PostgreSQL lease before a standby "
        "takes over (a dead one is replaced at once).",
    ),
    # [executor] where claimed runs execute (docs/deployment.md)
    executor: str = typer.Option(
        None,
        "--executor",
        envvar="MAINTD_EXECUTOR",
        help="local: this process runs checks and actions; celery: `maintd worker` processes do "
        "(PostgreSQL and --broker-url). Default: the plan's runner.executor.kind, else local.",
    ),
    broker_url: str = typer.Option(
        None, "--broker-url", envvar="MAINTD_BROKER_URL", help="The Celery broker for --executor celery."
    ),
) -> None:
    """Run the scheduler, the runner and the API in one process (or one role of them)."""
    from maintd.server import StartupError
    from maintd.server import serve as serve_

    if not plan_path:
        fail("no plan: pass --plan PATH or set MAINTD_PLAN (try --plan examples/plan)")
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        settings = Settings.from_env(
            database_url=db,
            plan_path=plan_path,
            host=host,
            port=port,
            role=role,
            lease_ttl=lease_ttl,
            executor=executor,  # [executor]
            broker_url=broker_url,
        )
        clock = clock_from_spec(settings.clock)
        asyncio.run(serve_(settings, clock))
    except StartupError as exc:
        fail(str(exc), 2)
    except ValueError as exc:
        fail(str(exc), 2)


@app.command()
def intake(
    db: str | None = DbOption,
    host: str = typer.Option(None, "--host", help="Address to listen on (MAINTD_HOST; default 127.0.0.1)."),
    port: int = typer.Option(
        None, "--port", help="Port to listen on (MAINTD_INTAKE_PORT, else MAINTD_PORT; default 8471)."
    ),
    log_level: str = typer.Option(
        None, "--log-level", help="debug, info, warning, error (MAINTD_LOG_LEVEL)."
    ),
) -> None:
    """Take alerts in a light process: check each request as maintd serve would, journal it, answer
    202 once committed; every maintd serve with the API takes the journal through the pipeline
    (docs/alerts.md, "High volume: maintd intake")."""
    given = {"--db": db, "--host": host, "--port": port, "--log-level": log_level}
    args = [part for flag, value in given.items() if value is not None for part in (flag, str(value))]
    # A process of its own, without what this CLI imported (SQLAlchemy, the engine): ~100 MB less.
    os.execv(sys.executable, [sys.executable, "-m", "maintd.intake", *args])


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _options(
    _: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    pass


def main() -> None:
    try:
        app()
    except Exception as exc:
        # The database failing under a command (full disk, server gone) is not a bug: one line
        # with the driver's words, not a traceback. Anything else still shows its traceback.
        if not unavailable(exc):
            raise
        error(f"the database failed during the command, which did not complete: {reason(exc)}")
        sys.exit(1)
