"""The unused-resources kind: real files, the fake API server, a change drafted in the real store,
and the plan's procedure run as the change executor runs it."""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from maintd.changes.commands import CommandResult, render
from maintd.changes.commands import run as run_command
from maintd.checks.base import CheckResult, Status
from maintd.plan.loader import load_plan
from maintd.store.db import Store
from maintd.store.models import ChangeRow, EventRow
from maintd.tasks.unused_resources import UnusedResourcesConfig
from tests.conftest import T0, run
from tests.kinds import REGISTRY, run_kind
from tests.kubernetes_support import FakeKubeApi, write_kubeconfig
from tests.kubernetes_support.more import recorded

DAY = 86_400
PLAN = f"""
targets:
  - {{name: prod-cluster, kind: cluster}}
tasks:
  - name: cluster-health
    kind: command
    targets: [prod-cluster]
    schedule: {{every: 1h}}
    params: {{argv: ["true"]}}
changes:
  watch: {{window: 5m, interval: 1m, checks: [cluster-health]}}
  procedures:
    - name: remove-unused
      description: remove exactly what an unused-resources list names
      apply: ["{sys.executable}", -m, maintd.tasks.unused_resources.remove, apply, "{{list}}", "{{sha256}}"]
      rollback: ["{sys.executable}", -m, maintd.tasks.unused_resources.remove, undo, "{{list}}"]
  types:
    standard: {{procedures: [remove-unused]}}
"""


