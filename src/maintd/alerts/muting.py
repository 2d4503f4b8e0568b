"""Is this alert muted? Silences, maintenance windows, maintenance runs and inhibition answer alike.

Each muter answers ``muted_by(labels)`` with its reason (``silence:ID``, ``window:NAME``,
``maintenance:TASK``, ``inhibited:ALERT_ID``) or None, as Alertmanager's ``notify/mute.go``
does for silences and inhibitions. They are built once per ingest batch from one read of the
store, so checking an alert costs no query; the first muter that answers wins, in the order
``build_muters`` returns them: silence, window, maintenance, inhibition.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Protocol

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from maintd.alerts.fingerprint import fingerprint
from maintd.alerts.model import AlertStatus
from maintd.alerts.silences import active_matchers
from maintd.incidents.lookups import flush
from maintd.plan.incidents import IncidentSettings, InhibitRule, MaintenanceWindow, Matcher
from maintd.plan.windows import Span, Window, parse_window
from maintd.store.models import AlertRow, RunRow


class Muter(Protocol):
    def muted_by(self, labels: dict[str, str]) -> str | None:
        """Why an alert with these labels is muted, or None when this muter lets it through."""
        ...


def _all_match(matchers: Sequence[Matcher], labels: dict[str, str]) -> bool:
    return bool(matchers) and all(m.matches(labels) for m in matchers)


class SilenceMuter:
    """Active silences: every matcher of one of them matches."""

    def __init__(self, silences: Iterable[tuple[int, list[Matcher]]]) -> None:
        self.silences = list(silences)

    @classmethod
    def load(cls, session: Session, now: datetime) -> SilenceMuter:
        return cls(active_matchers(session, now))

    def muted_by(self, labels: dict[str, str]) -> str | None:
        for silence_id, matchers in self.silences:
            if _all_match(matchers, labels):
                return f"silence:{silence_id}"
        return None


@lru_cache(maxsize=1024)
def _window(text: str) -> Window:
    return parse_window(text)  # the plan validated it; parsed once per process, not per batch


def occurrence(window: MaintenanceWindow, at: datetime) -> Span | None:
    """The span of ``window`` open at ``at``, if it is open."""
    if window.window is not None:
        return _window(window.window).occurrence_at(at)
    if window.start is not None and window.end is not None and window.start <= at < window.end:
        return Span(window.start, window.end)
    return None


def next_opening(window: MaintenanceWindow, after: datetime) -> Span | None:
    """The first span of ``window`` starting after ``after``; None once a one-off one has begun."""
    if window.window is not None:
        return _window(window.window).next_start(after)
    if window.start is not None and window.end is not None and window.start > after:
        return Span(window.start, window.end)
    return None


class WindowStatus(BaseModel):
    """A declared maintenance window as ``maintd windows`` and the API show it."""

    name: str
    match: list[str]
    window: str | None  # recurring, in the task window grammar; None for a one-off window
    start: datetime | None  # a one-off window's
    end: datetime | None
    open: bool
    open_until: datetime | None  # the end of the occurrence open now
    next_start: datetime | None  # the next occurrence after now; None once a one-off one has begun
    next_end: datetime | None
    comment: str


def window_status(window: MaintenanceWindow, now: datetime) -> WindowStatus:
    current = occurrence(window, now)
    upcoming = next_opening(window, now)
    return WindowStatus(
        name=window.name,
        match=[str(m) for m in window.match],
        window=window.window,
        start=window.start,
        end=window.end,
        open=current is not None,
        open_until=current.end if current else None,
        next_start=upcoming.start if upcoming else None,
        next_end=upcoming.end if upcoming else None,
        comment=window.comment,
    )


class WindowMuter:
    """The plan's maintenance windows that are open at ``now``."""

    def __init__(self, windows: Iterable[MaintenanceWindow], now: datetime) -> None:
        self.open = [w for w in windows if occurrence(w, now) is not None]

    def muted_by(self, labels: dict[str, str]) -> str | None:
        for window in self.open:
            if _all_match(window.match, labels):
                return f"window:{window.name}"
        return None


class MaintenanceMuter:
    """Targets a task with ``mute_alerts`` is running on: alerts whose ``target`` label names one."""

    def __init__(self, running: dict[str, str]) -> None:
        self.running = running  # target → task

    @classmethod
    def load(cls, session: Session, tasks: Collection[str]) -> MaintenanceMuter:
        if not tasks:
            return cls({})
        rows = session.execute(
            select(RunRow.target, RunRow.task)
            .where(RunRow.state == "running", RunRow.task.in_(sorted(tasks)))
            .order_by(RunRow.started_at, RunRow.id)
        )
        running: dict[str, str] = {}
        for target, task in rows:
            running.setdefault(target, task)  # the run that started first names the reason
        return cls(running)

    def muted_by(self, labels: dict[str, str]) -> str | None:
        task = self.running.get(labels.get("target", ""))
        return f"maintenance:{task}" if task is not None else None


