"""The drift kind: a desired state in a real git checkout against real files and directories, and
manifests against the fake Kubernetes API server with the recorded objects."""

from __future__ import annotations

import hashlib
import os
import pwd
import subprocess
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select

from maintd.checks.base import CheckResult, Status
from maintd.engine import Engine
from maintd.registry import Registry
from maintd.store.models import AlertRow, RunRow
from tests.conftest import run
from tests.kinds import run_kind
from tests.kubernetes_support import FakeKubeApi, write_kubeconfig

NL = b"\n"
APP_CONF = "listen 8080\nworkers 4\nlog_level info\n"


def git(checkout: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(checkout), *args], check=True, capture_output=True, text=True, env=_GIT_ENV
    )
    return done.stdout.strip()


_GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
}


def checkout(tmp_path: Path, files: dict[str, str]) -> Path:
    """A git repository holding ``files``, committed."""
    desired = tmp_path / "desired"
    for name, text in files.items():
        (desired / name).parent.mkdir(parents=True, exist_ok=True)
        (desired / name).write_text(text)
    git(desired, "init", "-q")
    git(desired, "add", "-A")
    git(desired, "commit", "-q", "-m", "desired state")
    return desired


def audit(params: dict[str, Any], **kwargs: Any) -> CheckResult:
    result: CheckResult = run(run_kind("drift", params, kwargs.pop("target", None), **kwargs))
    return result


def test_files_are_compared_by_content_mode_and_owner_with_a_diff_and_the_commit(tmp_path):
    desired = checkout(tmp_path, {"etc/app.conf": APP_CONF, "etc/same.conf": "a\n"})
    actual = tmp_path / "actual"
    actual.mkdir()
    (actual / "app.conf").write_text(APP_CONF.replace("workers 4", "workers 16"))
    (actual / "same.conf").write_text("a\n")
    os.chmod(actual / "same.conf", 0o600)
    (actual / "hashed").write_bytes(b"\x00\x01binary")
    params = {
        "desired": str(desired),
        "root": str(actual),
        "files": [
            {"path": "app.conf", "content": "etc/app.conf", "owner": "root"},
            {
                "path": "same.conf",
                "content": "etc/same.conf",
                "mode": "0644",
                "owner": "nobody",
                "group": "0",
            },
            {"path": "hashed", "sha256": hashlib.sha256(b"\x00\x01binary").hexdigest(), "mode": "0644"},
            {"path": "gone.conf", "content": "etc/app.conf"},
        ],
    }
    result = audit(params)
    commit = git(desired, "rev-parse", "HEAD")
    lines = result.output.splitlines()
    assert result.status is Status.warning, result.output
    assert lines[0] == f"drift (desired {desired}, commit {commit}): 3 of 4 items drifted"
    assert result.metrics == {
        "checked": 4,
        "drifted": 3,
        "errors": 0,
        "files_checked": 4,
        "files_drifted": 3,
    }
    block = lines[lines.index(f"DRIFT file {actual}/app.conf: content differs") :]
    assert block[1:7] == [
        "--- desired/etc/app.conf",
        f"+++ {actual}/app.conf",
        "@@ -1,3 +1,3 @@",
        " listen 8080",
        "-workers 4",
        "+workers 16",
    ]
    assert f"DRIFT file {actual}/same.conf: mode 0600, expected 0644; owner root, expected nobody" in lines
    assert f"DRIFT file {actual}/gone.conf: missing" in lines
    assert f"file {actual}/hashed" not in result.output
    assert result.changes == []
    assert Registry.default().get("drift").changes(None) is False

    # The same audit as critical, and with uncommitted work in the checkout named.
    (desired / "etc" / "new.conf").write_text("x\n")
    strict = audit({**params, "on_drift": "critical"})
    assert strict.status is Status.critical
    assert strict.output.startswith(f"drift (desired {desired}, commit {commit}, 1 uncommitted change): ")


