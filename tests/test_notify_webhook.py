"""JSON webhooks over kept-alive connections: the same requests apprise makes, fewer connections."""

from __future__ import annotations

import asyncio
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from maintd.notify.transport import AppriseNotifier, TransportError
from maintd.notify.webhook import MAX_ANSWER, WebhookSender
from tests.notify_support import LoopThread
from tests.servers import make_certificate

TITLE = "  [P1] TRIGGERED #42 disk full on db01 "
BODY = "disk full on db01\nSeverity: critical\nAck: https://maintd.example.test/ack/x?a=1&b=<2>\n\n  "
# Headers that say how the request was carried, not what it says.
TRANSPORT = {"host", "content-length", "connection"}


class Receiver:
    """Records every request as it arrived (method, target, headers, body) and the connection it
    came on; answers 200, or what ``statuses`` says for a path."""

    def __init__(self, *, tls: tuple[Path, Path] | None = None, keepalive: float = 75.0) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: dict[str, list[int]] = {}
        self.answer = b"ok"  # the body of every answer
        self.servers = LoopThread()
        self.port = self.servers.run(self._start(tls, keepalive))

    async def _start(self, tls: tuple[Path, Path] | None, keepalive: float) -> int:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, keepalive_timeout=keepalive)
        await self._runner.setup()
        context = None
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls)
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        return int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.requests.append(
            {
                "method": request.method,
                "target": request.path_qs,
                "headers": {k.lower(): v for k, v in request.headers.items() if k.lower() not in TRANSPORT},
                "body": body,
                "connection": peer[1] if peer else None,
            }
        )
        queued = self.statuses.get(request.path, [])
        status = queued.pop(0) if queued else 200
        if status in (301, 302, 307):
            raise web.HTTPTemporaryRedirect("/moved") if status == 307 else web.HTTPFound("/moved")
        return web.Response(status=status, body=self.answer)

    def connections(self) -> int:
        return len({r["connection"] for r in self.requests})

    def open_connections(self) -> int:
        server = self._runner.server
        return len(server.connections) if server is not None else 0

    def close(self) -> None:
        self.servers.run(self._runner.cleanup())
        self.servers.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def by_apprise(url: str) -> None:
    notifier = AppriseNotifier(connect_timeout=2.0, read_timeout=2.0)
    notifier.webhooks.send = lambda *a, **k: False  # type: ignore[method-assign]
    notifier.send(url, TITLE, BODY)


def kept_alive(url: str, sender: WebhookSender | None = None) -> None:
    sender = sender or WebhookSender()
    assert sender.send(url, TITLE, BODY, connect_timeout=2.0, read_timeout=2.0, total_timeout=5.0)


@pytest.mark.parametrize(
    "suffix",
    [
        "/hooks/maintd",
        "",
        "/a%20b/c?method=put",
        "/hook?+X-Token=abc&+User-Agent=pager&-page=1&-q=a%20b",
        "/hook?:title=heading&:type=&:extra=yes&:version=",
        "/hook?cto=3&rto=2.5&verify=no",
    ],
)
def test_it_makes_the_request_apprise_makes(receiver: Receiver, suffix: str) -> None:
    url = f"json://127.0.0.1:{receiver.port}{suffix}"
    by_apprise(url)
    kept_alive(url)
    theirs, ours = receiver.requests
    assert {k: v for k, v in ours.items() if k != "connection"} == {
        k: v for k, v in theirs.items() if k != "connection"
    }


def test_a_user_and_password_become_the_same_basic_auth(receiver: Receiver) -> None:
    url = f"json://ann:s%40cret@127.0.0.1:{receiver.port}/hook"
    by_apprise(url)
    kept_alive(url)
    theirs, ours = receiver.requests
    assert ours["headers"]["authorization"] == theirs["headers"]["authorization"] != ""


def test_one_connection_carries_many_sends(receiver: Receiver) -> None:
    sender = WebhookSender()
    for _ in range(20):
        kept_alive(f"json://127.0.0.1:{receiver.port}/hook", sender)
    assert len(receiver.requests) == 20
    assert receiver.connections() == 1


