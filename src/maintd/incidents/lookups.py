"""The open alerts and incidents an ingest transaction matches against, read once per batch.

``dedup`` needs the open alert of each delivery's identity and ``group`` the open incident
of each group key. Asked one by one that is two queries per alert; here the open alerts and
incidents of a whole batch are read in one query each, then kept for the transaction (the
group committer runs several batches in one), and kept current as the pipeline opens and
closes alerts and incidents. The transaction holds the ingest lock, so no other ingest
changes them meanwhile; a hit is still checked to be open, and a miss is read again.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar, cast

from sqlalchemy import String, Table, any_, bindparam, func, inspect, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase, Session, configure_mappers, make_transient_to_detached
from sqlalchemy.sql.elements import BindParameter

from maintd.alerts.model import AlertStatus
from maintd.incidents.states import OPEN, State
from maintd.store.bulk import insert_rows
from maintd.store.models import AlertRow, IncidentRow

R = TypeVar("R", bound=DeclarativeBase)
_CHUNK = 500  # identities per IN list: far below every database's limit on bound parameters
_OPEN_STATES = [s.value for s in OPEN]


class OpenRows:
    @classmethod
    def of(cls, session: Session) -> OpenRows:
        """The one of the session's current transaction (a new transaction starts afresh)."""
        transaction = session.get_transaction()
        found = session.info.get(_KEY)
        if not isinstance(found, OpenRows) or found._transaction is not transaction:
            found = session.info[_KEY] = cls(session)
            found._transaction = transaction
        return found

    def __init__(self, session: Session) -> None:
        self._session = session
        self._dialect = session.get_bind().dialect.name
        self._alerts: dict[str, AlertRow | None] = {}  # identity → its open alert; None: none open
        self._incidents: dict[str, IncidentRow] = {}  # group key → its newest open incident
        self._no_incident: set[str] = set()  # group keys known to have none open
        self._ids: list[int] = []  # alert ids reserved for rows not yet created, in ascending order
        self._last_id: int | None = None  # the last one handed out
        self._last_incident_id: int | None = None  # SQLite: the last incident id handed out
        self._unsaved: list[AlertRow] = []  # new alerts not yet in the session (see ``add_new``)
        self._transaction: object = None

    def prefetch(self, identities: Iterable[str]) -> None:
        """Read the open alerts of all these identities at once (the newest, if several are open)."""
        wanted = sorted({i for i in identities if i not in self._alerts})
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            self._alerts.update(dict.fromkeys(chunk))
            for row in self._session.scalars(_OPEN_ALERTS[self._dialect], {"keys": chunk}):
                self._alerts[row.dedup_key] = row  # ascending ids: the newest wins

    def alert(self, identity: str) -> AlertRow | None:
        """The open alert with this identity, or None."""
        if identity in self._alerts:
            row = self._alerts[identity]
            if row is None or row.status == AlertStatus.firing.value:
                return row
        flush(self._session)  # the pipeline runs without autoflush; the query must see this batch
        found = self._session.scalar(_OPEN_ALERT, {"key": identity})
        self._alerts[identity] = found
        return found

    def reserve_alert_ids(self, count: int) -> None:
        """Have ``count`` alert ids ready: a new alert then needs no INSERT of its own to get one.

        The rows reach the database on the next flush, many in one statement. PostgreSQL hands
        the ids out from the table's sequence; on SQLite this transaction holds the write lock
        and only ``dedup`` creates alerts (and only ``group`` incidents), so the ids after the
        largest one are free.
        """
        missing = count - len(self._ids)
        if missing <= 0:
            return
        if self._dialect == "postgresql":
            self._ids += self._session.scalars(_NEXTVAL, {"n": missing}).all()
            return
        last = self._ids[-1] if self._ids else None
        if last is None:
            last = self._last_id or self._session.scalar(_MAX_ALERT_ID) or 0
        self._ids += range(last + 1, last + 1 + missing)

    def new_alert_id(self) -> int:
        if not self._ids:
            self.reserve_alert_ids(1)
        self._last_id = self._ids.pop(0)
        return self._last_id

    def new_incident_id(self) -> int:
        """An id for a new incident, so that it needs no flush to get one (see ``reserve_alert_ids``)."""
        if self._dialect == "postgresql":
            return int(self._session.scalars(_NEXTVAL_INCIDENT).one())
        if self._last_incident_id is None:
            self._last_incident_id = self._session.scalar(_MAX_INCIDENT_ID) or 0
        self._last_incident_id += 1
        return self._last_incident_id

    def alert_opened(self, row: AlertRow) -> None:
        self._alerts[row.dedup_key] = row

    def add_new(self, row: AlertRow) -> None:
        """A new alert (its id set): inserted at the next ``flush`` with the others, not by the session.

        The unit of work spent ~55 µs a row inserting a batch's new alerts (collecting each
        row's parameters, then registering it persistent); one Core ``executemany`` and
        attaching the rows as already persistent cost ~42. Until then the row is not in the
        session: every flush in the pipeline goes through ``flush`` below, so every read that
        flushes first still sees it, and changes made to it before are part of its INSERT.
        """
        self._unsaved.append(row)
        self.alert_opened(row)

    def save_new(self) -> None:
        """INSERT the alerts of ``add_new`` in one statement; they are then persistent in the session."""
        if not self._unsaved:
            return
        rows, self._unsaved = self._unsaved, []
        values = []
        for row in rows:
            for column in _ALERT_COLUMNS:  # inserted NULL: say so in the row, or it reads as expired
                row.__dict__.setdefault(column, None)
            values.append({c: row.__dict__[c] for c in _ALERT_COLUMNS})
        insert_rows(self._session, _ALERTS, values)  # Core: the ORM's execute added ~0.1 ms
        for row in rows:
            make_transient_to_detached(row)  # as if loaded: later changes are tracked as UPDATEs
        self._session.add_all(rows)

    def prefetch_incidents(self, keys: Iterable[str]) -> None:
        """Read the newest open incident of each of these group keys at once."""
        wanted = sorted({k for k in keys if k not in self._incidents and k not in self._no_incident})
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            for row in self._session.scalars(_OPEN_INCIDENTS[self._dialect], {"keys": chunk}):
                self._incidents[row.group_key] = row  # ascending ids: the newest wins
        self._no_incident.update(k for k in wanted if k not in self._incidents)

    def incident(self, key: str) -> IncidentRow | None:
        """The newest open incident of group ``key``, or None."""
        found = self._incidents.get(key)
        if found is not None and State(found.state) in OPEN:
            return found
        if found is None and key in self._no_incident:
            return None
        flush(self._session)
        found = self._session.scalar(_OPEN_INCIDENT, {"key": key})
        if found is not None:
            self._incidents[key] = found
        else:
            self._no_incident.add(key)
        return found

    def incident_opened(self, key: str, incident: IncidentRow) -> None:
        self._incidents[key] = incident
        self._no_incident.discard(key)

    def forget(self) -> None:
        """Read everything again from now on: something else changed alerts or incidents."""
        self._alerts.clear()
        self._incidents.clear()
        self._no_incident.clear()


