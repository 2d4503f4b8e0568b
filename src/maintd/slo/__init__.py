"""Service level objectives: error budgets and multi-window burn-rate alerts.

An SLO (the plan's ``slos`` section, maintd.plan.slos) promises a target's availability, measured
as the availability KPI measures it (maintd.kpi.availability: time up over time observed by its
probe runs). ``budget`` computes its error budget and burn rates, ``alerts`` turns burning pairs of
windows into alerts on the native alert path, ``watch`` evaluates them periodically for the engine.
"""
