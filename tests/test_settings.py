"""Process settings read from ``MAINTD_*``: a bad value stops the process naming the variable."""

from __future__ import annotations

import pytest

from maintd.settings import DEFAULT_NOTIFY_CONCURRENCY, Settings


def test_the_sends_at_once_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAINTD_NOTIFY_CONCURRENCY", raising=False)
    assert Settings.from_env().notify_concurrency == DEFAULT_NOTIFY_CONCURRENCY
    monkeypatch.setenv("MAINTD_NOTIFY_CONCURRENCY", "64")
    assert Settings.from_env().notify_concurrency == 64


@pytest.mark.parametrize(
    ("raw", "says"),
    [("many", "MAINTD_NOTIFY_CONCURRENCY must be a whole number, not 'many'"), ("0", "at least 1")],
)
def test_a_bad_number_of_sends_at_once_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, raw: str, says: str
) -> None:
    monkeypatch.setenv("MAINTD_NOTIFY_CONCURRENCY", raw)
    with pytest.raises(ValueError, match=says):
        Settings.from_env()
