from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Every plan model: unknown keys are errors (with a hint), and a loaded plan is immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
