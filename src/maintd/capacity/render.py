"""The capacity report as Markdown (charts linked as SVG files) and as one HTML page (charts
inline), and the summary table the CLI prints too."""

from __future__ import annotations

import re
from html import escape
from pathlib import Path

from maintd.capacity.chart import svg
from maintd.capacity.format import amount, days, growth
from maintd.capacity.model import CapacityReport, Forecast

COLUMNS = ("series", "last", "growth/month", "model (holdout MAE / RMSE)", "3 months", "6 months",
           "12 months", "limit reached")  # fmt: skip
CHARTS = "capacity-charts"  # the folder next to capacity.md that holds its SVG files


def row(f: Forecast) -> list[str]:
    """One series in the summary table; a series too short to project says why instead."""
    label, last = f.series.label(), amount(f.last_value, f.unit)
    if f.note:
        return [label, last, "-", f.note, "-", "-", "-", "-"]
    chosen = next(fit for fit in f.fits if fit.model == f.chosen)
    model = f"{f.chosen} ({_err(chosen.mae, f)} / {_err(chosen.rmse, f)})"
    spans = [
        f"{amount(p.value, f.unit)} [{amount(p.lower, f.unit)} .. {amount(p.upper, f.unit)}]"
        for p in f.projections
    ]
    return [label, last, growth(f.growth_per_month, f.unit), model, *spans, _exhausted(f)]


def _err(value: float | None, f: Forecast) -> str:
    return "-" if value is None else amount(value, f.unit)


def _exhausted(f: Forecast) -> str:
    ex = f.exhaustion
    if ex is None:
        return "no limit known"
    if ex.at is None and ex.earliest_at is None:
        return "not within 12 months"
    if ex.at is None:
        return f"not expected; upper bound in {days(ex.earliest_days)}"
    return f"{ex.at:%Y-%m-%d} (in {days(ex.days)}; earliest {days(ex.earliest_days)})"


def chart_name(f: Forecast) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f.series.label()) + ".svg"


def markdown(report: CapacityReport) -> str:
    lines = [
        "# Capacity review",
        "",
        f"Computed {report.computed_at:%Y-%m-%d %H:%M} UTC from the runs since {report.since:%Y-%m-%d}, "
        f"resampled every {report.step_days:g} day(s). How each figure is computed: docs/capacity.md.",
        "",
        "## Recommendations",
        "",
        *([f"- **{r.urgency}**: {r.text}" for r in report.recommendations] or ["None: no series reaches "
                                                                            "its limit within 12 months."]),
        "",
        "## Series",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
        *("| " + " | ".join(cell.replace("|", "\\|") for cell in row(f)) + " |" for f in report.forecasts),
        "",
    ]  # fmt: skip
    for f in report.forecasts:
        lines += [f"### {f.series.label()}", ""]
        if f.note:
            lines += [f.note, ""]
            continue
        lines += [f"![{f.series.label()}]({CHARTS}/{chart_name(f)})", "", *_details(f), ""]
    return "\n".join(lines)


def _details(f: Forecast) -> list[str]:
    lines = [f"- growth: {growth(f.growth_per_day, f.unit)}/day ({f.growth_how})"]
    lines += [
        f"- {fit.model}: MAE {_err(fit.mae, f)}, RMSE {_err(fit.rmse, f)} ({fit.how})" for fit in f.fits
    ]
    lines.append(f"- chosen: {f.chosen} ({f.chosen_why}); interval: {f.interval}")
    if f.exhaustion is not None:
        ex = f.exhaustion
        lines.append(f"- limit {amount(ex.limit, f.unit)} from {ex.limit_source}: {_exhausted(f)} ({ex.how})")
    return lines


def html(report: CapacityReport) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row(f)) + "</tr>" for f in report.forecasts
    )
    none = "<li>None: no series reaches its limit within 12 months.</li>"
    recs = "".join(f"<li><b>{escape(r.urgency)}</b>: {escape(r.text)}</li>" for r in report.recommendations)
    sections = []
    for f in report.forecasts:
        inner = f"<p>{escape(f.note)}</p>" if f.note else svg(f) + "<ul>" + "".join(
            f"<li>{escape(line[2:])}</li>" for line in _details(f)) + "</ul>"  # fmt: skip
        sections.append(f"<section><h3>{escape(f.series.label())}</h3>{inner}</section>")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Capacity review</title>'
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}</style></head><body>"
        f"<h1>Capacity review</h1><p>Computed {report.computed_at:%Y-%m-%d %H:%M} UTC from the runs since "
        f"{report.since:%Y-%m-%d}, resampled every {report.step_days:g} day(s).</p>"
        f"<h2>Recommendations</h2><ul>{recs or none}"
        f"</ul><h2>Series</h2><table><tr>{head}</tr>{body}</table>{''.join(sections)}</body></html>\n"
    )


def write(report: CapacityReport, out: Path) -> list[Path]:
    """capacity.html, capacity.md and one SVG per projected series under ``out``; the paths written."""
    charts = out / CHARTS
    charts.mkdir(parents=True, exist_ok=True)
    written = []
    for f in report.forecasts:
        if not f.note:
            path = charts / chart_name(f)
            path.write_text(svg(f) + "\n", encoding="utf-8")
            written.append(path)
    for name, text in (("capacity.html", html(report)), ("capacity.md", markdown(report))):
        (out / name).write_text(text, encoding="utf-8")
        written.append(out / name)
    return written
