"""Rows the pipeline creates by the thousand are built without the mapped constructor's events."""

from __future__ import annotations

from datetime import timedelta

import pytest

from maintd.incidents.lookups import new_row
from maintd.store.models import AlertRow


def test_a_new_row_is_inserted_with_its_values_and_the_changes_made_after(store, clock):
    now = clock.now()
    with store.write() as session:
        row = new_row(
            AlertRow,
            id=41,
            fingerprint="0123456789abcdef",
            dedup_key="0123456789abcdef",
            source="native",
            integration=None,
            status="firing",
            severity="critical",
            priority="P3",
            summary="disk full",
            labels={"alertname": "DiskFull"},
            annotations={"runbook": "https://runbooks.example/disk"},
            starts_at=now - timedelta(minutes=2),
            last_received_at=now,
            received=1,
        )
        session.add(row)
        session.flush()
        row.priority, row.incident_id = "P1", 7  # after its INSERT: an UPDATE, as for any row
    with store.read() as session:
        stored = session.get(AlertRow, 41)
        assert stored is not None
        assert (stored.summary, stored.priority, stored.incident_id, stored.muted_by) == (
            "disk full",
            "P1",
            7,
            None,
        )
        assert stored.labels == {"alertname": "DiskFull"}
        assert stored.starts_at == now - timedelta(minutes=2)


def test_a_misspelt_column_is_refused():
    with pytest.raises(TypeError, match="AlertRow has no column sumary"):
        new_row(AlertRow, sumary="disk full")
