"""A plan becoming the running one: what is written with it, in the activating transaction.

The schedules are synced, the plan version and its event stored (only when it differs from
the stored one: a restart with the same plan is no change), and the rooms that keep timers
of their own (handoffs, lifecycle reminders, review openings) are set for it.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from maintd import views
from maintd.incidents.escalation import POLICIES_READ
from maintd.lifecycle import coverage as lifecycle_coverage
from maintd.lifecycle import reminders as lifecycle_reminders
from maintd.lifecycle.records import Catalog
from maintd.oncall import handoff_delivery
from maintd.plan.loader import LoadedPlan
from maintd.reviews import reminders as review_reminders
from maintd.scheduler.sync import SyncResult, sync_schedules
from maintd.store.events import Event, append
from maintd.store.models import PlanVersionRow

log = logging.getLogger(__name__)

YOUNG_GC = 10_000  # gc threshold of the youngest generation once a plan is loaded (release_memory)


def record_activation(
    session: Session, loaded: LoadedPlan, now: datetime, *, actor: str, source: str
) -> tuple[SyncResult, bool]:
    """Sync, store and set the timers of ``loaded``; the sync's result and whether the plan changed."""
    stored = views.active_plan(session)
    changed = stored is None or stored.digest != loaded.digest
    if changed:
        # The document is a tree of dicts as large as the plan (~15 MB for 10,000 tasks): flushed
        # first, it is freed before the sync allocates what outlives it, so its memory is handed
        # back whole (built later, it left ~9 MB of the heap pinned in the memory benchmark).
        session.add(
            PlanVersionRow(loaded_at=now, digest=loaded.digest, source=source, document=loaded.document)
        )
        session.info.pop(POLICIES_READ, None)  # a new plan: its policies from here on
        session.flush()
    result = sync_schedules(session, loaded, now)
    handoff_delivery.schedule_next_handoffs(session, schedules=loaded.plan.schedules, now=now)
    if changed:
        payload = {
            "source": source,
            "digest": loaded.digest,
            "tasks": len(loaded.plan.tasks),
            "targets": len(loaded.plan.targets),
            "added": result.added,
            "rescheduled": result.rescheduled,
            "deactivated": result.deactivated,
            "warnings": [str(w) for w in loaded.warnings],
        }
        append(session, Event("plan.loaded", "plan", now, actor, payload))
    previous = stored.document if changed and stored is not None else None
    _lifecycle(session, loaded, now, changed=changed, previous=previous)  # reminders, EOL notices
    _reviews(session, loaded, now)  # the current and next periods' reviews open on timers
    return result, changed


def record_rejection(
    session: Session, now: datetime, *, actor: str, source: str, problems: list[str], kept: str | None
) -> None:
    payload = {"source": source, "problems": problems[:100], "kept": kept}
    append(session, Event("plan.rejected", "plan", now, actor, payload))


def _lifecycle(
    session: Session, loaded: LoadedPlan, now: datetime, *, changed: bool, previous: dict[str, Any] | None
) -> None:
    """What changed under the plan's documents (against the stored plan), then the lifecycle's
    timers. A failure must not refuse the plan."""
    plan = loaded.plan
    if not (plan.components or plan.documents or plan.trainings):
        return
    try:
        with session.begin_nested():
            if changed:
                lifecycle_coverage.record_plan(session, previous, plan, digest=loaded.digest, now=now)
            lifecycle_reminders.schedule_all(session, Catalog.of(plan), now)
    except Exception:
        log.exception("scheduling lifecycle reminders failed; they are set again at the next load or record")


def _reviews(session: Session, loaded: LoadedPlan, now: datetime) -> None:
    """The reviews' opening timers; a failure must not refuse the plan."""
    if not loaded.plan.reviews:
        return
    try:
        with session.begin_nested():
            review_reminders.schedule_openings(session, loaded.plan.reviews, now)
    except Exception:
        log.exception("scheduling review openings failed; they are set again at the next load")


def release_memory() -> None:
    """Give the memory a plan load used only briefly back to the system.

    Loading and syncing a large plan allocates tens of MB of short-lived objects;
    glibc keeps freed heap pages unless asked, so without this RSS stays at the peak.
    The plan then lives until the next load: frozen, the collector stops walking its
    objects on every full collection (measured: ~0.07 ms per run with 10,000 targets).
    The young generation is collected after YOUNG_GC net new objects rather than CPython's 700:
    runs in flight keep a few hundred each alive, so at 700 the collector ran every few runs
    (measured: 0.06 CPU-ms per http check in collections, 0.01 at 10,000, 8 full ones fewer).
    """
    gc.unfreeze()  # the previous plan's objects may be garbage now
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GC, older, oldest)
