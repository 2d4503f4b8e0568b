"""``runner.executor``: where claimed runs execute, and the Celery settings of scale-out.

The plan says what a deployment normally uses; ``--executor``/``--broker-url`` and the
``MAINTD_*`` environment override it field by field (maintd.settings.Settings.with_plan).
The broker URL can carry a password, and the plan is stored in the database and shown by
the API: it is a secret reference (``env:NAME`` / ``file:/path``), or a URL without a
password.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, field_validator

from maintd.plan.base import StrictModel
from maintd.plan.types import Duration, SecretRef

BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps", "pyamqp")


def _broker_url(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(("env:", "file:")):
        return SecretRef._validate(value)
    if not isinstance(value, str) or not re.fullmatch(r"[a-z][a-z0-9+.-]*://\S*", value):
        raise ValueError(
            f"{value!r} is not a broker URL: write redis://HOST:6379/0 or amqp://HOST:5672// "
            "or a secret reference 'env:NAME' / 'file:/path' holding one"
        )
    parts = urlsplit(value)
    if parts.scheme not in BROKER_SCHEMES:
        raise ValueError(f"broker URL scheme {parts.scheme!r}: use one of {', '.join(BROKER_SCHEMES)}")
    if parts.password:
        raise ValueError(
            "a broker URL with a password does not belong in the plan: put the URL in an environment "
            "variable or a file and write 'env:NAME' or 'file:/path'"
        )
    return value


BrokerUrl = Annotated[str, BeforeValidator(_broker_url)]


class ExecutorSettings(StrictModel):
    kind: Literal["local", "celery"] = Field(
        default="local", description="local: the scheduler's own runner; celery: `maintd worker` processes"
    )
    broker_url: BrokerUrl | None = Field(
        default=None, description="the Celery broker: a URL without password, or env:/file: reference"
    )
    queue: str = Field(default="maintd", min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")
    visibility_timeout: Duration = Field(
        default=timedelta(hours=1),
        description="Redis: how long an unacknowledged run waits before another worker gets it",
    )
    reaper_interval: Duration = Field(
        default=timedelta(seconds=30), description="how often the scheduler looks for lost runs"
    )
    reaper_grace: Duration = Field(
        default=timedelta(minutes=2),
        description="a run sent to Celery is lost when unrecorded this long after its task's timeout",
    )

    @field_validator("visibility_timeout", "reaper_interval", "reaper_grace")
    @classmethod
    def _at_least_a_second(cls, value: timedelta) -> timedelta:
        if value.total_seconds() < 1:
            raise ValueError("must be at least 1s")
        return value

    def broker(self) -> str | None:
        """The broker URL, a secret reference resolved in this process's environment (LookupError)."""
        url = self.broker_url
        if url is not None and url.startswith(("env:", "file:")):
            return SecretRef(url).resolve()
        return url
