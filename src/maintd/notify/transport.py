"""The one notifier interface, and apprise behind it.

TransportError
 └─ permanent=True   the URL, its secret or the receiver refuses for good: use the next channel
 └─ permanent=False  the receiver may take it later: retry with backoff

apprise does the talking (email, Slack, Teams, webhooks and ~100 more); this
module bounds each send in time and turns apprise's result into one of the two.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from maintd.plan.types import SecretRef

if TYPE_CHECKING:
    from apprise import AppriseResult, NotifyBase

log = logging.getLogger(__name__)

# Query keys whose values name no secret: who mail goes to, timeouts, formats.
_PLAIN_QUERY_KEYS = frozenset(
    {"to", "from", "cc", "bcc", "name", "format", "method", "cto", "rto", "mode", "smtp", "user"}
)
APPRISE_LOG = "maintd.notify.apprise"  # where apprise's lines go, at DEBUG (``demote_apprise_log``)
PARSED_URLS = 1000  # URLs an AppriseNotifier keeps parsed; the plan names a few dozen at most
_HTTP_CODE = re.compile(r"error=(\d{3})\b")
_SMTP_CODE = re.compile(r"\((\d{3}), b['\"]")


class TransportError(Exception):
    """A notification was not delivered; ``permanent`` says whether trying again could help."""

    def __init__(self, message: str, *, permanent: bool = False, timed_out: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.timed_out = timed_out  # no answer in time: the receiver may hang (see notify.bulkhead)


class Notifier(Protocol):
    def send(self, url: str, title: str, body: str) -> None:
        """Deliver one notification to ``url`` (an apprise URL or an env:/file: reference).

        Returns once the receiver accepted it; raises TransportError otherwise.
        """


def resolve(url: str) -> str:
    """The URL itself, or the one a secret reference holds (read now, never stored)."""
    if not url.startswith(("env:", "file:")):
        return url
    try:
        return SecretRef._validate(url).resolve()
    except (ValueError, LookupError) as exc:
        raise TransportError(str(exc), permanent=True) from exc


def redact(url: str) -> str:
    """The URL as the attempts log may show it: scheme, host and port; credentials and tokens hidden.

    Some services put a token where the host goes (``slack://TOKEN/...``): a "host"
    with no dot in it, other than localhost, is hidden too. A secret reference is
    shown as written (the reference, not what it holds).
    """
    if url.startswith(("env:", "file:")):
        return url
    scheme, _, rest = url.partition("://")
    if not rest:
        return "***"
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        shown = host if _host_like(parts.hostname or "") else "***"
        port = f":{parts.port}" if parts.port and shown != "***" else ""
    except ValueError:
        return f"{scheme}://***"
    userinfo = "***@" if "@" in parts.netloc else ""
    path = "/".join("***" if segment else "" for segment in parts.path.split("/"))
    query = "&".join(
        f"{key}={value if key.lower() in _PLAIN_QUERY_KEYS else '***'}"
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return f"{scheme}://{userinfo}{shown.rsplit(':', 1)[0] if port else shown}{port}{path}" + (
        f"?{query}" if query else ""
    )


def scrub(text: str, url: str) -> str:
    """``text`` without any secret part of ``url`` (apprise quotes URLs in some messages)."""
    text = text.replace(url, redact(url))
    try:
        parts = urlsplit(url)
        secrets = [parts.password or "", parts.username or ""]
        secrets += [s for s in parts.path.split("/") if len(s) >= 4]
        secrets += [v for k, v in parse_qsl(parts.query) if k.lower() not in _PLAIN_QUERY_KEYS]
        if not _host_like(parts.hostname or ""):
            secrets.append(parts.netloc.rpartition("@")[2])
    except ValueError:
        return text
    for secret in sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _host_like(host: str) -> bool:
    return "." in host or ":" in host or host == "localhost"


def classify(status: str, lines: list[str], elapsed: float, read_timeout: float) -> TransportError | None:
    """What apprise's answer means for us: None (delivered) or the error to raise.

    ``lines`` are the service's own WARNING/ERROR log messages for this call.
    """
    if status == "SUCCESS":
        return None
    message = " ".join(lines) or f"apprise reported {status}"
    if status == "TIMEOUT":
        return TransportError(f"no answer within {elapsed:.1f}s: {message}", timed_out=True)
    if code := _HTTP_CODE.search(message):
        status_code = int(code.group(1))
        permanent = 400 <= status_code < 500 and status_code not in (408, 429)
        return TransportError(f"HTTP {status_code}: {message}", permanent=permanent)
    if code := _SMTP_CODE.search(message):
        return TransportError(f"SMTP {code.group(1)}: {message}", permanent=code.group(1).startswith("5"))
    if elapsed >= read_timeout * 0.95:
        return TransportError(f"no answer within {read_timeout:.1f}s: {message}", timed_out=True)
    # Connection refused, reset, DNS: the receiver may be back soon.
    return TransportError(message)


class _ThreadLog(logging.Handler):
    """apprise's warnings from this thread only.

    apprise logs to one process-wide logger (and LogCapture listens to all of it),
    so with several sends in flight a capture would mix their lines.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.lines.append(record.getMessage())


class _Demoted(logging.Handler):
    """apprise's lines, passed on at DEBUG: every failed send is recorded (``notification_attempts``)
    and reported by ``notify.health``, so its per-attempt warnings were noise.

    apprise reads each send's result from handlers on its own logger (``_ServiceLogCapture``,
    WARNING and up, and ``_ThreadLog`` here), so its records are still made and seen at their
    level there; only what reaches the application's handlers is demoted.
    """

    def emit(self, record: logging.LogRecord) -> None:
        target = logging.getLogger(APPRISE_LOG)
        if target.isEnabledFor(logging.DEBUG):
            demoted = logging.makeLogRecord(record.__dict__)
            demoted.levelno = min(record.levelno, logging.DEBUG)
            demoted.levelname = logging.getLevelName(demoted.levelno)
            target.handle(demoted)


def demote_apprise_log() -> None:
    """Pass apprise's log lines on at DEBUG through the ``APPRISE_LOG`` logger (its level and
    handlers decide; the lines keep apprise's name). Once per process."""
    logger = logging.getLogger("apprise")
    if not any(isinstance(h, _Demoted) for h in logger.handlers):
        logger.addHandler(_Demoted())
        logger.propagate = False


class AppriseNotifier:
    """Sends through apprise, one Apprise object per call, each bounded in time; JSON webhooks through
    ``webhook.WebhookSender`` (the same requests, on kept-alive connections).

    ``connect_timeout`` and ``read_timeout`` cap apprise's socket timeouts (a URL may
    ask for less with ``cto``/``rto``, never more); ``total_timeout`` bounds the whole
    call, so a receiver that accepts the connection and never answers costs one
    worker at most that long.
    """

    def __init__(
        self, *, connect_timeout: float = 5.0, read_timeout: float = 10.0, total_timeout: float | None = None
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.total_timeout = total_timeout or connect_timeout + read_timeout + 5.0
        demote_apprise_log()
        self._loaded = threading.Lock()
        # Parsed URLs (resolved: secrets included, in memory only), to build each send's service
        # from: parsing was ~0.15 ms of a ~1 ms send. A new service each time, as apprise
        # throttles per object (most plugins wait seconds between two sends of one object).
        self._parsed: dict[str, dict[str, Any]] = {}
        from maintd.notify.webhook import WebhookSender  # it raises this module's errors

        # JSON webhooks over kept-alive connections: apprise's requests connect anew for each.
        self.webhooks = WebhookSender()

    def prepare(self, urls: Iterable[str]) -> None:
        """Get ready to send to these URLs (secret references are left for send time)."""
        self.webhooks.prepare(u for u in urls if not u.startswith(("env:", "file:")))

    def send(self, url: str, title: str, body: str) -> None:
        resolved = resolve(url)
        try:
            if not self.webhooks.send(
                resolved,
                title,
                body,
                connect_timeout=self.connect_timeout,
                read_timeout=self.read_timeout,
                total_timeout=self.total_timeout,
            ):
                self._send(resolved, title, body)
        except TransportError as exc:
            raise TransportError(
                scrub(str(exc), resolved), permanent=exc.permanent, timed_out=exc.timed_out
            ) from None

    def _send(self, url: str, title: str, body: str) -> None:
        import apprise  # first use only: apprise and its ~190 plugins cost memory and a fifth of a second

        with self._loaded:  # apprise loads its plugin table on first use; one thread at a time does
            service = _instantiate(url, self._parsed)
        service.socket_connect_timeout = min(service.socket_connect_timeout, self.connect_timeout)
        service.socket_read_timeout = min(service.socket_read_timeout, self.read_timeout)
        sender = apprise.Apprise()
        sender.add(service)
        started = time.monotonic()
        result = sender.notify(
            body=body,
            title=title,
            body_format=apprise.NotifyFormat.TEXT,
            notify_type=apprise.NotifyType.FAILURE,
            timeout=self.total_timeout,
        )
        error = classify(
            result.status.name, _lines(result), time.monotonic() - started, service.socket_read_timeout
        )
        if error is not None:
            raise error


def _instantiate(url: str, parsed: dict[str, dict[str, Any]]) -> NotifyBase:
    from apprise import Apprise
    from apprise.plugins import url_to_dict

    capture = _ThreadLog()
    logger = logging.getLogger("apprise")
    logger.addHandler(capture)
    try:
        found = parsed.get(url)
        if found is None:
            found = url_to_dict(url, secure_logging=True)  # type: ignore[no-untyped-call]
            if found is not None and len(parsed) < PARSED_URLS:
                parsed[url] = found
        # A copy (and of its headers, query...): instantiate adds to the dictionary it is given.
        copy = None if found is None else {k: dict(v) if isinstance(v, dict) else v for k, v in found.items()}
        service = None if copy is None else Apprise.instantiate(copy)
    finally:
        logger.removeHandler(capture)
    if service is None:
        reason = "; ".join(capture.lines) or "not a URL apprise supports"
        raise TransportError(f"apprise cannot use {redact(url)}: {reason}", permanent=True)
    return service


def _lines(result: AppriseResult) -> list[str]:
    return [str(entry.message) for service in result for entry in service.logs()]