class InhibitMuter:
    """Firing, unmuted alerts matching a rule's ``source`` mute alerts matching its ``target``
    that carry the same values of its ``equal`` labels (Alertmanager's inhibit_rules).

    The sources are read on the first alert that matches some rule's target, and kept per rule
    in a dict keyed by the ``equal`` values: a check is one look-up, however many alerts fire.
    """

    def __init__(self, rules: Sequence[InhibitRule], session: Session) -> None:
        self.rules = list(rules)
        self._session = session
        self._sources: list[dict[tuple[str, ...], dict[int, str]]] | None = None  # key → {id: fp}
        self._held: dict[int, list[dict[int, str]]] = {}  # alert id → the entries that hold it

    def muted_by(self, labels: dict[str, str]) -> str | None:
        own: str | None = None
        for rule, sources in zip(self.rules, self._index(labels), strict=True):
            if not _all_match(rule.target, labels):
                continue
            found = sources.get(_key(rule, labels))
            if not found:
                continue
            own = own or fingerprint(labels)
            # An alert matching both sides never inhibits itself (Alertmanager does the same).
            source = next((i for i, fp in found.items() if fp != own), None)
            if source is not None:
                return f"inhibited:{source}"
        return None

    def firing(self, row: AlertRow) -> None:
        """``row`` fires unmuted now (new, or no longer muted): it may inhibit what comes next."""
        if self._sources is not None:
            self._add(row.id, row.fingerprint, row.labels)

    def stopped(self, row: AlertRow) -> None:
        """``row`` resolved or was muted: it inhibits nothing any more."""
        for found in self._held.pop(row.id, ()):
            found.pop(row.id, None)

    def _index(self, labels: dict[str, str]) -> list[dict[tuple[str, ...], dict[int, str]]]:
        if self._sources is None:
            if not any(_all_match(r.target, labels) for r in self.rules):
                return [{} for _ in self.rules]  # not a target of any rule: no need to read sources
            self._sources = [{} for _ in self.rules]
            # The alerts this batch opened before are sources too; the pipeline runs without autoflush.
            flush(self._session)
            rows = self._session.execute(
                select(AlertRow.id, AlertRow.fingerprint, AlertRow.labels)
                .where(AlertRow.status == AlertStatus.firing.value, AlertRow.muted_by.is_(None))
                .order_by(AlertRow.id)
            )
            for alert_id, fp, source_labels in rows:
                self._add(alert_id, fp, source_labels)
        return self._sources

    def _add(self, alert_id: int, fp: str, labels: dict[str, str]) -> None:
        assert self._sources is not None
        for rule, sources in zip(self.rules, self._sources, strict=True):
            if _all_match(rule.source, labels):
                found = sources.setdefault(_key(rule, labels), {})
                found[alert_id] = fp
                self._held.setdefault(alert_id, []).append(found)


def _key(rule: InhibitRule, labels: dict[str, str]) -> tuple[str, ...]:
    return tuple(labels.get(name, "") for name in rule.equal)  # missing equals empty, as in Alertmanager


def build_muters(
    session: Session, now: datetime, settings: IncidentSettings, maintenance_tasks: Collection[str] = ()
) -> list[Muter]:
    """The muters in precedence order, leaving out those that can mute nothing now."""
    muters: list[Muter] = []
    silences = SilenceMuter.load(session, now)
    if silences.silences:
        muters.append(silences)
    windows = WindowMuter(settings.maintenance_windows, now)
    if windows.open:
        muters.append(windows)
    maintenance = MaintenanceMuter.load(session, maintenance_tasks)
    if maintenance.running:
        muters.append(maintenance)
    if settings.inhibit:
        muters.append(InhibitMuter(settings.inhibit, session))
    return muters


def first_muter(muters: Iterable[Muter], labels: dict[str, str]) -> str | None:
    """The reason of the first muter that mutes ``labels``, or None."""
    for muter in muters:
        reason = muter.muted_by(labels)
        if reason is not None:
            return reason
    return None


class Muters:
    """The muters of one ingest batch: built on the first alert that needs them, then kept."""

    def __init__(
        self,
        session: Session,
        *,
        now: datetime,
        settings: IncidentSettings,
        maintenance_tasks: Collection[str],
    ) -> None:
        self._args = (session, now, settings, maintenance_tasks)
        self._muters: list[Muter] | None = None

    @property
    def muters(self) -> list[Muter]:
        if self._muters is None:
            self._muters = build_muters(*self._args)
        return self._muters

    def muted_by(self, labels: dict[str, str]) -> str | None:
        return first_muter(self.muters, labels)

    def firing(self, row: AlertRow) -> None:
        for muter in self._muters or ():
            if isinstance(muter, InhibitMuter):
                muter.firing(row)

    def stopped(self, row: AlertRow) -> None:
        for muter in self._muters or ():
            if isinstance(muter, InhibitMuter):
                muter.stopped(row)
