"""The dashboard in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright):
log in with a token, open the overview and an incident, press Acknowledge, see it acknowledged.

A screenshot of every main page goes to the test's tmp dir, and to $MAINTD_SCREENSHOTS when set.
Chromium missing is a failure, never a skip (scripts/services.sh installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

from tests.harness import Harness, cli

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
PAGES = ("incidents", "tasks", "runs", "changes", "postmortems", "kpis", "capacity", "inventory")
TITLE = "Checkout API answers 503 <b>not bold</b>"
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
"""


def test_a_responder_logs_in_and_acknowledges_an_incident_in_chromium(sqlite_world: Harness, tmp_path: Path):
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
        finally:
            browser.close()

    state = http_json(f"{server.url}/api/v1/incidents/{incident_id}", token)["state"]
    assert state == "acknowledged"
    saved = sorted(p.name for p in shots.iterdir())
    assert saved == sorted(f"{n}.png" for n in ("login", "overview", "incident", *PAGES))
    assert all((shots / n).stat().st_size > 5000 for n in saved)
    if os.environ.get("MAINTD_SCREENSHOTS"):
        target = Path(os.environ["MAINTD_SCREENSHOTS"])
        target.mkdir(parents=True, exist_ok=True)
        for name in saved:
            shutil.copy(shots / name, target / name)


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


def http_json(url: str, token: str, body: object = None) -> dict:  # type: ignore[type-arg]
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Authorization": f"Bearer {token}"})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)  # type: ignore[no-any-return]
