"""``maintd journal``: the intake journal's rows, and the failed ones retried or dropped by hand,
on both stores."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from maintd.cli.app import app
from maintd.store.db import Store
from maintd.store.intake_tables import AlertIntakeRow
from maintd.store.models import EventRow
from tests.conftest import T0

GOOD = b'[{"labels": {"alertname": "DiskFull", "target": "db1"}}]'
POISON = b'[{"labels": {"alertname": "Odd"}, "summary": "\xff not utf-8"}]'


@pytest.fixture
def journal(store: Store, monkeypatch: pytest.MonkeyPatch) -> Store:
    """Row 1 waits for the drain; rows 2 and 3 failed."""
    monkeypatch.setenv("MAINTD_DATABASE_URL", store.url)
    with store.write() as s:
        for body, error in ((GOOD, None), (POISON, "ValueError: not UTF-8"), (GOOD, "IntegrityError: x")):
            s.add(
                AlertIntakeRow(
                    received_at=T0, source="native", actor="token:prom", body=body,
                    attempts=0 if error is None else 1, error=error,
                )
            )  # fmt: skip
    return store


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["journal", *args], catch_exceptions=False)
    return result.exit_code, result.output


def state(store: Store) -> dict[int, str | None]:
    with store.read() as s:
        return {row.id: row.error for row in s.scalars(select(AlertIntakeRow).order_by(AlertIntakeRow.id))}


def events(store: Store) -> list[EventRow]:
    with store.read() as s:
        return list(s.scalars(select(EventRow).where(EventRow.kind.like("intake.%")).order_by(EventRow.id)))


def test_list_counts_waiting_and_failed_rows_and_shows_each(journal: Store) -> None:
    code, out = cli("list")
    assert code == 0
    assert "1 waiting, 2 failed" in out
    assert "ValueError: not UTF-8" in out and "waiting" in out
    code, out = cli("list", "--failed", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["id"], r["error"], r["attempts"]) for r in rows] == [
        (2, "ValueError: not UTF-8", 1),
        (3, "IntegrityError: x", 1),
    ]


def test_show_prints_the_body_as_received(journal: Store) -> None:
    code, out = cli("show", "2", "--json")
    assert code == 0
    shown = json.loads(out)
    assert (shown["id"], shown["bytes"]) == (2, len(POISON))
    assert shown["body"] == POISON.decode("utf-8", "replace")
    assert cli("show", "9")[0] == 1


def test_retry_clears_the_error_of_failed_rows_only_and_audits_it(journal: Store) -> None:
    code, out = cli("retry", "1", "2")
    assert code == 1
    assert "row 1 has not failed: it waits for the drain" in out
    assert state(journal) == {1: None, 2: "ValueError: not UTF-8", 3: "IntegrityError: x"}  # all or nothing

    assert cli("retry", "2", "--dry-run") == (0, "1 failed row(s) would be retried: 2\n")
    assert state(journal)[2] == "ValueError: not UTF-8" and events(journal) == []

    assert cli("retry", "2") == (0, "1 failed row(s) retried: 2\n")
    assert state(journal) == {1: None, 2: None, 3: "IntegrityError: x"}
    (event,) = events(journal)
    assert (event.kind, event.subject, event.payload["error"]) == (
        "intake.retried",
        "intake:2",
        "ValueError: not UTF-8",
    )
    assert event.actor.startswith("user:")


def test_drop_deletes_failed_rows_keeping_each_body_in_its_event(journal: Store) -> None:
    assert cli("drop", "--all-failed", "--dry-run") == (0, "2 failed row(s) would be dropped: 2, 3\n")
    assert len(state(journal)) == 3
    assert cli("drop", "--all-failed") == (0, "2 failed row(s) dropped: 2, 3\n")
    assert state(journal) == {1: None}  # the waiting row is the drain's
    first, second = events(journal)
    assert (first.kind, first.subject) == ("intake.dropped", "intake:2")
    assert first.payload["body_sha256"] == hashlib.sha256(POISON).hexdigest()
    assert first.payload["body"] == POISON.decode("utf-8", "replace")
    assert second.payload["body"] == GOOD.decode()


@pytest.mark.parametrize("args", [(), ("2", "--all-failed")])
def test_retry_and_drop_need_rows_named_or_all_failed(journal: Store, args: tuple[str, ...]) -> None:
    for command in ("retry", "drop"):
        code, out = cli(command, *args)
        assert code == 1 and "name the rows, or give --all-failed" in out
    assert len(state(journal)) == 3


def test_an_id_that_is_not_there_is_named(journal: Store) -> None:
    code, out = cli("drop", "7")
    assert code == 1 and "no journal row 7" in out
