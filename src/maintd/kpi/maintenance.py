"""Maintenance figures from the runs: preventive share, automation rate, success, backups, drills.

Only finished, real runs count (not dry runs, not interrupted ones), in the period they started in.
One GROUP BY does the counting, so a year of runs costs the database, not Python.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from maintd.kpi.model import Figure, mean, share
from maintd.store.models import IncidentRow, RunRow

MANUAL = "manual"
BACKUP_KINDS = ("backup-files", "backup-postgres")


@dataclass(frozen=True)
class Tally:
    kind: str
    trigger: str
    preventive: bool
    status: str
    runs: int
    duration_ms: float


def _tallies(session: Session, start: datetime, end: datetime) -> list[Tally]:
    rows = session.execute(
        select(
            RunRow.kind,
            RunRow.trigger,
            RunRow.preventive,
            RunRow.status,
            func.count(),
            func.coalesce(func.sum(RunRow.duration_ms), 0.0),
        )
        .where(
            RunRow.started_at >= start,
            RunRow.started_at < end,
            RunRow.state == "finished",
            RunRow.dry_run.is_(False),
        )
        .group_by(RunRow.kind, RunRow.trigger, RunRow.preventive, RunRow.status)
    )
    return [Tally(k, t, bool(p), s or "unknown", int(n), float(d or 0)) for k, t, p, s, n, d in rows]


def _runs(tallies: Iterable[Tally]) -> int:
    return sum(t.runs for t in tallies)


def maintenance_figures(session: Session, start: datetime, end: datetime) -> list[Figure]:
    tallies = _tallies(session, start, end)
    total = _runs(tallies)
    incidents = (
        session.scalar(
            select(func.count())
            .select_from(IncidentRow)
            .where(IncidentRow.opened_at >= start, IncidentRow.opened_at < end)
        )
        or 0
    )
    manual = _runs(t for t in tallies if t.trigger == MANUAL)
    preventive = _runs(t for t in tallies if t.preventive and t.trigger != MANUAL)
    reactive_runs = _runs(t for t in tallies if not t.preventive and t.trigger != MANUAL)
    reactive = reactive_runs + manual + incidents
    ok = _runs(t for t in tallies if t.status == "ok")
    figures = [
        Figure(
            name="seed.preventive_share",
            group="seed",
            title="Preventive vs reactive maintenance",
            value=share(preventive, preventive + reactive),
            unit="%",
            how=(
                f"{preventive} scheduled runs of preventive tasks / ({preventive} + reactive work: "
                f"{reactive_runs} runs of reactive tasks, {manual} runs started by hand, "
                f"{incidents} incidents)"
            ),
            samples=preventive + reactive,
            target=80.0,
            better="higher",
        ),
        Figure(
            name="seed.automation_rate",
            group="seed",
            title="Routine task runs automated",
            value=share(total - manual, total),
            unit="%",
            how=f"{total - manual} of {total} runs started by maintd's schedule, not by hand",
            samples=total,
            target=90.0,
            better="higher",
        ),
        Figure(
            name="maintenance.success_rate",
            group="maintenance",
            title="Runs that ended ok",
            value=share(ok, total),
            unit="%",
            how=f"{ok} of {total} finished runs ok",
            samples=total,
        ),
    ]
    figures += _backup_figures(tallies)
    figures.append(_latest_drill(session, start, end))
    return figures


def _backup_figures(tallies: list[Tally]) -> list[Figure]:
    backups = [t for t in tallies if t.kind in BACKUP_KINDS]
    verified = _runs(t for t in backups if t.status == "ok")
    restores = [t for t in backups if t.kind == "backup-postgres"]
    restore_runs = _runs(restores)
    restore_ms = sum(t.duration_ms for t in restores)
    return [
        Figure(
            name="maintenance.backups_verified",
            group="maintenance",
            title="Backup verifications that passed",
            value=share(verified, _runs(backups)),
            unit="%",
            how=f"{verified} of {_runs(backups)} runs of {', '.join(BACKUP_KINDS)} ok",
            samples=_runs(backups),
            target=100.0,
            better="higher",
        ),
        Figure(
            name="maintenance.restore_seconds",
            group="maintenance",
            title="Mean backup verification time (restore and compare)",
            value=mean([restore_ms / 1000 / restore_runs]) if restore_runs else None,
            unit="s",
            how=f"{restore_ms / 1000:.1f} s over {restore_runs} backup-postgres runs",
            samples=restore_runs,
        ),
    ]


def _latest_drill(session: Session, start: datetime, end: datetime) -> Figure:
    row = session.execute(
        select(RunRow.started_at, RunRow.metrics)
        .where(
            RunRow.kind == "dr-drill",
            RunRow.started_at >= start,
            RunRow.started_at < end,
            RunRow.state == "finished",
            RunRow.dry_run.is_(False),
        )
        .order_by(RunRow.started_at.desc())
        .limit(1)
    ).first()
    rto = (row.metrics or {}).get("rto_seconds") if row is not None else None
    return Figure(
        name="maintenance.dr_rto",
        group="maintenance",
        title="Recovery time of the latest DR drill",
        value=float(rto) if isinstance(rto, int | float) else None,
        unit="s",
        how=(
            f"rto_seconds of the dr-drill run started {row.started_at.isoformat()}"
            if row is not None
            else "no dr-drill run in the period"
        ),
        samples=0 if rto is None else 1,
    )
