"""Links people follow without an API token: signed tokens, and acknowledging or resolving from a page."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from maintd.alerts.model import AlertIn, Severity
from maintd.api.app import create_app
from maintd.api.deps import AppContext
from maintd.engine import Engine
from maintd.incidents import service
from maintd.incidents.links import DEFAULT_TTL, incident_links
from maintd.incidents.pipeline import ingest
from maintd.signing import BadToken, Grant, sign, verify
from maintd.store.db import Store
from maintd.store.events import query
from tests.conftest import T0

GRANT = Grant("ack", "incident:7", "person:ann", T0 + timedelta(hours=1))
BASE = "https://maintd.example.com/"


# --- tokens


def test_a_token_reads_back_what_it_grants(store: Store) -> None:
    with store.write() as s:
        token = sign(s, GRANT)
    with store.read() as s:
        assert verify(s, token, action="ack", now=T0) == GRANT


def test_a_token_expires_when_the_clock_passes_its_expiry(store: Store, clock) -> None:  # type: ignore[no-untyped-def]
    with store.write() as s:
        token = sign(s, GRANT)
    clock.advance(timedelta(minutes=59, seconds=59))
    with store.read() as s:
        assert verify(s, token, action="ack", now=clock.now()).subject == "incident:7"
        clock.advance(timedelta(seconds=1))
        with pytest.raises(BadToken, match="this link expired at 2026-11-27T02:00:00"):
            verify(s, token, action="ack", now=clock.now())


def test_a_token_without_expiry_keeps_working(store: Store) -> None:
    with store.write() as s:
        token = sign(s, Grant("feed", "schedule:ops", "user:ann", None))
    with store.read() as s:
        assert verify(s, token, action="feed", now=T0 + timedelta(days=3650)).expires_at is None


def _key_of(token: str) -> int:
    import base64
    import json

    payload = token.split(".")[0]
    return int(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["k"])


def test_a_key_made_in_a_transaction_that_rolls_back_is_not_remembered(store: Store) -> None:
    with pytest.raises(RuntimeError), store.write() as s:
        sign(s, GRANT)  # makes the first key, then the transaction fails
        raise RuntimeError("rolled back")
    with store.write() as s:
        token = sign(s, GRANT)
    with store.read() as s:
        assert verify(s, token, action="ack", now=T0) == GRANT


def test_the_newest_key_is_remembered_for_key_ttl_then_read_again(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import types

    from maintd import signing
    from maintd.store.models import SigningKeyRow

    with store.write() as s:
        sign(s, GRANT)  # makes the key: not remembered until committed
    with store.write() as s:
        first = _key_of(sign(s, GRANT))  # read, and remembered
    with store.write() as s:  # another process adds a newer key
        s.add(SigningKeyRow(secret="ab" * 32, created_at=T0))
    with store.write() as s:
        kept = sign(s, GRANT)
    assert _key_of(kept) == first  # remembered: still signs with the first, which still verifies
    later = signing.time.monotonic() + signing.KEY_TTL + 1
    monkeypatch.setattr(signing, "time", types.SimpleNamespace(monotonic=lambda: later))
    with store.write() as s:
        newer = sign(s, GRANT)
    assert _key_of(newer) > first
    with store.read() as s:
        assert verify(s, kept, action="ack", now=T0) == verify(s, newer, action="ack", now=T0) == GRANT


def test_a_tampered_payload_is_refused(store: Store) -> None:
    with store.write() as s:
        token = sign(s, GRANT)
        other = sign(s, Grant("ack", "incident:8", "person:ann", GRANT.expires_at))
    # Another incident's payload under this token's signature: the MAC no longer matches.
    forged = other.split(".")[0] + "." + token.split(".")[1]
    with store.read() as s:
        with pytest.raises(BadToken, match="not issued by this maintd"):
            verify(s, forged, action="ack", now=T0)
        with pytest.raises(BadToken, match="malformed"):
            verify(s, "not-a-token", action="ack", now=T0)


def test_a_token_for_another_action_is_refused(store: Store) -> None:
    with store.write() as s:
        token = sign(s, GRANT)
    with store.read() as s, pytest.raises(BadToken, match="this link is for 'ack', not 'resolve'"):
        verify(s, token, action="resolve", now=T0)


def test_a_token_signed_by_another_maintd_is_refused(
    store: Store, sqlite_template: Path, tmp_path: Path
) -> None:
    shutil.copy(sqlite_template, tmp_path / "other.db")
    other = Store(f"sqlite:///{tmp_path / 'other.db'}")
    with other.write() as s:
        token = sign(s, GRANT)
    other.dispose()
    with store.write() as s:
        sign(s, GRANT)  # this store has a key of its own, with the same id
    with store.read() as s, pytest.raises(BadToken, match="not issued by this maintd"):
        verify(s, token, action="ack", now=T0)


def test_incident_links_are_an_ack_and_a_resolve_url_for_one_person(store: Store) -> None:
    with store.write() as s:
        ack, resolve = incident_links(s, incident_id=7, person="ann", base_url=BASE, now=T0)
    assert ack.startswith("https://maintd.example.com/ack/")
    assert resolve.startswith("https://maintd.example.com/resolve/")
    with store.read() as s:
        assert verify(s, ack.rsplit("/", 1)[1], action="ack", now=T0) == Grant(
            "ack", "incident:7", "person:ann", T0 + DEFAULT_TTL
        )
        assert verify(s, resolve.rsplit("/", 1)[1], action="resolve", now=T0).actor == "person:ann"


# --- the pages


@pytest.fixture
def engine(store, write_plan, make_engine) -> Engine:  # type: ignore[no-untyped-def]
    engine = make_engine(store, write_plan("incidents: {deadlines: {P0: 5m, P1: 10m, P2: 1h, P3: 1d}}\n"))
    assert engine.reload().ok
    return engine


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(AppContext(engine.store, engine.clock, engine.metrics, engine))) as c:
        yield c


def opened(engine: Engine, summary: str = "API answers 503", severity: Severity = Severity.critical) -> int:
    assert engine.loaded is not None
    with engine.store.write() as s:
        (delivery,) = ingest(
            s,
            [AlertIn(source="native", labels={"alertname": summary}, severity=severity, summary=summary)],
            now=engine.clock.now(),
            settings=engine.loaded.plan.incidents,
            actor="test",
        )
    assert delivery.incident is not None
    return delivery.incident.id


def paths(engine: Engine, incident_id: int, person: str = "ann") -> tuple[str, str]:
    with engine.store.write() as s:
        ack, resolve = incident_links(
            s, incident_id=incident_id, person=person, base_url="", now=engine.clock.now()
        )
    return ack, resolve


def timeline(engine: Engine, incident_id: int) -> list[tuple[str, str, dict[str, object]]]:
    with engine.store.read() as s:
        rows = query(s, subject=f"incident:{incident_id}", kind="incident.")
        return [(e.kind, e.actor, e.payload) for e in rows]


def state(engine: Engine, incident_id: int) -> str:
    with engine.store.read() as s:
        return service.get_incident(s, incident_id=incident_id).incident.state


def test_opening_an_ack_link_shows_the_incident_and_changes_nothing(client, engine) -> None:  # type: ignore[no-untyped-def]
    incident_id = opened(engine, summary="<script>alert(1)</script> & down")
    ack, _ = paths(engine, incident_id)
    for _ in range(3):  # a mail scanner, a chat unfurler, the person
        page = client.get(ack)
        assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; down" in page.text
    assert "<script>" not in page.text
    assert '<form method="post"><button type="submit">Acknowledge</button></form>' in page.text
    assert "Acknowledge this incident as ann?" in page.text
    assert "2026-11-27 01:10 UTC" in page.text  # the P1 deadline
    assert state(engine, incident_id) == "triggered"
    assert [kind for kind, _, _ in timeline(engine, incident_id)] == ["incident.opened"]


def test_posting_acknowledges_once_as_the_person_the_link_was_made_for(client, engine) -> None:  # type: ignore[no-untyped-def]
    incident_id = opened(engine)
    ack, _ = paths(engine, incident_id)
    first = client.post(ack)
    assert first.status_code == 200
    assert "Acknowledged by ann." in first.text
    again = client.post(ack)
    assert again.status_code == 200
    assert "Already acknowledged: nothing changed." in again.text
    assert "Already acknowledged: nothing to do." in client.get(ack).text
    assert timeline(engine, incident_id)[1:] == [
        (
            "incident.acknowledged",
            "person:ann",
            {
                "from": "triggered",
                "to": "acknowledged",
                "note": "acknowledged from a notification link",
                "via": "link",
            },
        )
    ]


def test_a_resolve_link_resolves_and_then_says_so(client, engine) -> None:  # type: ignore[no-untyped-def]
    incident_id = opened(engine)
    ack, resolve = paths(engine, incident_id, person="bob")
    assert "Resolved by bob." in client.post(resolve).text
    assert "Already resolved: nothing changed." in client.post(resolve).text
    assert "Already resolved: nothing changed." in client.post(ack).text  # nothing left to acknowledge
    assert [(k, a) for k, a, _ in timeline(engine, incident_id)] == [
        ("incident.opened", "test"),
        ("incident.resolved", "person:bob"),
    ]


def test_an_expired_link_is_refused_and_says_when_it_expired(client, engine) -> None:  # type: ignore[no-untyped-def]
    incident_id = opened(engine)
    ack, _ = paths(engine, incident_id)
    engine.clock.advance(DEFAULT_TTL)
    for response in (client.get(ack), client.post(ack)):
        assert response.status_code == 403
        assert "this link expired at 2026-11-28T01:00:00+00:00" in response.text
    assert state(engine, incident_id) == "triggered"


def test_a_forged_or_misused_link_is_refused_with_the_reason(client, engine) -> None:  # type: ignore[no-untyped-def]
    incident_id = opened(engine)
    ack, _ = paths(engine, incident_id)
    token = ack.rsplit("/", 1)[1]
    assert (
        "this link is for &#x27;ack&#x27;, not &#x27;resolve&#x27;" in client.post(f"/resolve/{token}").text
    )
    forged = client.post(f"/ack/{token[:-4]}AAAA")
    assert (forged.status_code, "this link was not issued by this maintd" in forged.text) == (403, True)
    with engine.store.write() as s:
        feed = sign(s, Grant("ack", "schedule:ops", "user:ann", None))
    assert client.post(f"/ack/{feed}").status_code == 403
    assert state(engine, incident_id) == "triggered"


def test_an_unknown_incident_is_404_and_a_closed_one_409(client, engine) -> None:  # type: ignore[no-untyped-def]
    ack, _ = paths(engine, 999)
    assert client.get(ack).status_code == 404
    assert "no incident 999" in client.post(ack).text
    incident_id = opened(engine, severity=Severity.warning)  # P3: closes without a post-mortem
    with engine.store.write() as s:
        settings = service.stored_settings(s)
        for change in (service.resolve, service.close):
            change(s, incident_id=incident_id, actor="test", now=engine.clock.now(), settings=settings)
    ack, resolve = paths(engine, incident_id)
    for response in (client.get(ack), client.post(resolve)):
        assert response.status_code == 409
        assert f"incident {incident_id} is closed" in response.text
