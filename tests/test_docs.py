"""The docs stay honest: every plan field, kind param, CLI command and API route is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from maintd.api.app import create_app
from maintd.api.deps import AppContext
from maintd.cli.reference import render
from maintd.clock import SystemClock
from maintd.metrics import Metrics
from maintd.plan.escalation import EscalationLevel, EscalationPolicy, EscalationTarget
from maintd.plan.incidents import IncidentSettings, InhibitRule, MaintenanceWindow, TaskAlert
from maintd.plan.models import Plan, Retry, RunnerSettings, Selector, Target, Task
from maintd.plan.notify import Channel, NotifyRule
from maintd.plan.oncall import Layer, OnCallSchedule, Override, Person, Rotation
from maintd.plan.schedule import Schedule
from maintd.registry import Registry

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def documented_fields(page: Path) -> set[str]:
    """Names in the first column of the page's tables: | `name` | ..."""
    return set(re.findall(r"^\| `([a-z_]+)` \|", page.read_text(), flags=re.MULTILINE))


@pytest.mark.parametrize(
    "model",
    [
        Plan,
        RunnerSettings,
        Target,
        Task,
        Schedule,
        Retry,
        TaskAlert,
        IncidentSettings,
        InhibitRule,
        MaintenanceWindow,
        Person,
        OnCallSchedule,
        Layer,
        Rotation,
        Override,
        EscalationPolicy,
        EscalationLevel,
        EscalationTarget,
        Channel,
        NotifyRule,
    ],
)
def test_every_plan_field_is_documented(model: type[BaseModel]):
    missing = set(model.model_fields) - documented_fields(DOCS / "plan.md")
    assert not missing, f"docs/plan.md does not document {model.__name__} fields {sorted(missing)}"


def test_selector_fields_are_explained():
    text = (DOCS / "plan.md").read_text()
    assert all(f"{field}:" in text for field in Selector.model_fields)


@pytest.mark.parametrize("kind", list(Registry.default()), ids=lambda k: k.name)
def test_every_kind_has_a_page_with_every_param(kind):
    page = DOCS / "kinds" / f"{kind.name}.md"
    assert page.exists(), f"no docs/kinds/{kind.name}.md"
    missing = set(kind.config.model_fields) - documented_fields(page)
    assert not missing, f"{page.name} does not document params {sorted(missing)}"
    assert f"[`{kind.name}`]({kind.name}.md)" in (DOCS / "kinds" / "README.md").read_text()


def test_the_cli_reference_is_regenerated():
    assert (DOCS / "cli.md").read_text() == render(), "run: python -m maintd.cli.reference > docs/cli.md"


def test_every_api_route_is_documented(sqlite_store):
    app = create_app(AppContext(sqlite_store, SystemClock(), Metrics()))
    text = (DOCS / "api.md").read_text()
    for path, methods in app.openapi()["paths"].items():
        for method in methods:
            assert f"`{method.upper()} {path}`" in text, f"docs/api.md lacks {method.upper()} {path}"


def test_readme_links_resolve():
    readme = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#]+)\)", readme):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), f"README links to missing {target}"


@pytest.mark.parametrize("example", ["plan", "seed-daily", "maintenance"])
def test_the_example_plans_are_valid(example):
    from maintd.plan.loader import load_plan

    loaded = load_plan(ROOT / "examples" / example, Registry.default())
    assert loaded.warnings == []