def test_everything_as_desired_is_ok_and_a_plain_directory_is_no_checkout(tmp_path):
    desired = tmp_path / "desired"
    (desired / "conf.d").mkdir(parents=True)
    (desired / "conf.d" / "a.conf").write_text("a\n")
    (desired / "conf.d" / "b.conf").write_text("b\n")
    actual = tmp_path / "actual"
    (actual / "conf.d").mkdir(parents=True)
    for name in ("a.conf", "b.conf", "b.conf.swp"):
        (actual / "conf.d" / name).write_text("a\n")
    params = {
        "desired": str(desired),
        "root": str(actual),
        "files": [{"path": "conf.d/a.conf", "content": "conf.d/a.conf"}],
        "directories": [{"path": "conf.d", "like": "conf.d", "ignore": ["*.swp"]}],
    }
    result = audit(params)
    assert result.status is Status.ok, result.output
    assert result.output == f"drift (desired {desired}, not a git checkout): 2 items as desired"
    assert result.metrics["drifted"] == 0 and result.metrics["directories_checked"] == 1


def test_a_directory_with_missing_and_unexpected_entries_shows_both_in_its_diff(tmp_path):
    actual = tmp_path / "actual"
    actual.mkdir()
    for name in ("app.conf", "old.conf", "zz.conf"):
        (actual / name).write_text("")
    params = {
        "desired": str(tmp_path),
        "record_commit": False,
        "directories": [{"path": str(actual), "entries": ["app.conf", "new.conf", "zz.conf"]}],
    }
    result = audit(params)
    lines = result.output.splitlines()
    assert lines[0] == f"drift (desired {tmp_path}): 1 of 1 items drifted"
    assert lines[1] == f"DRIFT directory {actual}: 1 missing: new.conf; 1 unexpected: old.conf"
    assert lines[2:] == [
        "--- desired entries",
        f"+++ {actual}",
        "@@ -1,3 +1,3 @@",
        " app.conf",
        "-new.conf",
        "+old.conf",
        " zz.conf",
    ]


def test_a_sensitive_file_shows_only_hashes(tmp_path):
    desired = checkout(tmp_path, {"secrets/db.env": "PASSWORD=correct-horse\n"})
    actual = tmp_path / "db.env"
    actual.write_text("PASSWORD=battery-staple\n")
    params = {
        "desired": str(desired),
        "files": [{"path": str(actual), "content": "secrets/db.env", "sensitive": True}],
    }
    result = audit(params)
    assert result.status is Status.warning
    assert "correct-horse" not in result.output and "battery-staple" not in result.output
    assert result.output.splitlines()[1:] == [
        f"DRIFT file {actual}: content differs",
        "--- desired/secrets/db.env",
        f"+++ {actual}",
        "@@ content hidden: sha256 only @@",
        f"-sha256 {hashlib.sha256(b'PASSWORD=correct-horse' + NL).hexdigest()}",
        f"+sha256 {hashlib.sha256(b'PASSWORD=battery-staple' + NL).hexdigest()}",
    ]


def test_a_missing_desired_file_or_directory_is_unknown_with_its_path_and_touches_nothing(tmp_path):
    actual = tmp_path / "app.conf"
    actual.write_text(APP_CONF)
    before = actual.stat()
    desired = checkout(tmp_path, {"README": "desired state\n"})
    params = {"desired": str(desired), "files": [{"path": str(actual), "content": "etc/app.conf"}]}
    result = audit(params)
    assert result.status is Status.unknown
    assert result.output.splitlines()[1] == (
        f"ERROR file {actual}: desired file {desired.resolve()}/etc/app.conf: no such file"
    )
    assert result.metrics["errors"] == 1 and result.metrics["drifted"] == 0
    assert actual.read_text() == APP_CONF and actual.stat().st_mtime_ns == before.st_mtime_ns

    outside = audit({**params, "files": [{"path": str(actual), "content": "../app.conf"}]})
    assert f"desired ../app.conf is outside the desired directory {desired}" in outside.output

    nowhere = audit({**params, "desired": str(tmp_path / "nope")})
    assert nowhere.status is Status.unknown
    assert nowhere.output == f"drift: desired state {tmp_path / 'nope'}: no such directory"


