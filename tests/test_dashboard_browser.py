"""The dashboard in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright):
log in with a token, open the overview and an incident, press Acknowledge, see it acknowledged;
resolve it, edit its post-mortem's draft, add an action item and mark it done; create a
silence and expire it early, seeing each state change in the page; open the architecture
review's checklist (the serve opened it for the current quarter).

A screenshot of every main page goes to the test's tmp dir, and to $MAINTD_SCREENSHOTS when set.
Chromium missing is a failure, never a skip (scripts/services.sh installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.request
from datetime import timedelta
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

from tests.harness import Harness, cli

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
PAGES = ("incidents", "tasks", "runs", "changes", "postmortems", "reviews", "kpis", "capacity", "inventory")
TITLE = "Checkout API answers 503 <b>not bold</b>"
ROOT_CAUSE = "The connection pool ran dry under the retry storm."
PLAN = f"""
targets:
  - {{name: shop-api, kind: api, connection: {{path: /srv/shop}}}}
  - {{name: shop-db, kind: host, connection: {{path: /srv/db}}}}
tasks:
  - name: api-smoke
    kind: command
    description: the checkout answers
    targets: [shop-api]
    schedule: {{every: 1h}}
    params:
      argv: ["{sys.executable}", "-c", "print('checkout: 503 Service Unavailable'); raise SystemExit(2)"]
      read_only: true
  - name: db-size
    kind: command
    description: the database directory's size
    targets: [shop-db]
    schedule: {{every: 1h}}
    params: {{argv: ["{sys.executable}", "-c", "print('db: 41 GB')"], read_only: true}}
incidents:
  deadlines: {{P0: 5m, P1: 30m, P2: 4h, P3: 1d}}
  maintenance_windows:
    - {{name: db-upgrade, match: ["target=shop-db"], window: "Sun 03:00-05:00 UTC", comment: monthly upgrade}}
people:
  - {{name: ann, email: ann@example.com}}
  - {{name: bob, email: bob@example.com}}
components:
  - name: shop-api
    owner: ann
    category: framework
    stage: production
    versions: [{{version: "3.2.0", released: 2026-06-01}}, {{version: "2.9.0", released: 2024-01-10}}]
    in_use: "2.9.0"
documents:
  - {{name: shop-runbook, title: Checkout runbook, kind: runbook, owner: ann, location: docs/shop.md}}
schedules:
  - name: ops
    layers:
      - name: primary
        rotation: {{members: [ann, bob], start: 2026-11-01}}
reviews:
  - {{name: architecture, title: Architecture review, owner: ann, participants: [bob]}}
