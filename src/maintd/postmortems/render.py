"""A post-mortem as Markdown, from the template file beside this module (Jinja2)."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined, Template

from maintd.postmortems.model import PostmortemView

TEMPLATE = "template.md.j2"
TO_FILL = "_(to fill in)_"


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else TO_FILL


def span(seconds: int | None) -> str:
    """``1h 25m``; ``2d 3h``."""
    if seconds is None:
        return TO_FILL
    value = timedelta(seconds=seconds)
    days, rest = value.days, value.seconds
    hours, minutes = rest // 3600, rest % 3600 // 60
    parts = [f"{days}d"] if days else []
    parts += [f"{hours}h"] if hours or days else []
    parts += [] if days else [f"{minutes}m"]
    return " ".join(parts)


def section(text: str) -> str:
    return text.strip() or TO_FILL


def block(text: str) -> str:
    """A multi-line text inside a list item: later lines indented under it."""
    lines = text.strip().splitlines() or [TO_FILL]
    return "\n  ".join(lines)


@cache
def _template() -> Template:
    # Markdown, not HTML: autoescaping would put entities into the text people wrote.
    env = Environment(
        loader=PackageLoader("maintd.postmortems", ""),
        autoescape=False,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters.update(when=when, section=section, block=block)
    return env.get_template(TEMPLATE)


def markdown(pm: PostmortemView) -> str:
    """The post-mortem in the seed's blameless template; empty sections say they are to be filled in."""
    return _template().render(pm=pm, duration=span(pm.duration_seconds))
