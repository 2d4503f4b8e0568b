"""The documentation registry: each document's reviews, when it is due, and its stale episodes.

A document becomes stale when something it covers changes (a covered component's recorded
transition, a covered target, task or component defined differently by a newer plan version)
or when its review cadence lapses (the cadence counts from the last review; before any, from
the plan's ``last_reviewed``, else from when the document first appeared in a loaded plan).
A stale episode lasts until the next review; one episode at a time (a second change while
stale does not start another). Documentation currency judges episodes: reviewed within
48 hours of becoming stale, or not.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy.orm import Session

from maintd.lifecycle.coverage import Change, History, history
from maintd.lifecycle.dates import after, midnight
from maintd.lifecycle.records import REVIEWED, Catalog, events
from maintd.plan.lifecycle import Document

CURRENCY_WINDOW = timedelta(hours=48)  # the seed: "100% updated within 48 hours"


class Episode(BaseModel):
    start: datetime
    cause: str
    reviewed_at: datetime | None = None

    @property
    def on_time(self) -> bool:
        return self.reviewed_at is not None and self.reviewed_at - self.start <= CURRENCY_WINDOW

    def decided(self, at: datetime) -> bool:
        """Whether, at ``at``, the episode counts for currency: reviewed, or its 48 hours are over."""
        return self.reviewed_at is not None or self.start + CURRENCY_WINDOW <= at


class DocStatus(BaseModel):
    name: str
    title: str
    kind: str
    owner: str
    cadence: str
    location: str
    last_reviewed: datetime | None  # the last review recorded, else the plan's last_reviewed
    next_due: datetime  # when the cadence lapses next, counted from the last review
    stale_since: datetime | None
    stale_cause: str | None
    episodes: list[Episode]

    @property
    def stale(self) -> bool:
        return self.stale_since is not None


def statuses(session: Session, catalog: Catalog, *, until: datetime) -> list[DocStatus]:
    """Every document of the catalog as of ``until``, in plan order."""
    if not catalog.documents:
        return []
    found = history(session, catalog.documents, until=until)
    reviews: dict[str, list[datetime]] = {}
    for event in events(session, [REVIEWED], until=until):
        reviews.setdefault(event.subject.removeprefix("doc:"), []).append(event.at)
    return [status(d, found, reviews.get(d.name, []), until) for d in catalog.documents]


def status(doc: Document, found: History, reviews: list[datetime], until: datetime) -> DocStatus:
    anchor = midnight(doc.last_reviewed) if doc.last_reviewed is not None else found.registered(doc, until)
    last = midnight(doc.last_reviewed) if doc.last_reviewed is not None else None
    episodes, last_review = walk(doc, anchor, found.under(doc), reviews, until)
    open_ = episodes[-1] if episodes and episodes[-1].reviewed_at is None else None
    return DocStatus(
        name=doc.name,
        title=doc.title,
        kind=doc.kind,
        owner=doc.owner,
        cadence=doc.review_every,
        location=doc.location,
        last_reviewed=last_review or last,
        next_due=after(last_review or anchor, doc.review_every),
        stale_since=open_.start if open_ else None,
        stale_cause=open_.cause if open_ else None,
        episodes=episodes,
    )


def walk(
    doc: Document, anchor: datetime, changes: list[Change], reviews: list[datetime], until: datetime
) -> tuple[list[Episode], datetime | None]:
    """The document's stale episodes from ``anchor`` to ``until``, and its last review."""
    items = sorted(
        [(c.at, 0, c.cause) for c in changes if c.at > anchor] + [(r, 1, "") for r in reviews if r >= anchor],
        key=lambda i: (i[0], i[1]),
    )
    cadence = f"{doc.review_every} review due"
    episodes: list[Episode] = []
    current: Episode | None = None
    last_review: datetime | None = None
    for at, is_review, cause in items:
        if current is None and (due := after(last_review or anchor, doc.review_every)) <= at:
            current = Episode(start=due, cause=cadence)
        if not is_review:
            current = current or Episode(start=at, cause=cause)
            continue
        if current is not None:
            episodes.append(current.model_copy(update={"reviewed_at": at}))
            current = None
        last_review = at
    if current is None and (due := after(last_review or anchor, doc.review_every)) <= until:
        current = Episode(start=due, cause=cadence)
    if current is not None:
        episodes.append(current)
    return episodes, last_review


def currency(session: Session, catalog: Catalog, start: datetime, end: datetime) -> tuple[int, int]:
    """Stale episodes that began in ``[start, end)`` and are decided by ``end``: (reviewed within
    48 hours, all of them). Still stale at ``end`` but under 48 hours: not counted yet."""
    on_time = decided = 0
    for doc in statuses(session, catalog, until=end):
        for episode in doc.episodes:
            if start <= episode.start < end and episode.decided(end):
                decided += 1
                on_time += episode.on_time
    return on_time, decided
