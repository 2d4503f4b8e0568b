"""Improvement opportunities derived from what was measured, each with an impact and an effort
score (1 to 5) and why, ranked by impact / effort (the seed: "prioritize based on impact/effort")."""

from __future__ import annotations

from dataclasses import dataclass

from maintd.capacity.model import CapacityReport
from maintd.kpi.model import Report
from maintd.lifecycle.documents import DocStatus
from maintd.reports.measure import TaskRuns

FAILURE_RATE = 5.0  # % of a task's runs not ok from which it is an opportunity
PLAYBOOK_RATE = 90.0  # % success under which a playbook is one (the remediation KPI's target)
SOON = ("now", "3 months", "6 months")  # capacity urgencies within 6 months


@dataclass(frozen=True)
class Opportunity:
    title: str
    impact: int  # 1 (small) .. 5 (large)
    effort: int  # 1 (an hour) .. 5 (a project)
    why: str

    @property
    def score(self) -> float:
        return round(self.impact / self.effort, 2)


def _failed_impact(failed: int) -> int:
    return next((score for floor, score in ((50, 5), (20, 4), (10, 3), (3, 2)) if failed >= floor), 1)


def derive(
    tasks: dict[str, TaskRuns], kpis: Report, docs: list[DocStatus], capacity: CapacityReport | None
) -> list[Opportunity]:
    """Every opportunity, best score first (then larger impact, then title)."""
    found = [
        Opportunity(
            f"fix the failing task {t.task}",
            _failed_impact(t.failed),
            2,
            f"{t.failed} of {t.runs} runs not ok ({t.failure_rate:g} %); impact by failed runs "
            "(>= 3: 2, >= 10: 3, >= 20: 4, >= 50: 5); effort 2: a check's config or its target",
        )
        for t in tasks.values()
        if t.failed and t.failure_rate >= FAILURE_RATE
    ]
    for d in docs:
        if d.stale:
            runbook = d.kind == "runbook"
            found.append(Opportunity(
                f"review the stale document {d.name}", 3 if runbook else 2, 1,
                f"stale since {d.stale_since:%Y-%m-%d} ({d.stale_cause}); impact {3 if runbook else 2}: "
                f"{'a runbook used in incidents' if runbook else 'a document'}; effort 1: one review",
            ))  # fmt: skip
    for r in capacity.recommendations if capacity is not None else []:
        if r.urgency in SOON:
            impact = 5 if r.urgency in ("now", "3 months") else 4
            found.append(Opportunity(
                f"add capacity for {r.series.label()}", impact, 3,
                f"fills within {r.urgency}: {r.text}; impact {impact} (an outage when full); effort 3",
            ))  # fmt: skip
    for f in kpis.figures:
        if f.name.startswith("remediation.success_rate.") and f.value is not None and f.value < PLAYBOOK_RATE:
            found.append(Opportunity(
                f"make the playbook {f.name.rsplit('.', 1)[1]} reliable", 4, 3,
                f"{f.how} ({f.value:g} %, under {PLAYBOOK_RATE:g} %); impact 4: its incidents wait for "
                "a human; effort 3: its action or verification",
            ))  # fmt: skip
    return sorted(found, key=lambda o: (-o.score, -o.impact, o.title))
