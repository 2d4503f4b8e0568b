"""How a task kind asks for a change instead of making it: the params naming the plan's procedure
and type, and drafting the change request in maintd's store (maintd.changes.drafts).

Shared by unused-resources, security-policies and scanner-updates: each writes what the change
would do to a file, then drafts one change whose procedure (an argument list reviewed in the plan)
does exactly that, for a person to submit and the approval matrix to approve.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from maintd.plan.base import StrictModel
from maintd.plan.changes import Name

if TYPE_CHECKING:
    from maintd.changes.drafts import Drafted


class ChangeDraftSettings(StrictModel):
    """The change request a run drafts (a person submits it; its type's approvals follow)."""

    procedure: Name = Field(description="the plan's procedure the change runs (changes.procedures)")
    type: Name = Field(default="configuration-update", description="the change type of the draft")
    targets: list[Name] = Field(default=[], description="the change's targets; empty: the run's target")
    checks: list[Name] | None = Field(default=None, description="tasks to watch; unset: the type's")
    plan: str | None = Field(default=None, description="the plan file or folder; default: MAINTD_PLAN")
    database: str | None = Field(
        default=None, description="maintd's database URL; default: MAINTD_DATABASE_URL, else the default file"
    )


class DraftFailed(Exception):
    """The change could not be drafted; the message says why (no plan, a refused request...)."""


@dataclass(frozen=True)
class Ask:
    title: str
    description: str
    params: dict[str, str]
    target: str  # the run's target, when the settings name none


async def draft(settings: ChangeDraftSettings, ask: Ask, requester: str, now: datetime) -> Drafted:
    """Load the plan, draft the change (or find the one of that title). Raises DraftFailed."""
    return await asyncio.to_thread(_draft, settings, ask, requester, now)


def _draft(settings: ChangeDraftSettings, ask: Ask, requester: str, now: datetime) -> Drafted:
    # Imported here: registering a kind (every maintd start) must not pay for the store and the
    # changes room; only a run that drafts does.
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from maintd.changes.drafts import draft_change
    from maintd.changes.model import ChangeError, ChangeRequest
    from maintd.plan.loader import PlanError, load_plan
    from maintd.registry import Registry
    from maintd.settings import Settings
    from maintd.store.db import Store, StoreError

    env = Settings.from_env()
    plan_path = settings.plan or (str(env.plan_path) if env.plan_path else None)
    if plan_path is None:
        raise DraftFailed("no plan to draft the change in: set params.change.plan or MAINTD_PLAN")
    try:
        loaded = load_plan(Path(plan_path), Registry.default())
    except (PlanError, OSError) as exc:
        raise DraftFailed(f"the plan {plan_path} does not load: {str(exc).splitlines()[0]}") from None
    url = settings.database or env.database_url
    request = ChangeRequest(
        type=settings.type,
        title=ask.title,
        description=ask.description,
        procedure=settings.procedure,
        params=ask.params,
        targets=settings.targets or [ask.target],
        checks=settings.checks,
        draft=True,
    )
    store = Store(url)
    try:
        with store.write() as session:
            return draft_change(
                session,
                plan=loaded.plan,
                request=request,
                requester=requester,
                now=now,
            )
    except ChangeError as exc:
        raise DraftFailed(f"the plan refuses the change: {exc}") from None
    except (StoreError, SQLAlchemyError) as exc:
        shown = make_url(url).render_as_string(hide_password=True)
        raise DraftFailed(f"cannot write the change to {shown}: {str(exc).splitlines()[0]}") from None
    finally:
        store.dispose()
