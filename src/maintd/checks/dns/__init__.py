"""``dns``: resolve a name with dnspython's async resolver; expected answers and latency decide.

Asks the system resolver (``/etc/resolv.conf``) or one given nameserver. A name
that does not exist, an empty answer, a failing nameserver and a timeout are
all critical with the reason. dnspython is imported only when a check runs
(``check`` holds what uses it).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator

from maintd.checks.base import Kind, lazy
from maintd.plan.base import StrictModel
from maintd.plan.types import Duration

RecordType = Literal["A", "AAAA", "CNAME", "MX", "TXT", "NS", "SRV", "PTR"]


class DnsConfig(StrictModel):
    name: str | None = Field(
        default=None,
        description="the name to resolve (an IP address for PTR); default: the target's connection.host",
    )
    type: RecordType = Field(default="A", description="record type: A, AAAA, CNAME, MX, TXT, NS, SRV or PTR")
    server: str | None = Field(
        default=None, description="nameserver to ask (address or host name); default: the system resolver"
    )
    port: int = Field(default=53, ge=1, le=65535, description="the nameserver's port (with server)")
    tcp: bool = Field(default=False, description="ask over TCP instead of UDP")
    expect: list[str] = Field(default=[], description="answers that must all be present")
    expect_any: list[str] = Field(default=[], description="answers of which at least one must be present")
    timeout: Duration = Field(default=timedelta(seconds=5), description="time allowed for the whole lookup")
    warn_latency: Duration | None = Field(default=None, description="warning at or above this lookup time")
    crit_latency: Duration | None = Field(default=None, description="critical at or above this lookup time")

    @field_validator("timeout")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value.total_seconds() <= 0:
            raise ValueError("timeout must be longer than 0s")
        return value


KIND = Kind(
    name="dns",
    config=DnsConfig,
    build=lazy("maintd.checks.dns.check"),
    summary="resolve a name (A, AAAA, CNAME, MX, TXT, NS, SRV, PTR); expected answers and latency",
)
