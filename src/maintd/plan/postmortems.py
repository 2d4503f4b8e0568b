"""Plan settings for post-mortems: when their action items remind their owners."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, field_validator

from maintd.plan.base import StrictModel
from maintd.plan.types import Duration


class PostmortemSettings(StrictModel):
    """Reminders of post-mortem action items, sent to the owner's notification rules."""

    remind_before: Duration = Field(
        default=timedelta(days=2),
        description="remind the owner this long before the end of the due day (UTC); 0s: no early reminder",
    )
    overdue_every: Duration = Field(
        default=timedelta(days=1),
        description="while an item is overdue, remind its owner this often (first: when the due day ends)",
    )
    overdue_reminders: int = Field(
        default=7, ge=0, le=100, description="at most this many overdue reminders per item; 0: none"
    )

    @field_validator("overdue_every")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("overdue_every must be longer than 0s")
        return value