@contextmanager
def as_user(name: str) -> Iterator[None]:
    """Run as another user (effective ids only) so that root's files are unreadable."""
    user = pwd.getpwnam(name)
    os.setegid(user.pw_gid)
    os.seteuid(user.pw_uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def test_an_unreadable_actual_file_is_unknown_with_the_reason(tmp_path):
    shared = Path(subprocess.run(["mktemp", "-d"], check=True, capture_output=True, text=True).stdout.strip())
    try:
        os.chmod(shared, 0o755)
        secret = shared / "shadow.conf"
        secret.write_text("root only\n")
        os.chmod(secret, 0o600)
        params = {
            "desired": str(shared),
            "record_commit": False,
            "files": [{"path": str(secret), "sha256": "0" * 64}, {"path": str(shared), "mode": "0755"}],
        }
        with as_user("nobody"):
            result = audit(params)
        assert result.status is Status.unknown
        lines = result.output.splitlines()
        assert lines[1] == f"ERROR file {secret}: cannot read: permission denied"
        assert lines[2] == f"DRIFT file {shared}: not a regular file (a directory)"
    finally:
        subprocess.run(["rm", "-rf", str(shared)], check=True)


def test_long_diffs_and_many_items_are_bounded(tmp_path):
    desired = tmp_path / "desired"
    desired.mkdir()
    (desired / "big.conf").write_text("".join(f"line {i}\n" for i in range(500)))
    actual = tmp_path / "actual"
    actual.mkdir()
    files = []
    for n in range(30):
        (actual / f"big{n}.conf").write_text("".join(f"line {i} changed\n" for i in range(500)))
        files.append({"path": f"big{n}.conf", "content": "big.conf"})
    params = {"desired": str(desired), "root": str(actual), "record_commit": False, "files": files}
    result = audit({**params, "max_diff_lines": 10, "max_output_bytes": 2000})
    lines = result.output.splitlines()
    assert lines[12] == "... 993 more diff lines"
    assert lines[-1].startswith("... output cut at 2000 bytes: ") and lines[-1].endswith(
        " more items not shown"
    )
    assert len(result.output) < 2200
    assert result.metrics["drifted"] == 30


MANIFESTS = """
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: api
      namespace: production
      labels: {app: api}
      resourceVersion: "1"          # exported with the object: ignored
      uid: 00000000-0000-0000-0000-000000000000
    spec:
      replicas: 3
      template:
        spec:
          containers:
            - name: api
              image: registry.example.com/shop/api:2.14.1
              ports: [{name: http, containerPort: 8080}]
    status: {replicas: 99}
    ---
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: worker, namespace: production}
    spec:
      replicas: 2
      template:
        spec:
          containers:
            - name: worker
              image: registry.example.com/shop/worker:2.15.0
    ---
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: ghost}
    spec: {replicas: 1}
"""


def manifest_checkout(tmp_path: Path) -> Path:
    return checkout(tmp_path, {"k8s/shop.yaml": textwrap.dedent(MANIFESTS).lstrip()})


def test_manifests_compare_only_the_fields_they_set_against_the_live_objects(tmp_path):
    desired = manifest_checkout(tmp_path)
    api = FakeKubeApi()

    async def go() -> CheckResult:
        async with api.serve() as base:
            kubeconfig = write_kubeconfig(tmp_path, base)
            params = {
                "desired": str(desired),
                "manifests": ["k8s"],
                "kubernetes": {"kubeconfig": str(kubeconfig), "namespace": "production"},
            }
            result: CheckResult = await run_kind("drift", params)
            return result

    result = run(go())
    assert result.status is Status.warning, result.output
    lines = result.output.splitlines()
    assert lines[0].endswith(": 2 of 3 items drifted")
    assert result.metrics["manifests_checked"] == 3 and result.metrics["manifests_drifted"] == 2
    worker = lines[lines.index("DRIFT manifest Deployment production/worker: fields differ") :]
    assert worker[1:3] == ["--- desired/k8s/shop.yaml#1", "+++ live Deployment production/worker"]
    diff = worker[3 : worker.index("DRIFT manifest Deployment production/ghost: missing in the cluster")]
    assert "-  replicas: 2" in diff and "+  replicas: 1" in diff
    assert "-      - image: registry.example.com/shop/worker:2.15.0" in diff
    assert "+      - image: registry.example.com/shop/worker:2.14.1" in diff
    assert not any("imagePullPolicy" in line or "resourceVersion" in line for line in diff)
    assert "Deployment production/api" not in result.output
    assert (
        "GET /apis/apps/v1/namespaces/production/deployments?fieldSelector=metadata.name%3Dworker"
        in api.seen()
    )


def test_a_sensitive_kind_shows_hashes_and_an_unreachable_cluster_is_unknown(tmp_path):
    desired = manifest_checkout(tmp_path)
    api = FakeKubeApi()

    async def go() -> tuple[CheckResult, CheckResult]:
        async with api.serve() as base:
            kubeconfig = write_kubeconfig(tmp_path, base)
            params: dict[str, Any] = {
                "desired": str(desired),
                "manifests": ["k8s/shop.yaml"],
                "sensitive_kinds": ["Deployment"],
                "kubernetes": {"kubeconfig": str(kubeconfig), "namespace": "production"},
            }
            hidden: CheckResult = await run_kind("drift", params)
            wrong = write_kubeconfig(tmp_path, base, token="wrong-token")
            params["kubernetes"]["kubeconfig"] = str(wrong)
            refused: CheckResult = await run_kind("drift", params)
            return hidden, refused

    hidden, refused = run(go())
    assert "shop/worker" not in hidden.output and "replicas" not in hidden.output
    assert "@@ content hidden: sha256 only @@" in hidden.output
    assert refused.status is Status.unknown
    assert refused.metrics["errors"] == 3
    assert (
        "ERROR manifest Deployment production/worker: cannot read the live object: "
        "http://127.0.0.1:" in refused.output
    )
    assert "(401 Unauthorized): Unauthorized" in refused.output


def test_a_bad_manifest_is_named_exactly(tmp_path):
    desired = checkout(tmp_path, {"k8s/a.yaml": "kind: Deployment\nspec: {}\n", "k8s/b.yml": "a: [1\n"})
    params = {"desired": str(desired), "manifests": ["k8s", "k8s/none.yaml"], "record_commit": False}
    result = audit(params)
    assert result.status is Status.unknown
    lines = result.output.splitlines()
    assert "ERROR manifest k8s/a.yaml#0: not an object with metadata.name" in lines
    assert any(
        line.startswith(f"ERROR manifest k8s/b.yml: desired manifest {desired.resolve()}/k8s/b.yml: not YAML")
        for line in lines
    )
    assert (
        f"ERROR manifest k8s/none.yaml: desired manifest {desired.resolve()}/k8s/none.yaml: no such file"
        in lines
    )


PLAN = """
    targets:
      - {name: host1, kind: host}
    tasks:
      - name: config-drift
        kind: drift
        targets: [host1]
        schedule: {every: 1m}
        alert: {after: 1, on: [warning, critical, unknown], priority: P3}
        params:
          desired: %s
          files: [{path: %s, content: app.conf}]
"""


def test_drift_raises_an_alert_through_the_run(store, write_plan, make_engine, tmp_path):
    desired = checkout(tmp_path, {"app.conf": APP_CONF})
    actual = tmp_path / "app.conf"
    actual.write_text("changed by hand\n")
    engine: Engine = make_engine(store, write_plan(PLAN % (desired, actual)))
    assert engine.reload().ok

    async def go() -> None:
        orders, _ = engine.tick(engine.clock.now())
        await engine.runner.run_all(orders)
        await engine.runner.stop(0)

    run(go())
    with store.read() as s:
        assert list(s.scalars(select(RunRow.status))) == ["warning"]
        (alert,) = s.scalars(select(AlertRow)).all()
    assert alert.status == "firing" and alert.labels["kind"] == "drift" and alert.priority == "P3"
    assert alert.summary.startswith("config-drift on host1: drift (desired ")
    assert alert.summary.endswith("1 of 1 items drifted")
