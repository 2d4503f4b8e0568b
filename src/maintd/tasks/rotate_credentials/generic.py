"""``rotate-credentials``: any credential rotated through configured hooks, without a moment where
consumers are locked out: generate -> install the new one beside the old -> reload the consumers
-> verify they work with it -> retire the old. No step retires before verify passes; a failure
before that leaves the old credential working. The new secret reaches the hooks only through a
private file (``$MAINTD_SECRET_FILE``, mode 0600, removed after the run), never an argument or a
log line; hook output is shown with the secret redacted. The hooks run from ``hooks.py``.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from maintd.checks.base import Kind, lazy
from maintd.plan.base import StrictModel
from maintd.plan.types import Duration

__all__ = ["KIND", "RotateCredentialsConfig"]

Hook = list[str]


class RotateCredentialsConfig(StrictModel):
    credential: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$",
        description="the credential's name, for the output and the hooks ($MAINTD_CREDENTIAL)",
    )
    generate: Hook | None = Field(
        default=None,
        min_length=1,
        description="prints the new secret on stdout (argument list); null: a random URL-safe one of length",
    )
    length: int = Field(default=32, ge=16, le=256, description="bytes of randomness of a built-in secret")
    install: Hook = Field(
        min_length=1, description="installs the new secret beside the old one, both valid (argument list)"
    )
    reload: Hook | None = Field(
        default=None, min_length=1, description="tells the consumers to pick up the new secret; null: none"
    )
    verify: Hook = Field(
        min_length=1, description="exit 0 when the consumers work with the new secret (argument list)"
    )
    retire: Hook = Field(
        min_length=1, description="retires the old secret ($MAINTD_PREVIOUS_GENERATION) after verify passed"
    )
    hook_timeout: Duration = Field(default=timedelta(seconds=60), description="each hook's time limit")
    min_interval: Duration | None = Field(
        default=timedelta(hours=1),
        description="a run within this of the last rotation does nothing (retries, catch-up runs)",
    )


KIND = Kind(
    name="rotate-credentials",
    config=RotateCredentialsConfig,
    build=lazy("maintd.tasks.rotate_credentials.hooks"),
    summary="non-disruptive credential rotation through hooks: generate, install, reload, verify, retire",
    changes=lambda _config: True,
)
