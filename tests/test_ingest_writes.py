"""The ingest transaction's write path on both stores: the pipeline runs without autoflush and
keeps the active silences between batches, and must still see everything it needs."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from maintd.alerts.model import AlertIn, AlertStatus, Severity
from maintd.alerts.silences import create_silence, expire_silence
from maintd.incidents.pipeline import Delivery, ingest
from maintd.plan.incidents import IncidentSettings, Matcher
from maintd.store.db import Store
from maintd.store.models import AlertRow, EventRow, IncidentRow
from tests.conftest import T0

SETTINGS = IncidentSettings.model_validate({"group_by": ["target"]})


def alert(target: str, status: AlertStatus = AlertStatus.firing, **labels: str) -> AlertIn:
    return AlertIn(
        source="native",
        labels={"alertname": "DiskFull", "target": target, **labels},
        status=status,
        severity=Severity.critical,
    )


def deliver(store: Store, *alerts: AlertIn, minutes: int = 0) -> list[Delivery]:
    with store.write() as s:
        return ingest(s, alerts, now=T0 + timedelta(minutes=minutes), settings=SETTINGS, actor="test")


def test_a_batch_opening_incidents_stores_each_alert_once_with_its_incident(store: Store) -> None:
    done = deliver(store, alert("db1"), alert("db2"), alert("db1", instance="b"), alert("db3"))
    assert [d.outcome for d in done] == ["created"] * 4
    with store.read() as s:
        rows = s.execute(
            select(AlertRow.id, AlertRow.incident_id, AlertRow.priority).order_by(AlertRow.id)
        ).all()
        incidents = s.execute(select(IncidentRow.id, IncidentRow.group_key).order_by(IncidentRow.id)).all()
    assert [(r.id, r.incident_id) for r in rows] == [
        (d.row.id, d.incident.id) for d in done if d.row and d.incident
    ]
    assert [key for _id, key in incidents] == ["target=db1", "target=db2", "target=db3"]
    assert rows[0].incident_id == rows[2].incident_id  # db1's second alert joined the first's incident
    assert {r.priority for r in rows} == {"P1"}
    # A later batch gets new ids after the ones just stored, and joins the open incidents.
    later = deliver(store, alert("db4"), alert("db2", instance="c"), minutes=1)
    assert later[0].incident is not None and later[0].incident.id > incidents[-1].id
    assert later[1].incident is not None and later[1].incident.id == incidents[1].id


def test_a_resolution_then_a_new_alert_in_one_batch_reopen_nothing_old(store: Store) -> None:
    (first,) = deliver(store, alert("db1"))
    assert first.incident is not None
    # The resolution closes the incident (follow_up reads the alerts still firing); the next
    # delivery of the same group in the same batch must open a new incident, not join the old one.
    done = deliver(store, alert("db1", AlertStatus.resolved), alert("db1"), alert("db1"), minutes=1)
    assert [d.outcome for d in done] == ["resolved", "created", "updated"]
    assert done[1].incident is not None and done[1].incident.id != first.incident.id
    assert done[2].row is done[1].row
    with store.read() as s:
        states = {i: state for i, state in s.execute(select(IncidentRow.id, IncidentRow.state))}
        firing = s.scalar(select(func.count()).select_from(AlertRow).where(AlertRow.status == "firing"))
    assert states == {first.incident.id: "resolved", done[1].incident.id: "triggered"}
    assert firing == 1


def test_a_silence_made_by_another_process_mutes_the_next_batch(store: Store) -> None:
    other = Store(store.url)  # another process's connection pool on the same database
    try:
        assert deliver(store, alert("db1"))[0].outcome == "created"  # the silences are now known
        with other.write() as s:
            silence = create_silence(
                s,
                matchers=[Matcher.parse("target=db2")],
                starts_at=T0,
                ends_at=T0 + timedelta(hours=1),
                created_by="alice",
                comment="disk swap",
                now=T0,
            )
        (muted,) = deliver(store, alert("db2"), minutes=1)
        assert muted.outcome == "muted" and muted.row is not None
        assert muted.row.muted_by == f"silence:{silence.id}"
        with other.write() as s:
            expire_silence(s, silence.id, now=T0 + timedelta(minutes=2), actor="alice")
        (loud,) = deliver(store, alert("db2", instance="x"), minutes=3)
        assert loud.outcome == "created"
    finally:
        other.dispose()


def test_a_silence_mutes_only_while_it_is_active_without_any_change(store: Store) -> None:
    with store.write() as s:
        silence = create_silence(
            s,
            matchers=[Matcher.parse("target=db9")],
            starts_at=T0 + timedelta(minutes=10),
            ends_at=T0 + timedelta(minutes=20),
            created_by="alice",
            comment="later",
            now=T0,
        )
    assert deliver(store, alert("db9", instance="1"))[0].outcome == "created"  # not begun yet
    assert deliver(store, alert("db9", instance="2"), minutes=15)[0].outcome == "muted"
    assert deliver(store, alert("db9", instance="3"), minutes=25)[0].outcome == "created"  # ended
    # The clock going back (a test's, or a corrected one) still sees the silence.
    assert deliver(store, alert("db9", instance="4"), minutes=12)[0].outcome == "muted"
    with store.read() as s:
        muted = s.scalars(select(AlertRow.muted_by).where(AlertRow.muted_by.is_not(None))).all()
    assert muted == [f"silence:{silence.id}"] * 2


def test_a_silence_made_in_the_ingesting_transaction_mutes_and_a_rollback_forgets_it(store: Store) -> None:
    deliver(store, alert("db1"))
    try:
        with store.write() as s:
            create_silence(
                s,
                matchers=[Matcher.parse("target=db5")],
                starts_at=T0,
                ends_at=T0 + timedelta(hours=1),
                created_by="alice",
                comment="rolled back",
                now=T0,
            )
            (done,) = ingest(s, [alert("db5")], now=T0, settings=SETTINGS, actor="test")
            assert done.outcome == "muted"
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    assert deliver(store, alert("db5"), minutes=1)[0].outcome == "created"


def test_every_delivery_writes_its_events_in_order(store: Store) -> None:
    deliver(store, alert("db1"), alert("db1", AlertStatus.resolved), alert("db2"))
    with store.read() as s:
        kinds = s.scalars(
            select(EventRow.kind).where(EventRow.kind.startswith("alert.")).order_by(EventRow.id)
        )
        assert list(kinds) == ["alert.firing", "alert.resolved", "alert.firing"]
