"""The disk kind on the real filesystem."""

from __future__ import annotations

import os

from maintd.checks.base import Status
from tests.conftest import run
from tests.kinds import make_target, run_kind


def usage(path: str) -> float:
    st = os.statvfs(path)
    return 100.0 * (st.f_blocks - st.f_bfree) / (st.f_blocks - st.f_bfree + st.f_bavail)


def test_usage_below_the_thresholds_is_ok(tmp_path):
    result = run(run_kind("disk", {"path": str(tmp_path), "warn_percent": 99.9, "crit_percent": 100}))
    assert result.status is Status.ok
    assert abs(result.metrics["used_percent"] - usage(str(tmp_path))) < 1


def test_usage_over_the_warning_threshold_is_a_warning(tmp_path):
    now = usage(str(tmp_path))
    result = run(
        run_kind("disk", {"path": str(tmp_path), "warn_percent": max(now - 1, 0.1), "crit_percent": 100})
    )
    assert result.status is Status.warning


def test_usage_over_the_critical_threshold_is_critical(tmp_path):
    now = usage(str(tmp_path))
    result = run(
        run_kind("disk", {"path": str(tmp_path), "warn_percent": 0.1, "crit_percent": max(now - 1, 0.1)})
    )
    assert result.status is Status.critical


def test_the_path_defaults_to_the_targets_connection_path(tmp_path):
    result = run(run_kind("disk", {}, make_target(connection={"path": str(tmp_path)})))
    assert result.output.startswith(f"{tmp_path}:")


def test_a_missing_path_is_critical_with_the_reason(tmp_path):
    result = run(run_kind("disk", {"path": str(tmp_path / "gone")}))
    assert result.status is Status.critical
    assert "No such file" in result.output
