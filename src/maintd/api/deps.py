"""What every route gets: the app context and the caller's principal."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, TypeVar

from fastapi import Depends, HTTPException, Path, Query, Request

from maintd.auth import Principal, Role, authenticate, stamp
from maintd.clock import Clock
from maintd.engine import Engine
from maintd.metrics import Metrics
from maintd.store.db import Store

# Row ids are INTEGER columns (PostgreSQL's int4): a larger number from a client failed in the
# database driver (a 500 on both stores, found by tests/test_schemathesis.py); now it is a 422.
MAX_ID = 2_147_483_647
T = TypeVar("T")
Id = Annotated[int, Path(ge=1, le=MAX_ID, description="a row id")]
IdFilter = Annotated[int | None, Query(ge=1, le=MAX_ID, description="only the rows of this incident id")]
# Pages of a list: ``limit`` with ``offset`` (the runs and the events also have cursors of their own).
MAX_OFFSET = 1_000_000
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="skip this many first: with limit, a page")]
AllLimit = Annotated[int | None, Query(ge=1, le=10_000, description="at most this many (default: all)")]


def page(items: Sequence[T], limit: int | None, offset: int) -> list[T]:
    """``limit`` items from ``offset`` of a list built in memory (the plan's, never a table's)."""
    return list(items[offset : None if limit is None else offset + limit])


TOUCH_EVERY = timedelta(minutes=1)  # last-used stamps cost one write per token per minute, not per request


@dataclass
class AppContext:
    store: Store
    clock: Clock
    metrics: Metrics
    engine: Engine | None = None  # None when the API runs without a scheduler (tests, --role api later)


def poke(ctx: AppContext) -> None:
    """After a commit that changed incidents: let this process's engine act on it at once."""
    if ctx.engine is not None:
        ctx.engine.poke()


def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def require(role: Role) -> Callable[..., Principal]:
    def dependency(request: Request, ctx: AppContext = Depends(context)) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(401, "send 'Authorization: Bearer <token>' (create one: maintd token create)")
        with ctx.store.read() as session:
            found = authenticate(session, token.strip())
        if found is None:
            raise HTTPException(401, "unknown or revoked token")
        principal, last_used = found
        if not principal.role.allows(role):
            raise HTTPException(
                403, f"this needs the {role} role; token {principal.name!r} is {principal.role}"
            )
        now = ctx.clock.now()
        if last_used is None or now - last_used > TOUCH_EVERY:
            stamp(ctx.store, principal.name, now)
        return principal

    return dependency