def aged(path: Path, days: float, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    stamp = T0.timestamp() - days * DAY
    os.utime(path, (stamp, stamp))
    return path


def backups(tmp_path: Path) -> Path:
    """Five nightly dumps (1-5 days old) and temp files of 2 and 10 days, plus a link out of the root."""
    root = tmp_path / "srv"
    for day in range(1, 6):
        aged(root / "backups" / f"app-{day}.dump", day, "dump" * day)
    aged(root / "tmp" / "upload-1.tmp", 10)
    aged(root / "tmp" / "upload-2.tmp", 2)
    aged(root / "tmp" / "keep.conf", 30)
    outside = aged(tmp_path / "precious.tmp", 40)
    (root / "tmp" / "link.tmp").symlink_to(outside)
    return root


def rules(root: Path) -> list[dict[str, Any]]:
    return [
        {"root": str(root / "tmp"), "pattern": "*.tmp", "older_than": "7d"},
        {"root": str(root / "backups"), "pattern": "app-*.dump", "older_than": "1d", "keep_newest": 3},
    ]


def test_old_files_beyond_retention_are_listed_never_through_links_and_nothing_is_removed(tmp_path):
    root = backups(tmp_path)
    result = run(run_kind("unused-resources", {"files": rules(root), "lists_dir": str(tmp_path / "lists")}))
    assert result.status is Status.ok, result.output
    listed = sorted(line.split(":")[0] for line in result.output.splitlines()[1:])
    assert listed == [
        f"file {root}/backups/app-4.dump",
        f"file {root}/backups/app-5.dump",
        f"file {root}/tmp/upload-1.tmp",
    ]
    assert "beyond the newest 3 kept" in result.output and "precious" not in result.output
    assert result.metrics["unused"] == 3 and result.metrics["unused_bytes"] == 16 + 20 + 1
    assert all(p.exists() for p in (root / "backups").iterdir()) and not (tmp_path / "lists").exists()
    missing = run(
        run_kind("unused-resources", {"files": [{"root": str(tmp_path / "nope")}], "lists_dir": "/x"})
    )
    assert (
        missing.status is Status.warning
        and f"files root {tmp_path / 'nope'}: no such directory" in missing.output
    )


async def _listed(
    tmp_path: Path, api: FakeKubeApi, params: dict[str, Any], memo: dict[str, Any], **kw: Any
) -> CheckResult:
    async with api.serve() as base:
        kubeconfig = write_kubeconfig(tmp_path, base)
        full = {"kubernetes": {"kubeconfig": str(kubeconfig)}, "lists_dir": str(tmp_path / "lists"), **params}
        result: CheckResult = await run_kind("unused-resources", full, memo=memo, **kw)
        return result


def test_claims_unmounted_for_days_and_released_volumes_are_listed(tmp_path):
    api = FakeKubeApi(more=recorded())
    postgres = next(p for p in api.objects["pods"] if p["metadata"]["name"] == "postgres-0")
    postgres["spec"]["volumes"] = [
        {"name": "data", "persistentVolumeClaim": {"claimName": "data-postgres-0"}}
    ]
    first = run(_listed(tmp_path, api, {}, {}))
    # First sight of the unmounted claims: remembered, not yet stale; the Released volume has its time.
    assert first.output.splitlines()[0] == "1 unused (100.0 GiB)"
    assert "PersistentVolume pvc-77e6d5c4-b3a2-4918-8776-655443322110: Released 27.6 days ago" in first.output
    # Images a node holds that no pod there runs: listed apart, never part of a removal list.
    assert first.metrics["unused_images"] == 2
    assert (
        "  image docker.io/library/postgres:16.4 on node-a: no pod on node-a runs it; the kubelet's image GC "
        "or crictl rmi on the node removes it (151.4 MiB)"
    ) in first.output.splitlines()
    assert "on node-c" not in first.output  # postgres-0 runs there
    since = first.memo["unmounted_since"]  # type: ignore[index]
    assert set(since) == {"production/scratch-reindex-2026-09", "staging/uploads-old"}
    week_ago = {k: (T0 - timedelta(days=8)).isoformat() for k in since}
    later = run(_listed(tmp_path, api, {}, {"unmounted_since": week_ago, "released_since": {}}))
    assert later.output.splitlines()[0] == "3 unused (155.0 GiB)"
    assert (
        "PersistentVolumeClaim production/scratch-reindex-2026-09: no pod has mounted it for 8d"
        in later.output
    )
    assert "data-postgres-0" not in later.output
    assert not api.writes()


def test_a_run_drafts_one_change_whose_procedure_removes_exactly_the_list(tmp_path, sqlite_store: Store):
    root = backups(tmp_path)
    (tmp_path / "plan.yaml").write_text(PLAN)
    api = FakeKubeApi(more=recorded())
    week_ago = {"production/scratch-reindex-2026-09": (T0 - timedelta(days=8)).isoformat()}
    params = {
        "files": rules(root),
        "namespaces": ["production"],
        "change": {
            "procedure": "remove-unused",
            "type": "standard",
            "plan": str(tmp_path / "plan.yaml"),
            "database": sqlite_store.url,
        },
    }

    async def go() -> tuple[CheckResult, CheckResult, CheckResult, list[CommandResult]]:
        dry = await _listed(tmp_path, api, params, {"unmounted_since": week_ago}, dry_run=True)
        assert not (tmp_path / "lists").exists()
        result = await _listed(tmp_path, api, params, {"unmounted_since": week_ago})
        again = await _listed(tmp_path, api, params, {"unmounted_since": week_ago})
        assert result.changes, result.output
        async with api.serve() as base:
            # The list names tmp_path/kubeconfig.yaml: rewritten here for this server (a new port).
            write_kubeconfig(tmp_path, base)
            procedure = load_plan(tmp_path / "plan.yaml", REGISTRY).plan.changes.procedure("remove-unused")
            with sqlite_store.read() as s:
                values_ = dict(s.scalars(select(ChangeRow)).one().params)
            outcomes = []
            for command, values in (
                (procedure.apply, {**values_, "sha256": "0" * 64}),
                (procedure.apply, values_),
                (procedure.apply, values_),
                (procedure.rollback, values_),
            ):
                outcomes.append(
                    await run_command(render(command, values), timeout=timedelta(seconds=30), limit=1 << 16)
                )
            return dry, result, again, outcomes

    dry, result, again, (tampered, applied, twice, undo) = run(go())
    assert dry.changes[0].action == "draft-change" and "dry run: would write the removal list" in dry.output
    assert result.status is Status.ok, result.output
    assert [c.action for c in result.changes] == ["write", "draft-change"]
    assert "already drafted (draft)" in again.output and [c.action for c in again.changes] == ["write"]
    with sqlite_store.read() as s:
        [change] = s.scalars(select(ChangeRow)).all()
        drafted = s.scalars(select(EventRow).where(EventRow.kind == "change.created")).one()
    assert (
        change.state == "draft"
        and change.procedure == "remove-unused"
        and change.requested_by == "unused-resources"
    )
    assert change.title.startswith("remove 5 unused resources") and drafted.actor == "system:unused-resources"
    assert "PersistentVolume pvc-77e6d5c4" in change.description
    assert tampered.code == 2 and "is not the approved" in tampered.output
    assert applied.code == 0, applied.output
    assert sorted(p.name for p in (root / "backups").iterdir()) == ["app-1.dump", "app-2.dump", "app-3.dump"]
    assert not (root / "tmp" / "upload-1.tmp").exists() and (tmp_path / "precious.tmp").exists()
    deletes = [(w, b) for w, b in api.writes() if w.startswith("DELETE")]
    assert [w for w, _ in deletes] == [
        "DELETE /api/v1/namespaces/production/persistentvolumeclaims/scratch-reindex-2026-09",
        "DELETE /api/v1/persistentvolumes/pvc-77e6d5c4-b3a2-4918-8776-655443322110",
    ] * 2  # the second apply finds them gone (404)
    assert deletes[0][1]["preconditions"] == {
        "uid": "uid-scratch-reindex-2026-09",
        "resourceVersion": "48211734",
    }
    assert twice.code == 0 and "gone already" in twice.output
    assert undo.code == 1 and "cannot be undone" in undo.output


def test_the_config_needs_something_to_look_at_and_absolute_roots():
    with pytest.raises(ValidationError, match="nothing to look at"):
        UnusedResourcesConfig.model_validate({"lists_dir": "/x"})
    with pytest.raises(ValidationError, match="absolute path other than /"):
        UnusedResourcesConfig.model_validate({"lists_dir": "/x", "files": [{"root": "/"}]})
