"""Where pages go: apprise URLs (or secret references holding them), in order, per person or channel."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from maintd.plan.base import StrictModel
from maintd.plan.types import Duration, SecretRef


def _notify_target(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(("env:", "file:")):
        return SecretRef._validate(value)
    if not isinstance(value, str) or not re.fullmatch(r"[a-z][a-z0-9+.-]*://\S*", value):
        raise ValueError(
            f"{value!r} is not a notification URL: write an apprise URL like 'mailto://...' "
            "or a secret reference 'env:NAME' / 'file:/path' holding one"
        )
    return value


NotifyUrl = Annotated[str, BeforeValidator(_notify_target)]


class NotifyRule(StrictModel):
    """One channel of a person's notification rules.

    Channels are used in order. The next one is used when this one fails for good, or,
    with ``after``, that long after this one was sent while the incident is still unanswered.
    """

    url: NotifyUrl = Field(description="an apprise URL, or env:/file: reference to one")
    after: Duration | None = Field(
        default=None,
        description="also use the next channel this long after this one, if still unacknowledged; "
        "none: the next channel is only a fallback when this one fails",
    )


def _rule(value: Any) -> Any:
    return {"url": value} if isinstance(value, str) else value


NotifyEntry = Annotated[NotifyRule, BeforeValidator(_rule)]


class Channel(StrictModel):
    """A named place to notify that is not a person: a team's Slack channel, a webhook."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")
    url: NotifyUrl
    description: str = ""


def secret_urls(rules: list[NotifyRule]) -> list[tuple[int, SecretRef]]:
    """The rules whose URL is a secret reference, with their positions."""
    return [(i, SecretRef(r.url)) for i, r in enumerate(rules) if r.url.startswith(("env:", "file:"))]


ZERO = timedelta(0)
