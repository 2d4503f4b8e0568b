"""The alert routes remember found keys and tokens for a second, and nothing else."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from fastapi import HTTPException
from sqlalchemy import select, update

from maintd.alerts.integrations import IntegrationKind, create_integration, disable_integration
from maintd.api.senders import TTL, Senders
from maintd.auth import Role, create_token, revoke_token
from maintd.clock import FakeClock
from maintd.store.db import Store
from maintd.store.models import IntegrationRow, TokenRow


class Seconds:
    """The cache's monotonic time, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def seconds() -> Seconds:
    return Seconds()


@pytest.fixture
def senders(store: Store, clock: FakeClock, seconds: Seconds) -> Senders:
    return Senders(store, clock, monotonic=seconds)


def make_key(store: Store, clock: FakeClock, name: str = "prom") -> str:
    with store.write() as s:
        return create_integration(s, name=name, kind=IntegrationKind.alertmanager, now=clock.now(), actor="t")


def make_token(store: Store, clock: FakeClock, name: str, role: Role) -> str:
    with store.write() as s:
        return create_token(s, name=name, role=role, now=clock.now(), actor="t")


def test_a_disabled_key_works_until_the_second_is_over(senders, store, clock, seconds):
    key = make_key(store, clock)
    assert asyncio.run(senders.integration(key)).name == "prom"
    with store.write() as s:
        disable_integration(s, name="prom", now=clock.now(), actor="t")
    seconds.now += TTL - 0.01
    assert asyncio.run(senders.integration(key)).name == "prom"
    seconds.now += 0.02
    assert asyncio.run(senders.integration(key)) is None


def test_a_refused_key_is_asked_for_every_time(senders, store, clock):
    assert asyncio.run(senders.integration("0" * 32)) is None
    key = make_key(store, clock)
    with store.write() as s:
        disable_integration(s, name="prom", now=clock.now(), actor="t")
    assert asyncio.run(senders.integration(key)) is None
    # Re-enabled behind the cache's back: a refusal was not remembered, so it works at once.
    with store.write() as s:
        s.execute(update(IntegrationRow).where(IntegrationRow.name == "prom").values(disabled_at=None))
    assert asyncio.run(senders.integration(key)).name == "prom"


def test_forget_refuses_a_disabled_key_at_once(senders, store, clock):
    key = make_key(store, clock)
    assert asyncio.run(senders.integration(key)) is not None
    with store.write() as s:
        disable_integration(s, name="prom", now=clock.now(), actor="t")
    senders.forget()
    assert asyncio.run(senders.integration(key)) is None


def test_a_revoked_token_works_until_the_second_is_over(senders, store, clock, seconds):
    token = make_token(store, clock, "rob", Role.responder)
    header = f"Bearer {token}"
    assert asyncio.run(senders.principal(header, Role.responder)).name == "rob"
    with store.write() as s:
        revoke_token(s, name="rob", now=clock.now(), actor="t")
    assert asyncio.run(senders.principal(header, Role.responder)).name == "rob"
    seconds.now += TTL + 0.01
    with pytest.raises(HTTPException) as refused:
        asyncio.run(senders.principal(header, Role.responder))
    assert (refused.value.status_code, refused.value.detail) == (401, "unknown or revoked token")


def test_a_remembered_token_below_the_role_is_still_403(senders, store, clock):
    header = f"Bearer {make_token(store, clock, 'vera', Role.viewer)}"
    for _ in range(2):  # found, then remembered
        with pytest.raises(HTTPException) as refused:
            asyncio.run(senders.principal(header, Role.responder))
        assert refused.value.status_code == 403
        assert refused.value.detail == "this needs the responder role; token 'vera' is viewer"


def test_no_bearer_token_is_401(senders):
    for header in ("", "Basic abc", "Bearer "):
        with pytest.raises(HTTPException) as refused:
            asyncio.run(senders.principal(header, Role.responder))
        assert refused.value.status_code == 401


def test_a_remembered_token_is_still_stamped_once_a_minute(senders, store, clock, seconds):
    header = f"Bearer {make_token(store, clock, 'rob', Role.responder)}"

    def last_used():  # type: ignore[no-untyped-def]
        with store.read() as s:
            return s.scalar(select(TokenRow.last_used_at).where(TokenRow.name == "rob"))

    asyncio.run(senders.principal(header, Role.responder))
    first = last_used()
    assert first == clock.now()
    clock.advance(timedelta(seconds=30))
    asyncio.run(senders.principal(header, Role.responder))
    assert last_used() == first
    clock.advance(timedelta(seconds=31))
    asyncio.run(senders.principal(header, Role.responder))
    assert last_used() == clock.now()
