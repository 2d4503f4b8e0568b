"""How the dashboard writes a KPI figure's value, by its unit."""

from __future__ import annotations

import pytest

from maintd.web.render import number


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        (None, "%", "-"),
        (99.5, "%", "99.5 %"),
        (14.4, "x", "14.4\u00d7"),  # the multiplication sign
        (0.25, "per day", "0.2 per day"),
        (3.0, "count", "3"),
        (1234.0, "", "1,234"),
        (7200.0, "s", "2h 00m"),
    ],
)
def test_a_figure_is_shown_with_its_unit(value: float | None, unit: str, shown: str) -> None:
    assert number(value, unit) == shown
