"""End to end, as a responder lives it: a real ``maintd serve``, a real SMTP server, a file clock.

An alert comes in through the API, the P1 incident pages the primary on call by
email at once, nobody answers, the team lead is paged at 15 minutes; the primary
acknowledges from the link in the email, and the director (30 minutes) is never paged.
"""

from __future__ import annotations

import json
import re
import urllib.request
from datetime import timedelta
from typing import Any

import pytest

from tests.harness import T0, Harness, Server, cli
from tests.notify_support import Mailbox, mail_to, paged, paging_plan

pytestmark = pytest.mark.slow


def post_json(url: str, body: Any, token: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.load(response)


def incident(server: Server, token: str, incident_id: int) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{server.url}/api/v1/incidents/{incident_id}", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body: dict[str, Any] = json.load(response)
        return body


def test_a_p1_pages_by_email_escalates_unanswered_and_stops_on_ack(world: Harness, mailbox: Mailbox) -> None:
    h = world
    h.write_plan(paging_plan(mailbox))
    made = cli("token", "create", "--name", "prometheus", "--role", "responder", env=h.env)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    server = h.serve()
    h.wait_ready(server)

    status, accepted = post_json(
        f"{server.url}/api/v1/alerts",
        [
            {
                "labels": {"alertname": "AuthDown", "service": "auth", "target": "auth-1"},
                "severity": "critical",
                "summary": "login fails for every user",
                "annotations": {"runbook_url": "https://runbooks.example.test/auth"},
            }
        ],
        token,
    )
    assert status == 200
    incident_id = accepted["alerts"][0]["incident_id"]

    # Level 1 at once: the primary, with everything needed to act.
    (page,) = h.wait_for("the page to ann", lambda: paged(h.store, mailbox, incident_id, "ann"), server)
    assert re.search(rf"\[P1\].*#{incident_id}", page.subject), page.subject
    assert "login fails for every user" in page.text
    assert "Target: auth-1" in page.text
    assert "Runbook: https://runbooks.example.test/auth" in page.text
    assert "Acknowledge by: 2026-11-27 01:30 UTC" in page.text  # P1: 30 minutes
    ack_url = re.search(r"Acknowledge: (\S+)", page.text)
    assert ack_url and ack_url[1].startswith(f"{server.url}/ack/")
    assert mail_to(mailbox, "carol") == []

    # Unanswered for 15 minutes: level 2, the team lead.
    h.set_clock(T0 + timedelta(minutes=15))
    (lead,) = h.wait_for("the page to carol", lambda: paged(h.store, mailbox, incident_id, "carol"), server)
    assert f"#{incident_id}" in lead.subject

    # Ann acknowledges from her email's link (GET shows a page, POST acts).
    h.set_clock(T0 + timedelta(minutes=20))
    with urllib.request.urlopen(ack_url[1], timeout=10) as response:
        assert response.status == 200 and "Acknowledge" in response.read().decode()
    assert incident(server, token, incident_id)["state"] == "triggered"
    request = urllib.request.Request(ack_url[1], data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    detail = incident(server, token, incident_id)
    assert (detail["state"], detail["acknowledged_at"][:16]) == (
        "acknowledged",
        "2026-11-27T01:20",
    )

    # Past level 3's time: the director is never paged. A second incident's page, sent after the
    # clock moved, shows the engine has acted at this time.
    h.set_clock(T0 + timedelta(minutes=31))
    post_json(
        f"{server.url}/api/v1/alerts",
        [{"labels": {"alertname": "DiskFull", "target": "db-1"}, "severity": "warning"}],
        token,
    )
    h.wait_for("the second page to ann", lambda: len(mail_to(mailbox, "ann")) == 2, server)
    assert mail_to(mailbox, "erin") == []
    steps = {s["step"]: s for s in incident(server, token, incident_id)["escalation"]["steps"]}
    assert [(steps[k]["state"]) for k in ("c0.l1", "c0.l2", "c0.l3")] == ["fired", "fired", "cancelled"]
