"""The seed's knowledge KPIs from the lifecycle's records: documentation currency and training
completion, each judged against the plan that was active at the end of the period."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from maintd.kpi.model import Figure, share
from maintd.lifecycle import documents, training
from maintd.lifecycle.records import Catalog


def lifecycle_figures(session: Session, start: datetime, end: datetime) -> list[Figure]:
    catalog = Catalog.stored(session, until=end)
    on_time, episodes = documents.currency(session, catalog, start, end)
    trained, people = training.completion(session, catalog, at=end)
    return [
        Figure(
            name="seed.documentation_currency",
            group="seed",
            title="Documentation updated within 48 hours",
            value=share(on_time, episodes),
            unit="%",
            how=(
                f"{on_time} of {episodes} stale episodes that began in the period were closed by a review "
                "within 48 hours (a document is stale from when what it covers changes or its review "
                "cadence lapses; an episode still open under 48 hours at the end does not count yet) "
                f"over {len(catalog.documents)} documents"
            ),
            samples=episodes,
            target=100.0,
            better="higher",
        ),
        Figure(
            name="seed.training_completion",
            group="seed",
            title="Team trained: every required training current",
            value=share(trained, people),
            unit="%",
            how=(
                f"{trained} of {people} people the training matrix requires something of had every required "
                f"training current at the end of the period ({len(catalog.people) - people} people with no "
                "required training are not counted)"
            ),
            samples=people,
            target=100.0,
            better="higher",
        ),
    ]
