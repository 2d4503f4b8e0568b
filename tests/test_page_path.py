"""From a due escalation step to the page leaving: the firing tick leases the pages it queued, in
its own transaction, and starts sending them itself; the dispatcher's loop sends what is left."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import event, select

from maintd.alerts.model import AlertIn, Severity
from maintd.api.app import create_app
from maintd.api.deps import AppContext
from maintd.auth import Role, create_token
from maintd.clock import FakeClock
from maintd.engine import Engine
from maintd.incidents.pipeline import ingest
from maintd.notify.transport import AppriseNotifier
from maintd.registry import Registry
from maintd.settings import DEFAULT_NOTIFY_CONCURRENCY, Settings
from maintd.store.db import Store
from maintd.store.models import NotificationAttemptRow, NotificationRow, TimerRow
from tests.conftest import run
from tests.notify_support import Webhook
from tests.test_escalation import open_incident


def plan(url: str) -> str:
    return f"""
        people:
          - {{name: pat, email: pat@example.test, notify: ["{url}"]}}
        escalation_policies:
          - name: ops
            levels:
              - {{after: 0m, notify: [{{person: pat}}]}}
        incidents:
          escalation_policy: ops
          group_wait: 0s
        """


def engine_for(
    store: Store,
    write_plan: Callable[..., Path],
    clock: FakeClock,
    registry: Registry,
    url: str,
    concurrency: int | None = None,
) -> Engine:
    notifier = AppriseNotifier(connect_timeout=1.0, read_timeout=1.0, total_timeout=3.0)
    settings = Settings(database_url=store.url, plan_path=write_plan(plan(url)))
    engine = Engine(settings, store=store, registry=registry, clock=clock, notifier=notifier)
    assert engine.reload().ok, engine.last_reload
    assert engine.dispatcher is not None
    if concurrency is not None:
        engine.dispatcher.concurrency = concurrency
    return engine


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def sent_once(store: Store) -> list[tuple[str, int]]:
    """(status, attempts recorded) of every notification row."""
    with store.read() as s:
        rows = s.scalars(select(NotificationRow).order_by(NotificationRow.id)).all()
        return [
            (
                r.status,
                len(
                    s.scalars(
                        select(NotificationAttemptRow).where(NotificationAttemptRow.notification_id == r.id)
                    ).all()
                ),
            )
            for r in rows
        ]


def test_the_firing_tick_sends_the_page_it_queued_while_the_dispatcher_sleeps(
    store: Store, write_plan, clock: FakeClock, registry: Registry, webhook: Webhook
) -> None:
    engine = engine_for(store, write_plan, clock, registry, webhook.url("/pat"))
    dispatcher = engine.dispatcher
    assert dispatcher is not None

    async def scenario() -> None:
        dispatcher.start()
        await eventually(lambda: clock.sleeping > 0)  # its first pass found nothing: it sleeps
        incident_id = open_incident(store, engine)
        await asyncio.to_thread(engine.tick, clock.now())
        await eventually(lambda: webhook.count("/pat") == 1)
        await eventually(lambda: sent_once(store) == [("sent", 1)])
        with store.read() as s:
            step = s.scalar(select(TimerRow).where(TimerRow.subject == f"incident:{incident_id}"))
            assert step is not None and step.fired_at == clock.now()  # the timer keeps its record
        await dispatcher.stop()

    run(scenario())
    assert webhook.count("/pat") == 1


def test_pages_beyond_the_free_sends_are_left_to_the_dispatcher_loop_and_each_goes_once(
    store: Store, write_plan, clock: FakeClock, registry: Registry, webhook: Webhook
) -> None:
    engine = engine_for(store, write_plan, clock, registry, webhook.url("/pat"), concurrency=1)
    dispatcher = engine.dispatcher
    assert dispatcher is not None

    async def scenario() -> None:
        dispatcher.start()
        await eventually(lambda: clock.sleeping > 0)  # its first pass found nothing: it sleeps
        for target in ("api", "db", "cache"):
            open_incident(store, engine, target=target)
        await asyncio.to_thread(engine.tick, clock.now())  # one send free: the tick leases one page
        await eventually(lambda: webhook.count("/pat") == 3)
        await eventually(lambda: sent_once(store) == [("sent", 1)] * 3)
        await dispatcher.stop()

    run(scenario())
    assert webhook.count("/pat") == 3


def test_a_stopped_dispatcher_is_handed_nothing_and_the_page_waits_in_the_log(
    store: Store, write_plan, clock: FakeClock, registry: Registry, webhook: Webhook
) -> None:
    engine = engine_for(store, write_plan, clock, registry, webhook.url("/pat"))
    open_incident(store, engine)
    engine.tick(clock.now())  # no loop running: nothing is leased, the row stays claimable
    assert webhook.count("/pat") == 0
    with store.read() as s:
        (row,) = s.scalars(select(NotificationRow)).all()
        assert (row.status, row.lease_until) == ("pending", None)
    assert engine.dispatcher is not None and engine.dispatcher.deliver_due(clock.now()) == 1
    assert webhook.count("/pat") == 1


def test_an_alert_transaction_fires_its_new_step_in_place_and_the_page_leaves_on_commit(
    store: Store, write_plan, clock: FakeClock, registry: Registry, webhook: Webhook
) -> None:
    engine = engine_for(store, write_plan, clock, registry, webhook.url("/pat"))
    dispatcher = engine.dispatcher
    assert dispatcher is not None

    async def scenario() -> None:
        dispatcher.start()
        await eventually(lambda: clock.sleeping > 0)

        def alert_transaction() -> None:
            with store.write() as s, engine.firing_in_place(s, clock.now()):
                assert engine.loaded is not None
                ingest(s, [alert("api")], now=clock.now(), settings=engine.loaded.plan.incidents, actor="t")

        await asyncio.to_thread(alert_transaction)
        await eventually(lambda: sent_once(store) == [("sent", 1)])
        _, wake_at = engine.tick(clock.now())  # nothing left to fire
        assert wake_at == clock.now() + timedelta(minutes=30)  # only the response deadline is left
        await dispatcher.stop()

    run(scenario())
    assert webhook.count("/pat") == 1
    with store.read() as s:
        (step,) = s.scalars(select(TimerRow)).all()
        assert (step.step, step.fired_at, step.fired_by) == ("c0.l1", clock.now(), engine.instance)


def test_an_alert_transaction_rolled_back_after_firing_in_place_leaves_nothing_and_sends_nothing(
    store: Store, write_plan, clock: FakeClock, registry: Registry, webhook: Webhook
) -> None:
    engine = engine_for(store, write_plan, clock, registry, webhook.url("/pat"))
    dispatcher = engine.dispatcher
    assert dispatcher is not None

    async def scenario() -> None:
        dispatcher.start()
        await eventually(lambda: clock.sleeping > 0)

        def alert_transaction() -> None:
            with contextlib.suppress(RuntimeError), store.write() as s:
                assert engine.loaded is not None
                with engine.firing_in_place(s, clock.now()):
                    ingest(
                        s, [alert("api")], now=clock.now(), settings=engine.loaded.plan.incidents, actor="t"
                    )
                raise RuntimeError("the alert's transaction fails after the step fired")

        await asyncio.to_thread(alert_transaction)
        with store.read() as s:
            assert s.scalars(select(NotificationRow)).all() == []
            assert s.scalars(select(TimerRow)).all() == []
        open_incident(store, engine, target="db")  # a later page goes out, and only it
        await asyncio.to_thread(engine.tick, clock.now())
        await eventually(lambda: sent_once(store) == [("sent", 1)])
        await dispatcher.stop()

    run(scenario())
    assert webhook.count("/pat") == 1


def test_pages_fired_in_place_beyond_the_free_sends_are_queued_unleased_and_each_goes_once(
    store: Store, write_plan, clock: FakeClock, registry: Registry, webhook: Webhook
) -> None:
    engine = engine_for(store, write_plan, clock, registry, webhook.url("/pat"), concurrency=1)
    dispatcher = engine.dispatcher
    assert dispatcher is not None

    async def scenario() -> None:
        dispatcher.start()
        await eventually(lambda: clock.sleeping > 0)

        leased = await asyncio.to_thread(paged_in_place, store, engine, clock, ["api", "db", "cache"])
        assert sorted(leased) == [False, False, True]  # one send free: the others left for the loop
        await eventually(lambda: webhook.count("/pat") == 3)
        await eventually(lambda: sent_once(store) == [("sent", 1)] * 3)
        await dispatcher.stop()

    run(scenario())
    assert webhook.count("/pat") == 3


def test_an_outage_s_burst_of_new_incidents_is_paged_in_place_not_left_to_the_loop(
    store: Store, write_plan, clock: FakeClock, registry: Registry, webhook: Webhook
) -> None:
    engine = engine_for(store, write_plan, clock, registry, webhook.url("/pat"))  # default sends at once
    dispatcher = engine.dispatcher
    assert dispatcher is not None and dispatcher.concurrency == DEFAULT_NOTIFY_CONCURRENCY
    targets = [f"node-{i}" for i in range(20)]  # more than the 8 sends the dispatcher used to have

    async def scenario() -> None:
        dispatcher.start()
        await eventually(lambda: clock.sleeping > 0)

        leased = await asyncio.to_thread(paged_in_place, store, engine, clock, targets)
        assert leased == [True] * len(targets)
        await eventually(lambda: sent_once(store) == [("sent", 1)] * len(targets))
        await dispatcher.stop()

    run(scenario())
    assert webhook.count("/pat") == len(targets)


def test_an_alert_transaction_reads_the_active_policies_once_for_all_the_incidents_it_opens(
    store: Store, write_plan, clock: FakeClock, registry: Registry, webhook: Webhook
) -> None:
    engine = engine_for(store, write_plan, clock, registry, webhook.url("/pat"))
    assert engine.loaded is not None
    reads: list[str] = []
    with store.write() as s:

        @event.listens_for(s.connection(), "before_cursor_execute")
        def _seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
            if "FROM plan_versions ORDER BY" in statement:
                reads.append(statement)

        with engine.firing_in_place(s, clock.now()):
            alerts = [alert(target) for target in ("api", "db", "cache")]
            done = ingest(s, alerts, now=clock.now(), settings=engine.loaded.plan.incidents, actor="t")
    assert [d.escalation_policy for d in done] == ["ops"] * 3  # three incidents, each on the policy
    assert len(reads) == 1


def test_the_engine_s_dispatcher_sends_as_many_at_once_as_the_settings_say(
    store: Store, write_plan, clock: FakeClock, registry: Registry
) -> None:
    settings = Settings(database_url=store.url, plan_path=write_plan(plan("json://x")), notify_concurrency=3)
    engine = Engine(settings, store=store, registry=registry, clock=clock, notifier=AppriseNotifier())
    assert engine.dispatcher is not None and engine.dispatcher.concurrency == 3


def test_a_step_that_fails_in_place_is_left_pending_for_the_loop_and_the_alert_is_stored(
    store: Store, write_plan, clock: FakeClock, registry: Registry, webhook: Webhook
) -> None:
    engine = engine_for(store, write_plan, clock, registry, webhook.url("/pat"))
    assert engine.loaded is not None
    handlers = engine.timer_handlers(engine.loaded)
    escalate = handlers["escalate"]

    def broken(*args: object) -> None:
        raise RuntimeError("the step fails in the alert's transaction")

    handlers["escalate"] = broken
    with store.write() as s, engine.firing_in_place(s, clock.now()):
        ingest(s, [alert("api")], now=clock.now(), settings=engine.loaded.plan.incidents, actor="t")
    with store.read() as s:
        (step,) = s.scalars(select(TimerRow)).all()
        assert (step.fired_at, step.fired_by) == (None, None)
        assert s.scalars(select(NotificationRow)).all() == []
    handlers["escalate"] = escalate
    engine.tick(clock.now())  # the loop fires it: one page
    assert engine.dispatcher is not None and engine.dispatcher.deliver_due(clock.now()) == 1
    assert webhook.count("/pat") == 1 and sent_once(store) == [("sent", 1)]


def paged_in_place(store: Store, engine: Engine, clock: FakeClock, targets: list[str]) -> list[bool]:
    """An alert transaction opening an incident per target, their first steps fired in it: whether
    each page it queued was leased by its insert (sent at the commit) or left for the loop."""
    assert engine.loaded is not None
    with store.write() as s:
        with engine.firing_in_place(s, clock.now()):
            alerts = [alert(target) for target in targets]
            ingest(s, alerts, now=clock.now(), settings=engine.loaded.plan.incidents, actor="t")
        s.flush()
        return [r.lease_until is not None for r in s.scalars(select(NotificationRow))]


def alert(target: str) -> AlertIn:
    return AlertIn(
        source="native", labels={"alertname": "Down", "target": target}, severity=Severity.critical
    )


def test_an_alert_posted_to_the_api_pages_on_its_commit_without_waiting_for_a_tick(
    store: Store, write_plan, clock: FakeClock, registry: Registry, webhook: Webhook
) -> None:
    engine = engine_for(store, write_plan, clock, registry, webhook.url("/pat"))
    with store.write() as s:
        token = create_token(s, name="sender", role=Role.responder, now=clock.now(), actor="test")
    app = create_app(AppContext(store, clock, engine.metrics, engine))
    body = [{"labels": {"alertname": "Down", "target": "api"}, "severity": "critical"}]
    with TestClient(app) as client:
        answer = client.post("/api/v1/alerts", json=body, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    with store.read() as s:  # the scheduler loop never ran: the alert's own transaction fired the step
        (step,) = s.scalars(select(TimerRow)).all()
        (page,) = s.scalars(select(NotificationRow)).all()
    assert (step.step, step.fired_at, page.recipient) == ("c0.l1", clock.now(), "person:pat")