def test_an_answer_longer_than_the_limit_is_not_read_to_its_end_and_its_connection_not_kept(
    receiver: Receiver,
) -> None:
    receiver.answer = b"x" * (MAX_ANSWER * 4)
    sender = WebhookSender()
    for _ in range(2):
        kept_alive(f"json://127.0.0.1:{receiver.port}/hook", sender)
    assert len(receiver.requests) == 2
    assert receiver.connections() == 2  # the first connection was closed, not put back


def test_a_connection_the_server_closed_while_idle_is_replaced_without_an_error() -> None:
    quick = Receiver(keepalive=0.05)  # closes an idle connection after 50 ms
    try:
        sender = WebhookSender()
        kept_alive(f"json://127.0.0.1:{quick.port}/hook", sender)

        async def closed() -> None:  # until the server's keep-alive timer has closed it
            while quick.open_connections():
                await asyncio.sleep(0.01)

        quick.servers.run(asyncio.wait_for(closed(), 10))
        kept_alive(f"json://127.0.0.1:{quick.port}/hook", sender)
        assert len(quick.requests) == 2
        assert quick.connections() == 2
    finally:
        quick.close()


@pytest.mark.parametrize(("status", "permanent"), [(500, False), (429, False), (404, True)])
def test_errors_read_as_apprise_reports_them(receiver: Receiver, status: int, permanent: bool) -> None:
    errors = []
    for send in (by_apprise, kept_alive):
        receiver.statuses["/hook"] = [status]
        with pytest.raises(TransportError) as caught:
            send(f"json://127.0.0.1:{receiver.port}/hook")
        errors.append((str(caught.value), caught.value.permanent))
    assert errors[0] == errors[1] == (errors[0][0], permanent)


def test_a_redirect_is_left_to_apprise_which_follows_it(receiver: Receiver) -> None:
    receiver.statuses["/hook"] = [302, 302]
    AppriseNotifier(connect_timeout=2.0, read_timeout=2.0).send(
        f"json://127.0.0.1:{receiver.port}/hook", TITLE, BODY
    )
    # Ours got a 302 and handed the page to apprise, whose requests got one too and followed it.
    assert [r["target"] for r in receiver.requests] == ["/hook", "/hook", "/moved"]
    assert receiver.requests[2]["method"] == "GET"  # as requests turns a POST after a 302


@pytest.mark.parametrize("suffix", ["/hook?format=html", "/hook?overflow=split", "/hook?emojis=yes"])
def test_options_that_change_the_message_go_through_apprise(receiver: Receiver, suffix: str) -> None:
    assert not WebhookSender().send(
        f"json://127.0.0.1:{receiver.port}{suffix}",
        TITLE,
        BODY,
        connect_timeout=1,
        read_timeout=1,
        total_timeout=2,
    )


def test_a_proxy_from_the_environment_goes_through_apprise(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example.test:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert not WebhookSender().send(
        "json://hooks.example.test/hook", TITLE, BODY, connect_timeout=1, read_timeout=1, total_timeout=2
    )


def test_https_with_verify_no_keeps_its_connection() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        secure = Receiver(tls=make_certificate(Path(tmp)))
        try:
            sender = WebhookSender()
            url = f"jsons://127.0.0.1:{secure.port}/hook?verify=no"
            kept_alive(url, sender)
            kept_alive(url, sender)
            assert secure.connections() == 1
            with pytest.raises(TransportError) as caught:  # verified: the self-signed certificate fails
                kept_alive(f"jsons://127.0.0.1:{secure.port}/hook", sender)
            assert "Connection error" in str(caught.value) and not caught.value.permanent
        finally:
            secure.close()


def test_preparing_the_plans_urls_leaves_secret_references_unread(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MAINTD_TEST_UNSET_HOOK", raising=False)
    notifier = AppriseNotifier(connect_timeout=2.0, read_timeout=2.0)
    url = f"json://127.0.0.1:{receiver.port}/hook"
    notifier.prepare([url, "env:MAINTD_TEST_UNSET_HOOK", "mailto://relay.example.test?to=a@example.test"])
    notifier.send(url, TITLE, BODY)
    notifier.send(url, TITLE, BODY)
    assert receiver.connections() == 1
