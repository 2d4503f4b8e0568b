"""Database timers on both databases: scheduled once, fired once (also by two processes at once),
cancelled for good, retried later when their handler fails, and reported when overdue."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event, func, insert, select
from sqlalchemy.orm import Session

from maintd import timers
from maintd.notify.message import Message
from maintd.notify.outbox import Recipient, enqueue
from maintd.store.db import Store
from maintd.store.models import EventRow, NotificationRow, TimerRow
from tests.conftest import T0


def add(store: Store, step: str, due_at: datetime, kind: str = "probe", subject: str = "thing:1") -> bool:
    with store.write() as s:
        return timers.schedule(s, kind=kind, subject=subject, step=step, due_at=due_at, payload={}, now=T0)


def row(store: Store, step: str) -> TimerRow:
    with store.read() as s:
        found = s.scalar(select(TimerRow).where(TimerRow.step == step))
        assert found is not None
        return found


class Recorder:
    """A handler that remembers what it was called for (thread-safe) and queues one page per timer."""

    def __init__(self) -> None:
        self.calls: Counter[int] = Counter()
        self.lock = threading.Lock()

    def __call__(self, session: Session, timer: TimerRow, now: datetime) -> None:
        with self.lock:
            self.calls[timer.id] += 1
        enqueue(
            session,
            subject=timer.subject,
            incident_id=None,
            recipient=Recipient("person:ann", []),
            state="triggered",
            step=timer.step,
            message=Message(title="t", summary="s", state="triggered"),
            now=now,
        )


def test_scheduling_the_same_step_twice_keeps_one_timer(store: Store):
    assert add(store, "c0.l1", T0) is True
    assert add(store, "c0.l1", T0 + timedelta(minutes=5)) is False
    assert row(store, "c0.l1").due_at == T0


def test_the_next_due_time_is_the_earliest_pending_timer(store: Store):
    with store.read() as s:
        assert timers.next_due_at(s) is None
    add(store, "late", T0 + timedelta(minutes=30))
    add(store, "soon", T0 + timedelta(minutes=15))
    add(store, "other", T0 + timedelta(minutes=1), kind="handoff")
    with store.read() as s:
        assert timers.next_due_at(s) == T0 + timedelta(minutes=1)
        assert timers.next_due_at(s, kinds=["probe"]) == T0 + timedelta(minutes=15)
        assert timers.due(s, T0 + timedelta(minutes=20), kinds=["probe"]) == [row(store, "soon").id]


def test_a_due_timer_fires_once_and_its_handler_runs_once(store: Store):
    add(store, "c0.l1", T0)
    handler = Recorder()
    with store.write() as s:
        (fired,) = timers.fire_due(s, T0 + timedelta(seconds=1), owner="a", handlers={"probe": handler})
    with store.write() as s:
        assert timers.fire_due(s, T0 + timedelta(seconds=2), owner="a", handlers={"probe": handler}) == []
    assert (fired.step, fired.late_seconds, fired.error) == ("c0.l1", 1.0, None)
    assert list(handler.calls.values()) == [1]
    timer = row(store, "c0.l1")
    assert (timer.fired_at, timer.fired_by) == (T0 + timedelta(seconds=1), "a")
    with store.read() as s:
        assert timers.next_due_at(s) is None


def test_a_timer_is_not_fired_before_it_is_due(store: Store):
    add(store, "c0.l2", T0 + timedelta(minutes=15))
    with store.write() as s:
        assert timers.fire_due(s, T0 + timedelta(minutes=14), owner="a", handlers={"probe": Recorder()}) == []


def test_a_claim_succeeds_once_and_never_on_a_cancelled_timer(store: Store):
    add(store, "one", T0)
    add(store, "two", T0)
    with store.write() as s:
        assert timers.claim(s, row(store, "one").id, T0, "a") is True
        assert timers.claim(s, row(store, "one").id, T0, "b") is False
    with store.write() as s:
        assert timers.cancel(s, subject="thing:1", kind="probe", now=T0) == 1
        assert timers.claim(s, row(store, "two").id, T0, "a") is False
    assert row(store, "one").fired_by == "a"
    assert row(store, "two").cancelled_at == T0


def test_cancelled_timers_do_not_fire(store: Store):
    add(store, "c0.l1", T0 + timedelta(minutes=1))
    with store.write() as s:
        timers.cancel(s, subject="thing:1", kind="probe", now=T0)
    handler = Recorder()
    with store.write() as s:
        assert timers.fire_due(s, T0 + timedelta(hours=1), owner="a", handlers={"probe": handler}) == []
    assert handler.calls == Counter()


def test_a_kind_without_a_handler_stays_pending(store: Store):
    add(store, "report", T0, kind="handoff")
    with store.write() as s:
        assert timers.fire_due(s, T0, owner="a", handlers={"probe": Recorder()}) == []
    assert row(store, "report").fired_at is None


def test_timers_claimed_in_place_are_inserted_fired_only_when_due_and_of_the_kinds_asked(store: Store):
    with store.write() as s:
        with timers.claiming_in_place(s, owner="a", kinds=["probe"], now=T0) as claimed:
            for step, due_at, kind in (("now", T0, "probe"), ("later", T0 + timedelta(minutes=5), "probe")):
                timers.schedule(s, kind=kind, subject="thing:1", step=step, due_at=due_at, payload={}, now=T0)
            timers.schedule(s, kind="handoff", subject="thing:1", step="other", due_at=T0, payload={}, now=T0)
        assert [(t.step, t.fired_at, t.fired_by) for t in claimed] == [("now", T0, "a")]
        # Outside the block scheduling is as ever: pending.
        timers.schedule(s, kind="probe", subject="thing:1", step="after", due_at=T0, payload={}, now=T0)
    assert (row(store, "now").fired_at, row(store, "now").fired_by) == (T0, "a")
    assert [row(store, step).fired_at for step in ("later", "other", "after")] == [None, None, None]
    with store.write() as s:  # claimed in place: no later firing takes it again
        fired = timers.fire_due(s, T0, owner="b", handlers={"probe": Recorder(), "handoff": Recorder()})
    assert sorted(f.step for f in fired) == ["after", "other"]


def test_a_policy_s_steps_are_added_by_one_insert_those_present_kept_those_due_claimed_in_place(
    store: Store,
):
    add(store, "c0.l2", T0 + timedelta(minutes=15), kind="escalate")  # there already: kept as it is
    steps = [
        timers.NewTimer("escalate", "thing:1", f"c0.l{n}", T0 + timedelta(minutes=15 * (n - 1)), {})
        for n in (1, 2, 3)
    ]
    inserts: list[str] = []
    with store.write() as s:

        @event.listens_for(s.connection(), "before_cursor_execute")
        def _seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
            if statement.startswith("INSERT INTO timers"):
                inserts.append(statement)

        with timers.claiming_in_place(s, owner="a", kinds=["escalate"], now=T0) as claimed:
            assert timers.schedule_all(s, steps, now=T0) == [True, False, True]
        assert [(t.step, t.fired_by) for t in claimed] == [("c0.l1", "a")]  # due now: fired in place
    assert len(inserts) == 1
    assert [(row(store, f"c0.l{n}").fired_by, row(store, f"c0.l{n}").due_at) for n in (1, 2, 3)] == [
        ("a", T0),
        (None, T0 + timedelta(minutes=15)),
        (None, T0 + timedelta(minutes=30)),
    ]


def test_a_timer_claimed_in_place_and_put_back_is_pending_and_fires_once_later(store: Store):
    with store.write() as s:
        with timers.claiming_in_place(s, owner="a", kinds=["probe"], now=T0) as claimed:
            timers.schedule(s, kind="probe", subject="thing:1", step="c0.l1", due_at=T0, payload={}, now=T0)
        timers.unclaim(s, claimed)
    assert (row(store, "c0.l1").fired_at, row(store, "c0.l1").fired_by) == (None, None)
    handler = Recorder()
    with store.write() as s:
        assert [f.step for f in timers.fire_due(s, T0, owner="b", handlers={"probe": handler})] == ["c0.l1"]
    assert list(handler.calls.values()) == [1] and row(store, "c0.l1").fired_by == "b"


def test_a_timer_claimed_in_place_by_a_transaction_rolled_back_is_not_there(store: Store):
    with pytest.raises(RuntimeError), store.write() as s:
        with timers.claiming_in_place(s, owner="a", kinds=["probe"], now=T0):
            timers.schedule(s, kind="probe", subject="thing:1", step="c0.l1", due_at=T0, payload={}, now=T0)
        raise RuntimeError("the caller's transaction fails")
    with store.read() as s:
        assert s.scalars(select(TimerRow)).all() == []


def test_a_failing_handler_is_undone_and_retried_later_while_the_rest_of_the_batch_fires(store: Store):
    add(store, "bad", T0)
    add(store, "good", T0 + timedelta(seconds=1))
    recorder = Recorder()

    def handler(session: Session, timer: TimerRow, now: datetime) -> None:
        recorder(session, timer, now)  # queues a page: must be undone with the failure
        if timer.step == "bad":
            raise RuntimeError("boom")

    now = T0 + timedelta(seconds=5)
    with store.write() as s:
        fired = timers.fire_due(s, now, owner="a", handlers={"probe": handler})
    assert [(f.step, f.error) for f in fired] == [("bad", "RuntimeError: boom"), ("good", None)]
    bad = row(store, "bad")
    assert (bad.fired_at, bad.due_at) == (None, now + timedelta(seconds=30))
    assert bad.payload == {"failures": 1, "error": "RuntimeError: boom", "first_due": T0.isoformat()}
    with store.read() as s:
        assert s.scalars(select(NotificationRow.step)).all() == ["good"]
        (event,) = s.scalars(select(EventRow).where(EventRow.kind == "timer.failed"))
    assert event.payload["step"] == "bad"
    with store.write() as s:  # the second failure waits twice as long
        timers.fire_due(s, now + timedelta(seconds=30), owner="a", handlers={"probe": handler})
    assert row(store, "bad").due_at == now + timedelta(seconds=90)


def test_overdue_lists_pending_timers_late_by_more_than_the_allowance(store: Store):
    add(store, "a", T0)
    add(store, "b", T0 + timedelta(seconds=30))
    add(store, "c", T0, kind="handoff")
    with store.read() as s:
        late = timers.overdue(s, T0 + timedelta(seconds=61), by=timedelta(seconds=60), kind="probe")
    assert [t.step for t in late] == ["a"]


@pytest.mark.parametrize("processes", [2])
def test_two_processes_firing_at_once_fire_each_of_2000_timers_once(store: Store, processes: int):
    with store.write() as s:
        s.execute(
            insert(TimerRow),
            [
                {
                    "kind": "probe",
                    "subject": f"thing:{i}",
                    "step": "c0.l1",
                    "due_at": T0 + timedelta(milliseconds=i),
                    "payload": {},
                    "created_at": T0,
                }
                for i in range(2000)
            ],
        )
    handler = Recorder()
    stores = [store] + [Store(store.url) for _ in range(processes - 1)]  # one engine per "process"
    start = threading.Barrier(processes)
    errors: list[BaseException] = []

    def process(own: Store, name: str) -> None:
        try:
            start.wait(timeout=10)
            while True:
                with own.write() as s:
                    fired = timers.fire_due(
                        s, T0 + timedelta(seconds=5), owner=name, handlers={"probe": handler}, limit=100
                    )
                if not fired:
                    return
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=process, args=(st, f"p{i}")) for i, st in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for extra in stores[1:]:
        extra.dispose()
    assert errors == []
    assert len(handler.calls) == 2000 and set(handler.calls.values()) == {1}
    with store.read() as s:
        assert s.scalar(select(func.count()).select_from(NotificationRow)) == 2000
        assert s.scalar(select(func.count()).where(TimerRow.fired_at.is_(None))) == 0
