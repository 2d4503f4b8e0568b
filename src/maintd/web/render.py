"""Templates and the response every dashboard page is sent with.

Autoescaping is on for every template (a title with ``<script>`` is shown as
text); the pages load no script at all, and the Content-Security-Policy says so.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined

from maintd.clock import utc

HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("maintd.web", "templates"),
        autoescape=True,  # every template, whatever its name
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["span"] = span
    env.filters["number"] = number
    env.filters["field_time"] = field_time
    return env


def page(name: str, *, code: int = 200, **values: Any) -> HTMLResponse:
    html = environment().get_template(name).render(**values)
    return HTMLResponse(html, status_code=code, headers=HEADERS)


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "-"


def field_time(value: datetime | None) -> str:
    """A time as a datetime-local field's value, to the second, in UTC ("" for none): a form sent
    back unchanged gives the same text, so the page can tell which times were edited."""
    return utc(value).strftime("%Y-%m-%dT%H:%M:%S") if value is not None else ""


def span(delta: timedelta) -> str:
    """A short human duration: 45s, 12m, 3h 05m, 2d 4h (the sign is the caller's business)."""
    seconds = int(abs(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "s":
        return span(timedelta(seconds=value))
    text = f"{value:,.1f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value):,}"
    return {"%": f"{text} %", "x": f"{text}\u00d7", "per day": f"{text} per day"}.get(unit, text)
