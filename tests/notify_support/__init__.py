"""Real receivers for notification tests, on loopback, in a thread of their own.

The dispatcher's sends are synchronous (apprise in worker threads), so the servers
run their own event loop in a background thread and the tests stay plain functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import socket
import threading
from collections import defaultdict
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select

from maintd.clock import FakeClock
from maintd.notify.message import Message
from maintd.notify.outbox import Recipient, enqueue
from maintd.plan.notify import NotifyRule
from maintd.store.db import Store
from maintd.store.models import NotificationRow
from tests.conftest import T0

T = TypeVar("T")

PAGE = Message(
    title="disk full on db01",
    summary="/var on db01 is 97% full",
    state="triggered",
    incident_id=42,
    priority="P1",
    severity="critical",
    target="db01",
    runbook="https://runbooks.example.test/disk-full",
    deadline=T0 + timedelta(minutes=15),
    ack_url="https://maintd.example.test/ack/t0k3n",
    url="https://maintd.example.test/api/v1/incidents/42",
)


def queue(
    store: Store,
    clock: FakeClock,
    *rules: str | dict[str, Any],
    subject: str = "incident:42",
    step: str = "L1",
) -> int:
    recipient = Recipient("person:ann", [NotifyRule.model_validate(_rule(r)) for r in rules])
    with store.write() as s:
        enqueue(
            s,
            subject=subject,
            incident_id=int(subject.split(":")[1]) if subject.startswith("incident:") else None,
            recipient=recipient,
            state="triggered",
            step=step,
            message=PAGE,
            now=clock.now(),
        )
        return s.scalars(
            select(NotificationRow.id).where(NotificationRow.subject == subject, NotificationRow.step == step)
        ).one()


def _rule(rule: str | dict[str, Any]) -> dict[str, Any]:
    return {"url": rule} if isinstance(rule, str) else rule


class LoopThread:
    """An event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-servers", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


class Webhook:
    """Answers POSTs per path: a list of statuses to give first (then 200), or never (``hang``)."""

    def __init__(self, servers: LoopThread) -> None:
        self.servers = servers
        self.hits: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._statuses: dict[str, list[int]] = {}
        self._hang: set[str] = set()
        self._lock = threading.Lock()
        self.port = servers.run(self._start())

    async def _start(self) -> int:
        self._release = asyncio.Event()
        app = web.Application()
        app.router.add_post("/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.path
        body = await request.json()
        with self._lock:
            self.hits[path].append(body)
            queued = self._statuses.get(path, [])
            status = queued.pop(0) if queued else 200
        if path in self._hang:
            await self._release.wait()
        return web.Response(status=status, text="ok" if status == 200 else "no")

    def url(self, path: str) -> str:
        return f"json://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, *statuses: int) -> str:
        """Answer ``path`` with these statuses first, then 200; its URL."""
        self._statuses[path] = list(statuses)
        return self.url(path)

    def hang(self, path: str) -> str:
        """Accept requests to ``path`` and never answer (until the test ends); its URL."""
        self._hang.add(path)
        return self.url(path)

    def count(self, path: str) -> int:
        with self._lock:
            return len(self.hits[path])

    def close(self) -> None:
        self.servers.loop.call_soon_threadsafe(self._release.set)
        self.servers.run(self._runner.cleanup())


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    subject: str
    text: str


class Mailbox:
    """An SMTP server (aiosmtpd) that keeps what it receives; plain SMTP, no TLS, no login."""

    def __init__(self, servers: LoopThread) -> None:
        self.servers = servers
        self.messages: list[Mail] = []
        self.server, self.port = servers.run(self._start())

    async def _start(self) -> tuple[asyncio.Server, int]:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(self, hostname="127.0.0.1"), "127.0.0.1", 0)
        return server, int(server.sockets[0].getsockname()[1])

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        part = parsed.get_body(preferencelist=("plain",))
        text = part.get_content() if part is not None else ""  # type: ignore[attr-defined]
        self.messages.append(
            Mail(str(envelope.mail_from), list(envelope.rcpt_tos), str(parsed["Subject"]), str(text))
        )
        return "250 OK"

    def url(self, to: str = "oncall@example.test") -> str:
        return f"mailto://127.0.0.1:{self.port}?from=maintd@example.test&to={to}"

    def close(self) -> None:
        self.servers.loop.call_soon_threadsafe(self.server.close)


@contextmanager
def webhook_server() -> Iterator[Webhook]:
    servers = LoopThread()
    hook = Webhook(servers)
    try:
        yield hook
    finally:
        hook.close()
        servers.close()


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    servers = LoopThread()
    box = Mailbox(servers)
    try:
        yield box
    finally:
        box.close()
        servers.close()


# Fixtures for every test module (registered in tests/conftest.py's pytest_plugins).


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with webhook_server() as hook:
        yield hook


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        yield box


def mail_to(box: Mailbox, who: str) -> list[Mail]:
    return [m for m in box.messages if f"{who}@example.test" in m.recipients]


def paged(store: Store, box: Mailbox, incident_id: int, who: str) -> list[Mail]:
    """The mail to ``who``, once the incident's page to them is recorded as sent; else [].

    The mail alone is not enough before a test moves the fake clock on: a row still leased
    when the clock passes its lease is claimed and sent again (at least once, by design)."""
    n = NotificationRow
    page = select(n.status).where(n.incident_id == incident_id, n.recipient == f"person:{who}")
    with store.read() as s:
        status = s.scalar(page)
    return mail_to(box, who) if status == "sent" else []


def paging_plan(box: Mailbox) -> str:
    """The process tests' paging plan: a P1 pages ann (on call), then carol (team lead) after 15m,
    then erin (director) after 30m, each by mail to ``box``."""
    return f"""
        incidents:
          escalation_policy: platform
          rules: [{{match: {{service: auth}}, priority: P1}}]
        people:
          - {{name: ann, email: ann@example.test, notify: ["{box.url("ann@example.test")}"]}}
          - {{name: carol, email: carol@example.test, roles: [team-lead],
              notify: ["{box.url("carol@example.test")}"]}}
          - {{name: erin, email: erin@example.test, roles: [director],
              notify: ["{box.url("erin@example.test")}"]}}
        schedules:
          - name: platform
            layers:
              - {{name: primary, rotation: {{members: [ann], start: 2026-01-02}}}}
        escalation_policies:
          - name: platform
            levels:
              - {{after: 0m, notify: [{{schedule: platform, layer: primary}}]}}
              - {{after: 15m, notify: [{{role: team-lead}}]}}
              - {{after: 30m, notify: [{{role: director}}]}}
        """


class BlackHole:
    """Accepts TCP connections on loopback, reads what comes, never answers."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.accepted = 0
        self._open: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="black-hole", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):  # closed at the end of the test
            while True:
                conn, _ = self.sock.accept()
                self._open.append(conn)  # kept open, never read from or written to
                self.accepted += 1

    def url(self, path: str = "/") -> str:
        return f"json://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.sock.close()
        for conn in self._open:
            conn.close()
