"""The capacity-review kind: the report on the plan's schedule, its status from the soonest limit."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from maintd.checks.base import Status
from maintd.tasks.capacity_review import CapacityReviewConfig
from tests.conftest import run
from tests.kinds import run_kind
from tests.test_capacity import daily, disk, insert


def test_a_review_writes_the_report_and_warns_of_a_disk_full_in_five_months(sqlite_store, tmp_path):
    insert(sqlite_store, daily(60, disk))  # full 141 days after the last point
    out = tmp_path / "reports"
    result = run(run_kind("capacity-review", {"out": str(out), "database": sqlite_store.url}))
    assert result.status is Status.warning, result.output  # within 183 days, not within 91
    summary = "1 series (0 too short to project), 1 recommendations; the soonest limit in 141 days"
    assert summary in result.output
    assert "6 months: used_bytes:/ of db1 (task disk) reaches its limit 300.0 GiB" in result.output
    assert result.metrics["days_to_limit"] == pytest.approx(141, abs=1)
    written = {c.target for c in result.changes}
    assert {str(out / "capacity.html"), str(out / "capacity.md")} <= written and len(written) == 3
    assert "<svg" in (out / "capacity.html").read_text()


def test_a_dry_run_says_what_it_would_write_and_writes_nothing(sqlite_store, tmp_path):
    insert(sqlite_store, daily(30, lambda i: {"used_percent": 50 + 0.5 * i}))  # full in 71 days
    out = tmp_path / "reports"
    params = {"out": str(out), "database": sqlite_store.url}
    result = run(run_kind("capacity-review", params, dry_run=True))
    assert result.status is Status.critical  # within crit_within (91 days)
    assert "dry run: would write 3 files" in result.output and len(result.changes) == 3
    assert not out.exists()


def test_an_unreadable_database_or_folder_is_critical_and_named(sqlite_store, tmp_path):
    gone = "postgresql://postgres:hunter2@127.0.0.1:1/nowhere?connect_timeout=1"
    result = run(run_kind("capacity-review", {"out": str(tmp_path), "database": gone}))
    assert result.status is Status.critical and "cannot read the runs from postgresql" in result.output
    assert "hunter2" not in result.output
    insert(sqlite_store, daily(20, disk))
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run(run_kind("capacity-review", {"out": str(blocker), "database": sqlite_store.url}))
    assert result.status is Status.critical and f"cannot write the report to {blocker}" in result.output
    assert blocker.read_text() == "not a folder"


def test_the_config_wants_a_folder_and_ordered_thresholds():
    with pytest.raises(ValidationError, match="out"):
        CapacityReviewConfig.model_validate({})
    with pytest.raises(ValidationError, match="crit_within must not be longer than warn_within"):
        CapacityReviewConfig.model_validate({"out": "/tmp/x", "warn_within": "30d", "crit_within": "60d"})