_KEY = "maintd.open_rows"
# Built once, values bound per call: building a statement and its cache key cost more than
# running it (the group committer's every transaction reads the open alerts and incidents).
# The keys: on PostgreSQL one array (``= ANY``), so that the statement's text is the same for
# any number of keys and psycopg parses and prepares it once; an IN list is new text for each
# length, parsed anew (with SQLAlchemy's expansion, ~7 % of the drain's CPU at 500 keys). On
# SQLite, an IN list. By dialect name.
_KEYS: BindParameter[Any] = bindparam("keys", expanding=True)
_KEYS_ARRAY: BindParameter[Any] = bindparam("keys", type_=ARRAY(String))
_FIRING = AlertRow.status == AlertStatus.firing.value


def _among(column: Any) -> dict[str, Any]:
    return {"sqlite": column.in_(_KEYS), "postgresql": column == any_(_KEYS_ARRAY)}


_OPEN_ALERTS = {
    dialect: select(AlertRow).where(among, _FIRING).order_by(AlertRow.id)
    for dialect, among in _among(AlertRow.dedup_key).items()
}
_OPEN_ALERT = (
    select(AlertRow)
    .where(AlertRow.dedup_key == bindparam("key"), _FIRING)
    .order_by(AlertRow.id.desc())
    .limit(1)
)
_OPEN_INCIDENTS = {
    dialect: select(IncidentRow).where(among, IncidentRow.state.in_(_OPEN_STATES)).order_by(IncidentRow.id)
    for dialect, among in _among(IncidentRow.group_key).items()
}
_OPEN_INCIDENT = (
    select(IncidentRow)
    .where(IncidentRow.group_key == bindparam("key"), IncidentRow.state.in_(_OPEN_STATES))
    .order_by(IncidentRow.id.desc())
    .limit(1)
)
_MAX_ALERT_ID = select(func.max(AlertRow.id))
_MAX_INCIDENT_ID = select(func.max(IncidentRow.id))
_ALERTS = cast(Table, AlertRow.__table__)
_ALERT_COLUMNS = tuple(c.key for c in AlertRow.__table__.columns)


def flush(session: Session) -> None:
    """``session.flush()`` that first inserts the transaction's new alerts (``OpenRows.add_new``)."""
    found = session.info.get(_KEY)
    if isinstance(found, OpenRows) and found._transaction is session.get_transaction():
        found.save_new()
    session.flush()


_NEXTVAL = text("SELECT nextval(pg_get_serial_sequence('alerts', 'id')) FROM generate_series(1, :n)")
_NEXTVAL_INCIDENT = text("SELECT nextval(pg_get_serial_sequence('incidents', 'id'))")


def new_row(cls: type[R], **values: object) -> R:
    """``cls(**values)`` for a row to insert, at a fifteenth of the CPU (1 µs, not 15, for an alert).

    The mapped constructor sets each value through its instrumented attribute, firing events
    nothing in maintd listens to. A new row needs none of that: the unit of work inserts what
    is in the instance's ``__dict__``, and later changes are tracked as usual.
    """
    mapper = inspect(cls)
    if not mapper.configured:
        configure_mappers()
    unknown = values.keys() - mapper.columns.keys()
    if unknown:
        raise TypeError(f"{cls.__name__} has no column {', '.join(sorted(unknown))}")
    row = cast(R, mapper.class_manager.new_instance())
    row.__dict__.update(values)
    return row
