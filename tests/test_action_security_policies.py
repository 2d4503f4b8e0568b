"""The security-policies kind: manifests vs the fake API server, one change drafted in the real
store, and its procedure's apply and rollback run against the fake, asserting the exact calls."""

from __future__ import annotations

import copy
import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from maintd.changes.commands import CommandResult, render
from maintd.changes.commands import run as run_command
from maintd.checks.base import CheckResult, Status
from maintd.plan.loader import load_plan
from maintd.store.db import Store
from maintd.store.models import ChangeRow
from tests.conftest import run
from tests.kinds import REGISTRY, run_kind
from tests.kubernetes_support import FakeKubeApi, write_kubeconfig
from tests.kubernetes_support.more import recorded

PY, HELPER = sys.executable, "maintd.tasks.security_policies.apply"
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
    - name: apply-policies
      apply: ["{PY}", -m, {HELPER}, apply, "{{bundle}}", "{{sha256}}"]
      rollback: ["{PY}", -m, {HELPER}, rollback, "{{bundle}}", "{{sha256}}"]
"""
POLICIES = {
    "network/default-deny.yaml": """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: default-deny-ingress, namespace: production}
        spec:
          podSelector: {}
          policyTypes: [Ingress, Egress]
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: allow-dns, namespace: production}
        spec:
          podSelector: {}
          policyTypes: [Egress]
          egress:
            - ports: [{protocol: UDP, port: 53}]
        """,
    "namespaces.yaml": """
        apiVersion: v1
        kind: Namespace
        metadata:
          name: production
          labels: {pod-security.kubernetes.io/enforce: baseline}
        ---
        apiVersion: v1
        kind: Namespace
        metadata:
          name: staging
          labels: {pod-security.kubernetes.io/enforce: restricted}
        """,
}
NETPOL = ("/apis/networking.k8s.io/v1", "networkpolicies")
NAMESPACES = ("/api/v1", "namespaces")


def policies(tmp_path: Path) -> Path:
    root = tmp_path / "policies"
    for name, text in POLICIES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text).lstrip())
    return root


def test_differences_are_shown_and_nothing_is_applied_without_a_change(tmp_path):
    api = FakeKubeApi(more=recorded())
    before = copy.deepcopy(api.more)

    async def go() -> CheckResult:
        async with api.serve() as base:
            params = {"directory": str(policies(tmp_path)), "bundles_dir": str(tmp_path / "bundles"),
                      "kubernetes": {"kubeconfig": str(write_kubeconfig(tmp_path, base))}}  # fmt: skip
            result: CheckResult = await run_kind("security-policies", params)
            return result

    result = run(go())
    assert result.status is Status.warning, result.output
    lines = result.output.splitlines()
    assert lines[0] == "4 policy objects, 3 differ from the cluster, 0 unreadable"
    assert "DRIFT NetworkPolicy production/allow-dns: missing in the cluster" in lines
    assert "DRIFT NetworkPolicy production/default-deny-ingress: fields differ" in lines
    assert "DRIFT Namespace staging: fields differ" in lines
    assert "+  - Egress" not in lines and "-  - Egress" in lines  # desired (-) vs live (+), as drift
    assert not api.writes() and api.more == before and not (tmp_path / "bundles").exists()


def test_the_change_applies_by_server_side_apply_and_its_rollback_restores_the_saved_objects(
    tmp_path, sqlite_store: Store
):
    (tmp_path / "plan.yaml").write_text(PLAN)
    api = FakeKubeApi(more=recorded())
    original = copy.deepcopy(api.more)
    directory = policies(tmp_path)

    async def go() -> tuple[CheckResult, CheckResult, list[CommandResult], Any, Any]:
        async with api.serve() as base:
            params = {
                "directory": str(directory),
                "bundles_dir": str(tmp_path / "bundles"),
                "kubernetes": {"kubeconfig": str(write_kubeconfig(tmp_path, base))},
                "change": {"procedure": "apply-policies", "plan": str(tmp_path / "plan.yaml"),
                           "database": sqlite_store.url},
            }  # fmt: skip
            dry: CheckResult = await run_kind("security-policies", params, dry_run=True)
            assert not (tmp_path / "bundles").exists()
            result: CheckResult = await run_kind("security-policies", params)
            procedure = load_plan(tmp_path / "plan.yaml", REGISTRY).plan.changes.procedure("apply-policies")
            with sqlite_store.read() as s:
                values = dict(s.scalars(select(ChangeRow)).one().params)
            api.requests.clear()
            out = []
            for command, given in (
                (procedure.apply, {**values, "sha256": "f" * 64}),
                (procedure.apply, values),
            ):
                out.append(
                    await run_command(render(command, given), timeout=timedelta(seconds=30), limit=1 << 16)
                )
            applied = copy.deepcopy(api.more)
            out.append(await run_command(render(procedure.rollback, values), timeout=timedelta(seconds=30),
                                         limit=1 << 16))  # fmt: skip
            return dry, result, out, applied, api.writes()

    dry, result, (tampered, applied, rolled_back), after_apply, writes = run(go())
    assert dry.changes[0].action == "draft-change" and "dry run: would write a bundle" in dry.output
    assert result.status is Status.warning and [c.action for c in result.changes] == ["write", "draft-change"]
    with sqlite_store.read() as s:
        change = s.scalars(select(ChangeRow)).one()
    assert change.state == "draft" and change.type == "configuration-update"
    assert change.requested_by == "security-policies" and change.title.startswith("apply 3 security policies")
    assert tampered.code == 2 and "is not the approved" in tampered.output
    assert applied.code == 0 and rolled_back.code == 0, applied.output + rolled_back.output
    deny = "/apis/networking.k8s.io/v1/namespaces/production/networkpolicies/default-deny-ingress"
    dns = "/apis/networking.k8s.io/v1/namespaces/production/networkpolicies/allow-dns"
    assert writes == [  # the bundle in file order (namespaces.yaml first); the rollback in reverse
        ("PATCH /api/v1/namespaces/staging", yaml_doc("namespaces.yaml", 1)),
        (f"PATCH {deny}", yaml_doc("network/default-deny.yaml", 0)),
        (f"PATCH {dns}", yaml_doc("network/default-deny.yaml", 1)),
        (f"DELETE {dns}", None),
        (f"PUT {deny}", restored(original, NETPOL, "default-deny-ingress")),
        ("PUT /api/v1/namespaces/staging", restored(original, NAMESPACES, "staging")),
    ]
    patches = [r for r in api.requests if r.method == "PATCH"]
    assert all(r.query == {"fieldManager": "maintd", "force": "true"} for r in patches)
    assert all(r.headers["Content-Type"] == "application/apply-patch+yaml" for r in patches)
    applied_deny = next(o for o in after_apply[NETPOL] if o["metadata"]["name"] == "default-deny-ingress")
    assert applied_deny["spec"]["policyTypes"] == ["Ingress", "Egress"]
    staging = next(o for o in after_apply[NAMESPACES] if o["metadata"]["name"] == "staging")
    assert staging["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    # After the rollback: the objects are as before (less the server's bookkeeping the PUT drops).
    assert [o["metadata"]["name"] for o in api.more[NETPOL]] == ["default-deny-ingress"]
    assert api.more[NETPOL][0]["spec"] == original[NETPOL][0]["spec"]
    assert next(o for o in api.more[NAMESPACES] if o["metadata"]["name"] == "staging")["metadata"][
        "labels"
    ] == {"kubernetes.io/metadata.name": "staging"}


def yaml_doc(name: str, index: int) -> dict[str, Any]:
    import yaml

    return list(yaml.safe_load_all(textwrap.dedent(POLICIES[name])))[index]  # type: ignore[no-any-return]


def restored(objects: dict[Any, list[dict[str, Any]]], key: tuple[str, str], name: str) -> dict[str, Any]:
    """The saved live object as the rollback PUTs it: kind and apiVersion set, bookkeeping dropped."""
    live = copy.deepcopy(next(o for o in objects[key] if o["metadata"]["name"] == name))
    live.pop("status", None)
    live["apiVersion"] = "v1" if key[0] == "/api/v1" else key[0].removeprefix("/apis/")
    live["kind"] = "Namespace" if key == NAMESPACES else "NetworkPolicy"
    for field in ("resourceVersion", "managedFields", "generation", "creationTimestamp", "selfLink"):
        live["metadata"].pop(field, None)
    return live


def test_a_missing_directory_or_an_unreachable_cluster_is_reported(tmp_path):
    params = {"directory": str(tmp_path / "nope"), "bundles_dir": str(tmp_path)}
    result = run(run_kind("security-policies", params))
    assert result.status is Status.unknown and "no such directory" in result.output
    params = {"directory": str(policies(tmp_path)), "bundles_dir": str(tmp_path),
              "kubernetes": {"kubeconfig": str(tmp_path / "none.yaml")}}  # fmt: skip
    result = run(run_kind("security-policies", params))
    assert result.status is Status.unknown and "no such file" in result.output


# -- end to end: the drafted change submitted, approved, executed by the change worker --------------

WORKER_PLAN = """
targets:
  - {{name: prod-cluster, kind: cluster}}
