"""The disk kind on the real filesystem."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from pydantic import ValidationError

from maintd.checks.base import RunSample, Status
from tests.conftest import T0, run
from tests.kinds import REGISTRY, make_target, run_kind


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


def statvfs_bytes(path: str) -> tuple[float, float]:
    """(used, free) the way the kind counts them."""
    st = os.statvfs(path)
    return float((st.f_blocks - st.f_bfree) * st.f_frsize), float(st.f_bavail * st.f_frsize)


def growing(path: str, rate: float, hours: int = 6, metric: str = "used_bytes") -> list[RunSample]:
    """Hourly earlier runs, newest first, whose used bytes grew by ``rate`` per hour up to now."""
    used, _free = statvfs_bytes(path)
    return [
        RunSample(T0 - timedelta(hours=h), Status.ok, {metric: used - rate * h, "used_percent": 1.0})
        for h in range(1, hours + 1)
    ]


LENIENT = {"warn_percent": 100, "crit_percent": 100, "inode_warn_percent": 100, "inode_crit_percent": 100}


def test_without_earlier_runs_there_is_no_projection_and_no_error(tmp_path):
    result = run(run_kind("disk", {"path": str(tmp_path), **LENIENT, "warn_hours_to_full": 24}))
    assert result.status is Status.ok
    assert "fill_rate_bytes_per_hour" not in result.metrics and "hours_to_full" not in result.metrics
    assert f"{tmp_path}: no fill rate yet: 1 run over 0s, needs 3 over 10m" in result.output


def test_a_growing_disk_projects_its_hours_to_full_from_the_recent_runs(tmp_path):
    _used, free = statvfs_bytes(str(tmp_path))
    params = {"path": str(tmp_path), **LENIENT, "warn_hours_to_full": 24, "crit_hours_to_full": 4}
    result = run(run_kind("disk", params, history=growing(str(tmp_path), free / 10)))
    assert result.metrics["fill_rate_bytes_per_hour"] == pytest.approx(free / 10, rel=0.01)
    assert result.metrics["hours_to_full"] == pytest.approx(10, rel=0.01)
    assert result.status is Status.warning
    first = result.output.splitlines()[0]
    assert "filling at" in first and "full in 10.0 h (warning under 24 h, critical under 4 h)" in first

    fast = run(run_kind("disk", params, history=growing(str(tmp_path), free / 2)))
    assert fast.status is Status.critical
    assert fast.metrics["hours_to_full"] == pytest.approx(2, rel=0.01)

    slow = run(run_kind("disk", params, history=growing(str(tmp_path), free / 100)))
    assert slow.status is Status.ok
    assert slow.metrics["hours_to_full"] == pytest.approx(100, rel=0.01)
    assert "full in 4 days" in slow.output


def test_only_the_last_trend_runs_count(tmp_path):
    _used, free = statvfs_bytes(str(tmp_path))
    recent = growing(str(tmp_path), free / 10, hours=3)
    # Much older runs at a very different rate: ignored with trend_runs 3.
    older = [RunSample(T0 - timedelta(hours=h), Status.ok, {"used_bytes": 0.0}) for h in range(4, 10)]
    result = run(run_kind("disk", {"path": str(tmp_path), "trend_runs": 3}, history=recent + older))
    assert result.metrics["fill_rate_bytes_per_hour"] == pytest.approx(free / 10, rel=0.01)


def test_no_projection_over_too_short_a_span_or_from_runs_without_the_metric(tmp_path):
    used, _free = statvfs_bytes(str(tmp_path))
    # A steep slope (1 GB a minute, shrinking: never a negative size): other tests writing to the
    # same disk move the live sample by megabytes, which must not move the fitted rate much.
    minutes = [
        RunSample(T0 - timedelta(minutes=m), Status.ok, {"used_bytes": used + m * 1e9}) for m in (1, 2, 3)
    ]
    short = run(run_kind("disk", {"path": str(tmp_path)}, history=minutes))
    assert "fill_rate_bytes_per_hour" not in short.metrics
    assert "no fill rate yet: 4 runs over 3m, needs 3 over 10m" in short.output
    enough = run(run_kind("disk", {"path": str(tmp_path), "trend_min_span": "2m"}, history=minutes))
    assert enough.metrics["fill_rate_bytes_per_hour"] == pytest.approx(-60e9, rel=0.01)

    failed = [RunSample(T0 - timedelta(hours=h), Status.critical, {}) for h in (1, 2, 3)]
    none = run(run_kind("disk", {"path": str(tmp_path)}, history=failed))
    assert none.status in (Status.ok, Status.warning, Status.critical)
    assert "fill_rate_bytes_per_hour" not in none.metrics


def test_a_shrinking_disk_has_a_negative_rate_and_no_time_to_full(tmp_path):
    _used, free = statvfs_bytes(str(tmp_path))
    params = {"path": str(tmp_path), **LENIENT, "crit_hours_to_full": 1e9}
    result = run(run_kind("disk", params, history=growing(str(tmp_path), -free / 10)))
    assert result.status is Status.ok
    assert result.metrics["fill_rate_bytes_per_hour"] < 0
    assert "hours_to_full" not in result.metrics
    assert "shrinking" in result.output.splitlines()[0]


def test_several_paths_in_one_check_the_worst_wins(tmp_path):
    good, gone = tmp_path / "good", tmp_path / "gone"
    good.mkdir()
    result = run(run_kind("disk", {"paths": [str(good), str(gone)], **LENIENT}))
    assert result.status is Status.critical
    lines = result.output.splitlines()
    assert lines[0] == f"2 paths, worst {gone}: No such file or directory"
    assert lines[1].startswith(f"{good}: ") and lines[-1].startswith(f"{gone}: ")
    assert f"used_bytes:{good}" in result.metrics and "used_percent" in result.metrics
    assert not [name for name in result.metrics if name.endswith(str(gone))]


def test_several_paths_each_have_their_own_trend(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    _used, free = statvfs_bytes(str(a))
    history = [
        RunSample(x.started_at, x.status, {**x.metrics, **y.metrics})
        for x, y in zip(
            growing(str(a), free / 10, metric=f"used_bytes:{a}"),
            growing(str(b), free / 2, metric=f"used_bytes:{b}"),
            strict=True,
        )
    ]
    params = {"paths": [str(a), str(b)], **LENIENT, "warn_hours_to_full": 24, "crit_hours_to_full": 4}
    result = run(run_kind("disk", params, history=history))
    assert result.metrics[f"hours_to_full:{a}"] == pytest.approx(10, rel=0.01)
    assert result.metrics[f"hours_to_full:{b}"] == pytest.approx(2, rel=0.01)
    assert result.metrics["hours_to_full"] == result.metrics[f"hours_to_full:{b}"]
    assert result.status is Status.critical
    assert result.output.splitlines()[0].startswith(f"2 paths, worst {b}: ")


def test_path_and_paths_together_are_refused():
    with pytest.raises(ValidationError, match="either 'path' or 'paths'"):
        REGISTRY.get("disk").config.model_validate({"path": "/", "paths": ["/tmp"]})
