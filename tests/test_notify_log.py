"""Reading the notification log: ``maintd notifications`` and ``/api/v1/notifications``."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from maintd.cli import app
from maintd.clock import FakeClock
from maintd.engine import Engine
from maintd.notify.dispatcher import Dispatcher
from maintd.notify.transport import AppriseNotifier
from maintd.store.db import Store
from tests.notify_support import Webhook, queue
from tests.personas import as_


@pytest.fixture
def engine(store: Store, write_plan: Callable[..., Any], make_engine: Callable[..., Engine]) -> Engine:
    return make_engine(store, write_plan("targets: []\n"))


@pytest.fixture
def log(store: Store, clock: FakeClock, webhook: Webhook) -> dict[str, int]:
    """A page that fell back from a gone hook to a good one, one still retrying, one for incident 7."""
    rows = {
        "fell_back": queue(store, clock, webhook.answer("/gone/t0k3n", 404), webhook.url("/good")),
        "retrying": queue(store, clock, webhook.answer("/busy", 503), step="L2"),
        "other": queue(store, clock, webhook.url("/good"), subject="incident:7"),
    }
    notifier = AppriseNotifier(connect_timeout=1.0, read_timeout=1.0)
    Dispatcher(store, clock, notifier, owner="test").deliver_due()
    return rows


def test_viewers_list_notifications_newest_first_with_filters(
    client: TestClient, tokens: dict[str, str], log: dict[str, int]
) -> None:
    everything = client.get("/api/v1/notifications", headers=as_(tokens, "vera")).json()
    assert [n["id"] for n in everything] == sorted(log.values(), reverse=True)
    pending = client.get("/api/v1/notifications?status=pending", headers=as_(tokens, "vera")).json()
    assert [(n["id"], n["attempts"], n["step"]) for n in pending] == [(log["retrying"], 1, "L2")]
    assert pending[0]["last_error"].startswith("HTTP 503")
    assert pending[0]["title"] == "[P1] TRIGGERED #42 disk full on db01"
    limited = client.get("/api/v1/notifications?incident=42&limit=1", headers=as_(tokens, "vera")).json()
    assert [n["id"] for n in limited] == [log["retrying"]]


def test_one_notification_shows_its_channels_and_every_attempt_redacted(
    client: TestClient, tokens: dict[str, str], log: dict[str, int], webhook: Webhook
) -> None:
    found = client.get(f"/api/v1/notifications/{log['fell_back']}", headers=as_(tokens, "vera")).json()
    assert (found["status"], found["channel"], found["recipient"]) == ("sent", 1, "person:ann")
    hook = f"json://127.0.0.1:{webhook.port}"
    assert [c["url"] for c in found["channels"]] == [f"{hook}/***/***", f"{hook}/***"]
    assert found["target"] == f"{hook}/***"
    assert [(a["channel"], a["ok"], a["permanent"]) for a in found["history"]] == [
        (0, False, True),
        (1, True, False),
    ]
    assert "t0k3n" not in json.dumps(found)


def test_notification_routes_need_a_token_and_answer_404_for_unknown_ids(
    client: TestClient, tokens: dict[str, str]
) -> None:
    assert client.get("/api/v1/notifications").status_code == 401
    missing = client.get("/api/v1/notifications/999", headers=as_(tokens, "vera"))
    assert missing.status_code == 404 and "no notification 999" in missing.text
    bad = client.get("/api/v1/notifications?status=lost", headers=as_(tokens, "vera"))
    assert bad.status_code == 422


@pytest.fixture
def cli(store: Store, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    monkeypatch.setenv("MAINTD_DATABASE_URL", store.url)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args), catch_exceptions=False)


def test_the_cli_lists_the_log_as_a_table_and_as_json(
    cli: Callable[..., Result], log: dict[str, int]
) -> None:
    table = cli("notifications", "list", "--incident", "42")
    assert table.exit_code == 0
    lines = {line.split()[0]: line for line in table.output.splitlines() if line.strip()[:1].isdigit()}
    assert set(lines) == {str(log["fell_back"]), str(log["retrying"])}
    assert "sent" in lines[str(log["fell_back"])] and "pending" in lines[str(log["retrying"])]
    assert "HTTP 503" in lines[str(log["retrying"])]
    as_json = cli("notifications", "list", "--status", "sent", "--json")
    assert sorted(json.loads(line)["id"] for line in as_json.output.splitlines()) == [
        log["fell_back"],
        log["other"],
    ]


def test_the_cli_shows_one_notification_with_its_attempts(
    cli: Callable[..., Result], log: dict[str, int]
) -> None:
    shown = cli("notifications", "show", str(log["fell_back"]))
    assert shown.exit_code == 0
    assert "[P1] TRIGGERED #42 disk full on db01" in shown.output
    assert "permanent" in shown.output and "HTTP 404" in shown.output
    assert "t0k3n" not in shown.output


def test_the_cli_refuses_an_unknown_status_or_id(cli: Callable[..., Result], store: Store) -> None:
    assert cli("notifications", "list", "--status", "lost").exit_code == 1
    missing = cli("notifications", "show", "999")
    assert missing.exit_code == 1 and "no notification 999" in missing.output


def test_the_cli_delivers_what_is_due_once(
    cli: Callable[..., Result], store: Store, webhook: Webhook
) -> None:
    row_id = queue(store, FakeClock(datetime.now(UTC)), webhook.url("/hook"))
    delivered = cli("notifications", "deliver")
    assert delivered.exit_code == 0 and "1 delivery attempt(s)" in delivered.output
    assert cli("notifications", "deliver").output.startswith("0 delivery attempt(s)")
    assert webhook.count("/hook") == 1
    shown = json.loads(cli("notifications", "show", str(row_id), "--json").output)
    assert shown["status"] == "sent"