tasks:
  - name: staging-not-restricted
    kind: command
    description: the staging workloads break under the restricted PodSecurity profile (as a check)
    targets: [prod-cluster]
    schedule: {{every: 1h}}
    params: {{argv: ["{py}", "{check}"]}}
people:
  - {{name: rob, email: rob@example.com}}
  - {{name: tess, email: tess@example.com}}
changes:
  watch: {{window: 2m, interval: 1m, checks: [staging-not-restricted]}}
  types:
    policy-update: {{approvals: [{{role: team-lead}}]}}
  procedures:
    - name: apply-policies
      apply: ["{py}", -m, {helper}, apply, "{{bundle}}", "{{sha256}}"]
      rollback: ["{py}", -m, {helper}, rollback, "{{bundle}}", "{{sha256}}"]
"""
# Exit 2 (critical) while staging enforces "restricted": the URL and token come from files the test
# writes once the fake API server listens.
CHECK = """
import json, pathlib, sys, urllib.request
here = pathlib.Path(__file__).parent
request = urllib.request.Request(here.joinpath("api-url").read_text() + "/api/v1/namespaces/staging",
                                 headers={"Authorization": "Bearer maintd-test-token"})
labels = json.load(urllib.request.urlopen(request, timeout=10))["metadata"].get("labels", {})
enforce = labels.get("pod-security.kubernetes.io/enforce")
print(f"staging enforce={enforce}")
sys.exit(2 if enforce == "restricted" else 0)
"""


def test_an_approved_policy_change_that_breaks_a_check_is_rolled_back_by_the_change_worker(
    tmp_path, sqlite_store: Store, write_plan, make_engine
):
    from maintd.changes import orders, service
    from maintd.changes.worker import ChangeWorker
    from maintd.store import events
    from tests.changes_support import ROB, TESS, run_with_worker

    check = tmp_path / "check.py"
    check.write_text(CHECK)
    plan_dir = write_plan(WORKER_PLAN.format(py=PY, helper=HELPER, check=check))
    engine = make_engine(sqlite_store, plan_dir)
    assert engine.reload().ok, engine.last_reload
    api = FakeKubeApi(more=recorded())
    original = copy.deepcopy(api.more)
    directory = policies(tmp_path)

    async def go(worker: ChangeWorker) -> tuple[int, list[str]]:
        async with api.serve() as base:
            (tmp_path / "api-url").write_text(base)
            params = {
                "directory": str(directory),
                "bundles_dir": str(tmp_path / "bundles"),
                "kubernetes": {"kubeconfig": str(write_kubeconfig(tmp_path, base))},
                "change": {"procedure": "apply-policies", "type": "policy-update", "plan": str(plan_dir),
                           "database": sqlite_store.url},
            }  # fmt: skip
            drafted: CheckResult = await run_kind("security-policies", params)
            change_id = int(drafted.metrics["change_id"])
            assert engine.loaded is not None
            settings, now = engine.loaded.plan.changes, engine.clock.now()
            with sqlite_store.write() as s:
                service.submit(s, change_id=change_id, who=ROB, settings=settings, now=now)
                service.approve(s, change_id=change_id, who=TESS, settings=settings, now=now)
                orders.request_execution(s, change_id=change_id, who=ROB, settings=settings, now=now)
            ran = [step.name for step in await worker.run_due()]  # pre-check ok, apply, watch begins
            engine.clock.advance(timedelta(minutes=1))
            ran += [step.name for step in await worker.run_due()]  # the check is critical: roll back
            return change_id, ran

    change_id, ran = run_with_worker(engine, go)
    assert ran == ["execute.1", "watch.1.1", "rollback.1"]
    with sqlite_store.read() as s:
        row = service.load(s, change_id)
        kinds = [e.kind for e in events.query(s, subject=f"change:{change_id}", limit=100)]
    assert row.state == "rolled_back" and row.requested_by == "security-policies"
    assert kinds[:2] == ["change.created", "change.pending_approval"] and "change.applied" in kinds
    assert kinds[-3:] == ["change.rollback_applied", "change.rechecked", "change.rolled_back"]
    staging = next(o for o in api.more[NAMESPACES] if o["metadata"]["name"] == "staging")
    assert staging["metadata"]["labels"] == {"kubernetes.io/metadata.name": "staging"}
    assert [o["metadata"]["name"] for o in api.more[NETPOL]] == ["default-deny-ingress"]
    assert api.more[NETPOL][0]["spec"] == original[NETPOL][0]["spec"]
