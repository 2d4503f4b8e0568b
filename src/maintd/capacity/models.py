"""The two models: a linear trend (OLS) and Holt-Winters (exponential smoothing), via statsmodels.

Each gives a path: the point forecast and a 95 % prediction interval for the next ``h`` steps.
OLS's interval is its own (``get_prediction``: the residual variance plus the uncertainty of the
fitted line). Holt-Winters' is simulated: SIMULATIONS future paths with the fitted model's
residuals drawn as additive normal errors, the 2.5th and 97.5th percentile at each step.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Array = npt.NDArray[np.float64]

ALPHA = 0.05  # 95 % intervals
SIMULATIONS = 200
SEED = 20261127  # the simulated intervals are the same on every run of the same data


@dataclass
class Path:
    value: Array
    lower: Array
    upper: Array


@dataclass
class HoltWinters:
    damped: bool
    season: int  # steps per season; 0: no seasonal component

    def describe(self) -> str:
        parts = ["additive trend" + (", damped" if self.damped else "")]
        parts.append(f"additive season of {self.season} steps" if self.season else "no season")
        return "Holt-Winters (" + "; ".join(parts) + ")"


def linear_fit(values: Array) -> tuple[float, float]:
    """(intercept, slope per step) by least squares: the growth figure and the linear holdout."""
    import numpy as np

    x = np.arange(len(values), dtype=np.float64)
    slope, intercept = np.polyfit(x, values, 1)
    return float(intercept), float(slope)


def linear_holdout(train: Array, h: int) -> Array:
    import numpy as np

    intercept, slope = linear_fit(train)
    return intercept + slope * np.arange(len(train), len(train) + h, dtype=np.float64)


def linear_path(values: Array, h: int) -> Path:
    import numpy as np
    import statsmodels.api as sm

    n = len(values)
    x = sm.add_constant(np.arange(n, dtype=np.float64))
    fitted = sm.OLS(values, x).fit()
    future = sm.add_constant(np.arange(n, n + h, dtype=np.float64), has_constant="add")
    frame = fitted.get_prediction(future).summary_frame(alpha=ALPHA)
    return Path(
        np.asarray(frame["mean"], dtype=np.float64),
        np.asarray(frame["obs_ci_lower"], dtype=np.float64),
        np.asarray(frame["obs_ci_upper"], dtype=np.float64),
    )


def hw_train(train: Array, spec: HoltWinters) -> Any:
    """Holt-Winters fitted to ``train``: smoothing parameters and initial states estimated."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    model = ExponentialSmoothing(
        train,
        trend="add",
        damped_trend=spec.damped,
        seasonal="add" if spec.season else None,
        seasonal_periods=spec.season or None,
        initialization_method="estimated",
    )
    with warnings.catch_warnings():
        # ConvergenceWarning on flat or short series: the fit is still usable, the holdout judges it
        warnings.simplefilter("ignore")
        # no brute-force grid before the optimiser: half the time, the same fit on our series
        return model.fit(use_brute=False)


def hw_holdout(trained: Any, h: int) -> Array:
    import numpy as np

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels takes log(SSE) for its AIC: -inf on a perfect fit
        return np.asarray(trained.forecast(h), dtype=np.float64)


def hw_path(values: Array, trained: Any, h: int, spec: HoltWinters) -> Path:
    """The trained model run through every point (its parameters and initial states kept, so the
    states catch up with the held-out tail), then projected ``h`` steps with simulated intervals.
    Estimating the parameters again on all points costs ten times more for a near-equal fit."""
    import numpy as np
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    p = trained.params
    model = ExponentialSmoothing(
        values,
        trend="add",
        damped_trend=spec.damped,
        seasonal="add" if spec.season else None,
        seasonal_periods=spec.season or None,
        initialization_method="known",
        initial_level=p["initial_level"],
        initial_trend=p["initial_trend"],
        initial_seasonal=p["initial_seasons"] if spec.season else None,
    )
    names = ["smoothing_level", "smoothing_trend"]
    names += ["smoothing_seasonal"] if spec.season else []
    names += ["damping_trend"] if spec.damped else []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with model.fix_params({name: p[name] for name in names}):
            fitted = model.fit()
        runs = fitted.simulate(h, repetitions=SIMULATIONS, error="add", anchor="end", random_state=SEED)
        point = np.asarray(fitted.forecast(h), dtype=np.float64)
    runs = np.asarray(runs, dtype=np.float64).reshape(h, SIMULATIONS)
    lower, upper = np.percentile(runs, [100 * ALPHA / 2, 100 * (1 - ALPHA / 2)], axis=1)
    # the simulated band is centred on the simulated paths: keep the point forecast inside it
    return Path(point, np.minimum(lower, point), np.maximum(upper, point))


def errors(actual: Array, predicted: Array) -> tuple[float, float]:
    """(MAE, RMSE) of ``predicted`` against ``actual``."""
    import numpy as np

    diff = actual - predicted
    return float(np.mean(np.abs(diff))), float(np.sqrt(np.mean(diff * diff)))