"""


def test_a_responder_acknowledges_resolves_writes_the_postmortem_and_silences_in_chromium(
    sqlite_world: Harness, tmp_path: Path
):
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: the browser test needs Debian's chromium package"
    world = sqlite_world
    world.write_plan(PLAN)
    server = world.serve()
    world.wait_ready(server)
    made = cli("token", "create", "--name", "rob", "--role", "responder", env=world.env)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    incident_id = raise_alert(server.url, token)
    world.wait_for(
        "both tasks' first runs", lambda: world.finished("api-smoke", 1) and world.finished("db-size", 1)
    )
    reviews = world.wait_for(
        "the quarter's review opened", lambda: http_list(f"{server.url}/api/v1/reviews", token)
    )
    shots = tmp_path / "screenshots"
    shots.mkdir()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(server.url + "/")
            expect(page).to_have_url(f"{server.url}/login?next=%2F")
            shot(page, shots, "login")
            page.fill("#token", token)
            page.get_by_role("button", name="Log in").click()
            expect(page).to_have_url(server.url + "/")
            expect(page.get_by_role("link", name=TITLE)).to_be_visible()  # the title as text, tags and all
            expect(page.locator("body")).to_contain_text("30m left")
            expect(page.locator("body")).to_contain_text("api-smoke")  # a failing task
            shot(page, shots, "overview")

            page.get_by_role("link", name=TITLE).click()
            expect(page).to_have_url(f"{server.url}/incidents/{incident_id}")
            expect(page.locator("#incident-state")).to_have_text("triggered")
            page.get_by_role("button", name="Acknowledge").click()
            expect(page.locator("#incident-state")).to_have_text("acknowledged")
            expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)
            expect(page.locator(".timeline")).to_contain_text("incident.acknowledged")
            shot(page, shots, "incident")

            for name in PAGES:
                page.goto(f"{server.url}/{name}")
                expect(page.locator("h1")).to_be_visible()
                shot(page, shots, name)

            due = (world.now + timedelta(days=7)).date().isoformat()  # the server's clock is the world's
            edit_the_postmortem(page, server.url, incident_id, due, shots)
            silence_and_expire(page, server.url, shots)

            # A visit and a screenshot: tests/test_web_reviews drives the review's forms.
            page.goto(f"{server.url}/reviews")
            page.get_by_role("link", name="Architecture review").click()
            expect(page).to_have_url(f"{server.url}/reviews/{reviews[0]['id']}")
            expect(page.locator("#review-progress")).to_have_text("0 of 6")
            shot(page, shots, "review")
        finally:
            browser.close()

    state = http_json(f"{server.url}/api/v1/incidents/{incident_id}", token)["state"]
    assert state == "resolved"
    postmortem = http_json(f"{server.url}/api/v1/postmortems/{incident_id}", token)
    assert postmortem["what_happened"] == ROOT_CAUSE
    assert [(a["owner"], a["status"]) for a in postmortem["actions"]] == [("bob", "done")]
    (silence,) = http_json(f"{server.url}/api/v1/silences?all=true", token)
    assert (silence["state"], silence["created_by"]) == ("expired", "token:rob")
    saved = sorted(p.name for p in shots.iterdir())
    expected = ("login", "overview", "incident", *PAGES, "postmortem", "silences", "review")
    assert saved == sorted(f"{n}.png" for n in expected)
    assert all((shots / n).stat().st_size > 5000 for n in saved)
    if os.environ.get("MAINTD_SCREENSHOTS"):
        target = Path(os.environ["MAINTD_SCREENSHOTS"])
        target.mkdir(parents=True, exist_ok=True)
        for name in saved:
            shutil.copy(shots / name, target / name)


def edit_the_postmortem(page: Page, url: str, incident_id: int, due: str, shots: Path) -> None:
    """Resolve the P1 (its post-mortem is drafted), write its root cause, add an action item, do it."""
    page.goto(f"{url}/incidents/{incident_id}")
    page.get_by_role("button", name="Resolve").click()
    expect(page.locator("#incident-state")).to_have_text("resolved")
    page.get_by_role("link", name="draft").click()
    expect(page).to_have_url(f"{url}/postmortems/{incident_id}")
    page.fill("#f-what_happened", ROOT_CAUSE)
    page.get_by_role("button", name="Save sections").click()
    expect(page.locator("#f-what_happened")).to_have_value(ROOT_CAUSE)
    page.fill("#a-title", "Alert on connection pool saturation")
    page.select_option("#a-owner", "bob")
    page.fill("#a-due", due)
    page.get_by_role("button", name="Add action item").click()
    status = page.locator(".action-status")
    expect(status).to_have_attribute("data-status", "open")
    page.get_by_role("button", name="Mark action").click()
    expect(status).to_have_attribute("data-status", "done")
    expect(status).to_contain_text("(on time)")
    shot(page, shots, "postmortem")


def silence_and_expire(page: Page, url: str, shots: Path) -> None:
    page.goto(f"{url}/silences")
    page.fill("#s-matchers", "target=shop-db\nalertname=~Disk.*")
    page.fill("#s-duration", "2h")
    page.fill("#s-comment", "disk swap tonight")
    page.get_by_role("button", name="Create silence").click()
    current = page.locator("#current")
    expect(current).to_contain_text("alertname=~Disk.*")
    expect(current.locator(".state")).to_have_text("active")
    shot(page, shots, "silences")
    current.get_by_role("button", name="Expire silence").click()
    expect(current).not_to_contain_text("disk swap tonight")
    expect(page.locator("#expired .state")).to_have_text("expired")


def shot(page: Page, directory: Path, name: str) -> None:
    page.screenshot(path=str(directory / f"{name}.png"), full_page=True)


def raise_alert(url: str, token: str) -> int:
    body = [
        {
            "labels": {"alertname": "CheckoutDown", "target": "shop-api"},
            "severity": "critical",
            "summary": TITLE,
        }
    ]
    accepted = http_json(f"{url}/api/v1/alerts", token, body)
    return int(accepted["alerts"][0]["incident_id"])


def http_list(url: str, token: str) -> list | None:  # type: ignore[type-arg]
    """A JSON list, None while it is empty."""
    return http_json(url, token) or None  # type: ignore[return-value]


def http_json(url: str, token: str, body: object = None) -> dict:  # type: ignore[type-arg]
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Authorization": f"Bearer {token}"})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)  # type: ignore[no-any-return]
