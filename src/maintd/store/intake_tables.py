"""The alert intake's journal (maintd.intake): requests accepted by ``maintd intake``, waiting for
the drain in ``maintd serve``. The intake writes it with raw SQL (it imports no SQLAlchemy), so
the columns here are its contract: change them only together with maintd.intake."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from maintd.store.base import Base, UTCDateTime

# Ids are used once and deleted: BIGSERIAL on PostgreSQL so a busy journal never runs out;
# SQLite's INTEGER PRIMARY KEY is already 64-bit (and must be spelled INTEGER to be the rowid).
JournalId = BigInteger().with_variant(Integer(), "sqlite")


class AlertIntakeRow(Base):
    """One alert request accepted by ``maintd intake``: its body as received (already validated),
    who sent it, and how the drain fared with it. Deleted by the drain in the transaction that
    stores its alerts; a row the drain cannot process alone keeps its ``error`` and is skipped."""

    __tablename__ = "alert_intake"

    id: Mapped[int] = mapped_column(JournalId, primary_key=True, doc="order of arrival; never reused")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, doc="when the intake accepted it")
    source: Mapped[str] = mapped_column(String(20), doc="native, alertmanager or pagerduty")
    actor: Mapped[str] = mapped_column(String(200), doc="token:NAME or integration:NAME")
    integration: Mapped[str | None] = mapped_column(
        String(200), nullable=True, doc="the integration's name (native via an API token: none)"
    )
    dedup_key: Mapped[str | None] = mapped_column(
        String(255), nullable=True, doc="PagerDuty: the dedup_key answered to the sender"
    )
    body: Mapped[bytes] = mapped_column(LargeBinary, doc="the request body exactly as received")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0", doc="failed drains")
    error: Mapped[str | None] = mapped_column(
        Text, nullable=True, doc="why the drain could not process it alone; it is then skipped"
    )

    __table_args__ = (
        # The drain's every poll asks for the oldest waiting rows: the index holds only those,
        # so an empty poll is one look into an empty index, failed rows never slow it down.
        # (SQLite uses a partial index only when the query repeats its condition as written.)
        Index(
            "ix_alert_intake_waiting",
            "id",
            sqlite_where=text("error IS NULL"),
            postgresql_where=text("error IS NULL"),
        ),
        # Ids never reused (SQLite AUTOINCREMENT): the intake answers with the id, the logs name it.
        {"sqlite_autoincrement": True},
    )
