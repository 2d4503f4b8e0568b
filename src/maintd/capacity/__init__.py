"""Capacity planning from what the checks recorded: series, growth, projections, exhaustion.

A series is one metric of one task on one target (``runs.metrics``), resampled to a regular step.
Two models are fitted (a linear trend and Holt-Winters), the one with the smaller error on the
held-out tail is chosen, and its projections at 3, 6 and 12 months, with prediction intervals,
say when the series reaches its limit. numpy and statsmodels are imported only when a forecast is
made, so nothing that merely imports maintd pays for them. How each figure is computed:
docs/capacity.md.
"""
