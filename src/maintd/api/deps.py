"""What every route gets: the app context and the caller's principal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from fastapi import Depends, HTTPException, Request

from maintd.auth import Principal, Role, authenticate, touch
from maintd.clock import Clock
from maintd.engine import Engine
from maintd.metrics import Metrics
from maintd.store.db import Store

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
            with ctx.store.write() as session:
                touch(session, principal.name, now)
        return principal

    return dependency
