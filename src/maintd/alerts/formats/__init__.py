"""Wire formats alerts arrive in. Each module holds pydantic models of one format, strict
where the format is ours and lenient about unknown fields where a vendor may add them,
and a function that turns a validated delivery into ``list[AlertIn]``.

Invalid input raises ``pydantic.ValidationError``; ``problems_of`` lists what is wrong,
field by field, for the caller's error response.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, ConfigDict, ValidationError

# For a delivery's outermost model. pydantic's JSON parser keeps every string it read in a
# process-wide cache by default; label values are nearly all distinct, so that cache is
# ~1.4 MB of RSS after 20,000 alerts for little gain. Keys repeat in every alert: those only.
DELIVERY = ConfigDict(cache_strings="keys")

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def no_control_characters(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError(f"{value!r} contains a control character")
    return value


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    for name, value in labels.items():
        if not name:
            raise ValueError("a label name is empty")
        if _CONTROL.search(name):
            raise ValueError(f"label name {name!r} contains a control character")
        if _CONTROL.search(value):
            raise ValueError(f"label {name!r} has a control character in its value {value!r}")
    return labels


Labels = Annotated[dict[str, str], AfterValidator(_check_labels)]
"""Label names and values: any text without control characters (Cc), names non-empty."""

LabelValue = Annotated[str, AfterValidator(no_control_characters)]


def _utc(value: datetime) -> datetime:
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value.isoformat()} is out of range in UTC") from None


Time = Annotated[datetime, AfterValidator(_utc)]
"""A time as vendors send it, in UTC; one without a zone is taken as UTC."""

AwareTime = Annotated[AwareDatetime, AfterValidator(_utc)]
"""A time in our own format, in UTC; the zone is required."""


def problems_of(exc: ValidationError) -> list[tuple[str, str]]:
    """``(field, message)`` per error; the field is a dotted path into the body ("" for the whole)."""
    out = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        out.append((field, message))
    return out
