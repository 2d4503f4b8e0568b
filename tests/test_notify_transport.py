"""AppriseNotifier against real receivers on loopback: what arrives, and what each failure means."""

from __future__ import annotations

import socket
import time

import pytest

from maintd.notify.transport import AppriseNotifier, TransportError, classify, redact
from tests.notify_support import Mailbox, Webhook

TITLE = "[P1] TRIGGERED #42 disk full on db01"
BODY = "disk full on db01\nSeverity: critical\nTarget: db01"


@pytest.fixture
def notifier() -> AppriseNotifier:
    return AppriseNotifier(connect_timeout=1.0, read_timeout=1.0, total_timeout=3.0)


def refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed when we return: nothing listens there


def failure(notifier: AppriseNotifier, url: str) -> TransportError:
    with pytest.raises(TransportError) as caught:
        notifier.send(url, TITLE, BODY)
    return caught.value


def test_it_sends_an_email_over_plain_smtp(notifier: AppriseNotifier, mailbox: Mailbox) -> None:
    notifier.send(mailbox.url("ann@example.test"), TITLE, BODY)
    [mail] = mailbox.messages
    assert mail.subject == TITLE
    assert mail.recipients == ["ann@example.test"]
    assert mail.text.splitlines() == BODY.splitlines()  # one fact a line, as written


def test_it_posts_json_to_a_webhook(notifier: AppriseNotifier, webhook: Webhook) -> None:
    notifier.send(webhook.url("/hooks/maintd"), TITLE, BODY)
    [hit] = webhook.hits["/hooks/maintd"]
    assert (hit["title"], hit["message"], hit["type"]) == (TITLE, BODY, "failure")


@pytest.mark.parametrize(
    ("status", "permanent"),
    [(500, False), (502, False), (503, False), (429, False), (408, False), (404, True), (401, True)],
)
def test_http_errors_are_transient_only_when_the_receiver_may_recover(
    notifier: AppriseNotifier, webhook: Webhook, status: int, permanent: bool
) -> None:
    error = failure(notifier, webhook.answer("/hook", status))
    assert error.permanent is permanent
    assert str(error).startswith(f"HTTP {status}: Failed to send JSON POST notification")


def test_a_refused_connection_is_transient(notifier: AppriseNotifier) -> None:
    error = failure(notifier, f"json://127.0.0.1:{refused_port()}/hook")
    assert not error.permanent
    assert "Connection error" in str(error)


def test_a_refused_smtp_connection_is_transient(notifier: AppriseNotifier) -> None:
    error = failure(notifier, f"mailto://127.0.0.1:{refused_port()}?from=a@example.test&to=b@example.test")
    assert not error.permanent


@pytest.mark.parametrize(
    "url", ["nosuch://example.test/x", "json://", "mailto://", "not a url", "slack://onlyonetoken"]
)
def test_a_url_apprise_cannot_use_is_permanent(notifier: AppriseNotifier, url: str) -> None:
    error = failure(notifier, url)
    assert error.permanent
    assert str(error).startswith("apprise cannot use ")


def test_a_receiver_that_never_answers_costs_at_most_the_read_timeout(webhook: Webhook) -> None:
    notifier = AppriseNotifier(connect_timeout=1.0, read_timeout=1.0, total_timeout=5.0)
    started = time.monotonic()
    error = failure(notifier, webhook.hang("/hung"))
    assert time.monotonic() - started < 2.5
    assert not error.permanent
    assert str(error).startswith("no answer within 1.0s")
    assert webhook.count("/hung") == 1


def test_the_total_timeout_bounds_a_send_whatever_the_url_asks(webhook: Webhook) -> None:
    notifier = AppriseNotifier(connect_timeout=1.0, read_timeout=30.0, total_timeout=1.0)
    started = time.monotonic()
    error = failure(notifier, webhook.hang("/hung") + "?rto=30")
    assert time.monotonic() - started < 2.0
    assert not error.permanent


def test_a_secret_reference_is_read_at_send_time(
    notifier: AppriseNotifier, webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAGER_HOOK", webhook.url("/hooks/s3cr3t-token"))
    notifier.send("env:PAGER_HOOK", TITLE, BODY)
    assert webhook.count("/hooks/s3cr3t-token") == 1


def test_a_secret_reference_that_does_not_resolve_is_permanent(notifier: AppriseNotifier) -> None:
    error = failure(notifier, "env:MAINTD_TEST_NO_SUCH_VARIABLE")
    assert error.permanent
    assert "MAINTD_TEST_NO_SUCH_VARIABLE, which is not set" in str(error)


def test_errors_never_quote_the_secrets_in_a_url(notifier: AppriseNotifier) -> None:
    error = failure(notifier, "slack://hunter2secret")
    assert "hunter2secret" not in str(error)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("json://127.0.0.1:8080/hooks/maintd", "json://127.0.0.1:8080/***/***"),
        ("mailto://ann:pa55word@mail.example.test:587?to=ann@example.test", "mailto://***@mail.example.test:587?to=ann@example.test"),
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#ops", "slack://***/***/***/"),
        ("msteams://team/tokenA/tokenB/tokenC?image=no", "msteams://***/***/***/***?image=***"),
        ("json://hooks.example.test/x?token=abc&to=ops@example.test", "json://hooks.example.test/***?token=***&to=ops@example.test"),
        ("json://Hooks.Example.test/x", "json://Hooks.Example.test/***"),
        ("json://[::1]:9000/x", "json://[::1]:9000/***"),
        ("nonsense", "***"),
        ("env:PAGER_URL", "env:PAGER_URL"),
    ],
)  # fmt: skip
def test_redact_keeps_the_host_and_hides_credentials_and_tokens(url: str, shown: str) -> None:
    assert redact(url) == shown


@pytest.mark.parametrize(
    ("status", "line", "permanent"),
    [
        ("FAILURE", "Sending email failed. {'a@x': (550, b'5.1.1 no such user')}", True),
        ("FAILURE", "Sending email failed. {'a@x': (451, b'4.3.0 try later')}", False),
        ("FAILURE", "A Connection error occurred sending JSON notification to 127.0.0.1.", False),
        ("TIMEOUT", "service timed out", False),
    ],
)
def test_classify_reads_smtp_codes_and_timeouts(status: str, line: str, permanent: bool) -> None:
    error = classify(status, [line], elapsed=0.1, read_timeout=10.0)
    assert error is not None and error.permanent is permanent
